"""The agent interface every rlkit agent implements, the transition it observes, and shared helpers."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from rlkit.errors import NonFiniteLossError, RlkitError

NO_METRICS: Mapping[str, float] = {}


class Transition(NamedTuple):
    """One env step; arrays with a leading env axis when the env is vectorised, scalars otherwise."""

    obs: Any
    action: Any
    reward: Any
    next_obs: Any
    terminated: Any
    truncated: Any
    # False where a vector env's step was its next-step autoreset (obs -> first obs of a new episode).
    valid: Any = True


@runtime_checkable
class QValues(Protocol):
    """Agents that can say what each action is worth: play and evaluation videos draw these values (overlay=q)."""

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values of one observation, shape (actions,), or of a batch, shape (batch, actions)."""


@runtime_checkable
class Policy(QValues, Protocol):
    """How to act, apart from how to learn: greedy actions and their Q-values, from weights alone. Play, evaluation,
    videos and the Q-value overlay hold one of these, never a learner with an optimizer and a replay."""

    def act(self, obs: Any) -> Any:
        """The greedy action for one observation, or an array of them for a batch."""


@runtime_checkable
class Agent(Protocol):
    """How to act and how to learn, with nothing about networks or batches (tabular and deep agents fit)."""

    def act(self, obs: Any, *, explore: bool) -> Any:
        """Action(s) for one observation or a batch; exploring in training, greedy in evaluation."""

    def observe(self, transition: Transition) -> Mapping[str, float]:
        """Store the transition, learn when due, and return metrics to log (often empty)."""

    def policy(self) -> Policy:
        """The greedy policy on the agent's live weights (no copy): what evaluation and videos act with."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tensors, numbers and strings only (loadable with weights_only)."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what state_dict returned."""


def check_finite_loss(agent: Any, *, step: int) -> None:
    """Stop a diverged run before it logs or saves that state: the loop calls this when observe returns metrics,
    the checkpointer before every save. Only a learner whose loss can diverge (DQN) has last_loss()."""
    last_loss = getattr(agent, "last_loss", None)
    loss = last_loss() if last_loss is not None else None
    if loss is not None and not math.isfinite(loss):
        raise NonFiniteLossError(f"loss became {loss} by env step {step}")


@runtime_checkable
class ReplayOwner(Protocol):
    """An agent that keeps a replay buffer, which checkpoint.replay=true saves next to the checkpoint."""

    def replay_arrays(self) -> dict[str, np.ndarray]:
        """The buffer's contents as plain arrays (saved with numpy, never pickled)."""

    def load_replay_arrays(self, arrays: Mapping[str, np.ndarray]) -> int:
        """Refill the buffer from saved arrays, refusing ones that do not fit; returns the transitions held."""


def check_unit_interval(**values: float) -> None:
    """Refuse a probability or discount outside [0, 1] by name (agent.epsilon_start=5 would explore with p=1)."""
    for name, value in values.items():
        if not 0.0 <= value <= 1.0:
            raise RlkitError(f"agent.{name} must be in [0, 1], got {value}")


def linear_schedule(*, start: float, end: float, duration_steps: int, step: int) -> float:
    """Interpolate from start to end over duration_steps, then hold end."""
    if duration_steps <= 0 or step >= duration_steps:
        return end
    return start + (end - start) * (step / duration_steps)


def require_positive(**values: int) -> None:
    """Refuse a step count or size below 1 by its config name."""
    for name, value in values.items():
        if int(value) < 1:
            raise RlkitError(f"agent.{name} must be >= 1, got {value}")


def epsilon_greedy(q_values_BA: np.ndarray, *, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Greedy actions per row, replaced by uniform random ones with probability epsilon."""
    actions_B = q_values_BA.argmax(axis=1)
    explore_B = rng.random(actions_B.shape[0]) < epsilon
    if explore_B.any():
        actions_B[explore_B] = rng.integers(q_values_BA.shape[1], size=int(explore_B.sum()))
    return actions_B


@dataclass(frozen=True, slots=True)
class Every:
    """The one "every N env steps" cadence (N <= 0: never), for the loop's events and the agents' alike. It counts
    multiples of N crossed, never equality: a vector env advances num_envs steps at once."""

    steps: int

    def crossed(self, before: int, after: int) -> int:
        """How many multiples of N lie in (before, after]."""
        return after // self.steps - before // self.steps if self.steps > 0 else 0

    def next_after(self, step: int) -> int:
        """The first multiple of N after `step` (sys.maxsize when never): hot loops compare against it."""
        return (step // self.steps + 1) * self.steps if self.steps > 0 else sys.maxsize


def require_discrete(space: gym.Space, *, what: str, agent: str, fix: str) -> int:
    """Number of values of a Discrete space, or a clear error naming the fix (agents check their own spaces)."""
    if not isinstance(space, gym.spaces.Discrete):
        raise RlkitError(f"agent={agent} needs a discrete {what} space, but the env has {space}; {fix}")
    return int(space.n)
