"""A training run's config as plain data: the typed top-level settings, the nodes built from names, and which
settings a resumed run may change.

The same checks serve a config composed from this installation's conf/ and one read back from a checkpoint.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from rlkit.config.registry import check_parts
from rlkit.envs.builders import check_env_config, upgrade_stored_env
from rlkit.errors import RlkitError
from rlkit.cli.overrides import RENAMED_KEYS
from rlkit.plain import check_value, refuse_code, where_in

SEED_LIMIT = 2**32  # numpy's legacy seeding takes 32 bits; torch and gymnasium take more


@dataclass(frozen=True)
class RunSettings:
    """How long, how visibly and where a run trains; the env, agent, net and optim nodes say what it learns."""

    seed: int
    total_steps: int
    eval_every_steps: int
    eval_episodes: int
    final_eval_episodes: int
    eval_max_steps: int | None
    log_every_steps: int
    progress: bool
    torch_threads: int | None
    checkpoint_every_steps: int
    checkpoint_replay: bool
    device: str


# Config key (dotted) -> RunSettings field.
SETTING_KEYS = {
    "seed": "seed", "total_steps": "total_steps", "eval_every_steps": "eval_every_steps", "eval_episodes": "eval_episodes",
    "final_eval_episodes": "final_eval_episodes", "eval_max_steps": "eval_max_steps", "log_every_steps": "log_every_steps",
    "progress": "progress", "torch_threads": "torch_threads", "checkpoint.every_steps": "checkpoint_every_steps",
    "checkpoint.replay": "checkpoint_replay", "device.name": "device",
}
# Settings a resumed run may change: how long and how visibly it runs, not what it learns (issue 8).
RESUMABLE_KEYS = tuple(key for key in SETTING_KEYS if key != "seed")
TOP_LEVEL_KEYS = ("seed", "total_steps", "eval_every_steps", "eval_episodes", "final_eval_episodes", "eval_max_steps",
                  "log_every_steps", "progress", "torch_threads", "checkpoint", "device", "video", "env", "agent", "net", "optim")
# Settings added since checkpoints were first written, with the value that gives an older run's behaviour.
ADDED_SETTINGS: dict[str, Any] = {"eval_max_steps": None}
# Evaluation videos (rlkit.watch.video) change what a run shows, not what it learns: a resume may change them too.
VIDEO_TYPES: dict[str, Any] = {
    "every_steps": int, "max_steps": int, "frame_stride": int, "scale": float, "size": list[int] | None, "overlay": str | None,
}
VIDEO_KEYS = tuple(VIDEO_TYPES)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """A composed config resolved into plain data, without Hydra's own node: what a checkpoint stores."""
    if "hydra" in cfg:
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]
    return typing.cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))


def lookup(config: Mapping[str, Any], key: str, origin: str = "") -> Any:
    """config['checkpoint']['every_steps'] for 'checkpoint.every_steps', or one line saying it is missing."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise RlkitError(f"{where_in(key, origin)} is missing; a training run's config sets it")
        node = node[part]
    return node


def _renamed(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keys renamed since the config was written (RENAMED_KEYS: a q_learning run's agent.discount) under today's
    names, each where the old one stood; a node that already has the new key is left for the checks to judge."""
    out = dict(config)
    for old, new in RENAMED_KEYS.items():
        (node_key, old_leaf), new_leaf = old.split("."), new.split(".")[-1]
        node = out.get(node_key)
        if isinstance(node, Mapping) and old_leaf in node and new_leaf not in node:
            out[node_key] = {new_leaf if key == old_leaf else key: value for key, value in node.items()}
    return out


def upgrade_stored_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config read from a checkpoint in today's shape: settings added since it was written get the values that
    reproduce its run, renamed keys get today's names, and its env node is upgraded (rlkit.envs.builders.upgrade_stored_env)."""
    return {**ADDED_SETTINGS, **_renamed(config), "env": upgrade_stored_env(config.get("env"))}


def run_settings(config: Mapping[str, Any], *, origin: str = "") -> RunSettings:
    """The typed top-level settings, each checked by type and range with one line naming the key."""
    hints = typing.get_type_hints(RunSettings)
    values = {field: check_value(lookup(config, key, origin), hints[field], key, origin) for key, field in SETTING_KEYS.items()}
    settings = RunSettings(**values)
    if not 0 <= settings.seed < SEED_LIMIT:
        raise RlkitError(f"{where_in('seed', origin)} must be >= 0 and < 2**32, got {settings.seed}")
    for key in ("total_steps", "eval_episodes", "final_eval_episodes", "log_every_steps"):
        if values[key] <= 0:
            raise RlkitError(f"{where_in(key, origin)} must be a positive number of steps/episodes, got {values[key]}")
    for key, field in (("eval_every_steps", "eval_every_steps"), ("checkpoint.every_steps", "checkpoint_every_steps")):
        if values[field] < 0:
            raise RlkitError(f"{where_in(key, origin)} must be >= 0 (0 disables it), got {values[field]}")
    if settings.eval_max_steps is not None and settings.eval_max_steps < 1:
        raise RlkitError(f"{where_in('eval_max_steps', origin)} must be >= 1 or null (no cap), got {settings.eval_max_steps}")
    if settings.torch_threads is not None and settings.torch_threads < 1:
        raise RlkitError(f"{where_in('torch_threads', origin)} must be >= 1 or null (torch's default), got {settings.torch_threads}")
    return settings


def check_run_config(config: Any, *, origin: str = "") -> RunSettings:
    """Every part of a training run's config checked as data, before anything is built from it."""
    refuse_code(config, "", origin)
    if not isinstance(config, Mapping):
        raise RlkitError(f"{where_in('config', origin)} must be a mapping of settings")
    unknown = sorted(set(config) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise RlkitError(f"{where_in(unknown[0], origin)} is not a setting of rlkit.train; its settings: {', '.join(TOP_LEVEL_KEYS)}")
    for node, keys in (("checkpoint", {"every_steps", "replay"}), ("device", {"name"}), ("video", set(VIDEO_KEYS))):
        if node == "video" and node not in config:  # checkpoints written before issue 12 have no video node
            continue
        value = lookup(config, node, origin)
        if not isinstance(value, Mapping) or set(value) - keys:
            raise RlkitError(f"{where_in(node, origin)} must hold only {', '.join(sorted(keys))}")
    settings = run_settings(config, origin=origin)
    for key, annotation in VIDEO_TYPES.items():
        if "video" in config and key in config["video"]:
            check_value(config["video"][key], annotation, f"video.{key}", origin)
    check_env_config(config["env"], origin=origin)
    check_parts(config, origin=origin)
    return settings
