"""A training run's saved state, in one place: what a checkpoint holds (SavedRun), writing it while the loop runs
(Checkpointer), and continuing a run from it (prepare_resume -> ResumePlan, then restore).

`resume=<run>` never goes through @hydra.main. The folder's recorded overrides are read as data and accepted
only as plain settings of known keys; the config is composed from this installation's conf/ and compared
with the checkpoint's; nothing in the folder is written before all of that has passed (issue 8).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml

from rlkit.agents.base import Agent, ReplayOwner, check_finite_loss
from rlkit.checkpoint import checkpoint_path, load_arrays, load_checkpoint, save_arrays, save_checkpoint
from rlkit.cli.app import check_group_overrides
from rlkit.cli.overrides import (
    OPTION_KEYS,
    checked_data_overrides,
    compose,
    compose_checked,
    config_keys,
    parse_overrides,
)
from rlkit.config.dqn import DQNSettings
from rlkit.config.registry import ActingParts, PartsSettings
from rlkit.config.settings import (
    RESUMABLE_KEYS,
    VIDEO_KEYS,
    check_run_config,
    lookup,
    plain_config,
    run_settings,
    upgrade_stored_config,
)
from rlkit.envs.builders import check_stored_env
from rlkit.errors import RlkitError
from rlkit.plain import show, where_in
from rlkit.run_folder import FILENAME, REPLAY_FILENAME

RESUME_GROUPS = ("device",)  # the one config group a resumed run may switch
SUPERVISED_TASK = "supervised"
# Format 1 named classes by import path; read by exact string, never imported (the Pong run of issue 4 is one).
LEGACY_TARGETS = {
    "rlkit.agents.dqn.DQNAgent": "dqn", "rlkit.agents.tabular.QLearningAgent": "q_learning",
    "rlkit.nets.MLPBody": "mlp", "rlkit.nets.CNNBody": "cnn", "torch.optim.SGD": "sgd", "torch.optim.Adam": "adam",
    "torch.optim.Adagrad": "adagrad", "torch.optim.RMSprop": "rmsprop", "torch.optim.Adadelta": "adadelta",
}
BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}


@dataclass(frozen=True)
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
        raise RlkitError(f"{where_in(key + '._target_', origin)}={show(target)} is not a class rlkit ever wrote; refusing it")
    return {"type": LEGACY_TARGETS[target], **{k: v for k, v in node.items() if k not in ("_target_", "_partial_")}}


def _from_format_1(config: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """A format-1 config (agent.net / agent.optimizer as Hydra partials) in today's shape: nodes named by type."""
    agent = config.get("agent")
    if not isinstance(agent, Mapping):
        raise RlkitError(f"{where_in('agent', origin)} must be a mapping, got {show(agent)}")
    agent = dict(agent)
    net, optim = agent.pop("net", config.get("net")), agent.pop("optimizer", config.get("optim"))
    out = {k: v for k, v in config.items() if k != "resume"}
    out.update(agent=_legacy_node(agent, "agent", origin), net=_legacy_node(net, "net", origin), optim=_legacy_node(optim, "optim", origin))
    return out


def read_saved_run(run_or_file: str | Path, *, acting: bool = False) -> SavedRun:
    """A training run's checkpoint, refused with one line if any field is missing, mistyped or not plain data.
    `acting`: only the network's nodes are checked into parts (play); the learning settings are left unread."""
    data = load_checkpoint(run_or_file)
    path = checkpoint_path(run_or_file)
    origin = str(path)
    if data.get("task") == SUPERVISED_TASK:
        raise RlkitError(f"{path.parent} is a supervised run (python -m rlkit.supervised); give a run of python -m rlkit.train")
    fields = {"env": str, "agent": str, "step": int, "config": Mapping, "agent_state": Mapping, "rng": Mapping, "env_rng": list}
    for name, kind in fields.items():
        if name not in data:
            raise RlkitError(f"{origin} lacks its '{name}' field; it was not written by rlkit.train")
        if not isinstance(data[name], kind) or isinstance(data[name], bool) or (name == "step" and data[name] < 0):
            raise RlkitError(f"{origin}: its '{name}' field holds {show(data[name])}, not a valid {name}; it was not written by rlkit.train")
    config = _from_format_1(data["config"], origin) if data["format"] == 1 else dict(data["config"])
    config = upgrade_stored_config(config)  # settings and env nodes as today's code reads them
    parts = check_run_config(config, origin=origin, acting=acting).parts
    check_stored_env(config["env"], origin=origin)
    return SavedRun(path, data["env"], data["agent"], data["step"], config, data["agent_state"], data["rng"], data["env_rng"], parts)


def restoring(parts: PartsSettings) -> PartsSettings:
    """Parts to rebuild a saved agent: its weights come from the checkpoint, so no supervised body is read again."""
    if isinstance(parts.settings, DQNSettings) and parts.settings.body_init is not None:
        return dataclasses.replace(parts, settings=dataclasses.replace(parts.settings, body_init=None))
    return parts


def load_agent_state(agent: Agent, saved: SavedRun) -> None:
    """Restore a checkpoint's agent state; a state that does not fit this env/agent is one clear error."""
    try:
        agent.load_state_dict(saved.agent_state)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise RlkitError(f"checkpoint {saved.path} does not fit this env/agent config: {type(exc).__name__} {exc}") from None


# The RNG states a checkpoint carries, as plain data and tensors (weights_only-loadable).


def rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    numpy_state = {**numpy_state, "state": {**numpy_state["state"], "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))}}
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    key = numpy_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})
    torch.set_rng_state(state["torch"])


def env_rng_state(env: gym.Env | gym.vector.VectorEnv) -> list[dict[str, Any]]:
    """Bit-generator state of every env copy, so a resumed run draws the same resets."""
    if isinstance(env, gym.vector.VectorEnv):
        generators = env.unwrapped.get_attr("np_random")
    else:
        generators = [env.unwrapped.np_random]
    return [g.bit_generator.state for g in generators]


def set_env_rng_state(env: gym.Env | gym.vector.VectorEnv, states: Sequence[Mapping[str, Any]]) -> None:
    """Bit generators are looked up by name in BIT_GENERATORS: a run folder never names an attribute to call."""
    copies = env.num_envs if isinstance(env, gym.vector.VectorEnv) else 1
    if len(states) != copies:
        raise ValueError(f"{len(states)} env RNG states for {copies} env copies")
    generators = []
    for state in states:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        bit_generator.state = dict(state)
        generators.append(np.random.Generator(bit_generator))
    if isinstance(env, gym.vector.VectorEnv):
        env.unwrapped.set_attr("np_random", generators)
    else:
        env.unwrapped.np_random = generators[0]


class Checkpointer:
    """The loop's saver: writes checkpoint.pt (replay.npz first) and names the last checkpoint that reached the disk."""

    def __init__(
        self, run_dir: Path, *, env_name: str, agent_name: str, config: Mapping[str, Any], agent: Agent, env: Any,
        replay: ReplayOwner | None, last_good: int | None,
    ) -> None:
        """`replay`: the agent whose buffer goes to replay.npz (checkpoint.replay=true), or None."""
        self.run_dir, self.env_name, self.agent_name, self.config = run_dir, env_name, agent_name, dict(config)
        self.agent, self.env, self.replay = agent, env, replay
        self.last_good = last_good

    def describe_last_good(self) -> str:
        if self.last_good is None:
            return "no checkpoint was saved yet"
        return f"the last good checkpoint (step {self.last_good}) is {self.run_dir / FILENAME}"

    def save(self, step: int) -> None:
        """Write the run's state at `step`, unless its loss has turned NaN/inf: a diverged network is never saved."""
        check_finite_loss(self.agent, step=step)
        try:
            if self.replay is not None:  # first, so a replay file never claims a step its checkpoint has not reached
                save_arrays(self.run_dir / REPLAY_FILENAME, {**self.replay.replay_arrays(), "step": np.array(step)})
            payload = {
                "env": self.env_name, "agent": self.agent_name, "step": step, "config": self.config,
                "agent_state": self.agent.state_dict(), "rng": rng_state(), "env_rng": env_rng_state(self.env),
            }
            save_checkpoint(self.run_dir / FILENAME, payload)
        except OSError as exc:  # a full disk: the previous checkpoint is intact (atomic writes)
            reason = exc.strerror or str(exc)
            raise RlkitError(f"could not write the checkpoint of step {step} ({reason}); {self.describe_last_good()}") from None
        self.last_good = step


@dataclass(frozen=True)
class ResumePlan:
    """An accepted resume: the folder, the config to run (learning settings as the checkpoint's), the names."""

    run_dir: Path
    config: dict[str, Any]
    env_name: str
    agent_name: str
    step: int


def _recorded_overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        raise RlkitError(f"resume={run_dir} is not an rlkit run folder (no .hydra/overrides.yaml)")
    try:
        lines = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RlkitError(f"{path} is not valid YAML ({type(exc).__name__}); it was not written by rlkit.train") from None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise RlkitError(f"{path} must be a list of key=value lines")
    return [line for line in lines if not line.startswith("resume=")]  # recorded by resumes before issue 8


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def _learning_differences(composed: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    ours, theirs = _flat(composed), _flat(saved)
    keys = sorted(k for k in (ours.keys() | theirs.keys()) - set(RESUMABLE_KEYS) if not k.startswith("video."))
    return [key for key in keys if ours.get(key, "<missing>") != theirs.get(key, "<missing>")]


def _without_unused_sampler_settings(lines: list[str], conf: Path, groups: Sequence[str]) -> list[str]:
    """Recorded lines minus prioritized-sampler settings of a run that sampled uniformly: an old run could set
    agent.priority_alpha without agent.prioritized=true, and then it never counted (nor does its stored config keep it)."""
    settings = [line for line in lines if line.partition("=")[0] in OPTION_KEYS]
    if not settings:
        return lines
    choices = [line for line in lines if line.partition("=")[0] in groups or "/" in line.partition("=")[0]]
    keys = config_keys(compose(conf, "train", choices))
    return [line for line in lines if line not in settings or line.partition("=")[0] in keys]


def prepare_resume(run_dir: Path, new_overrides: Sequence[str], *, conf: Path, groups: Sequence[str]) -> ResumePlan:
    """Check everything a resume needs, writing nothing: the checkpoint, the recorded command, the new settings."""
    allowed = (*RESUMABLE_KEYS, *RESUME_GROUPS)
    new = check_group_overrides(new_overrides, conf, RESUME_GROUPS)
    for override in parse_overrides(new):
        resumable = override.key_or_group in allowed or override.key_or_group.startswith("video.")
        if not resumable or override.is_sweep_override() or "${" in override.input_line:
            raise RlkitError(
                f"resume refuses {override.input_line}: it would change what the run learns or where it goes; a resumed "
                f"run may change {', '.join(allowed)}, video.*; start a new run to change {override.key_or_group}"
            )
    if not run_dir.is_dir():
        raise RlkitError(f"resume={run_dir} does not exist; pass a run folder that rlkit.train printed")
    recorded = _recorded_overrides(run_dir)
    if not (run_dir / FILENAME).is_file():
        raise RlkitError(f"resume={run_dir} has no {FILENAME} yet; start a new run instead")
    saved = read_saved_run(run_dir)
    origin = str(run_dir / ".hydra" / "overrides.yaml")
    accepted = _without_unused_sampler_settings(
        check_group_overrides([o.input_line for o in checked_data_overrides(recorded, origin=origin)], conf, groups), conf, groups
    )
    cfg = compose_checked(conf, "train", parse_overrides(accepted), groups=groups, entry="rlkit.train")
    names = (str(cfg.hydra.runtime.choices.env), str(cfg.hydra.runtime.choices.agent))
    if names != (saved.env_name, saved.agent_name):
        raise RlkitError(f"checkpoint in {run_dir} is for env={saved.env_name} agent={saved.agent_name}, not {names[0]}/{names[1]}")
    composed = plain_config(cfg)
    check_run_config(composed, origin=origin)
    differ = _learning_differences(composed, saved.config)
    if differ:
        first, more = differ[0], f" (and {len(differ) - 1} more: {', '.join(differ[1:4])})" if len(differ) > 1 else ""
        raise RlkitError(
            f"resume refuses {run_dir}: this installation's conf/ gives {first}={show(_flat(composed).get(first))} where its "
            f"checkpoint has {show(_flat(saved.config).get(first))}{more}; a resumed run must learn as it started: start a new run instead"
        )
    given = _flat(plain_config(compose(conf, "train", [*accepted, *new])))
    named = {"device.name" if o.key_or_group == "device" else o.key_or_group for o in parse_overrides(new)}
    config = dict(composed)  # learning settings: as composed, equal to the checkpoint's
    for key in RESUMABLE_KEYS:  # the others: as the last run left them, unless given now
        node, leaf = (config, key) if "." not in key else (config[key.split(".")[0]], key.split(".")[1])
        node[leaf] = given[key] if key in named else lookup(saved.config, key)
    saved_video = saved.config.get("video") if isinstance(saved.config.get("video"), Mapping) else {}
    config["video"] = {  # shown, not learned: as given now, else as the last run left them, else conf/'s
        key: given[f"video.{key}"] if f"video.{key}" in named else saved_video.get(key, given[f"video.{key}"]) for key in VIDEO_KEYS
    }
    settings = run_settings(config)
    if saved.step >= settings.total_steps:
        raise RlkitError(
            f"run {run_dir} already reached step {saved.step} of total_steps={settings.total_steps}; pass total_steps=<more> to go on"
        )
    return ResumePlan(run_dir, config, saved.env_name, saved.agent_name, saved.step)


def restore(plan: ResumePlan, *, agent: Agent, env: Any, with_replay: bool) -> int:
    """Load the run's checkpoint into agent, env and the global RNGs (under the run's lock); the step to go on from."""
    saved = read_saved_run(plan.run_dir)  # again: another writer may have finished since the plan was made
    if saved.step != plan.step:
        raise RlkitError(f"{saved.path} moved from step {plan.step} to {saved.step} while this resume started; run it again")
    load_agent_state(agent, saved)
    try:
        set_rng_state(saved.rng)
        set_env_rng_state(env, saved.env_rng)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise RlkitError(f"{saved.path} holds RNG states this run cannot use ({type(exc).__name__} {exc})") from None
    replay = restore_replay_with_note(plan.run_dir, agent, saved.step) if with_replay else ""
    print(f"rlkit: resuming {plan.run_dir} from step {saved.step}{replay}")
    return saved.step


def restore_replay_with_note(run_dir: Path, agent: Agent, step: int) -> str:
    """Load replay.npz when it belongs to this checkpoint; the returned note (for the resume line) says what happened."""
    path = run_dir / REPLAY_FILENAME
    if not isinstance(agent, ReplayOwner) or not path.is_file():
        return " (no saved replay: the buffer refills before learning resumes)"
    arrays = load_arrays(path)
    saved_step = arrays.pop("step", None)
    if saved_step is None or saved_step.shape != () or int(saved_step) != step or not arrays:
        return " (saved replay is from another step: the buffer refills before learning resumes)"
    try:
        count = agent.load_replay_arrays(arrays)
    except ValueError as exc:
        raise RlkitError(f"{path} does not fit this run ({exc}); delete it to resume without its replay") from None
    return f" with its replay buffer ({count:,} transitions)"
