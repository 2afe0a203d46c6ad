"""How a target network follows the online one: a hard copy every N env steps, or Polyak averaging. A rule is a
part the agent is given, and sees parameter tensors, not networks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from rlkit.agents.base import Every


@dataclass(frozen=True)
class PolyakUpdate:
    """target <- tau * online + (1 - tau) * target whenever the env step count passes a multiple of every_steps:
    tau = 1 is the hard copy of Mnih et al. (2015), a small tau each step the soft update of Lillicrap et al. (2016)."""

    tau: float
    every_steps: int = 1
    _every: Every = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"a target update needs tau in (0, 1] (1 is a hard copy), got {self.tau}")
        if self.every_steps < 1:
            raise ValueError(f"a target update needs every_steps >= 1, got {self.every_steps}")
        object.__setattr__(self, "_every", Every(self.every_steps))  # frozen: set once, here

    @torch.no_grad()
    def __call__(self, target: Sequence[torch.Tensor], online: Sequence[torch.Tensor], *, prev_steps: int,
            steps: int) -> bool:
        """Called after every observed step; updates `target` in place when due and says whether it did."""
        if not self._every.crossed(prev_steps, steps):
            return False
        for target_p, online_p in zip(target, online, strict=True):
            if self.tau == 1.0:
                target_p.copy_(online_p)  # bit for bit, and cheaper than a lerp
            else:
                target_p.lerp_(online_p, self.tau)
        return True


def hard_update(every_steps: int) -> PolyakUpdate:
    """target <- online every `every_steps` env steps."""
    return PolyakUpdate(tau=1.0, every_steps=every_steps)
