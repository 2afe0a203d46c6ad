"""Experience replay: a preallocated numpy ring per env copy, uniform sampling, n-step windows built when sampling.

Storing one-step transitions and summing n rewards at sample time keeps `add` cheap (it runs every env step)
and keeps each env copy's stream intact, so an n-step window never mixes copies or crosses an episode end.
A frame-deduplicating or prioritized buffer keeps this API: `add`, `sample -> Batch`, `len`, `nbytes`.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from rlkit.errors import RlkitError
from rlkit.prioritized import Sampler


class Batch(NamedTuple):
    """A sampled mini-batch: torch tensors on the agent's device, leading batch axis B."""

    obs: torch.Tensor  # [B, *obs_shape], stored dtype (uint8 frames stay uint8)
    actions: torch.Tensor  # [B] int64
    rewards: torch.Tensor  # [B] float32: discounted sum of up to n rewards
    next_obs: torch.Tensor  # [B, *obs_shape]: the observation after the window's last step
    discounts: torch.Tensor  # [B] float32: gamma**k for a k-step window, 0 where it ends in termination
    weights: torch.Tensor | None = None  # importance weights of a prioritized sampler; None means uniform
    indices: np.ndarray | None = None  # rows sampled, for a prioritized sampler's priority update


@runtime_checkable
class Replay(Protocol):
    """What an agent asks of a replay memory; ReplayBuffer and FrameReplayBuffer (Atari frames stored once) both are one."""

    capacity: int

    def __len__(self) -> int: ...

    def add(
        self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any, truncated: Any, *, env_ids: np.ndarray | None = None
    ) -> None:
        """Store one step of the env copies `env_ids` (default: all, in order)."""
        ...

    def sample(self, batch_size: int, *, beta: float = 1.0) -> Batch:
        """A mini-batch on the agent's device; `beta` anneals a prioritized sampler's importance weights."""
        ...

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for sampled rows (a uniform sampler ignores them)."""
        ...

    def state_dict(self) -> dict[str, np.ndarray]:
        """The contents as plain arrays, saved with numpy for checkpoint.replay=true (never pickled)."""
        ...

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], *, n_actions: int) -> None:
        """Refill from saved arrays, refusing (ValueError) any that do not fit this buffer."""
        ...


def n_step_return(
    rewards_BN: np.ndarray, terminated_BN: np.ndarray, stops_BN: np.ndarray, *, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discounted sum of the first N rewards of each row, ending after the first step where stops_BN is True.

    stops_BN marks steps after which the window must end: termination, truncation, or the newest stored step.
    Returns (returns_B, discounts_B, last_B): discounts_B is gamma**length, or 0 when the last step terminated
    (truncation still bootstraps), and last_B indexes the window's last step, whose next_obs is bootstrapped.
    """
    stops_before_BN = np.cumsum(stops_BN, axis=1) - stops_BN
    in_window_BN = stops_before_BN == 0
    powers_N = gamma ** np.arange(rewards_BN.shape[1], dtype=np.float64)
    returns_B = (rewards_BN * in_window_BN * powers_N).sum(axis=1)
    last_B = in_window_BN.sum(axis=1) - 1
    terminated_B = terminated_BN[np.arange(rewards_BN.shape[0]), last_B]
    discounts_B = np.where(terminated_B, 0.0, gamma ** (last_B + 1.0))
    return returns_B.astype(np.float32), discounts_B.astype(np.float32), last_B


NEAR_LIMIT = 0.5  # a buffer taking more than this share of the RAM available gets a printed warning
_warned: set[str] = set()


def check_memory(*, capacity: int, bytes_per_row: int) -> None:
    """SB3's courtesy, made firm: refuse a buffer that cannot fit in the RAM left, before allocating it.

    A buffer near the limit is a warning line on stderr (once per process), not a ResourceWarning that
    Python hides by default.
    """
    available = available_memory_bytes()
    needed = int(capacity) * int(bytes_per_row)
    if available is None:
        return
    if needed > available:
        raise RlkitError(
            f"agent.buffer_size={capacity} needs {needed / 2**30:,.1f} GiB of replay memory, more than the "
            f"{available / 2**30:.1f} GiB of RAM available; lower agent.buffer_size"
        )
    size = f"{needed / 2**30:.1f} GiB"
    if needed > NEAR_LIMIT * available and size not in _warned:  # the buffer's size once, however often it is checked
        _warned.add(size)
        print(
            f"warning: agent.buffer_size={capacity} will take {size}, {needed / available:.0%} of the "
            f"{available / 2**30:.1f} GiB of RAM available; lower agent.buffer_size if the machine starts to swap",
            file=sys.stderr, flush=True,
        )


def load_arrays_into(
    stored: dict[str, np.ndarray], arrays: Mapping[str, np.ndarray], *, bounds: Mapping[str, tuple[float, float]]
) -> None:
    """Copy saved arrays into a buffer's own, refusing any missing, reshaped, retyped or out-of-range one.

    Everything is checked before anything is copied, so a refused file leaves the buffer as it was.
    """
    for name, target in stored.items():
        if name not in arrays:
            raise ValueError(f"saved replay has no {name}")
        array = arrays[name]
        if array.shape != target.shape or array.dtype != target.dtype:
            raise ValueError(f"saved replay {name} is {array.dtype}{array.shape}, this buffer {target.dtype}{target.shape}")
        low, high = bounds.get(name, (-math.inf, math.inf))
        if array.size and not (np.all(array >= low) and np.all(array <= high)):  # NaN fails both
            raise ValueError(f"saved replay {name} holds values outside [{low:g}, {high:g}]")
    for name, target in stored.items():
        target[...] = arrays[name]


def available_memory_bytes() -> int | None:
    """RAM the OS can still hand out (MemAvailable on Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


class ReplayBuffer:
    """Uniform replay over per-env rings of one-step transitions, with n-step returns built when sampling.

    Each env copy owns capacity / num_envs rows with its own write position, so rows a caller leaves out
    (a vector env's autoreset step) never break a copy's stream. `terminated` and `truncated` are
    kept apart: only termination stops bootstrapping.
    """

    def __init__(
        self,
        *,
        capacity: int,
        obs_shape: Sequence[int],
        obs_dtype: np.dtype | type,
        num_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        device: torch.device | str = "cpu",
        seed: int = 0,
        sampler: Callable[..., Sampler] | None = None,
    ) -> None:
        """`sampler` builds a sampler for a capacity (prioritized replay); None samples uniformly."""
        if capacity < num_envs:
            raise ValueError(f"capacity={capacity} must hold at least one step per env copy (num_envs={num_envs})")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        self.num_envs = int(num_envs)
        self.rows_per_env = -(-int(capacity) // self.num_envs)  # ceil: never less than asked for
        self.capacity = self.rows_per_env * self.num_envs
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.n_step = int(n_step)
        self.gamma = float(gamma)
        self.device = torch.device(device)
        self._rng = np.random.default_rng(seed)
        obs_dtype = np.dtype(obs_dtype)
        check_memory(capacity=self.capacity, bytes_per_row=self.bytes_per_row(self.obs_shape, obs_dtype))
        # Flat rows: env copy e owns rows [e * rows_per_env, (e + 1) * rows_per_env). One flat index per
        # sample lets np.take gather a batch, several times faster than 2-D fancy indexing.
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=bool)
        self.truncated = np.zeros(self.capacity, dtype=bool)
        self._pos = np.zeros(self.num_envs, dtype=np.int64)  # next row to write in each env copy's stream
        self._size = np.zeros(self.num_envs, dtype=np.int64)
        self._all_envs = np.arange(self.num_envs)
        self.sampler = sampler(capacity=self.capacity, seed=seed) if sampler is not None else None

    @staticmethod
    def bytes_per_row(obs_shape: Sequence[int], obs_dtype: np.dtype | type) -> int:
        """obs and next obs, action, reward and the two episode-end flags."""
        return 2 * np.dtype(obs_dtype).itemsize * math.prod(obs_shape) + 8 + 4 + 2

    def __len__(self) -> int:
        return int(self._size.sum())

    @property
    def nbytes(self) -> int:
        arrays = (self.obs, self.next_obs, self.actions, self.rewards, self.terminated, self.truncated)
        return sum(a.nbytes for a in arrays)

    def add(
        self,
        obs: Any,
        action: Any,
        reward: Any,
        next_obs: Any,
        terminated: Any,
        truncated: Any,
        *,
        env_ids: np.ndarray | None = None,
    ) -> None:
        """Store one step of the env copies `env_ids` (default: all, in order); rows have a leading env axis.

        With num_envs=1 and no env_ids, unbatched values (one obs, a float reward) are accepted too.
        """
        if env_ids is None and self.num_envs == 1:
            env: Any = 0
            pos: Any = int(self._pos[0])  # scalar indices: several times cheaper than fancy indexing per step
            row = pos
        else:
            env = self._all_envs if env_ids is None else np.asarray(env_ids)
            pos = self._pos[env]
            row = env * self.rows_per_env + pos
            reward, terminated, truncated = np.ravel(reward), np.ravel(terminated), np.ravel(truncated)
        self.obs[row] = obs
        self.next_obs[row] = next_obs
        self.actions[row] = action
        self.rewards[row] = reward
        self.terminated[row] = terminated
        self.truncated[row] = truncated
        if self.sampler is not None:
            self.sampler.add(row)
        self._pos[env] = (pos + 1) % self.rows_per_env
        self._size[env] = np.minimum(self._size[env] + 1, self.rows_per_env)

    def _sample_rows(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(env_B, pos_B): uniform over every stored transition; pos_B counts within each env copy's stream."""
        if self.num_envs == 1:
            return np.zeros(batch_size, dtype=np.int64), self._rng.integers(self._size[0], size=batch_size)
        ends = np.cumsum(self._size)
        flat_B = self._rng.integers(ends[-1], size=batch_size)
        env_B = np.searchsorted(ends, flat_B, side="right")
        return env_B, flat_B - (ends[env_B] - self._size[env_B])

    def sample(self, batch_size: int, *, beta: float = 1.0) -> Batch:
        """A mini-batch, uniform or drawn by the sampler (beta: its importance-weight exponent); n-step windows
        stop at episode ends and at the newest stored step."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        weights_B = None
        if self.sampler is None:
            env_B, pos_B = self._sample_rows(batch_size)
            stream_B = env_B * self.rows_per_env  # first flat row of each sample's env stream
            first_B = stream_B + pos_B
        else:
            first_B, weights_B = self.sampler.sample(batch_size, beta=beta)
            env_B, pos_B = np.divmod(first_B, self.rows_per_env)
            stream_B = first_B - pos_B
        if self.n_step == 1:
            last_B = first_B
            rewards_B = self.rewards.take(first_B)
            discounts_B = np.where(self.terminated.take(first_B), 0.0, self.gamma).astype(np.float32)
        else:
            k_N = np.arange(self.n_step)
            window_BN = stream_B[:, None] + (pos_B[:, None] + k_N) % self.rows_per_env
            newer_B = (self._pos[env_B] - pos_B - 1) % self.rows_per_env  # steps stored after pos_B in its stream
            terminated_BN = self.terminated.take(window_BN)
            stops_BN = terminated_BN | self.truncated.take(window_BN) | (k_N >= newer_B[:, None])
            rewards_B, discounts_B, k_B = n_step_return(
                self.rewards.take(window_BN), terminated_BN, stops_BN, gamma=self.gamma
            )
            last_B = np.take_along_axis(window_BN, k_B[:, None], axis=1)[:, 0]
        return Batch(
            obs=self._to_device(self.obs.take(first_B, axis=0)),
            actions=self._to_device(self.actions.take(first_B)),
            rewards=self._to_device(rewards_B),
            next_obs=self._to_device(self.next_obs.take(last_B, axis=0)),
            discounts=self._to_device(discounts_B),
            weights=None if weights_B is None else self._to_device(weights_B),
            indices=None if weights_B is None else first_B,
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for rows just learned from; a no-op without a prioritized sampler."""
        if self.sampler is not None:
            self.sampler.update(indices, td_errors)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything stored, as plain arrays (saved with numpy, never pickled); a sampler's weights too."""
        names = ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")
        arrays = {**{name: getattr(self, name) for name in names}, "pos": self._pos, "size": self._size}
        if self.sampler is not None:
            arrays["sampler_weights"] = self.sampler.tree.values(np.arange(self.capacity))
        return arrays

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], *, n_actions: int) -> None:
        """Restore what arrays() returned; positions, sizes, actions and weights must lie in range."""
        bounds = {
            "pos": (0, self.rows_per_env - 1), "size": (0, self.rows_per_env), "actions": (0, n_actions - 1),
            "sampler_weights": (0, np.finfo(np.float64).max),
        }
        load_arrays_into(self.state_dict(), arrays, bounds=bounds)
        if self.sampler is not None:
            self.sampler.load_weights(arrays["sampler_weights"])

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)
