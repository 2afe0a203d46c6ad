"""Per-env rings of replay rows, and the n-step windows read from them: both buffers store one-step transitions and
sum n rewards when sampling, keeping `add` (every env step) cheap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StepRings:
    """num_envs rings of rows_per_env = ceil(capacity / num_envs) rows, read as windows of up to n_step steps
    discounted by gamma. Env copy e owns the flat rows [e * rows_per_env, (e + 1) * rows_per_env), written at its own
    pace, so a window never mixes copies; flat indices let np.take gather a batch, faster than 2-D fancy indexing."""

    capacity: int  # rows asked for; `rows` is what the rings hold
    num_envs: int = 1
    n_step: int = 1
    gamma: float = 0.99

    def __post_init__(self) -> None:
        if self.num_envs < 1 or self.capacity < self.num_envs:
            raise ValueError(
                f"capacity={self.capacity} must hold at least one step per env copy (num_envs={self.num_envs})"
            )
        if self.n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {self.n_step}")

    @property
    def rows_per_env(self) -> int:
        return -(-int(self.capacity) // int(self.num_envs))

    @property
    def rows(self) -> int:
        return self.rows_per_env * int(self.num_envs)


def n_step_window(
    rows_B: np.ndarray, *, end_E: np.ndarray, rows_per_env: int, n_step: int, gamma: float, rewards: np.ndarray,
    terminated: np.ndarray, truncated: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(returns_B, discounts_B, last_B) of the n-step window from each flat row along its ring, ending after a
    termination, a truncation or the newest step (end_E: the position after each ring's newest step, any laps off).
    last_B is the flat row of the window's last step, bootstrapped from."""
    if n_step == 1:
        discounts_B = np.where(terminated.take(rows_B), 0.0, gamma).astype(np.float32)
        return rewards.take(rows_B), discounts_B, rows_B
    env_B, pos_B = np.divmod(rows_B, rows_per_env)
    k_N = np.arange(n_step)
    window_BN = (rows_B - pos_B)[:, None] + (pos_B[:, None] + k_N) % rows_per_env
    newer_B = (end_E[env_B] - pos_B - 1) % rows_per_env  # steps stored after the first one in its ring
    terminated_BN = terminated.take(window_BN)
    stops_BN = terminated_BN | truncated.take(window_BN) | (k_N >= newer_B[:, None])
    returns_B, discounts_B, k_B = n_step_return(rewards.take(window_BN), terminated_BN, stops_BN, gamma=gamma)
    return returns_B, discounts_B, np.take_along_axis(window_BN, k_B[:, None], axis=1)[:, 0]


def n_step_return(
    rewards_BN: np.ndarray, terminated_BN: np.ndarray, stops_BN: np.ndarray, *, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(returns_B, discounts_B, last_B): each row's discounted rewards through its first stop, gamma**length or 0
    where the last step terminated (truncation still bootstraps), and the index of that last step."""
    in_window_BN = np.cumsum(stops_BN, axis=1) - stops_BN == 0
    powers_N = gamma ** np.arange(rewards_BN.shape[1], dtype=np.float64)
    returns_B = (rewards_BN * in_window_BN * powers_N).sum(axis=1)
    last_B = in_window_BN.sum(axis=1) - 1
    terminated_B = terminated_BN[np.arange(rewards_BN.shape[0]), last_B]
    discounts_B = np.where(terminated_B, 0.0, gamma ** (last_B + 1.0))
    return returns_B.astype(np.float32), discounts_B.astype(np.float32), last_B
