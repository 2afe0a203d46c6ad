"""Standard streams for the command-line tools: output into a closed pipe is dropped, and the work goes on."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO


class DropWhenClosed:
    """A standard stream that drops its output once its reader has gone (`python -m rlkit.train ... | head`): a
    BrokenPipeError would kill the run and lose its checkpoint, so its descriptor goes to os.devnull instead."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())  # what is still buffered, and all that follows, goes nowhere
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the stream's own
        return getattr(self.stream, name)


@contextlib.contextmanager
def quiet_closed_pipes() -> Iterator[None]:
    """stdout and stderr as DropWhenClosed while an entry point runs; the run ends with its own exit status."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, DropWhenClosed):
        sys.stdout, sys.stderr = DropWhenClosed(sys.stdout), DropWhenClosed(sys.stderr)
    try:
        yield
    finally:
        sys.stdout.flush()  # while a closed pipe is still caught: Python's flush at exit would report it
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
