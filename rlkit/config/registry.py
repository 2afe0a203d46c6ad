"""Config data to objects through fixed registries of names, each node checked once against its constructor:
nothing is instantiated from a `_target_`, so a run folder's config picks classes but never names code."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlkit.agents.base import Agent
from rlkit.cli.overrides import old_key
from rlkit.config.dqn import (
    DQN_PARTS,
    HEADS,
    REPLAYS,
    SAMPLERS,
    DistributionSettings,
    DQNSettings,
    HeadSettings,
    build_dqn,
    distribution_settings,
    dqn_settings,
    head_choice,
    replay_choice,
)
from rlkit.config.nodes import checked
from rlkit.errors import LAST, RlkitError, one_line
from rlkit.lazy import LazyRegistry
from rlkit.nets import CNNBody, MLPBody
from rlkit.plain import show, where_in

AGENTS: LazyRegistry[Callable[..., Agent]] = LazyRegistry(
    {"dqn": build_dqn, "q_learning": "rlkit.agents.tabular:build_q_learning"}
)
AGENT_NODES: LazyRegistry[Callable[..., Any]] = LazyRegistry(  # what each agent node may set
    {"dqn": DQNSettings, "q_learning": "rlkit.agents.tabular:QLearningAgent"}
)
BODIES: dict[str, Callable[..., nn.Module]] = {"mlp": MLPBody, "cnn": CNNBody}
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta,
}
__all__ = [
    "AGENTS", "BODIES", "HEADS", "OPTIMIZERS", "REPLAYS", "SAMPLERS", "PartsSettings", "build_agent", "check_parts",
    "checked",
]

# Arguments the builders pass themselves: run-time facts and the parts built here, never config values.
AGENT_RUN_TIME = frozenset({"observation_space", "action_space", "device", "seed", "num_envs", "net", "optimizer",
    *DQN_PARTS})
BODY_RUN_TIME = frozenset({"in_features", "in_channels", "input_hw"})
OPTIM_RUN_TIME = frozenset({"params"})


def _guarded(factory: Callable[..., Any], what: str, errors: tuple[type[Exception], ...]) -> Callable[..., Any]:
    """`factory`, its signature kept, with construction errors turned into one line naming the config group."""

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            return factory(*args, **kwargs)
        except errors as exc:
            raise RlkitError(f"{what}: {one_line(exc, lines=LAST)}") from None

    return build  # its __wrapped__ gives inspect.signature the factory's: callers ask for in_channels


def body_factory(net: Any, *, origin: str = "") -> Callable[..., nn.Module]:
    """A body builder awaiting its input size (in_features, or in_channels and input_hw)."""
    name, body, kwargs = checked(net, BODIES, key="net", origin=origin, run_time=BODY_RUN_TIME)
    return _guarded(functools.partial(body, **kwargs), f"net={name} cannot be built", (ValueError, RuntimeError))


def optimizer_factory(optim: Any, *, origin: str = "") -> Callable[..., torch.optim.Optimizer]:
    """An optimizer builder awaiting the parameters; torch.optim's own checks (lr >= 0, ...) become one line."""
    name, optimizer, kwargs = checked(optim, OPTIMIZERS, key="optim", origin=origin, run_time=OPTIM_RUN_TIME)
    built = functools.partial(optimizer, **kwargs)
    return _guarded(built, f"optim={name} refuses its settings", (ValueError, TypeError))


@dataclass(frozen=True)
class PartsSettings:
    """A run's agent, net and optim nodes checked once: what build_agent builds from, without checking again."""

    agent: str  # a name in AGENTS
    settings: DQNSettings | Mapping[str, Any]  # q_learning: its constructor's checked keywords
    net: Callable[..., nn.Module]  # a body awaiting its input size
    optimizer: Callable[..., torch.optim.Optimizer]  # an optimizer awaiting the parameters


def _body_and_head(net: Any) -> tuple[Any, Any]:
    """A net node split into its body's settings and its `head` node (None where it has none)."""
    if not isinstance(net, Mapping):
        return net, None
    return {k: v for k, v in net.items() if k != "head"}, net.get("head")


def check_parts(config: Mapping[str, Any], *, origin: str = "") -> PartsSettings:
    """The agent, net (body and head), optim and replay nodes of a run config checked as data, once, into settings."""
    body, head = _body_and_head(config.get("net"))
    replay, head_settings = replay_choice(config.get("replay"), origin=origin), head_choice(head, origin=origin)
    node = config.get("agent")
    for key, value in node.items() if isinstance(node, Mapping) else ():
        typed = str(value).lower() if isinstance(value, bool) else str(value)
        if (moved := old_key(f"agent.{key}", typed)) is not None:  # a flag that became a part
            raise RlkitError(f"{moved} (in {origin})" if origin else str(moved))
    sampled = isinstance(node, Mapping) and node.get("type") == "dqn"  # the sampler node is DQN's, checked with it
    agent = {k: v for k, v in node.items() if k not in ("sampler", "distribution")} if sampled else node
    name, _, kwargs = checked(agent, AGENT_NODES, key="agent", origin=origin, run_time=AGENT_RUN_TIME)
    if sampled:
        kwargs = dqn_settings(kwargs, sampler=node.get("sampler"), replay=replay, head=head_settings,
            distribution=node.get("distribution"), origin=origin)
    return PartsSettings(agent=name, settings=kwargs, net=body_factory(body, origin=origin),
        optimizer=optimizer_factory(config.get("optim"), origin=origin))


@dataclass(frozen=True)
class ActingParts:
    """What a policy is built from: the agent's name, the body, the head and what its outputs mean. No learning
    setting is read."""

    agent: str  # a name in AGENTS
    net: Callable[..., nn.Module]  # a body awaiting its input size
    head: HeadSettings  # a name in HEADS and its noise settings
    distribution: DistributionSettings = DistributionSettings()  # DQN's agent.distribution


def check_acting_parts(config: Mapping[str, Any], *, origin: str = "") -> ActingParts:
    """The nodes that define a run's network (agent.type, net, net.head and DQN's
    agent.distribution) checked once; the learning settings
    (the agent's other keys, optim, replay) are neither checked nor built."""
    node = config.get("agent")
    name = node.get("type") if isinstance(node, Mapping) else None
    if not isinstance(name, str) or name not in AGENTS:
        raise RlkitError(f"{where_in('agent.type', origin)}={show(name)} is not known; choose one of: "
            f"{', '.join(AGENTS)}")
    body, head = _body_and_head(config.get("net"))
    distribution = distribution_settings(node.get("distribution"), origin=origin) if name == "dqn" else None
    return ActingParts(agent=name, net=body_factory(body, origin=origin), head=head_choice(head, origin=origin),
        distribution=distribution or DistributionSettings())


def build_agent(
    parts: PartsSettings | Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device, seed: int, num_envs: int = 1, origin: str = "",
) -> Agent:
    """The agent checked parts describe (a plain run config is checked first), plus the run-time facts
    (`num_envs`: the env copies it will observe at once; 1 for a single env, as play and evaluation use)."""
    if not isinstance(parts, PartsSettings):
        parts = check_parts(parts, origin=origin)
    return AGENTS[parts.agent](
        parts.settings, observation_space=observation_space, action_space=action_space, device=device, seed=seed,
        num_envs=num_envs, net=parts.net, optimizer=parts.optimizer,
    )
