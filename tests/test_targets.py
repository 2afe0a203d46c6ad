"""TD targets on hand-computed numbers."""

from __future__ import annotations

import torch

from rlkit.agents.targets import bootstrap_q, td_target


def test_terminal_truncated_and_n_step_targets() -> None:
    rewards = torch.tensor([1.0, 1.0, 2.5])
    next_q = torch.tensor([10.0, 10.0, 4.0])
    # terminated: no bootstrap; truncated: gamma=0.9 still applies; 3-step window: gamma**3 = 0.729
    discounts = torch.tensor([0.0, 0.9, 0.729])
    assert td_target(rewards, next_q, discounts).tolist() == torch.tensor([1.0, 10.0, 2.5 + 0.729 * 4.0]).tolist()


def test_double_dqn_values_the_online_nets_choice_with_the_target_net() -> None:
    next_q_target = torch.tensor([[1.0, 5.0, 3.0], [2.0, 0.0, -1.0]])
    next_q_online = torch.tensor([[3.0, 2.0, 0.0], [0.0, 0.0, 9.0]])
    assert bootstrap_q(next_q_target).tolist() == [5.0, 2.0]
    assert bootstrap_q(next_q_target, next_q_online).tolist() == [1.0, -1.0]
