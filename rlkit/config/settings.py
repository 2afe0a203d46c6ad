"""A training run's config checked as plain data, once, into typed settings (run, video and parts); the same checks
serve conf/ and a checkpoint's config, and say which settings a resumed run may change."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from rlkit.cli.overrides import FLAG_PARTS, MOVED_KEYS, RENAMED_KEYS
from rlkit.config.registry import ActingParts, PartsSettings, check_acting_parts, check_parts
from rlkit.envs.builders import check_env_config, upgrade_stored_env
from rlkit.errors import RlkitError
from rlkit.plain import check_value, refuse_code, where_in

SEED_LIMIT = 2**32  # numpy's legacy seeding takes 32 bits; torch and gymnasium take more
VIDEO_SIDES = (16, 4096)  # pixels a side of video.size: [100000,100000] hung training
VIDEO_PIXELS = 3840 * 2160  # a 4K frame


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
    # the agent, net, optim and replay nodes once check_run_config checked them (only the network's for acting)
    parts: PartsSettings | ActingParts | None = None
    video: VideoSettings | None = None  # check_run_config's checked video node


# Config key (dotted) -> RunSettings field; the fields of nested keys are named after the path.
_NESTED = {"checkpoint_every_steps": "checkpoint.every_steps", "checkpoint_replay": "checkpoint.replay",
    "device": "device.name"}
SETTING_KEYS = {
    _NESTED.get(field.name, field.name): field.name
    for field in dataclasses.fields(RunSettings) if field.name not in ("parts", "video")
}
# Settings a resumed run may change: how long and how visibly it runs, not what it learns.
RESUMABLE_KEYS = tuple(key for key in SETTING_KEYS if key != "seed")
TOP_LEVEL_KEYS = (*dict.fromkeys(key.split(".")[0] for key in SETTING_KEYS), "video", "env", "agent", "net", "optim",
    "replay")
# Settings added since checkpoints were first written, with the value that gives an older run's behaviour.
ADDED_SETTINGS: dict[str, Any] = {"eval_max_steps": None}


@dataclass(frozen=True)
class VideoSettings:
    """video.*: what evaluation videos record (rlkit.watch.video); they change what a run shows, not what it learns,
    so a resume may change them. The defaults are conf/train.yaml's."""

    every_steps: int = 0  # 0: no videos
    max_steps: int = 1000
    frame_stride: int = 2
    scale: float = 0.5
    size: tuple[int, int] | None = None  # [height, width] instead of scale
    overlay: str | None = None


VIDEO_KEYS = tuple(field.name for field in dataclasses.fields(VideoSettings))


def video_settings(node: Mapping[str, Any], *, origin: str = "") -> VideoSettings:
    """The video node checked once, by type and range; keys it leaves out take the defaults."""
    hints = typing.get_type_hints(VideoSettings) | {"size": list[int] | None}  # YAML gives a list
    values = {key: check_value(value, hints[key], f"video.{key}", origin) for key, value in node.items()}
    video = VideoSettings(**values)
    if video.every_steps < 0:
        raise RlkitError(f"{where_in('video.every_steps', origin)} must be >= 0 (0 turns videos off), got "
            f"{video.every_steps}")
    for key in ("max_steps", "frame_stride"):
        if getattr(video, key) < 1:
            raise RlkitError(f"{where_in('video.' + key, origin)} must be >= 1, got {getattr(video, key)}")
    if not 0.0 < video.scale <= 4.0:
        raise RlkitError(f"{where_in('video.scale', origin)} must be in (0, 4], got {video.scale}")
    if video.size is None:
        return video
    if len(video.size) != 2 or any(side < 1 for side in video.size):
        raise RlkitError(f"{where_in('video.size', origin)} must be [height, width] in pixels, got {list(video.size)}")
    (low, high), (height, width) = VIDEO_SIDES, video.size
    if not (low <= height <= high and low <= width <= high) or height * width > VIDEO_PIXELS:
        raise RlkitError(f"{where_in('video.size', origin)} must have sides of {low} to {high} pixels and at most "
            f"{VIDEO_PIXELS:,} pixels in all (4K), got {list(video.size)}")
    return dataclasses.replace(video, size=(int(video.size[0]), int(video.size[1])))


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """A composed config resolved into plain data, without Hydra's own node: what a checkpoint stores."""
    if "hydra" in cfg:
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]
    return typing.cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))


def lookup(config: Mapping[str, Any], key: str, origin: str = "") -> Any:
    """config['checkpoint']['every_steps'] for 'checkpoint.every_steps', or one line saying it is missing."""
    found, value = _walk(config, key)
    if not found:
        raise RlkitError(f"{where_in(key, origin)} is missing; a training run's config sets it")
    return value


def _walk(config: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(whether the dotted key is there, its value or None)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _renamed(config: Mapping[str, Any]) -> dict[str, Any]:
    """Renamed keys (RENAMED_KEYS) under today's names, each where the old one stood; a node that already has the
    new key is left for the checks to judge."""
    out = dict(config)
    for old, new in RENAMED_KEYS.items():
        (node_key, old_leaf), new_leaf = old.split("."), new.split(".")[-1]
        node = out.get(node_key)
        if isinstance(node, Mapping) and old_leaf in node and new_leaf not in node:
            out[node_key] = {new_leaf if key == old_leaf else key: value for key, value in node.items()}
    return out


def _set(config: dict[str, Any], key: str, value: Any) -> None:
    """config[a][b] = value for 'a.b', each node on the way copied, so the mapping read from disk stays as it was."""
    *path, leaf = key.split(".")
    node = config
    for part in path:
        node[part] = dict(node[part]) if isinstance(node.get(part), Mapping) else {}
        node = node[part]
    node[leaf] = value


def _parts_from_flags(config: Mapping[str, Any]) -> dict[str, Any]:
    """Flags stored before parts had names (FLAG_PARTS) as today's nodes, with MOVED_KEYS moved in (dropped where a run
    sampled uniformly: they never counted); a non-bool flag is left for the checks, a part already named is kept."""
    out = dict(config)
    for old, (choice, parts) in FLAG_PARTS.items():
        node_key, leaf = old.split(".")
        node = out.get(node_key)
        if not isinstance(node, Mapping) or not isinstance(node.get(leaf), bool):
            continue
        out[node_key] = {k: v for k, v in node.items() if k != leaf}
        target = choice.replace("/", ".") + ("" if choice.endswith(".type") else ".type")
        if _walk(out, target)[1] is None:
            _set(out, target, parts[node[leaf]])
    agent = out.get("agent")
    if isinstance(agent, Mapping) and any(old.split(".")[1] in agent for old in MOVED_KEYS):
        prioritized = _walk(out, "agent.sampler.type")[1] == "prioritized"
        out["agent"] = {k: v for k, v in agent.items() if f"agent.{k}" not in MOVED_KEYS}
        for old, new in MOVED_KEYS.items():
            if prioritized and old.split(".")[1] in agent and _walk(out, new)[1] is None:
                _set(out, new, agent[old.split(".")[1]])
    return out


def upgrade_stored_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's config in today's shape: added settings get the values that reproduce its run, renamed keys
    and flags become today's keys and parts, and its env node is upgraded (rlkit.envs.builders.upgrade_stored_env)."""
    upgraded = _parts_from_flags({**ADDED_SETTINGS, **_renamed(config)})
    upgraded.setdefault("replay", {"type": "transitions"})  # the only replay before replays had names
    if isinstance(net := upgraded.get("net"), Mapping):
        head = net.get("head", {"type": "linear"})  # the only head before heads had names
        if isinstance(head, Mapping):  # heads before noisy nets (issue 21) had plain layers
            head = {"noisy": False, "sigma0": 0.5, **head}
        upgraded["net"] = {**net, "head": head}
    agent = upgraded.get("agent")
    if isinstance(agent, Mapping) and agent.get("type") == "dqn":  # parts a run stored before they had names
        parts = {"sampler": {"type": "uniform"}, "distribution": {"type": "expected"}}
        upgraded["agent"] = {**agent, **{key: node for key, node in parts.items() if key not in agent}}
    return {**upgraded, "env": upgrade_stored_env(upgraded.get("env"))}


def run_settings(config: Mapping[str, Any], *, origin: str = "") -> RunSettings:
    """The typed top-level settings, each checked by type and range with one line naming the key."""
    hints = typing.get_type_hints(RunSettings)
    values = {
        field: check_value(lookup(config, key, origin), hints[field], key, origin)
        for key, field in SETTING_KEYS.items()
    }
    settings = RunSettings(**values)
    if not 0 <= settings.seed < SEED_LIMIT:
        raise RlkitError(f"{where_in('seed', origin)} must be >= 0 and < 2**32, got {settings.seed}")
    for key in ("total_steps", "eval_episodes", "final_eval_episodes", "log_every_steps"):
        if values[key] <= 0:
            raise RlkitError(f"{where_in(key, origin)} must be a positive number of steps/episodes, got {values[key]}")
    for key, field in (("eval_every_steps", "eval_every_steps"), ("checkpoint.every_steps", "checkpoint_every_steps")):
        if values[field] < 0:
            raise RlkitError(f"{where_in(key, origin)} must be >= 0 (0 disables it), got {values[field]}")
    for key, null in (("eval_max_steps", "no cap"), ("torch_threads", "torch's default")):
        if values[key] is not None and values[key] < 1:
            raise RlkitError(f"{where_in(key, origin)} must be >= 1 or null ({null}), got {values[key]}")
    return settings


def check_run_config(config: Any, *, origin: str = "", acting: bool = False) -> RunSettings:
    """Every part of a training run's config checked as data, once, before anything is built from it: the settings
    carry the checked agent, net, optim and replay nodes (`parts`) that build_agent builds from."""
    refuse_code(config, "", origin)
    if not isinstance(config, Mapping):
        raise RlkitError(f"{where_in('config', origin)} must be a mapping of settings")
    unknown = sorted(set(config) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise RlkitError(f"{where_in(unknown[0], origin)} is not a setting of rlkit.train; its settings: "
            f"{', '.join(TOP_LEVEL_KEYS)}")
    for node, keys in (("checkpoint", {"every_steps", "replay"}), ("device", {"name"}), ("video", set(VIDEO_KEYS))):
        if node == "video" and node not in config:  # older checkpoints have no video node
            continue
        value = lookup(config, node, origin)
        if not isinstance(value, Mapping) or set(value) - keys:
            raise RlkitError(f"{where_in(node, origin)} must hold only {', '.join(sorted(keys))}")
    settings = run_settings(config, origin=origin)
    video = video_settings(config.get("video", {}), origin=origin)
    check_env_config(config["env"], origin=origin)
    parts = check_acting_parts(config, origin=origin) if acting else check_parts(config, origin=origin)
    return dataclasses.replace(settings, parts=parts, video=video)
