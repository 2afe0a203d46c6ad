"""A training run's checkpoint read back as checked data (SavedRun): what play and resume start from."""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from rlkit.checkpoint import checkpoint_path, load_checkpoint
from rlkit.config.dqn import DQNSettings
from rlkit.config.policies import build_policy
from rlkit.config.registry import ActingParts, PartsSettings
from rlkit.config.settings import check_run_config, upgrade_stored_config
from rlkit.envs.builders import check_stored_env
from rlkit.errors import RlkitError
from rlkit.plain import show, where_in

SUPERVISED_TASK = "supervised"
# Format 1 named classes by import path; read by exact string, never imported (an early Pong run is one).
LEGACY_TARGETS = {
    "rlkit.agents.dqn.DQNAgent": "dqn", "rlkit.agents.tabular.QLearningAgent": "q_learning",
    "rlkit.nets.MLPBody": "mlp", "rlkit.nets.CNNBody": "cnn", "torch.optim.SGD": "sgd", "torch.optim.Adam": "adam",
    "torch.optim.Adagrad": "adagrad", "torch.optim.RMSprop": "rmsprop", "torch.optim.Adadelta": "adadelta",
}


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """A training run's checkpoint, every field checked as data."""

    path: Path
    env_name: str
    agent_name: str
    step: int
    config: dict[str, Any]
    agent_state: Mapping[str, Any]
    rng: Mapping[str, Any]
    env_rng: list[Any]
    parts: PartsSettings | ActingParts | None = None  # the config's nodes, checked when it was read


def _legacy_node(node: Any, key: str, origin: str) -> dict[str, Any]:
    target = node.get("_target_") if isinstance(node, Mapping) else None
    if target not in LEGACY_TARGETS:
        raise RlkitError(f"{where_in(key + '._target_', origin)}={show(target)} is not a class rlkit ever wrote; "
            "refusing it")
    return {"type": LEGACY_TARGETS[target], **{k: v for k, v in node.items() if k not in ("_target_", "_partial_")}}


def _from_format_1(config: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """A format-1 config (agent.net / agent.optimizer as Hydra partials) in today's shape: nodes named by type."""
    agent = config.get("agent")
    if not isinstance(agent, Mapping):
        raise RlkitError(f"{where_in('agent', origin)} must be a mapping, got {show(agent)}")
    agent = dict(agent)
    net, optim = agent.pop("net", config.get("net")), agent.pop("optimizer", config.get("optim"))
    out = {k: v for k, v in config.items() if k != "resume"}
    out.update(agent=_legacy_node(agent, "agent", origin), net=_legacy_node(net, "net", origin),
        optim=_legacy_node(optim, "optim", origin))
    return out


def read_saved_run(run_or_file: str | Path, *, acting: bool = False) -> SavedRun:
    """A training run's checkpoint, refused with one line if any field is missing, mistyped or not plain data.
    `acting`: only the network's nodes are checked into parts (play); the learning settings are left unread."""
    data = load_checkpoint(run_or_file)
    path = checkpoint_path(run_or_file)
    origin = str(path)
    if data.get("task") == SUPERVISED_TASK:
        raise RlkitError(f"{path.parent} is a supervised run (python -m rlkit.supervised); give a run of python -m "
            "rlkit.train")
    fields = {"env": str, "agent": str, "step": int, "config": Mapping, "agent_state": Mapping, "rng": Mapping,
        "env_rng": list}
    for name, kind in fields.items():
        if name not in data:
            raise RlkitError(f"{origin} lacks its '{name}' field; it was not written by rlkit.train")
        if not isinstance(data[name], kind) or isinstance(data[name], bool) or (name == "step" and data[name] < 0):
            raise RlkitError(f"{origin}: its '{name}' field holds {show(data[name])}, not a valid {name}; it was not "
                "written by rlkit.train")
    config = _from_format_1(data["config"], origin) if data["format"] == 1 else dict(data["config"])
    config = upgrade_stored_config(config)  # settings and env nodes as today's code reads them
    parts = check_run_config(config, origin=origin, acting=acting).parts
    check_stored_env(config["env"], origin=origin)
    return SavedRun(path, data["env"], data["agent"], data["step"], config, data["agent_state"], data["rng"],
        data["env_rng"], parts)


def restoring(parts: PartsSettings) -> PartsSettings:
    """Parts to rebuild a saved agent: its weights come from the checkpoint, so no supervised body is read again."""
    if isinstance(parts.settings, DQNSettings) and parts.settings.body_init is not None:
        return dataclasses.replace(parts, settings=dataclasses.replace(parts.settings, body_init=None))
    return parts


def from_saved_state(saved: SavedRun, load: Callable[[], Any]) -> Any:
    """load() of the checkpoint's agent state (an agent or a policy); a state that does not fit is one clear error."""
    try:
        return load()
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise RlkitError(f"checkpoint {saved.path} does not fit this env/agent config: "
            f"{type(exc).__name__} {exc}") from None


def check_saved_network(saved: SavedRun, parts: ActingParts, env: gym.Env) -> None:
    """The policy built on torch's meta device (no memory) takes the stored weights first: a config whose network they
    do not fit (net.hidden=[16384]*3 beside 64-wide weights) is one line, never gigabytes allocated."""
    meta = torch.device("meta")
    with meta, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying the weights into meta tensors is the no-op wanted here
        try:
            from_saved_state(saved, lambda: build_policy(parts, saved.agent_state,
                observation_space=env.observation_space, action_space=env.action_space, device=meta))
        except RlkitError as exc:
            found = re.search(r"mismatch for (\S+): .*?Size\((\[.*?\])\).*?Size\((\[.*?\])\)", str(exc))
            if not found:
                raise
            raise RlkitError(f"{saved.path}: its config's net does not match its stored weights ({found[1]} is "
                f"{found[2]} there, {found[3]} by the config); retrain or use an older checkpoint") from None
