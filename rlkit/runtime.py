"""Device resolution, seeding, torch threads and graceful stops: what a run sets up before it starts."""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from rlkit.errors import RlkitError


def resolve_device(name: str) -> torch.device:
    """Turn auto|cpu|cuda|cuda:N|mps into a torch.device that exists; never fall back silently."""
    name = str(name).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise RlkitError("device=mps but no Apple MPS device is available; use device=auto or device=cpu")
        return torch.device("mps")
    kind, _, suffix = name.partition(":")
    if kind == "cuda" and (suffix or "0").isdigit():
        index = int(suffix or 0)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RlkitError(f"device={name} but no CUDA device is visible; use device=auto or device=cpu")
        if index >= count:
            raise RlkitError(f"device={name} but only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1})")
        return torch.device("cuda", index)
    raise RlkitError(f"device={name} is not a device; choose one of: auto, cpu, cuda, cuda:<index>, mps")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a run with the same config repeats on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Greedy episodes act on one observation at a time, fastest on one thread (a second one waiting for a busy core
    made Pong's evaluation 4-9x slower); the run's own torch_threads is back afterwards, for the updates."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def set_torch_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads; None keeps torch's default (one per core). Small nets gain nothing from a second
    thread and lose a lot on shared cores: a 64x64 update took 0.5 ms on one thread, up to 13 ms on two."""
    if threads is not None:
        if int(threads) < 1:
            raise RlkitError(f"torch_threads must be >= 1 or null (torch's default), got {threads}")
        torch.set_num_threads(int(threads))


class GracefulStop:
    """Turn Ctrl-C and SIGTERM into a request the training loop honours after the current step, so the saved state
    is consistent; a second Ctrl-C interrupts at once for a user who really wants out."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # Hydra launchers may run jobs in threads
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
