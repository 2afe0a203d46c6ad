"""TD targets and target-network update rules on hand-computed numbers."""

from __future__ import annotations

import pytest
import torch

from rlkit.agents.target_nets import PolyakUpdate, hard_update
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


def tensors(*values: float) -> list[torch.Tensor]:
    return [torch.tensor([v, -v]) for v in values]


def test_a_hard_update_copies_only_when_a_multiple_of_every_steps_is_passed() -> None:
    rule, online = hard_update(every_steps=4), tensors(1.0, 2.0)
    target = tensors(7.0, 8.0)
    for prev, step in [(0, 1), (1, 2), (2, 3), (4, 5), (5, 7)]:  # no multiple of 4 in (prev, step]
        assert rule(target, online, prev_steps=prev, steps=step) is False
    assert [t.tolist() for t in target] == [[7.0, -7.0], [8.0, -8.0]]
    assert rule(target, online, prev_steps=3, steps=4) is True
    assert [t.tolist() for t in target] == [[1.0, -1.0], [2.0, -2.0]]
    target = tensors(7.0, 8.0)
    assert rule(target, online, prev_steps=6, steps=9) is True  # a vector env's step of 3 can pass the multiple 8
    assert [t.tolist() for t in target] == [[1.0, -1.0], [2.0, -2.0]]


def test_polyak_with_tau_one_half_lands_exactly_on_the_midpoint() -> None:
    rule, online, target = PolyakUpdate(tau=0.5), tensors(1.0, -3.0), tensors(3.0, 5.0)
    assert rule(target, online, prev_steps=0, steps=1) is True  # every_steps 1: every step
    assert [t.tolist() for t in target] == [[2.0, -2.0], [1.0, -1.0]]
    assert PolyakUpdate(tau=0.25, every_steps=2)(target, online, prev_steps=2, steps=3) is False
    assert PolyakUpdate(tau=0.25, every_steps=2)(target, online, prev_steps=3, steps=4) is True
    assert [t.tolist() for t in target] == [[1.75, -1.75], [0.0, 0.0]]  # a quarter of the way: 2 -> 1.75, 1 -> 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: hard_update(every_steps=0), r"every_steps >= 1, got 0"),
        (lambda: PolyakUpdate(tau=0.0), r"tau in \(0, 1\] \(1 is a hard copy\), got 0.0"),
        (lambda: PolyakUpdate(tau=1.5), r"tau in \(0, 1\] \(1 is a hard copy\), got 1.5"),
        (lambda: PolyakUpdate(tau=0.5, every_steps=-2), r"every_steps >= 1, got -2"),
    ],
)
def test_a_rule_that_could_never_fire_or_would_overshoot_is_refused(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
