"""Agents and the allow-list that lets play rebuild an agent from a checkpoint's config safely."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from hydra.utils import get_object, instantiate

from rlkit.agents.base import Agent, Transition, linear_schedule
from rlkit.errors import RlkitError

# A checkpoint's config is data: only these `_target_`s may be instantiated from one.
ALLOWED_TARGET_PREFIXES = ("rlkit.agents.", "rlkit.nets.", "torch.optim.")


def _check_config(node: Any, where: str = "agent") -> None:
    """Walk the agent config once: every `_target_` must be allow-listed, and take every key set beside it."""
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if target is not None:
            if not str(target).startswith(ALLOWED_TARGET_PREFIXES):  # checked before anything is imported
                raise RlkitError(f"{where}._target_={target} is not an rlkit class; refusing to build it")
            _check_kwargs(node, str(target), where)
        for key, value in node.items():
            _check_config(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_config(value, f"{where}[{i}]")


def _check_kwargs(node: Mapping[str, Any], target: str, where: str) -> None:
    """Refuse settings a `_target_` does not take, e.g. a DQN preset's agent.* keys on a tabular agent."""
    try:
        parameters = inspect.signature(get_object(target)).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    foreign = sorted(k for k in node if not str(k).startswith("_") and k not in parameters)
    if parameters and not takes_any and foreign:
        raise RlkitError(
            f"{where} sets {', '.join(foreign)}, which {target} does not take; presets (preset=...) set "
            "DQN and optimizer settings, so use them with agent=dqn and the preset's optimizer"
        )


def build_agent(
    agent_cfg: Mapping[str, Any],
    *,
    observation_space: gym.Space,
    action_space: gym.Space,
    device: torch.device,
    seed: int,
) -> Agent:
    """Instantiate the agent config with the run-time facts the config cannot know."""
    _check_config(agent_cfg)
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


def load_agent_state(agent: Agent, checkpoint: Mapping[str, Any], where: str | Path) -> None:
    """Restore a checkpoint's agent state; a state that does not fit this env/agent is one clear error."""
    try:
        agent.load_state_dict(checkpoint["agent_state"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise RlkitError(f"checkpoint in {where} does not fit this env/agent config: {exc}") from exc


__all__ = ["Agent", "Transition", "build_agent", "linear_schedule", "load_agent_state"]
