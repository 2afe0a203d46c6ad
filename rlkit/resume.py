"""Resuming a run: rebuild the command line it was started with, refusing overrides that change its meaning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from rlkit.checkpoint import FILENAME
from rlkit.errors import RlkitError

# Keys a resumed run may change: how long and how visibly it runs, not what it learns.
RESUMABLE_KEYS = ("total_steps", "progress", "log_every_steps", "eval_every_steps", "eval_episodes", "final_eval_episodes", "device")
RESUMABLE_PREFIXES = ("checkpoint.", "hydra.", "device.", "video.")


def resume_argv(argv: Sequence[str]) -> list[str]:
    """`resume=<run>` + new overrides -> the run's original overrides, the allowed new ones, and its folder."""
    resume = [arg.partition("=")[2] for arg in argv if arg.startswith("resume=")]
    if not resume or resume[-1] in ("", "null"):
        return list(argv)
    run_dir = Path(resume[-1]).expanduser()
    if not run_dir.is_dir():
        raise RlkitError(f"resume={run_dir} does not exist; pass a run folder that rlkit.train printed")
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise RlkitError(f"resume={run_dir} is not an rlkit run folder (no .hydra/overrides.yaml)")
    if not (run_dir / FILENAME).is_file():
        raise RlkitError(f"resume={run_dir} has no {FILENAME} yet; start a new run instead")
    original = [o for o in OmegaConf.load(overrides_file) if not str(o).startswith(("resume=", "hydra.run.dir="))]
    new = [arg for arg in argv if not arg.startswith("resume=")]
    for arg in new:
        key = arg.partition("=")[0].lstrip("+~")
        if arg.startswith("-") or key in RESUMABLE_KEYS or key.startswith(RESUMABLE_PREFIXES):
            continue
        raise RlkitError(
            f"resume refuses {arg}: it would change what the run learns; allowed: {', '.join(RESUMABLE_KEYS)}, "
            f"checkpoint.*, video.*; start a new run to change {key}"
        )
    merged: dict[str, str] = {}  # one override per key, the newest winning, so repeated resumes stay short
    for arg in [*map(str, original), *new]:
        merged[arg.partition("=")[0]] = arg
    return [*merged.values(), f"resume={run_dir}", f"hydra.run.dir={run_dir}"]
