"""Run-folder files opened, never followed: real folders below the run, O_NOFOLLOW reads of regular files only,
writes through an O_EXCL temp file and a rename, and no link that leads out of a run."""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from rlkit.errors import RlkitError

MAX_TEXT_BYTES = 4 << 20  # .hydra records are a few KB; this bounds what a hostile one costs
MAX_WALK_ENTRIES = 50_000  # a sweep of hundreds of runs; the walk before a read never takes long
_KINDS = ((stat.S_ISLNK, "a link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISREG, "a file"))


def entry_kind(path: Path | str, dir_fd: int | None = None, *, mode: int | None = None) -> str:
    """What is at `path` itself (a link is not followed), or what `mode` says: 'a link', 'a FIFO', 'missing'..."""
    try:
        mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode if mode is None else mode
    except OSError:
        return "missing"
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _open_folder(root: Path, folder: Path, *, create: bool) -> int:
    """An fd of `folder`, reached from `root` (the run, as given) one real directory at a time, never through a link;
    missing ones are made with mkdir when `create`. A missing one otherwise is FileNotFoundError."""
    parts = folder.relative_to(root).parts  # rlkit's own names below the run: never '..'
    try:  # the run itself is followed: where it is, and through what, is the user's choice
        if create:
            root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileExistsError, NotADirectoryError):
        raise RlkitError(f"{root} is {entry_kind(root)}, not a folder; give a run folder") from None
    try:
        for depth, name in enumerate(parts, start=1):
            if create:
                with suppress(FileExistsError):
                    os.mkdir(name, dir_fd=fd)
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    raise
                raise RlkitError(f"{root.joinpath(*parts[:depth])} is {entry_kind(name, fd)}, not a real folder of the "
                    "run; rlkit never follows a run folder's links: remove it") from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def real_folder(folder: Path, *, root: Path) -> Path:
    """`folder` made or checked as a real directory at or below `root`: a link there is refused, never followed."""
    os.close(_open_folder(Path(root), Path(folder), create=True))
    return Path(folder)


def open_run_file(path: Path, *, root: Path | None = None) -> BinaryIO:
    """A regular file of the run, opened without following a link or blocking on a FIFO; anything else is one
    RlkitError naming it. A missing file is FileNotFoundError, for the caller to judge."""
    path = Path(path)
    folder_fd = _open_folder(Path(root) if root is not None else path.parent, path.parent, create=False)
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise
        raise RlkitError(f"{path} is {entry_kind(path.name, folder_fd)}, not a regular file; rlkit reads a run "
            "folder's files only as they are, never through a link: remove it") from None
    finally:
        os.close(folder_fd)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # a folder, or a FIFO or device, which would block or never end
        os.close(fd)
        raise RlkitError(f"{path} is {entry_kind(path, mode=mode)}, not a regular file; remove it or put the file "
            "rlkit wrote back")
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return os.fdopen(fd, "rb")


def read_run_text(path: Path, *, root: Path | None = None) -> str:
    """A small text record of the run (UTF-8), read as open_run_file opens it, at most MAX_TEXT_BYTES."""
    with open_run_file(path, root=root) as handle:
        data = handle.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise RlkitError(f"{path} is larger than {MAX_TEXT_BYTES >> 20} MiB, so not a record rlkit wrote; remove it")
    return data.decode("utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


def _remove_dead_writers_temps(folder_fd: int, name: str) -> None:
    """Temp files of writers killed mid-write; a live writer's temp (its PID is in the name) is never touched, nor is
    anything but a regular file (a folder or link with a temp's name is left alone and never reused)."""
    prefix = f".{name}."
    for stale in os.listdir(folder_fd):
        pid = stale[len(prefix) :].split(".", 1)[0]
        if not (stale.startswith(prefix) and stale.endswith(".tmp") and pid.isdigit()) or int(pid) == os.getpid():
            continue
        if entry_kind(stale, folder_fd) == "a file" and not _pid_alive(int(pid)):
            with suppress(FileNotFoundError):
                os.unlink(stale, dir_fd=folder_fd)


def write_atomically(path: Path, write: Callable[[BinaryIO], None], *, root: Path | None = None) -> Path:
    """Write to a new temp file (O_EXCL, O_NOFOLLOW) in a checked real folder, fsync, then rename over `path`: a crash
    leaves the old file intact. The temp (.<name>.<pid>.<random>.tmp) gets the umask like any file; dead writers'
    temps go. `path` must be absent or a regular file: a link, folder or FIFO there is refused, never written into."""
    path = Path(path)
    folder_fd = _open_folder(Path(root) if root is not None else path.parent, path.parent, create=True)
    try:
        kind = entry_kind(path.name, folder_fd)
        if kind not in ("missing", "a file"):
            raise RlkitError(f"{path} is {kind}, not a file rlkit wrote, so it was left as it is; remove it")
        _remove_dead_writers_temps(folder_fd, path.name)
        tmp = f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=folder_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder_fd)
            raise
    finally:
        os.close(folder_fd)
    return path


def check_no_links_out(run_dir: Path) -> None:
    """Refuse a run folder holding a link that leads outside it (dangling ones too), before anything in it is read:
    a bounded walk that never follows a link."""
    inside = Path(os.path.realpath(run_dir))
    folders, seen = [Path(run_dir)], 0
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:  # unreadable: nothing in it can be read through it either
            continue
        for entry in entries:
            seen += 1
            if seen > MAX_WALK_ENTRIES:
                raise RlkitError(f"{run_dir} holds more than {MAX_WALK_ENTRIES:,} entries, more than rlkit checks for "
                    "links before reading a run; give a run or sweep folder")
            if entry.is_symlink():
                if not Path(os.path.realpath(entry.path)).is_relative_to(inside):
                    raise RlkitError(f"{entry.path} is a link leading outside its run folder; rlkit never follows a "
                        "run's links out: replace it with a real file or folder")
            elif entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
