"""Run folders: what a run writes there, a fresh writable folder for each new run, and one writer at a time."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from rlkit.errors import RlkitError

FILENAME = "checkpoint.pt"
REPLAY_FILENAME = "replay.npz"  # checkpoint.replay=true: the replay buffer, saved with numpy

LOCK_FILENAME = ".rlkit.lock"
# What makes a folder a run folder: Hydra's records, a checkpoint, TensorBoard events, a writer's lock.
RUN_MARKERS = (".hydra", FILENAME, LOCK_FILENAME, "events.out.tfevents.*")


def check_writable(path: Path, *, label: str) -> None:
    """Refuse a folder that cannot be created or written, before any work (`label` names the setting): probe it."""
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RlkitError(f"{label} cannot be created: {ancestor} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".rlkit-probe-", dir=ancestor))
    except OSError as exc:
        raise RlkitError(f"{label} cannot be written: {ancestor} refuses new files ({exc.strerror})") from None


def check_new_run_dir(run_dir: Path, *, what: str = "hydra.run.dir", continue_with: str | None = None) -> None:
    """A new run gets a folder of its own: not a file, not an existing run's folder, and writable."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RlkitError(f"{what}={run_dir} is a file; pass a folder for the new run")
    if run_dir.is_dir() and any(next(run_dir.glob(marker), None) is not None for marker in RUN_MARKERS):
        fix = f"continue it with {continue_with}" if continue_with else "remove it first"
        raise RlkitError(f"{what}={run_dir} already holds a run; {fix}, or pass a new {what}")
    check_writable(run_dir, label=f"{what}={run_dir}")


class RunLock:
    """One writer per run folder: an exclusive flock on <run>/.rlkit.lock, holding the writer's PID. The kernel drops
    it when its process dies, so a killed run never blocks its resume. Readers (play, report) never take it."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILENAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RlkitError(f"{self.path.parent} is being written by another rlkit process (PID {holder}); wait for "
                "it to finish or stop it, then try again") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
