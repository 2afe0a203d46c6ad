"""Tabular Q-learning for envs with discrete observations (Taxi, FrozenLake, CliffWalking)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlkit import tb
from rlkit.agents.base import NO_METRICS, Every, Transition, check_unit_interval, linear_schedule, require_discrete
from rlkit.errors import RlkitError


class TablePolicy:
    """Greedy actions from a Q-table (a list of per-state rows): all that play and evaluation need of a tabular run."""

    def __init__(self, q_table: list[list[float]]) -> None:
        self.q_table = q_table  # shared, not copied: the agent updates these rows in place

    def act(self, obs: Any) -> Any:
        if isinstance(obs, np.ndarray) and obs.ndim == 1:
            return np.fromiter((self.greedy(int(o)) for o in obs), dtype=np.int64, count=obs.shape[0])
        return self.greedy(int(obs))

    def greedy(self, state: int) -> int:
        row = self.q_table[state]
        return row.index(max(row))

    def q_values(self, obs: Any) -> np.ndarray:
        """The table's row for one state, shape (actions,), or its rows for a batch of states."""
        rows = self.q_table[int(obs)] if np.ndim(obs) == 0 else [self.q_table[int(state)] for state in obs]
        return np.array(rows, dtype=np.float64)


def table_from_state(state: Mapping[str, Any], *, n_states: int, n_actions: int) -> list[list[float]]:
    """A checkpoint's Q-table as rows, refused with one line when it does not fit the env."""
    table = state["q_table"]
    if tuple(table.shape) != (n_states, n_actions):
        raise RlkitError(f"checkpoint Q-table has shape {tuple(table.shape)}, this env needs ({n_states}, {n_actions})")
    return table.tolist()


class QLearningAgent:
    """Watkins' Q-learning with an epsilon-greedy behaviour policy. The table is a list of Python lists: one
    transition at a time, scalar list indexing is several times cheaper than numpy's, and bounds throughput."""

    def __init__(
        self, *, observation_space: gym.Space, action_space: gym.Space, learning_rate: float, gamma: float,
        epsilon_start: float, epsilon_end: float, epsilon_decay_steps: int, initial_q: float = 0.0,
        metrics_every_steps: int = 1000, seed: int = 0,
        device: Any = None,  # unused: the table lives in host memory; accepted so all agents build alike
    ) -> None:
        fix = "use agent=dqn (a network instead of a table)"
        self.n_states = require_discrete(observation_space, what="observation", agent="q_learning", fix=fix)
        self.n_actions = require_discrete(action_space, what="action", agent="q_learning",
            fix="pick a discrete-action env")
        if not 0.0 < learning_rate <= 1.0:
            raise RlkitError(f"agent.learning_rate must be in (0, 1], got {learning_rate}")
        check_unit_interval(gamma=gamma, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
        self.learning_rate = float(learning_rate)
        self.gamma = float(gamma)
        self.epsilon_start = float(epsilon_start)
        self.epsilon_end = float(epsilon_end)
        self.epsilon_decay_steps = int(epsilon_decay_steps)
        self._metrics_every = Every(max(1, int(metrics_every_steps)))
        self.q_table = [[float(initial_q)] * self.n_actions for _ in range(self.n_states)]
        self._policy = TablePolicy(self.q_table)  # greedy on the live table
        self.steps = 0
        self._next_metrics_step = self._metrics_every.next_after(0)
        self.epsilon = self.epsilon_start
        self._rng = random.Random(seed)

    def act(self, obs: Any, *, explore: bool) -> Any:
        if isinstance(obs, np.ndarray) and obs.ndim == 1:
            return np.fromiter((self._act_one(int(o), explore) for o in obs), dtype=np.int64, count=obs.shape[0])
        return self._act_one(int(obs), explore)

    def _act_one(self, state: int, explore: bool) -> int:
        if explore and self._rng.random() < self.epsilon:
            return self._rng.randrange(self.n_actions)
        return self._policy.greedy(state)

    def observe(self, transition: Transition) -> Mapping[str, float]:
        obs, action, reward, next_obs, terminated, _, valid = transition
        if isinstance(obs, np.ndarray):
            for i in np.flatnonzero(valid):
                self._update(int(obs[i]), int(action[i]), float(reward[i]), int(next_obs[i]), bool(terminated[i]))
            self.steps += obs.shape[0]
        else:
            self._update(obs, action, reward, next_obs, terminated)
            self.steps += 1
        self.epsilon = linear_schedule(
            start=self.epsilon_start, end=self.epsilon_end, duration_steps=self.epsilon_decay_steps, step=self.steps
        )
        if self.steps >= self._next_metrics_step:  # one comparison a step; the cadence is asked only when due
            self._next_metrics_step = self._metrics_every.next_after(self.steps)
            return {tb.EPSILON: self.epsilon}
        return NO_METRICS

    def _update(self, state: int, action: int, reward: float, next_state: int, terminated: bool) -> None:
        # Bootstrap unless the episode truly ended: a time-limit truncation still has a future.
        target = reward if terminated else reward + self.gamma * max(self.q_table[next_state])
        row = self.q_table[state]
        row[action] += self.learning_rate * (target - row[action])

    def policy(self) -> TablePolicy:
        """Greedy on the live table (no copy)."""
        return self._policy

    def q_values(self, obs: Any) -> np.ndarray:
        """The live table's Q-values, as TablePolicy.q_values."""
        return self._policy.q_values(obs)

    def state_dict(self) -> dict[str, Any]:
        return {
            "q_table": torch.tensor(self.q_table, dtype=torch.float64),
            "steps": self.steps,
            "epsilon": self.epsilon,
            "rng_state": self._rng.getstate(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # in place: a policy handed out shares the table
        self.q_table[:] = table_from_state(state, n_states=self.n_states, n_actions=self.n_actions)
        self.steps = int(state["steps"])
        self._next_metrics_step = self._metrics_every.next_after(self.steps)
        self.epsilon = float(state["epsilon"])
        if "rng_state" in state:
            version, internal, gauss = state["rng_state"]
            self._rng.setstate((version, tuple(internal), gauss))


def build_q_learning(
    settings: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space, device: torch.device,
    seed: int, **_parts: Any,
) -> QLearningAgent:
    """The tabular agent from its checked keywords; it has no network, optimizer or env copies to be told of."""
    return QLearningAgent(
        observation_space=observation_space, action_space=action_space, device=device, seed=seed, **settings
    )
