"""Checkpoints are data, never code: state dicts + JSON-able metadata, atomic writes, weights_only loads."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
import torch

from rlkit.errors import RlkitError

FORMAT_VERSION = 1
KIND = "rlkit-checkpoint"
FILENAME = "checkpoint.pt"
REPLAY_FILENAME = "replay.npz"  # checkpoint.replay=true: the replay buffer, saved with numpy


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write to a temp file in the same folder, fsync, then rename: a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    data = {"kind": KIND, "format": FORMAT_VERSION, **payload}
    return atomic_write(path, lambda handle: torch.save(data, handle))


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """numpy .npz, never pickle (large replay buffers), written as atomically as checkpoints."""
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise RlkitError(f"{path} is truncated or corrupt ({type(exc).__name__}); delete it to resume without replay") from exc


def checkpoint_path(run_or_file: str | Path) -> Path:
    """Accept a run folder or the checkpoint file itself."""
    path = Path(run_or_file).expanduser()
    if path.is_dir():
        return path / FILENAME
    return path


def load_checkpoint(run_or_file: str | Path) -> dict[str, Any]:
    """Load without executing code; every failure is an RlkitError that names the file and the fix."""
    path = checkpoint_path(run_or_file)
    if not path.exists():
        where = Path(run_or_file)
        if not where.exists():
            raise RlkitError(f"run folder {where} does not exist; pass run=<a folder under runs/ that train printed>")
        raise RlkitError(f"no {FILENAME} in {where}; the run may not have finished a checkpoint yet")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RlkitError(
            f"{path} holds objects other than tensors and plain data, so it was refused unloaded "
            f"(loading it could run code); only checkpoints written by rlkit can be loaded"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RlkitError(f"{path} is truncated or corrupt ({type(exc).__name__}); retrain or use an older checkpoint") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise RlkitError(f"{path} is not an rlkit checkpoint (no '{KIND}' marker)")
    version = data.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RlkitError(
            f"{path} has checkpoint format {version}, newer than this rlkit reads ({FORMAT_VERSION}); upgrade rlkit"
        )
    return data
