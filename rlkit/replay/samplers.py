"""Which replay rows to sample, behind one protocol; uniform sampling here, by priority in rlkit.replay.prioritized.
A cleared row is never drawn, so validity costs no rejection loop."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Sampler(Protocol):
    """What a replay buffer asks of its sampler. Rows are flat indices; a row's weight is 0 while it holds no
    transition the buffer can serve, and a row of weight 0 is never drawn."""

    def __len__(self) -> int:
        """Rows that can be drawn now."""

    @property
    def nbytes(self) -> int: ...

    def add(self, indices: np.ndarray | int) -> None:
        """These rows now hold new transitions."""

    def clear(self, indices: np.ndarray) -> None:
        """These rows hold nothing that may be drawn (overwritten, or a row that cannot be served yet)."""

    def sample(self, batch_size: int, *, beta: float) -> tuple[np.ndarray, np.ndarray | None]:
        """(rows_B, importance weights_B or None for uniform)."""

    def update(self, indices: np.ndarray, td_errors: np.ndarray) -> None: ...

    def weights(self) -> np.ndarray:
        """Every row's weight (float64, 0 where it cannot be drawn): what a saved replay keeps of its sampler."""

    def load_weights(self, weights: np.ndarray) -> None:
        """Every row's weight, as weights() returned them: a saved replay's sampler restored."""


class UniformSampler:
    """Every live row equally likely: one integer draw into a packed list of the live rows (a cleared row's place
    takes the list's last), no gather at all while the live rows are 0, 1, ..., len - 1 (one ring that never clears)."""

    def __init__(self, *, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"a sampler needs capacity >= 1, got {capacity}")
        self.capacity = int(capacity)
        index = np.int32 if self.capacity < 2**31 else np.int64
        self._rows = np.zeros(self.capacity, dtype=index)  # _rows[:_count] are the live rows, in no fixed order
        self._slot = np.full(self.capacity, -1, dtype=index)  # each row's place in _rows, -1 while it is not live
        self._count = 0
        self._in_order = True  # _rows[:_count] is arange(_count)
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._rows.nbytes + self._slot.nbytes

    def add(self, indices: np.ndarray | int) -> None:
        if self._count == self.capacity:  # every row is live already: a full buffer that never clears
            return
        if type(indices) is int:  # one row, the per-step case of one env copy: scalar indexing is cheaper
            if self._slot[indices] < 0:
                self._in_order = self._in_order and indices == self._count
                self._rows[self._count] = indices
                self._slot[indices] = self._count
                self._count += 1
            return
        indices = np.ravel(indices)
        new = indices[self._slot[indices] < 0]
        if new.size == 0:
            return
        if new.size > 1:
            new = np.unique(new)
        self._in_order = self._in_order and bool(new[0] == self._count and new[-1] == self._count + new.size - 1)
        self._rows[self._count : self._count + new.size] = new
        self._slot[new] = np.arange(self._count, self._count + new.size)
        self._count += new.size

    def clear(self, indices: np.ndarray) -> None:
        """Drop live rows: the live rows at the end of the list move into the places they leave."""
        indices = np.asarray(indices, dtype=np.int64).ravel()
        gone = indices[self._slot[indices] >= 0]
        if gone.size == 0:
            return
        if gone.size > 1:
            gone = np.unique(gone)
        count = self._count - gone.size
        holes = self._slot[gone]
        holes = holes[holes < count]
        self._slot[gone] = -1
        tail = self._rows[count : self._count]
        movers = tail[self._slot[tail] >= 0]  # as many as there are holes
        self._rows[holes] = movers
        self._slot[movers] = holes
        self._count = count
        self._in_order = self._in_order and holes.size == 0  # only the last rows went

    def sample(self, batch_size: int, *, beta: float = 0.0) -> tuple[np.ndarray, None]:
        if self._count == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        drawn_B = self._rng.integers(self._count, size=batch_size)
        return (drawn_B if self._in_order else self._rows[drawn_B].astype(np.int64)), None

    def update(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        pass

    def weights(self) -> np.ndarray:
        weights = np.zeros(self.capacity, dtype=np.float64)
        weights[self._rows[: self._count]] = 1.0
        return weights

    def load_weights(self, weights: np.ndarray) -> None:
        self._slot[:] = -1
        self._count, self._in_order = 0, True
        self.add(np.flatnonzero(np.asarray(weights) > 0))
