"""Agents and the allow-list that lets play rebuild an agent from a checkpoint's config safely."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from hydra.utils import get_object, instantiate

from rlkit.agents.base import Agent, Transition, linear_schedule
from rlkit.errors import RlkitError

# A checkpoint's config is data: only these `_target_`s may be instantiated from one.
ALLOWED_TARGET_PREFIXES = ("rlkit.agents.", "rlkit.nets.", "torch.optim.")


def _check_targets(node: Any, where: str = "agent") -> None:
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if target is not None and not str(target).startswith(ALLOWED_TARGET_PREFIXES):
            raise RlkitError(f"{where}._target_={target} is not an rlkit class; refusing to build it")
        for key, value in node.items():
            _check_targets(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_targets(value, f"{where}[{i}]")


def _check_kwargs(node: Any, where: str = "agent") -> None:
    """Refuse settings a `_target_` does not take, e.g. a DQN preset's agent.* keys on a tabular agent."""
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if target is not None:
            try:
                parameters = inspect.signature(get_object(str(target))).parameters
            except (ImportError, AttributeError, ValueError, TypeError):
                parameters = {}
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
            foreign = sorted(k for k in node if not str(k).startswith("_") and k not in parameters)
            if parameters and not takes_any and foreign:
                raise RlkitError(
                    f"{where} sets {', '.join(foreign)}, which {target} does not take; presets (preset=...) set "
                    "DQN and optimizer settings, so use them with agent=dqn and the preset's optimizer"
                )
        for key, value in node.items():
            _check_kwargs(value, f"{where}.{key}")


def build_agent(
    agent_cfg: Mapping[str, Any],
    *,
    observation_space: gym.Space,
    action_space: gym.Space,
    device: torch.device,
    seed: int,
) -> Agent:
    """Instantiate the agent config with the run-time facts the config cannot know."""
    _check_targets(agent_cfg)
    _check_kwargs(agent_cfg)
    try:
        return instantiate(
            agent_cfg, observation_space=observation_space, action_space=action_space, device=device, seed=seed
        )
    except Exception as exc:  # Hydra wraps constructor errors in InstantiationException
        cause = exc
        while cause.__cause__ is not None and not isinstance(cause, RlkitError):
            cause = cause.__cause__
        if isinstance(cause, RlkitError):
            raise cause from None
        raise


__all__ = ["Agent", "Transition", "build_agent", "linear_schedule"]
