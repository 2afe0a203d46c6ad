"""Checkpoints are data, never code: state dicts + JSON-able metadata, atomic writes, weights_only loads."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.errors import RlkitError
from rlkit.run_files import open_run_file, write_atomically
from rlkit.run_folder import FILENAME

# 2: agents named by a registry (rlkit.config.registry), a SHA-256 of the contents; 1: Hydra _target_s
FORMAT_VERSION = 2
KIND = "rlkit-checkpoint"
DIGEST_KEY = "sha256"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


# Every run-folder write goes through rlkit.run_files; this name stays for its callers.
atomic_write = write_atomically


MAX_DEPTH = 100  # rlkit's own payloads nest about 8 deep and hold a few thousand values
MAX_NODES = 200_000


def _feed(digest: Any, value: Any, origin: str) -> None:
    """Hash a payload canonically: type tags, lengths, sorted mapping keys, tensors as dtype, shape and bytes. An
    explicit stack, bounded in depth and in values as a tree: a shared node is fed each time it is met (a DAG hashes
    as its tree), so 64 levels of shared lists (2**64 as a tree) are refused within MAX_NODES steps."""
    stack, nodes = [(value, 0)], 0
    while stack:
        value, depth = stack.pop()
        nodes += len(value) if isinstance(value, (Mapping, list, tuple)) else 0  # counted before they are sorted
        if depth > MAX_DEPTH or nodes > MAX_NODES:
            why = f"nests deeper than {MAX_DEPTH} levels" if depth > MAX_DEPTH else (f"holds more than {MAX_NODES:,} "
                "values (as a tree)")
            raise RlkitError(f"{origin} {why}; rlkit never writes that: use an older checkpoint or retrain")
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, Mapping):
            digest.update(f"D{len(value)}".encode())
            for key in reversed(sorted(value, key=lambda k: (type(k).__name__, repr(k)))):
                stack += [(value[key], depth + 1), (key, depth + 1)]  # popped key first, as a recursive walk feeds
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__[0]}{len(value)}".encode())
            stack += [(item, depth + 1) for item in reversed(value)]
        else:
            digest.update(f"{type(value).__name__}:{value!r};".encode("utf-8", "surrogatepass"))


def content_digest(payload: Mapping[str, Any], origin: str = "checkpoint data") -> str:
    """SHA-256 of a payload but its digest, checked on load: a flipped bit is one clear error, not a different agent."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != DIGEST_KEY}, origin)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    data = {"kind": KIND, "format": FORMAT_VERSION, **payload}
    data[DIGEST_KEY] = content_digest(data)
    return atomic_write(path, lambda handle: torch.save(data, handle))


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """numpy .npz, never pickle (large replay buffers), written as atomically as checkpoints."""
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


MAX_INFLATION = 20  # rlkit stores zip members uncompressed; deflated zeros grow 1000-fold (a zip bomb)
Layout = Mapping[str, tuple[tuple[int, ...], np.dtype]]  # array name -> shape and dtype


def zip_members(archive: zipfile.ZipFile, path: str | Path) -> list[zipfile.ZipInfo]:
    """The members listed in the central directory, nothing inflated; one that would grow far past its stored bytes
    is refused."""
    members = archive.infolist()
    for info in members:
        if info.file_size > MAX_INFLATION * info.compress_size + 4096:
            raise RlkitError(f"{path}: member {info.filename[:60]} would inflate {info.compress_size:,} bytes to "
                f"{info.file_size:,} (a zip bomb); rlkit never writes that, so it was refused unread")
    return members


def _npy_layout(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """An .npz member's shape and dtype from its .npy header alone, which must declare exactly the member's bytes."""
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"npy format {version}")
        shape, _, dtype = read_header[version](handle)
        declared = handle.tell() + math.prod(shape) * dtype.itemsize
    if dtype.hasobject or declared != info.file_size:
        raise RlkitError(f"{path}: array {info.filename[:60]} declares {dtype}{shape} ({declared:,} bytes) in a "
            f"member of {info.file_size:,}; delete it to resume without replay")
    return shape, dtype


def _arrays_in(archive: zipfile.ZipFile, path: str | Path, expected: Layout | None) -> dict[str, zipfile.ZipInfo]:
    """The members by array name, each header checked against `expected` (missing names are the caller's to judge),
    or without it only against its member's size."""
    members = {info.filename.removesuffix(".npy"): info for info in zip_members(archive, path)}
    for name, info in members.items():
        shape, dtype = _npy_layout(archive, info, path)
        want = (expected or {name: (shape, dtype)}).get(name)
        if want is None or tuple(want[0]) != shape or want[1] != dtype:
            what = "not an array this buffer keeps" if want is None else f"this buffer {want[1]}{tuple(want[0])}"
            raise RlkitError(f"{path} does not fit this run (saved replay {name[:60]} is {dtype}{shape}, {what}); "
                "delete it to resume without its replay")
    return members


@contextlib.contextmanager
def _corrupt_npz(path: str | Path) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile) as exc:
        raise RlkitError(f"{path} is truncated or corrupt ({type(exc).__name__}); delete it to resume without "
            "replay") from exc


def check_arrays(path: str | Path, expected: Layout | None = None) -> None:
    """An .npz's headers checked, nothing inflated: cheap enough to run before a run's lock is taken."""
    with _corrupt_npz(path), open_run_file(Path(path)) as handle, zipfile.ZipFile(handle) as archive:
        _arrays_in(archive, path, expected)


def load_arrays(path: str | Path, expected: Layout | None = None) -> dict[str, np.ndarray]:
    """An .npz written by save_arrays; every header is checked before any array is read."""
    with _corrupt_npz(path), open_run_file(Path(path)) as handle, zipfile.ZipFile(handle) as archive:
        members = _arrays_in(archive, path, expected)
        return {name: np.lib.format.read_array(archive.open(info), allow_pickle=False)
            for name, info in members.items()}


def checkpoint_path(run_or_file: str | Path) -> Path:
    """Accept a run folder or the checkpoint file itself."""
    path = Path(run_or_file).expanduser()
    return path / FILENAME if path.is_dir() else path


def _runs_below(folder: Path, *, limit: int = 5, max_dirs: int = 2000) -> list[Path]:
    """Run folders (holding checkpoint.pt) below `folder`, found by a bounded walk: never a hang on a huge tree."""
    found = []
    for visited, (root, dirs, files) in enumerate(os.walk(folder), start=1):
        dirs.sort()
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if FILENAME in files:
            found.append(Path(root))
        if len(found) >= limit or visited >= max_dirs:
            break
    return found


def _missing(run_or_file: str | Path) -> RlkitError:
    where = Path(run_or_file).expanduser()
    if not where.exists():
        return RlkitError(f"run folder {where} does not exist; pass run=<a folder under runs/ that train printed>")
    runs = _runs_below(where)
    if runs:
        shown = ", ".join(str(r) for r in runs[:3]) + (", ..." if len(runs) > 3 else "")
        return RlkitError(f"{where} holds no {FILENAME} itself but runs below it: {shown}; pass one of them")
    return RlkitError(f"no {FILENAME} in {where}; the run may not have finished a checkpoint yet")


def load_checkpoint(run_or_file: str | Path) -> dict[str, Any]:
    """Load without executing code; every failure is an RlkitError that names the file and the fix."""
    path = checkpoint_path(run_or_file)
    if not os.path.lexists(path):
        raise _missing(run_or_file)
    with open_run_file(path) as handle:  # a link, FIFO or device is refused: never followed, never a hang
        if handle.read(4) != ZIP_MAGIC:
            raise RlkitError(f"{path} is not an rlkit checkpoint (not a torch zip file)")
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as exc:  # as torch.load's below: a damaged zip fails in many ways
            raise RlkitError(f"{path} is truncated or corrupt ({type(exc).__name__}); retrain or use an older "
                "checkpoint") from None
        zip_members(archive, path)  # before torch inflates anything
        handle.seek(0)
        try:
            data = torch.load(handle, map_location="cpu", weights_only=True)
        except RecursionError:
            raise RlkitError(f"{path} holds data nested too deep to read; rlkit never writes that, so it was "
                "refused") from None
        except pickle.UnpicklingError as exc:
            raise RlkitError(f"{path} holds objects other than tensors and plain data, so it was refused unloaded "
                "(loading it could run code); only checkpoints written by rlkit can be loaded") from exc
        except Exception as exc:  # a damaged zip or pickle fails in many ways: each is the same user-facing fact
            raise RlkitError(f"{path} is truncated or corrupt ({type(exc).__name__}); retrain or use an older "
                "checkpoint") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise RlkitError(f"{path} is not an rlkit checkpoint (no '{KIND}' marker)")
    version = data.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RlkitError(f"{path} has no valid checkpoint format number ({version!r})")
    if version > FORMAT_VERSION:
        raise RlkitError(f"{path} has checkpoint format {version}, newer than this rlkit reads ({FORMAT_VERSION}); "
            "upgrade rlkit")
    digest = content_digest(data, str(path))  # format 1 has none to compare, but its walk refuses DAGs and depth
    if version >= 2 and data.get(DIGEST_KEY) != digest:
        raise RlkitError(f"{path} is corrupt: its contents do not match the SHA-256 stored in it (a flipped bit or a "
            "partial copy); use an older checkpoint or retrain")
    data.pop(DIGEST_KEY, None)
    return data
