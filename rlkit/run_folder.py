"""Run folders: what a run writes there, a fresh writable folder for each new run, claimed before anything is
written into it, and one writer at a time."""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import tempfile
from pathlib import Path

from rlkit.errors import RlkitError
from rlkit.run_files import entry_kind

FILENAME = "checkpoint.pt"
REPLAY_FILENAME = "replay.npz"  # checkpoint.replay=true: the replay buffer, saved with numpy

LOCK_FILENAME = ".rlkit.lock"
# What makes a folder a run folder: Hydra's records, a checkpoint, TensorBoard events, a writer's lock.
RUN_MARKERS = (".hydra", FILENAME, LOCK_FILENAME, "events.out.tfevents.*")
CLAIM_TRIES = 16  # fresh names tried before giving up: 4 hex digits collide once in 65536 launches of one second
NAME_MAX_CHARS = 100

# Run folders this process claimed, by (device, inode), and their locks' descriptors: RunLock takes them over.
_claims: dict[tuple[int, int], int] = {}


def check_folder_name(name: str, *, what: str) -> None:
    """A setting that becomes one folder of a run's path (env.name=../../x put a run outside runs/)."""
    if (not name or name.startswith(".") or "/" in name or "\\" in name or len(name) > NAME_MAX_CHARS
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        shown = ascii(name if len(name) <= 60 else name[:40]) + ("..." if len(name) > 60 else "")
        raise RlkitError(f"{what}={shown} ({len(name)} characters) cannot name a run folder: use at most "
            f"{NAME_MAX_CHARS} characters without /, \\, control characters or a leading dot")


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
    lock = run_dir / LOCK_FILENAME
    if os.path.lexists(lock) and not stat.S_ISREG(lock.lstat().st_mode):
        raise _not_a_lock(lock)
    if run_dir.is_dir() and any(next(run_dir.glob(marker), None) is not None for marker in RUN_MARKERS):
        fix = f"continue it with {continue_with}" if continue_with else "remove it first"
        raise RlkitError(f"{what}={run_dir} already holds a run; {fix}, or pass a new {what}")
    check_writable(run_dir, label=f"{what}={run_dir}")


def _not_a_lock(path: Path, exc: OSError | None = None) -> RlkitError:
    """A lock path that is a link, a FIFO or a folder: nothing is ever written through it."""
    kind = entry_kind(path)
    if kind == "a file":
        return RlkitError(f"{path} cannot be opened ({exc.strerror if exc else 'unknown'}); fix its permissions")
    return RlkitError(f"{path} is {kind}, not rlkit's lock file; remove it, then try again")


def _open_lock(path: Path, *, new: bool) -> int:
    """The lock file, opened without following a link (O_NOFOLLOW), created only if `new` (O_EXCL), checked to be a
    regular file on the open descriptor, flocked and holding this process's PID."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_EXCL if new else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except FileExistsError:
        raise
    except OSError as exc:  # ELOOP: a link; EISDIR: a folder
        raise _not_a_lock(path, exc) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO opens
        os.close(fd)
        raise _not_a_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RlkitError(f"{path.parent} is being written by another rlkit process (PID {holder}); wait for "
            "it to finish or stop it, then try again") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def fresh_folder(base: Path) -> Path:
    """`<base>_<4 hex>`, made here by a mkdir that fails if it exists: no other launch has or can take that name."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(CLAIM_TRIES):
        folder = base.with_name(f"{base.name}_{secrets.token_hex(2)}")
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        return folder
    raise RlkitError(f"no free folder name beside {base} after {CLAIM_TRIES} tries; remove old folders there")


def claim_run_dir(run_dir: Path, *, fresh: bool, what: str = "hydra.run.dir") -> Path:
    """Claim a new run's folder (a fresh one beside run_dir if `fresh`) before anything is written there: its lock
    created exclusively and flocked. This process holds it until it ends, or until the RunLock that takes it over."""
    if fresh:
        run_dir = fresh_folder(run_dir)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = _open_lock(run_dir / LOCK_FILENAME, new=True)
    except FileExistsError:
        raise RlkitError(f"{what}={run_dir} was just claimed by another rlkit launch; pass a new {what}") from None
    identity = _identity(run_dir)
    assert identity is not None  # made or found above
    _claims[identity] = fd
    return run_dir


class RunLock:
    """One writer per run folder: an exclusive flock on <run>/.rlkit.lock, holding the writer's PID. The kernel drops
    it when its process dies, so a killed run never blocks its resume. Readers (play, report) never take it. A folder
    this process claimed (claim_run_dir) is taken over, never opened again."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILENAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        claimed = _claims.pop(_identity(self.path.parent), None)  # type: ignore[arg-type]  # None: never claimed
        self._fd = claimed if claimed is not None else _open_lock(self.path, new=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
