"""Replay round-trips with value-tagged data: step i stores obs i, reward i, next_obs i+1."""

from __future__ import annotations

import functools
from collections.abc import Container
from pathlib import Path

import numpy as np
import pytest
import torch

from rlkit.checkpoint import load_arrays, save_arrays
from rlkit.errors import RlkitError
from rlkit.replay import buffer as replay
from rlkit.replay.buffer import ReplayBuffer
from rlkit.replay.prioritized import PrioritizedSampler
from rlkit.replay.rings import StepRings, n_step_return, n_step_window
from rlkit.replay.samplers import UniformSampler


def fill(buffer: ReplayBuffer, steps: range, *, terminated: Container[int] = (),
        truncated: Container[int] = ()) -> None:
    for i in steps:
        buffer.add(np.array([i], np.float32), i % 3, float(i), np.array([i + 1], np.float32), i in terminated,
            i in truncated)


def by_obs(buffer: ReplayBuffer, batch_size: int = 2000) -> dict[int, tuple[float, float, int, int]]:
    """Sample a lot and index rows by their obs tag: {obs: (reward, discount, next_obs, action)}."""
    b = buffer.sample(batch_size)
    rows = zip(b.obs[:, 0].tolist(), b.rewards.tolist(), b.discounts.tolist(), b.next_obs[:, 0].tolist(),
        b.actions.tolist(), strict=True)
    return {int(o): (r, d, int(n), a) for o, r, d, n, a in rows}


def test_one_step_round_trip_across_wrap_around() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=5, gamma=0.9), obs_shape=(1,), obs_dtype=np.float32)
    fill(buffer, range(8), terminated={6}, truncated={4})
    assert len(buffer) == 5
    rows = by_obs(buffer)
    assert sorted(rows) == [3, 4, 5, 6, 7]  # 0..2 were overwritten
    for i, (reward, discount, next_obs, action) in rows.items():
        assert (reward, next_obs, action) == (i, i + 1, i % 3)
        # termination stops bootstrapping, truncation (step 4) does not
        assert discount == pytest.approx(0.0 if i == 6 else 0.9)


def test_sample_returns_tensors_with_stored_dtypes() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=4), obs_shape=(2, 3, 3), obs_dtype=np.uint8)
    for i in range(3):
        buffer.add(np.full((2, 3, 3), i, np.uint8), i, 0.0, np.full((2, 3, 3), i + 1, np.uint8), False, False)
    batch = buffer.sample(16)
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (16, 2, 3, 3)
    assert batch.actions.dtype == torch.int64 and batch.rewards.dtype == torch.float32
    assert torch.equal(batch.obs[:, 0, 0, 0], batch.actions.to(torch.uint8))  # obs i was stored with action i
    assert torch.equal(batch.next_obs.long(), batch.obs.long() + 1)
    assert batch.weights is None and batch.indices is None


def test_n_step_windows_stop_at_episode_ends_and_the_newest_step() -> None:
    # Episodes: 0 1 2 (2 terminated) | 3 4 5 (5 truncated) | 6 7 (7 is the newest step stored).
    buffer = ReplayBuffer(rings=StepRings(capacity=10, n_step=3, gamma=0.5), obs_shape=(1,), obs_dtype=np.float32)
    fill(buffer, range(8), terminated={2}, truncated={5})
    expected = {  # obs: (n-step return, discount, next_obs to bootstrap from)
        0: (0 + 0.5 * 1 + 0.25 * 2, 0.0, 3),
        1: (1 + 0.5 * 2, 0.0, 3),
        2: (2, 0.0, 3),
        3: (3 + 0.5 * 4 + 0.25 * 5, 0.125, 6),
        4: (4 + 0.5 * 5, 0.25, 6),
        5: (5, 0.5, 6),
        6: (6 + 0.5 * 7, 0.25, 8),
        7: (7, 0.5, 8),
    }
    rows = by_obs(buffer)
    assert sorted(rows) == sorted(expected)
    for i, (ret, discount, next_obs) in expected.items():
        assert rows[i][:3] == (pytest.approx(ret), pytest.approx(discount), next_obs), i


def test_n_step_windows_across_wrap_around() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=4, n_step=3, gamma=0.5), obs_shape=(1,), obs_dtype=np.float32)
    fill(buffer, range(6))  # physical rows now hold 4 5 2 3
    expected = {2: (2 + 1.5 + 1, 0.125, 5), 3: (3 + 2 + 1.25, 0.125, 6), 4: (4 + 2.5, 0.25, 6), 5: (5, 0.5, 6)}
    rows = by_obs(buffer)
    assert {i: rows[i][:3] for i in rows} == {i: (pytest.approx(r), pytest.approx(d), n) for i, (r, d,
        n) in expected.items()}


def test_env_streams_never_mix_and_skipped_rows_leave_no_gap() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=8, num_envs=2, n_step=2, gamma=0.5), obs_shape=(1,),
        obs_dtype=np.float32)

    def step(i: int, env_ids: list[int]) -> None:
        obs = np.array([[100 + i], [200 + i]], np.float32)[env_ids]
        rewards = np.array([1.0, 10.0])[env_ids]
        no = np.zeros(len(env_ids), bool)
        buffer.add(obs, np.zeros(len(env_ids), np.int64), rewards, obs + 1, no, no, env_ids=np.array(env_ids))

    step(0, [0, 1])
    step(1, [0])  # copy 1's autoreset step is left out
    step(2, [0, 1])
    assert len(buffer) == 5
    rows = by_obs(buffer)
    assert {i: rows[i][:3] for i in rows} == {
        100: (1.5, 0.25, 102), 101: (1.5, 0.25, 103), 102: (1.0, 0.5, 103),
        200: (15.0, 0.25, 203), 202: (10.0, 0.5, 203),
    }


def test_batched_add_for_all_envs_in_order() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=4, num_envs=2), obs_shape=(), obs_dtype=np.int64)
    terminated, truncated = np.array([True, False]), np.zeros(2, bool)
    buffer.add(np.array([7, 9]), np.array([0, 1]), np.array([0.5, 1.5]), np.array([8, 10]), terminated, truncated)
    batch = buffer.sample(200)
    discounts = [round(d, 6) for d in batch.discounts.tolist()]
    pairs = set(zip(batch.obs.tolist(), batch.actions.tolist(), batch.rewards.tolist(), discounts, strict=True))
    assert pairs == {(7, 0, 0.5, 0.0), (9, 1, 1.5, 0.99)}


def test_n_step_return_on_hand_computed_numbers() -> None:
    rewards = np.array([[1.0, 2.0, 3.0]] * 3)
    terminated = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], bool)
    stops = terminated | np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]], bool)  # row 2: truncated at its first step
    returns, discounts, last = n_step_return(rewards, terminated, stops, gamma=0.5)
    assert returns.tolist() == [1 + 1 + 0.75, 1 + 1, 1]
    assert discounts.tolist() == [0.125, 0.0, 0.5]
    assert last.tolist() == [2, 1, 0]


def test_a_buffer_that_cannot_fit_is_refused_and_one_near_the_limit_is_a_visible_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    row = ReplayBuffer.bytes_per_row((4,), np.float32)
    assert row == 2 * 16 + 8 + 4 + 2 + 8  # obs, next obs, action, reward, two flags, the sampler's row
    monkeypatch.setattr(replay, "available_memory_bytes", lambda: 2**30)
    with pytest.raises(RlkitError,
            match=r"^agent.buffer_size=100000000 needs 5.0 GiB of replay memory, more than the 1.0 GiB"):
        ReplayBuffer(rings=StepRings(capacity=100_000_000), obs_shape=(4,), obs_dtype=np.float32)
    ReplayBuffer(rings=StepRings(capacity=1000), obs_shape=(4,), obs_dtype=np.float32)  # 46 kB of 1 GiB: silent
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(replay, "available_memory_bytes", lambda: 1000 * row * 3 // 2)
    for _ in range(2):
        ReplayBuffer(rings=StepRings(capacity=1000), obs_shape=(4,), obs_dtype=np.float32)
    warning = capsys.readouterr().err  # a printed line, once, not a ResourceWarning Python hides
    assert warning.startswith("warning: agent.buffer_size=1000 will take 0.0 GiB, 67% of the") and (
        warning.count("\n") == 1)


def test_size_accounting_and_errors() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=10), obs_shape=(4,), obs_dtype=np.float32)
    assert buffer.nbytes == 2 * 10 * 16 + 10 * 8 + 10 * 4 + 10 + 10 + 10 * 8 == 10 * ReplayBuffer.bytes_per_row((4,),
        np.float32)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)
    with pytest.raises(ValueError, match="num_envs"):
        ReplayBuffer(rings=StepRings(capacity=1, num_envs=2), obs_shape=(4,), obs_dtype=np.float32)


def test_available_memory_is_read_on_linux() -> None:
    available = replay.available_memory_bytes()
    assert available is not None and available > 2**20


def test_n_step_window_on_hand_computed_rings() -> None:
    # Two rings of 4 rows. Env 0 has wrapped: its stream runs positions 2, 3, 0, 1 (1 is the newest step) and
    # step 0 terminated. Env 1 stored positions 0, 1, 2 (row 7 is empty) and step 1 (row 5) was truncated.
    rewards = np.array([1, 2, 3, 4, 10, 20, 30, 0], np.float32)
    terminated = np.array([1, 0, 0, 0, 0, 0, 0, 0], bool)
    truncated = np.array([0, 0, 0, 0, 0, 1, 0, 0], bool)
    end_E = np.array([2 + 4, 3])  # just after each newest step; a whole lap off changes nothing
    window = functools.partial(n_step_window, end_E=end_E, rows_per_env=4, gamma=0.5, rewards=rewards,
                               terminated=terminated, truncated=truncated)
    returns, discounts, last = window(np.array([2, 3, 0, 1, 4, 5, 6]), n_step=3)
    assert returns.tolist() == [3 + 0.5 * 4 + 0.25 * 1, 4 + 0.5 * 1, 1, 2, 10 + 0.5 * 20, 20, 30]
    # Termination ends bootstrapping (0); truncation and the newest step still bootstrap: gamma ** length.
    assert discounts.tolist() == [0.0, 0.0, 0.0, 0.5, 0.25, 0.5, 0.5]
    assert last.tolist() == [0, 0, 0, 1, 5, 5, 6]  # row 2's window wraps round: 2, 3, then 0
    returns, discounts, last = window(np.array([2, 0, 5]), n_step=1)
    assert (returns.tolist(), discounts.tolist(), last.tolist()) == ([3, 1, 20], [0.5, 0.0, 0.5], [2, 0, 5])
    assert returns.dtype == discounts.dtype == np.float32


def test_ring_sizes_round_up_and_refuse_what_cannot_hold_a_step() -> None:
    rings = StepRings(capacity=10, num_envs=3)
    assert (rings.rows_per_env, rings.rows) == (4, 12)
    with pytest.raises(ValueError, match=r"^capacity=2 must hold at least one step per env copy \(num_envs=3\)$"):
        StepRings(capacity=2, num_envs=3)
    with pytest.raises(ValueError, match=r"^n_step must be >= 1, got 0$"):
        StepRings(capacity=10, n_step=0)


def test_uniform_sampling_is_the_sampler_and_draws_what_the_old_uniform_path_drew() -> None:
    buffer = ReplayBuffer(rings=StepRings(capacity=50), obs_shape=(1,), obs_dtype=np.float32, seed=7)
    assert isinstance(buffer.sampler, UniformSampler)
    assert isinstance(ReplayBuffer(rings=StepRings(capacity=5), obs_shape=(1,), obs_dtype=np.float32,
        sampler=None).sampler, UniformSampler)
    fill(buffer, range(30))
    # One env copy that never clears a row: the rows drawn are rng.integers(stored), as before samplers were
    # always built.
    assert buffer.sample(40).obs[:, 0].long().tolist() == np.random.default_rng(7).integers(30, size=40).tolist()


OLD_UNIFORM_FILE = {  # what a uniform ReplayBuffer saved before it had a sampler: no sampler_weights
    "obs": np.array([[3], [1], [2], [10], [11], [0]], np.float32),  # env 0 wrapped: step 3 overwrote step 0
    "next_obs": np.array([[4], [2], [3], [11], [12], [0]], np.float32),
    "actions": np.array([0, 1, 2, 0, 1, 0], np.int64),
    "rewards": np.array([3, 1, 2, 10, 11, 0], np.float32),
    "terminated": np.array([0, 0, 1, 0, 0, 0], bool),
    "truncated": np.zeros(6, bool),
    "pos": np.array([1, 2], np.int64),
    "size": np.array([3, 2], np.int64),
}


def test_a_uniform_replay_saved_before_samplers_loads_with_exactly_its_stored_rows(tmp_path: Path) -> None:
    path = save_arrays(tmp_path / "replay.npz", OLD_UNIFORM_FILE)
    buffer = ReplayBuffer(rings=StepRings(capacity=6, num_envs=2, n_step=2, gamma=0.5), obs_shape=(1,),
        obs_dtype=np.float32)
    buffer.load_state_dict(load_arrays(path), n_actions=3)
    restored = buffer.state_dict()
    assert sorted(restored) == sorted([*OLD_UNIFORM_FILE, "sampler_weights"])
    for name, array in OLD_UNIFORM_FILE.items():
        assert restored[name].dtype == array.dtype and restored[name].tolist() == array.tolist(), name
    assert restored["sampler_weights"].tolist() == [1, 1, 1, 1, 1, 0] and len(buffer) == 5
    rows = by_obs(buffer)  # env 0's stream: steps 1, 2 (terminated), 3 (newest); env 1's: 10, 11
    assert {i: rows[i][:3] for i in rows} == {
        1: (2.0, 0.0, 3), 2: (2.0, 0.0, 3), 3: (3.0, 0.5, 4), 10: (15.5, 0.25, 12), 11: (11.0, 0.5, 12),
    }
    # A file written now carries the weights and restores the same buffer, byte for byte.
    again = ReplayBuffer(rings=StepRings(capacity=6, num_envs=2, n_step=2, gamma=0.5), obs_shape=(1,),
        obs_dtype=np.float32)
    again.load_state_dict(load_arrays(save_arrays(tmp_path / "again.npz", restored)), n_actions=3)
    for name, array in again.state_dict().items():
        assert array.tobytes() == restored[name].tobytes(), name


def test_a_prioritized_replay_restores_its_priorities_exactly() -> None:
    make = functools.partial(ReplayBuffer, rings=StepRings(capacity=8), obs_shape=(1,), obs_dtype=np.float32,
                             sampler=functools.partial(PrioritizedSampler, alpha=0.5))
    buffer = make()
    fill(buffer, range(6))
    buffer.update_priorities(np.array([1, 4]), np.array([9.0, 0.0]))
    saved = buffer.state_dict()
    assert saved["sampler_weights"].tolist() == pytest.approx([1, 3.0000002, 1, 1, 0.001, 1, 0, 0])
    restored = make()
    restored.load_state_dict({k: v.copy() for k, v in saved.items()}, n_actions=3)
    assert restored.state_dict()["sampler_weights"].tobytes() == saved["sampler_weights"].tobytes()
    with pytest.raises(ValueError, match=r"saved replay sampler_weights holds values outside \[0, "):
        make().load_state_dict({**saved, "sampler_weights": -saved["sampler_weights"]}, n_actions=3)
