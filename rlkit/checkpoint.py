"""Checkpoints are data, never code: state dicts + JSON-able metadata, atomic writes, weights_only loads."""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from collections.abc import Mapping
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


def _feed(digest: Any, value: Any) -> None:
    """Hash a payload canonically: type tags, lengths, sorted mapping keys, tensors as dtype, shape and bytes."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, Mapping):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__[0]}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode("utf-8", "surrogatepass"))


def content_digest(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a payload but its digest, checked on load: a flipped bit is one clear error, not a different agent."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    data = {"kind": KIND, "format": FORMAT_VERSION, **payload}
    data[DIGEST_KEY] = content_digest(data)
    return atomic_write(path, lambda handle: torch.save(data, handle))


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """numpy .npz, never pickle (large replay buffers), written as atomically as checkpoints."""
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with open_run_file(Path(path)) as handle, np.load(handle, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RlkitError(f"{path} is truncated or corrupt ({type(exc).__name__}); delete it to resume without "
            "replay") from exc


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
        handle.seek(0)
        try:
            data = torch.load(handle, map_location="cpu", weights_only=True)
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
    if version >= 2 and data.get(DIGEST_KEY) != content_digest(data):
        raise RlkitError(f"{path} is corrupt: its contents do not match the SHA-256 stored in it (a flipped bit or a "
            "partial copy); use an older checkpoint or retrain")
    data.pop(DIGEST_KEY, None)
    return data
