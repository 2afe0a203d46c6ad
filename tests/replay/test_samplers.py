"""Sum tree and samplers: draws follow the weights, zero rows are never drawn, importance weights are exact."""

from __future__ import annotations

import numpy as np
import pytest

from rlkit.replay.prioritized import PrioritizedSampler, SumTree, importance_weights
from rlkit.replay.samplers import UniformSampler


@pytest.mark.parametrize("capacity", [1, 7, 37, 1000, 4099])
def test_find_is_a_search_in_the_running_sums_and_never_returns_a_zero_leaf(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    values = rng.random(capacity) * (rng.random(capacity) < 0.6)
    values[-1] = 0.5  # at least one positive leaf, and the last leaf must be reachable
    tree = SumTree(capacity)
    tree.set(np.arange(capacity), values)
    running = np.cumsum(values)
    prefixes = np.concatenate([rng.random(5000) * running[-1], [0.0, np.nextafter(running[-1], 0)]])
    found = tree.find(prefixes)
    np.testing.assert_array_equal(found, np.searchsorted(running, prefixes, side="right"))
    assert (values[found] > 0).all()
    assert tree.total == pytest.approx(running[-1]) and tree.nonzero == np.count_nonzero(values)


def test_set_keeps_sums_and_the_nonzero_count_through_repeats_and_single_leaves() -> None:
    tree = SumTree(100)
    tree.set(np.array([3, 3, 50]), np.array([1.0, 2.0, 4.0]))  # the last value for a repeated index wins
    assert tree.values(np.array([3, 50])).tolist() == [2.0, 4.0] and tree.total == 6.0 and tree.nonzero == 2
    tree.set(np.array([50]), 0.0)
    tree.set(np.array([99]), 0.25)
    assert tree.total == 2.25 and tree.nonzero == 2
    assert tree.find(np.array([1.99, 2.0, 2.2])).tolist() == [3, 99, 99]


def chi_square(counts: np.ndarray, expected_probs: np.ndarray) -> float:
    expected = expected_probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def test_prioritized_draws_follow_priorities_to_the_alpha() -> None:
    sampler = PrioritizedSampler(capacity=8, alpha=0.7, seed=0)
    sampler.add(np.arange(6))  # rows 6 and 7 hold nothing
    td_errors = np.array([0.1, 0.5, 1.0, 2.0, 4.0, 0.0])
    sampler.update(np.arange(6), td_errors)
    counts = np.zeros(8)
    for _ in range(2000):
        rows, _ = sampler.sample(32, beta=0.5)
        np.add.at(counts, rows, 1)
    assert counts[6:].sum() == 0
    probs = (np.abs(td_errors) + sampler.eps) ** 0.7
    probs /= probs.sum()
    # 5 degrees of freedom: chi-square above 20.5 has probability < 0.001 under the right distribution.
    assert chi_square(counts[:6], probs) < 20.5
    assert counts[5] < 0.001 * counts.sum()  # a zero TD error leaves only eps: almost never replayed


def test_uniform_draws_are_uniform_over_added_rows_only() -> None:
    sampler = UniformSampler(capacity=50, seed=1)
    sampler.add(np.arange(40))
    sampler.clear(np.array([3, 17, 39]))
    counts = np.zeros(50)
    for _ in range(1000):
        rows, weights = sampler.sample(64)
        assert weights is None
        np.add.at(counts, rows, 1)
    live = np.setdiff1d(np.arange(40), [3, 17, 39])
    assert counts.sum() == counts[live].sum() and len(sampler) == len(live)
    assert chi_square(counts[live], np.full(len(live), 1 / len(live))) < 70.0  # 36 dof: p < 0.001 above 67


def test_importance_weights_on_a_small_case() -> None:
    # Priorities 1, 2, 3, 4 with alpha 1: P = 0.1, 0.2, 0.3, 0.4 over N = 4 rows.
    sampler = PrioritizedSampler(capacity=4, alpha=1.0, eps=1e-9, seed=0)
    sampler.add(np.arange(4))
    sampler.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    rows, weights = sampler.sample(8, beta=0.5)
    # Stratified: one draw in each eighth of the total 10, so rows 0..3 own 1, 2, 3 and 2 of them (at most).
    assert sorted(set(rows.tolist())) == [0, 1, 2, 3] or sorted(set(rows.tolist())) == [1, 2, 3]
    expected = (4 * np.array([0.1, 0.2, 0.3, 0.4])[rows]) ** -0.5
    np.testing.assert_allclose(weights, expected / expected.max(), rtol=1e-6)
    assert weights[np.argmin(rows)] == 1.0  # the rarest row drawn gets the largest weight
    np.testing.assert_allclose(importance_weights(np.array([0.25, 0.5]), count=4, beta=1.0), [1.0, 0.5])


def test_new_rows_get_the_largest_priority_and_removed_rows_stay_removed() -> None:
    sampler = PrioritizedSampler(capacity=10, alpha=0.5, seed=0)
    sampler.add(np.array([0, 1]))
    sampler.update(np.array([0, 1]), np.array([9.0, 0.0]))
    sampler.add(np.array([2]))
    assert sampler.tree.values(np.array([2]))[0] == pytest.approx((9.0 + sampler.eps) ** 0.5)
    sampler.clear(np.array([1]))
    sampler.update(np.array([1]), np.array([5.0]))  # a batch in flight when its row was overwritten
    assert sampler.weights()[1] == 0.0 and len(sampler) == 2


def test_sampling_an_empty_sampler_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        PrioritizedSampler(capacity=4).sample(2, beta=0.4)
    with pytest.raises(ValueError, match="empty"):
        UniformSampler(capacity=4).sample(2)


def test_the_plain_replay_buffer_takes_the_prioritized_sampler() -> None:
    from functools import partial

    from rlkit.replay.buffer import ReplayBuffer
    from rlkit.replay.rings import StepRings

    buffer = ReplayBuffer(rings=StepRings(capacity=8), obs_shape=(1,), obs_dtype=np.float32,
        sampler=partial(PrioritizedSampler, alpha=1.0))
    for i in range(10):  # rows 0, 1 are overwritten by steps 8, 9
        buffer.add(np.array([i], np.float32), i % 3, float(i), np.array([i + 1], np.float32), False, False)
    batch = buffer.sample(16, beta=1.0)
    assert (batch.obs[:, 0].numpy() == np.where(batch.indices < 2, batch.indices + 8, batch.indices)).all()
    buffer.update_priorities(np.arange(8), np.where(np.arange(8) == 5, 100.0, 0.0))  # row 5 holds step 5
    batch = buffer.sample(64, beta=1.0)
    assert (batch.obs[:, 0] == 5).float().mean() > 0.95 and (batch.indices[batch.obs[:, 0].numpy() == 5] == 5).all()


def test_uniform_sampler_keeps_exactly_the_live_rows_through_adds_and_clears() -> None:
    """Random adds and clears (single rows, arrays, repeats, rows already gone) against a plain set."""
    rng = np.random.default_rng(0)
    sampler, live = UniformSampler(capacity=30, seed=0), set()
    for step in range(600):
        rows = rng.integers(30, size=rng.integers(1, 6))
        if step % 3 == 0:
            sampler.add(int(rows[0]))
            live.add(int(rows[0]))
        elif step % 3 == 1:
            sampler.add(rows)
            live |= set(rows.tolist())
        else:
            sampler.clear(rows)
            live -= set(rows.tolist())
        assert len(sampler) == len(live) and set(np.flatnonzero(sampler.weights()).tolist()) == live, step
        if live:
            drawn, _ = sampler.sample(16)
            assert set(drawn.tolist()) <= live and drawn.dtype == np.int64


def test_uniform_sampler_draws_rows_added_in_order_as_plain_integers_and_restores_its_weights() -> None:
    sampler = UniformSampler(capacity=10, seed=3)
    for row in range(7):
        sampler.add(row)
    sampler.add(np.array([2, 5]))  # already live: changes nothing
    drawn, weights = sampler.sample(20)
    assert drawn.tolist() == np.random.default_rng(3).integers(7, size=20).tolist() and weights is None
    assert sampler.weights().tolist() == [1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert sampler.nbytes == 10 * 4 * 2  # a row list and each row's place in it, int32
    restored = UniformSampler(capacity=10)
    restored.load_weights(np.array([0, 2.5, 0, 1, 0, 0, 0, 0, 0, 1e-3]))  # any positive weight is a live row
    assert restored.weights().tolist() == [0, 1, 0, 1, 0, 0, 0, 0, 0, 1] and len(restored) == 3
    restored.add(0)
    restored.clear(np.array([3]))
    assert sorted(set(restored.sample(200)[0].tolist())) == [0, 1, 9]
    in_order = UniformSampler(capacity=8, seed=5)
    in_order.add(np.arange(5))
    in_order.clear(np.array([4, 6]))  # the newest row goes (6 held nothing): rows 0..3 stay in order
    assert in_order.sample(30)[0].tolist() == np.random.default_rng(5).integers(4, size=30).tolist()
    in_order.clear(np.array([1]))  # row 3 moves into row 1's place: draws now go through the list
    assert sorted(set(in_order.sample(300)[0].tolist())) == [0, 2, 3] and len(in_order) == 3
    with pytest.raises(ValueError, match=r"^a sampler needs capacity >= 1, got 0$"):
        UniformSampler(capacity=0)


def test_prioritized_sampler_counts_clears_and_reports_its_weights() -> None:
    sampler = PrioritizedSampler(capacity=6, alpha=1.0, seed=0)
    sampler.add(np.arange(4))
    sampler.update(np.array([0, 2]), np.array([3.0, -5.0]))
    sampler.clear(np.array([1, 5]))  # row 5 never held anything
    assert len(sampler) == 3
    sampler.add(4)  # a new row gets the largest priority seen so far; row 3 came in when that was 1
    np.testing.assert_allclose(sampler.weights(), [3 + 1e-6, 0, 5 + 1e-6, 1, 5 + 1e-6, 0])
    assert sampler.nbytes == sampler.tree.nbytes
