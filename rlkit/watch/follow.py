"""play follow=true: replay, reload the newest checkpoint, repeat until the run finishes or its folder goes idle."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from rlkit.errors import printable


class RunProgress(NamedTuple):
    step: int
    total_steps: int

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps

    @property
    def note(self) -> str:
        """What play says about a run whose checkpoint is not its last: it may still be training."""
        return "" if self.finished else (f"; the run is at step {self.step} of {self.total_steps} (follow=true "
            "replays newer checkpoints as they come)")


def run_progress(step: int, config: Mapping[str, Any]) -> RunProgress:
    """Step and total_steps of a checkpoint already checked as data (no total: taken as finished)."""
    return RunProgress(step, int(config.get("total_steps", step)))


class FileStamp:
    """Notices a file replaced or rewritten (inode, size, mtime); checkpoints are renamed in, so never partial."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return False
        self._seen = stamp
        return True


def last_change(folder: Path) -> float:
    """Newest modification time of the files directly in a run folder (checkpoint, TensorBoard events, logs)."""
    return max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=folder.stat().st_mtime)


def follow(
    stamp: FileStamp, progress: RunProgress, *, play_episode: Callable[[int], float], reload: Callable[[], RunProgress],
    idle_timeout_s: float, poll_s: float = 0.5, clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RunProgress:
    """Play, reload, repeat; returns the last checkpoint's progress. `stamp` predates the first load, so none is missed;
    a folder idle for idle_timeout_s (training flushes TensorBoard every 2 minutes) means the run has stopped."""
    episode = 0
    while True:
        play_episode(episode)
        episode += 1
        if progress.finished:
            print(f"follow: the run finished at step {progress.step}", flush=True)
            return progress
        if not stamp.changed():
            print(f"follow: waiting for a checkpoint newer than step {progress.step} (Ctrl-C stops)", flush=True)
            while not stamp.changed():
                if clock() - last_change(stamp.path.parent) > idle_timeout_s:
                    print(f"follow: nothing in {printable(str(stamp.path.parent))} changed for {idle_timeout_s:g} s; "
                        "the run has stopped", flush=True)
                    return progress
                sleep(poll_s)
        progress = reload()
        print(f"follow: reloaded the checkpoint at step {progress.step} of {progress.total_steps}", flush=True)
