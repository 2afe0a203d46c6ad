"""Config data -> objects through fixed registries of names: nothing is ever instantiated from a `_target_`.

A config node names its class with `type:` and holds plain values (numbers, strings, bools, null, lists of
numbers), each checked against the constructor's signature before anything is built. The same checks serve
this installation's conf/ and the data read back from a run folder, which is never code (issue 8).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from rlkit.agents.base import Agent
from rlkit.agents.tabular import QLearningAgent
from rlkit.config.dqn import build_dqn
from rlkit.errors import RlkitError
from rlkit.nets import CNNBody, MLPBody, Scale
from rlkit.plain import check_value, refuse_code, show, where_in

AGENTS: dict[str, Callable[..., Agent]] = {"dqn": build_dqn, "q_learning": QLearningAgent}
BODIES: dict[str, Callable[..., nn.Module]] = {"mlp": MLPBody, "cnn": CNNBody}
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta,
}
INPUTS: dict[str, Callable[..., nn.Module]] = {"scale": Scale}

# Arguments the builders pass themselves: run-time facts and the parts built here, never config values.
AGENT_RUN_TIME = frozenset({"observation_space", "action_space", "device", "seed", "num_envs", "net", "optimizer"})
BODY_RUN_TIME = frozenset({"in_features", "in_channels", "input_hw"})
OPTIM_RUN_TIME = frozenset({"params"})


def _annotations(factory: Callable[..., Any]) -> dict[str, Any]:
    """Parameter -> annotation; a parameter without one is typed by its default (or takes any plain value)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):
        hints = {}
    out = {}
    for name, parameter in inspect.signature(factory).parameters.items():
        if name in hints:
            out[name] = hints[name]
        elif parameter.default not in (inspect.Parameter.empty, None):
            out[name] = type(parameter.default)
        else:
            out[name] = Any
    return out


def checked(
    node: Any, choices: Mapping[str, Callable[..., Any]], *, key: str, origin: str = "", run_time: frozenset[str] = frozenset()
) -> tuple[str, Callable[..., Any], dict[str, Any]]:
    """(name, factory, keyword arguments) for a node that names a registry entry and sets plain values."""
    refuse_code(node, key, origin)
    if not isinstance(node, Mapping):
        raise RlkitError(f"{where_in(key, origin)} must be a mapping with a type: key, got {show(node)}")
    name = node.get("type")
    if not isinstance(name, str) or name not in choices:
        raise RlkitError(f"{where_in(key + '.type', origin)}={show(name)} is not known; choose one of: {', '.join(choices)}")
    factory = choices[name]
    annotations = _annotations(factory)
    foreign = sorted(k for k in node if k != "type" and (k not in annotations or k in run_time or k == "self"))
    if foreign:
        takers = [other for other, f in choices.items() if other != name and set(foreign) <= set(_annotations(f)) - run_time]
        hint = f"; {key}={takers[0]} takes {'it' if len(foreign) == 1 else 'them'}" if takers else ""
        keys = ", ".join(f"{key}.{k}" for k in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise RlkitError(f"{where_in(keys, origin)} {'is' if len(foreign) == 1 else 'are'} not a setting of {key}={name}{hint}")
    kwargs = {k: check_value(v, annotations[k], f"{key}.{k}", origin) for k, v in node.items() if k != "type"}
    return name, factory, kwargs


def _guarded(factory: Callable[..., Any], what: str, errors: tuple[type[Exception], ...]) -> Callable[..., Any]:
    """`factory`, its signature kept, with construction errors turned into one line naming the config group."""

    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        try:
            return factory(*args, **kwargs)
        except errors as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise RlkitError(f"{what}: {detail}") from None

    build.__signature__ = inspect.signature(factory)  # type: ignore[attr-defined]  # callers ask for in_channels
    return build


def body_factory(net: Any, *, origin: str = "") -> Callable[..., nn.Module]:
    """A body builder awaiting its input size (in_features, or in_channels and input_hw)."""
    name, body, kwargs = checked(net, BODIES, key="net", origin=origin, run_time=BODY_RUN_TIME)
    return _guarded(functools.partial(body, **kwargs), f"net={name} cannot be built", (ValueError, RuntimeError))


def optimizer_factory(optim: Any, *, origin: str = "") -> Callable[..., torch.optim.Optimizer]:
    """An optimizer builder awaiting the parameters; torch.optim's own checks (lr >= 0, ...) become one line."""
    name, optimizer, kwargs = checked(optim, OPTIMIZERS, key="optim", origin=origin, run_time=OPTIM_RUN_TIME)
    return _guarded(functools.partial(optimizer, **kwargs), f"optim={name} refuses its settings", (ValueError, TypeError))


def check_parts(config: Mapping[str, Any], *, origin: str = "") -> None:
    """The agent, net and optim nodes of a run config checked as data, without building anything."""
    checked(config.get("agent"), AGENTS, key="agent", origin=origin, run_time=AGENT_RUN_TIME)
    checked(config.get("net"), BODIES, key="net", origin=origin, run_time=BODY_RUN_TIME)
    checked(config.get("optim"), OPTIMIZERS, key="optim", origin=origin, run_time=OPTIM_RUN_TIME)


def build_agent(
    config: Mapping[str, Any],
    *,
    observation_space: gym.Space,
    action_space: gym.Space,
    device: torch.device,
    seed: int,
    num_envs: int = 1,
    origin: str = "",
) -> Agent:
    """The agent of a run config: its agent, net and optim nodes side by side, plus the run-time facts
    (`num_envs`: the env copies it will observe at once; 1 for a single env, as play and evaluation use)."""
    name, agent, kwargs = checked(config.get("agent"), AGENTS, key="agent", origin=origin, run_time=AGENT_RUN_TIME)
    parts = {"net": body_factory(config.get("net"), origin=origin), "optimizer": optimizer_factory(config.get("optim"), origin=origin)}
    optional = {"num_envs": num_envs, **parts}  # passed only to agents that take them (the tabular agent does not)
    takes = inspect.signature(agent).parameters
    return agent(
        observation_space=observation_space, action_space=action_space, device=device, seed=seed,
        **{key: value for key, value in optional.items() if key in takes}, **kwargs,
    )


def build_inputs(inputs: Any) -> nn.Module:
    """The input module a data/ config names (grey levels -> [0, 1])."""
    _, module, kwargs = checked(inputs, INPUTS, key="data.inputs")
    return module(**kwargs)
