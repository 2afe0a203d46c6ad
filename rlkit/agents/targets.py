"""How value-based agents learn, as pure functions: TD targets from tensors, no networks or buffers."""

from __future__ import annotations

import torch


def bootstrap_q(next_q_target_BA: torch.Tensor, next_q_online_BA: torch.Tensor | None = None) -> torch.Tensor:
    """Value of the next state: max over the target net's Q-values. Given the online net's too (Double DQN, van
    Hasselt et al., 2016, arXiv:1509.06461), the online net picks the action and the target net values it, which
    removes max's upward bias."""
    if next_q_online_BA is None:
        return next_q_target_BA.max(dim=1).values
    best_B1 = next_q_online_BA.argmax(dim=1, keepdim=True)
    return next_q_target_BA.gather(1, best_B1).squeeze(1)


def td_target(rewards_B: torch.Tensor, next_q_B: torch.Tensor, discounts_B: torch.Tensor) -> torch.Tensor:
    """r + discount * Q(s'): discounts_B is gamma**n for an n-step return and 0 after termination; a truncated
    (time-limit) episode keeps its discount, as the state still had a future."""
    return rewards_B + discounts_B * next_q_B
