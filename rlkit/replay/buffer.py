"""Experience replay behind one protocol: ReplayBuffer, a preallocated numpy ring per env copy, with its rows drawn
by a sampler and n-step windows built when sampling, so a window never mixes copies or crosses an episode end."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from rlkit.errors import RlkitError
from rlkit.replay.rings import StepRings, n_step_window
from rlkit.replay.samplers import Sampler, UniformSampler


class Batch(NamedTuple):
    """A sampled mini-batch: torch tensors on the agent's device, leading batch axis B."""

    obs: torch.Tensor  # [B, *obs_shape], stored dtype (uint8 frames stay uint8)
    actions: torch.Tensor  # [B] int64
    rewards: torch.Tensor  # [B] float32: discounted sum of up to n rewards
    next_obs: torch.Tensor  # [B, *obs_shape]: the observation after the window's last step
    discounts: torch.Tensor  # [B] float32: gamma**k for a k-step window, 0 where it ends in termination
    weights: torch.Tensor | None = None  # importance weights of a prioritized sampler; None means uniform
    indices: np.ndarray | None = None  # rows sampled, for a prioritized sampler's priority update


class Replay(Protocol):
    """What an agent asks of a replay memory: ReplayBuffer, or FrameReplayBuffer (Atari frames stored once)."""

    capacity: int

    def __len__(self) -> int: ...

    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any, truncated: Any, *,
            env_ids: np.ndarray | None = None) -> None:
        """Store one step of the env copies `env_ids` (default: all, in order)."""

    def sample(self, batch_size: int, *, beta: float = 1.0) -> Batch:
        """A mini-batch on the agent's device; `beta` anneals a prioritized sampler's importance weights."""

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for sampled rows (a uniform sampler ignores them)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """The contents as plain arrays, saved with numpy for checkpoint.replay=true (never pickled)."""

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], *, n_actions: int) -> None:
        """Refill from saved arrays, refusing (ValueError) any that do not fit this buffer."""


NEAR_LIMIT = 0.5  # a buffer taking more than this share of the RAM available gets a printed warning
_warned: set[str] = set()


def check_memory(*, capacity: int, bytes_per_row: int) -> None:
    """Refuse a buffer that cannot fit in the RAM left, before allocating it; one near the limit is a warning line
    on stderr (once per process), not a ResourceWarning that Python hides by default."""
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


class RingRows:
    """What both buffers keep on their rings (rlkit.replay.rings) besides observations: each row's action, reward
    and episode-end flags, and the sampler that draws rows."""

    ARRAYS: tuple[str, ...]  # every per-row array, as state_dict names them

    def _allocate_rows(self, rings: StepRings, *, bytes_per_row: int, device: torch.device | str, seed: int,
                       sampler: Callable[..., Sampler] | None) -> None:
        self.rings = rings
        self.rows_per_env, self.num_envs, self.capacity = rings.rows_per_env, int(rings.num_envs), rings.rows
        self.device = torch.device(device)
        check_memory(capacity=self.capacity, bytes_per_row=bytes_per_row)
        self.actions = np.zeros(self.capacity, dtype=np.int64)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=bool)
        self.truncated = np.zeros(self.capacity, dtype=bool)
        self._all_envs = np.arange(self.num_envs)
        self.sampler: Sampler = (sampler or UniformSampler)(capacity=self.capacity, seed=seed)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.ARRAYS) + self.sampler.nbytes

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def _load_arrays(self, stored: dict[str, np.ndarray], arrays: Mapping[str, np.ndarray], *, n_actions: int,
                     **bounds: tuple[float, float]) -> None:
        """Copy saved arrays into stored, refusing any missing, reshaped, retyped or out-of-range one (actions and
        sampler weights included); all are checked before any is copied, so a refused file changes nothing."""
        bounds = {"actions": (0, n_actions - 1), "sampler_weights": (0, np.finfo(np.float64).max), **bounds}
        for name, target in stored.items():
            if name not in arrays:
                raise ValueError(f"saved replay has no {name}")
            array = arrays[name]
            if array.shape != target.shape or array.dtype != target.dtype:
                raise ValueError(
                    f"saved replay {name} is {array.dtype}{array.shape}, this buffer {target.dtype}{target.shape}"
                )
            low, high = bounds.get(name, (-math.inf, math.inf))
            if array.size and not (np.all(array >= low) and np.all(array <= high)):  # NaN fails both
                raise ValueError(f"saved replay {name} holds values outside [{low:g}, {high:g}]")
        for name, target in stored.items():
            target[...] = arrays[name]

    def _window(self, rows_B: np.ndarray, end_E: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(returns_B, discounts_B, last_B) of the n-step windows starting at rows_B (see n_step_window)."""
        return n_step_window(
            rows_B, end_E=end_E, rows_per_env=self.rows_per_env, n_step=int(self.rings.n_step),
            gamma=float(self.rings.gamma), rewards=self.rewards, terminated=self.terminated, truncated=self.truncated,
        )

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for rows just learned from; a uniform sampler ignores them."""
        self.sampler.update(indices, td_errors)


class ReplayBuffer(RingRows):
    """Replay over per-env rings of one-step transitions, rows drawn by a sampler, n-step returns built when
    sampling. `terminated` and `truncated` are kept apart: only termination stops bootstrapping."""

    ARRAYS = ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")

    def __init__(self, *, rings: StepRings, obs_shape: Sequence[int], obs_dtype: np.dtype | type,
                 device: torch.device | str = "cpu", seed: int = 0,
                 sampler: Callable[..., Sampler] | None = UniformSampler) -> None:
        """`sampler` builds the sampler for a capacity (e.g. a partial PrioritizedSampler); None is uniform too."""
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self._allocate_rows(rings, bytes_per_row=self.bytes_per_row(self.obs_shape, obs_dtype), device=device,
                            seed=seed, sampler=sampler)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self._pos = np.zeros(self.num_envs, dtype=np.int64)  # next row to write in each env copy's stream
        self._size = np.zeros(self.num_envs, dtype=np.int64)

    @staticmethod
    def bytes_per_row(obs_shape: Sequence[int], obs_dtype: np.dtype | type) -> int:
        """obs and next obs, action, reward, the two episode-end flags and the sampler's 8 bytes."""
        return 2 * np.dtype(obs_dtype).itemsize * math.prod(obs_shape) + 8 + 4 + 2 + 8

    def __len__(self) -> int:
        return int(self._size.sum())

    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any, truncated: Any, *,
            env_ids: np.ndarray | None = None) -> None:
        """Store one step of the env copies `env_ids` (default: all); with one env copy, unbatched values work too."""
        env: Any
        pos: Any
        if env_ids is None and self.num_envs == 1:  # scalar indices: several times cheaper than fancy indexing
            env = 0
            pos = row = int(self._pos[0])
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
        self.sampler.add(row)
        self._pos[env] = (pos + 1) % self.rows_per_env
        self._size[env] = np.minimum(self._size[env] + 1, self.rows_per_env)

    def sample(self, batch_size: int, *, beta: float = 1.0) -> Batch:
        """A mini-batch drawn by the sampler; n-step windows stop at episode ends and at the newest stored step."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        first_B, weights_B = self.sampler.sample(batch_size, beta=beta)
        rewards_B, discounts_B, last_B = self._window(first_B, self._pos)
        to_device = self._to_device
        return Batch(
            obs=to_device(self.obs.take(first_B, axis=0)), actions=to_device(self.actions.take(first_B)),
            rewards=to_device(rewards_B), next_obs=to_device(self.next_obs.take(last_B, axis=0)),
            discounts=to_device(discounts_B), weights=None if weights_B is None else to_device(weights_B),
            indices=None if weights_B is None else first_B,
        )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything stored, as plain arrays (saved with numpy, never pickled), with the sampler's weights."""
        return {**self._stored_arrays(), "sampler_weights": self.sampler.weights()}

    def _stored_arrays(self) -> dict[str, np.ndarray]:
        return {**self._arrays(), "pos": self._pos, "size": self._size}

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], *, n_actions: int) -> None:
        """Restore what state_dict() returned; positions, sizes, actions and weights must lie in range. A uniform
        buffer saved before samplers were always built (no sampler_weights) gets weight 1 on every row it stored."""
        stored = self.state_dict() if "sampler_weights" in arrays else self._stored_arrays()
        self._load_arrays(stored, arrays, n_actions=n_actions, pos=(0, self.rows_per_env - 1),
                          size=(0, self.rows_per_env))
        weights = arrays.get("sampler_weights")
        if weights is None:  # each ring fills from position 0: its first `size` rows hold transitions
            weights = (np.arange(self.rows_per_env) < self._size[:, None]).astype(np.float64).reshape(-1)
        self.sampler.load_weights(weights)

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)
