"""What a Q head's outputs mean: an expected value per action, or a distribution over returns (C51); the loss, the
target and the Q-values DQN acts on all go through one of these parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch.nn import functional as F

from rlkit.agents.targets import bootstrap_q, td_target


class ValueDistribution(Protocol):
    """`outputs` per action from the head; Q-values, per-sample predictions, targets and losses from those outputs."""

    outputs: int

    def q_values(self, out_BX: torch.Tensor) -> torch.Tensor: ...
    def chosen(self, out_BX: torch.Tensor, actions_B: torch.Tensor) -> torch.Tensor: ...
    def chosen_q(self, chosen: torch.Tensor) -> torch.Tensor: ...
    def target(self, next_target_BX: torch.Tensor, next_online_BX: torch.Tensor | None, rewards_B: torch.Tensor,
        discounts_B: torch.Tensor) -> torch.Tensor: ...
    def loss(self, chosen: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor: ...
    def priority(self, chosen: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


class Expected:
    """DQN's own: one output per action is its Q-value, regressed on r + discount * Q(s', a') with `loss`
    (torch.nn.functional's, Huber by default); a prioritized replay's priority is |TD error|."""

    outputs = 1

    def __init__(self, loss: Callable[..., torch.Tensor] = F.smooth_l1_loss) -> None:
        self.loss_fn = loss

    def q_values(self, out_BA: torch.Tensor) -> torch.Tensor:
        return out_BA

    def chosen(self, out_BA: torch.Tensor, actions_B: torch.Tensor) -> torch.Tensor:
        return out_BA.gather(1, actions_B.unsqueeze(1)).squeeze(1)

    def chosen_q(self, q_B: torch.Tensor) -> torch.Tensor:
        return q_B

    def target(self, next_target_BA: torch.Tensor, next_online_BA: torch.Tensor | None, rewards_B: torch.Tensor,
        discounts_B: torch.Tensor) -> torch.Tensor:
        return td_target(rewards_B, bootstrap_q(next_target_BA, next_online_BA), discounts_B)

    def loss(self, q_B: torch.Tensor, target_B: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return self.loss_fn(q_B, target_B, reduction=reduction)

    def priority(self, q_B: torch.Tensor, target_B: torch.Tensor) -> torch.Tensor:
        return (target_B - q_B).abs()


def categorical_projection(next_probs_BZ: torch.Tensor, rewards_B: torch.Tensor, discounts_B: torch.Tensor,
    support_Z: torch.Tensor) -> torch.Tensor:
    """Eq. 7 of Bellemare et al. 2017 (arXiv:1707.06887): each atom z_j moved to r + discount * z_j (discount is
    gamma**n, 0 past a termination), clamped to the support, its mass split between the two atoms around it. One
    scatter over the whole batch; a shifted atom exactly on an atom (l == u) gives it all its mass."""
    atoms = support_Z.shape[0]
    v_min, v_max = support_Z[0], support_Z[-1]
    shifted_BZ = (rewards_B.unsqueeze(1) + discounts_B.unsqueeze(1) * support_Z).clamp(v_min, v_max)
    b_BZ = ((shifted_BZ - v_min) / ((v_max - v_min) / (atoms - 1))).clamp(0, atoms - 1)
    lower_BZ, upper_BZ = b_BZ.floor(), b_BZ.ceil()
    lower_mass_BZ = next_probs_BZ * (upper_BZ - b_BZ + (lower_BZ == upper_BZ))
    upper_mass_BZ = next_probs_BZ * (b_BZ - lower_BZ)
    offset_B1 = torch.arange(next_probs_BZ.shape[0], device=b_BZ.device).unsqueeze(1) * atoms
    projected = torch.zeros(next_probs_BZ.numel(), dtype=next_probs_BZ.dtype, device=next_probs_BZ.device)
    projected.index_add_(0, (lower_BZ.long() + offset_B1).flatten(), lower_mass_BZ.flatten())
    projected.index_add_(0, (upper_BZ.long() + offset_B1).flatten(), upper_mass_BZ.flatten())
    return projected.view_as(next_probs_BZ)


class Categorical:
    """C51 (Bellemare et al. 2017): `atoms` logits per action over returns evenly spaced on [v_min, v_max]; the
    loss is the cross-entropy against the projected target, which is also a prioritized replay's priority (Rainbow)."""

    def __init__(self, *, atoms: int = 51, v_min: float = -10.0, v_max: float = 10.0) -> None:
        self.outputs = int(atoms)
        self.support_Z = torch.linspace(float(v_min), float(v_max), int(atoms))

    def _support(self, like: torch.Tensor) -> torch.Tensor:
        return self.support_Z.to(device=like.device, dtype=like.dtype)

    def _expected(self, logits_XZ: torch.Tensor) -> torch.Tensor:
        return (logits_XZ.softmax(-1) * self._support(logits_XZ)).sum(-1)

    def q_values(self, out_BX: torch.Tensor) -> torch.Tensor:
        """Expected values, shape (batch, actions): what acting, play and the Q-value overlay read."""
        return self._expected(out_BX.unflatten(1, (-1, self.outputs)))

    def chosen(self, out_BX: torch.Tensor, actions_B: torch.Tensor) -> torch.Tensor:
        logits_BAZ = out_BX.unflatten(1, (-1, self.outputs))
        return logits_BAZ.gather(1, actions_B.view(-1, 1, 1).expand(-1, 1, self.outputs)).squeeze(1)

    def chosen_q(self, logits_BZ: torch.Tensor) -> torch.Tensor:
        return self._expected(logits_BZ)

    def target(self, next_target_BX: torch.Tensor, next_online_BX: torch.Tensor | None, rewards_B: torch.Tensor,
        discounts_B: torch.Tensor) -> torch.Tensor:
        """The projected distribution of the next action's return; Double DQN's online net picks it by expected
        value."""
        probs_BAZ = next_target_BX.unflatten(1, (-1, self.outputs)).softmax(-1)
        picker_BX = next_target_BX if next_online_BX is None else next_online_BX
        best_B = self.q_values(picker_BX).argmax(dim=1)
        next_probs_BZ = probs_BAZ.gather(1, best_B.view(-1, 1, 1).expand(-1, 1, self.outputs)).squeeze(1)
        return categorical_projection(next_probs_BZ, rewards_B, discounts_B, self._support(next_probs_BZ))

    def loss(self, logits_BZ: torch.Tensor, target_BZ: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        per_sample_B = -(target_BZ * logits_BZ.log_softmax(-1)).sum(-1)
        return per_sample_B.mean() if reduction == "mean" else per_sample_B

    def priority(self, logits_BZ: torch.Tensor, target_BZ: torch.Tensor) -> torch.Tensor:
        return self.loss(logits_BZ, target_BZ, reduction="none")
