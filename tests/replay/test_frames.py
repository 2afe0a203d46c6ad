"""Frame replay against a naive buffer of full stacks, on a value-tagged fake Atari stream (frame i filled with i)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from rlkit.replay.frames import FrameReplayBuffer, HostStaging
from rlkit.replay.prioritized import PrioritizedSampler
from rlkit.replay.rings import StepRings
from rlkit.replay.samplers import UniformSampler

STACK = 4
FRAME = (2, 3)


@dataclass
class FakeAtari:
    """One env copy: every new frame is filled with the next number (1, 2, ...) in pixel [0, 0] and the env's
    tag in pixel [0, 1]; observations are zero-padded stacks, as FrameStackObservation(padding_type="zero")."""

    env_id: int
    episode_lengths: list[int]
    truncate_every: int = 0  # every this-many-th episode ends truncated instead of terminated
    frames: int = 0
    episode: int = 0
    t: int = 0
    stack: list[np.ndarray] = field(default_factory=list)

    def frame(self) -> np.ndarray:
        self.frames += 1
        assert self.frames < 256, "tags must fit a uint8"
        f = np.zeros(FRAME, np.uint8)
        f[0, 0], f[0, 1] = self.frames, 100 + self.env_id
        return f

    def reset(self) -> np.ndarray:
        self.t = 0
        self.stack = [np.zeros(FRAME, np.uint8)] * (STACK - 1) + [self.frame()]
        return np.stack(self.stack)

    def step(self) -> tuple[int, float, np.ndarray, bool, bool]:
        action, reward = self.frames % 5, float(self.frames)
        self.stack = self.stack[1:] + [self.frame()]
        self.t += 1
        ended = self.t >= self.episode_lengths[self.episode % len(self.episode_lengths)]
        truncated = ended and self.truncate_every > 0 and (self.episode + 1) % self.truncate_every == 0
        if ended:
            self.episode += 1
        return action, reward, np.stack(self.stack), ended and not truncated, truncated


class NaiveReplay:
    """Every transition with its full obs and next obs stacks; n-step returns by walking forward."""

    def __init__(self, *, n_step: int, gamma: float) -> None:
        self.n_step, self.gamma = n_step, gamma
        self.streams: dict[int, list[tuple]] = {}

    def add(self, env_id: int, obs, action, reward, next_obs, terminated, truncated) -> None:
        self.streams.setdefault(env_id, []).append((obs.copy(), action, reward, next_obs.copy(), terminated, truncated))

    def lookup(self, env_id: int, newest_tag: int) -> tuple[np.ndarray, int, float, np.ndarray, float]:
        """(obs, action, n-step reward, next obs, discount) of the transition whose obs ends in frame `newest_tag`."""
        stream = self.streams[env_id]
        (j,) = [i for i, tr in enumerate(stream) if tr[0][-1, 0, 0] == newest_tag]
        total, k = 0.0, 0
        while True:
            _, _, reward, next_obs, terminated, truncated = stream[j + k]
            total += self.gamma**k * reward
            if terminated or truncated or k + 1 == self.n_step or j + k + 1 == len(stream):
                break
            k += 1
        discount = 0.0 if terminated else self.gamma ** (k + 1)
        return stream[j][0], stream[j][1], total, next_obs, discount


def feed(buffer: FrameReplayBuffer, naive: NaiveReplay, envs: list[FakeAtari], steps: int, *,
        autoreset: bool = False) -> None:
    """Step every env copy `steps` times. With autoreset, a copy whose episode ended spends its next step on
    gymnasium's next-step reset (final obs -> first obs); like the agent, we leave those rows out."""
    obs = [env.reset() for env in envs]
    resetting = [False] * len(envs)
    for _ in range(steps):
        rows, ids = [], []
        for e, env in enumerate(envs):
            if resetting[e]:
                obs[e], resetting[e] = env.reset(), False
                rows.append(None)
                continue
            action, reward, next_obs, terminated, truncated = env.step()
            rows.append((obs[e], action, reward, next_obs, terminated, truncated))
            ids.append(e)
            if terminated or truncated:
                obs[e], resetting[e] = (next_obs, True) if autoreset else (env.reset(), False)
            else:
                obs[e] = next_obs
        for e in ids:
            naive.add(e, *rows[e])
        if len(envs) == 1:
            buffer.add(*rows[0])
        elif ids:
            buffer.add(*(np.stack([rows[e][i] for e in ids]) for i in range(6)), env_ids=np.array(ids))


def sampleable_rows(buffer: FrameReplayBuffer) -> np.ndarray:
    return np.flatnonzero(buffer.sampler.weights() > 0)


def assert_matches_naive(buffer: FrameReplayBuffer, naive: NaiveReplay) -> int:
    rows = sampleable_rows(buffer)
    batch = buffer.transitions(rows)
    for b, row in enumerate(rows):
        env_id = int(row) // buffer.rows_per_env
        obs, action, reward, next_obs, discount = naive.lookup(env_id, int(batch.obs[b, -1, 0, 0]))
        np.testing.assert_array_equal(batch.obs[b].numpy(), obs, err_msg=f"obs of row {row}")
        np.testing.assert_array_equal(batch.next_obs[b].numpy(), next_obs, err_msg=f"next obs of row {row}")
        assert int(batch.actions[b]) == action
        assert float(batch.rewards[b]) == pytest.approx(reward, rel=1e-6)
        assert float(batch.discounts[b]) == pytest.approx(discount, rel=1e-6)
    return len(rows)


def test_a_stack_crossing_an_episode_start_has_zero_frames_before_it() -> None:
    buffer = FrameReplayBuffer(rings=StepRings(capacity=16, gamma=0.5), obs_shape=(STACK, *FRAME))
    naive = NaiveReplay(n_step=1, gamma=0.5)
    feed(buffer, naive, [FakeAtari(0, episode_lengths=[3])], steps=5)
    # Episode 1: frames 1, 2, 3, 4 (4 final); episode 2 starts at frame 5 and has stepped to 6, 7.
    batch = buffer.transitions(sampleable_rows(buffer))
    by_newest = {int(o[-1, 0, 0]): (o[:, 0, 0].tolist(), n[:, 0, 0].tolist(), float(d)) for o, n, d in zip(batch.obs,
        batch.next_obs, batch.discounts, strict=True)}
    assert by_newest == {
        1: ([0, 0, 0, 1], [0, 0, 1, 2], 0.5),
        2: ([0, 0, 1, 2], [0, 1, 2, 3], 0.5),
        3: ([0, 1, 2, 3], [1, 2, 3, 4], 0.0),  # terminated: the final frame 4 has a row of its own
        5: ([0, 0, 0, 5], [0, 0, 5, 6], 0.5),
        6: ([0, 0, 5, 6], [0, 5, 6, 7], 0.5),
    }


@pytest.mark.parametrize("n_step", [1, 3])
def test_single_env_matches_naive_across_episode_starts_wrap_around_and_n_step(n_step: int) -> None:
    buffer = FrameReplayBuffer(rings=StepRings(capacity=23, n_step=n_step, gamma=0.9), obs_shape=(STACK, *FRAME))
    naive = NaiveReplay(n_step=n_step, gamma=0.9)
    feed(buffer, naive, [FakeAtari(0, episode_lengths=[7, 2, 11, 1, 5], truncate_every=3)], steps=120)
    count = assert_matches_naive(buffer, naive)
    # All rows but: the next row, the stack-1 oldest ones, and the final frames of episodes still in the ring.
    assert 23 - 1 - (STACK - 1) - 6 <= count <= 23 - 1 - (STACK - 1)
    assert len(buffer) == count


def test_vector_envs_with_dropped_rows_match_naive() -> None:
    envs = [FakeAtari(e, episode_lengths=[4 + e, 9, 2]) for e in range(3)]
    buffer = FrameReplayBuffer(rings=StepRings(capacity=3 * 17, num_envs=3, n_step=2, gamma=0.8), obs_shape=(STACK,
        *FRAME))
    naive = NaiveReplay(n_step=2, gamma=0.8)
    feed(buffer, naive, envs, steps=60)
    assert assert_matches_naive(buffer, naive) >= 3 * (17 - STACK - 4)
    assert {int(r) // 17 for r in sampleable_rows(buffer)} == {0, 1, 2}


def test_env_copies_left_out_on_their_autoreset_steps_keep_their_own_streams() -> None:
    envs = [FakeAtari(0, episode_lengths=[2, 3]), FakeAtari(1, episode_lengths=[6])]
    buffer = FrameReplayBuffer(rings=StepRings(capacity=2 * 40, num_envs=2, n_step=3, gamma=0.7), obs_shape=(STACK,
        *FRAME))
    naive = NaiveReplay(n_step=3, gamma=0.7)
    feed(buffer, naive, envs, steps=25, autoreset=True)
    assert len(naive.streams[0]) != len(naive.streams[1])  # the copies really did skip different steps
    assert assert_matches_naive(buffer, naive) == len(naive.streams[0]) + len(naive.streams[1])


def test_sample_draws_only_stored_transitions_with_weights_from_a_prioritized_sampler() -> None:
    buffer = FrameReplayBuffer(rings=StepRings(capacity=30, n_step=3, gamma=0.9), obs_shape=(STACK, *FRAME),
        sampler=functools.partial(PrioritizedSampler, alpha=0.6))
    naive = NaiveReplay(n_step=3, gamma=0.9)
    feed(buffer, naive, [FakeAtari(0, episode_lengths=[6, 13])], steps=70)
    batch = buffer.sample(64, beta=0.4)
    assert batch.weights is not None and batch.weights.shape == (64,) and float(batch.weights.max()) == 1.0
    assert set(batch.indices.tolist()) <= set(sampleable_rows(buffer).tolist())
    buffer.update_priorities(batch.indices[:1], np.array([50.0]))
    assert buffer.sampler.tree.values(batch.indices[:1])[0] == pytest.approx((50.0 + 1e-6) ** 0.6)


def test_batch_dtypes_shapes_and_memory() -> None:
    buffer = FrameReplayBuffer(rings=StepRings(capacity=1000, n_step=1), obs_shape=(4, 84, 84))
    obs = np.zeros((4, 84, 84), np.uint8)
    buffer.add(obs, 1, 1.0, obs + 1, False, False)
    batch = buffer.sample(8)
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (8, 4, 84, 84) and batch.next_obs.shape == (8, 4, 84,
        84)
    assert batch.actions.dtype == torch.int64 and batch.rewards.dtype == torch.float32 and batch.weights is None
    assert batch.next_obs[:, -1].eq(1).all() and batch.next_obs[:, :-1].eq(0).all()
    # One 84x84 frame plus 15 bytes of flags per row, and the uniform sampler's row list and places (int32 each).
    assert isinstance(buffer.sampler, UniformSampler) and buffer.sampler.nbytes == 1000 * 8
    assert buffer.nbytes == 1000 * (84 * 84 + 8 + 4 + 1 + 1 + 1 + 8) == 1000 * buffer.bytes_per_row((4, 84, 84),
        np.uint8)
    assert isinstance(FrameReplayBuffer(rings=StepRings(capacity=10), obs_shape=(2, 1), sampler=None).sampler,
        UniformSampler)


def test_reset_padding_that_is_not_zero_is_refused() -> None:
    buffer = FrameReplayBuffer(rings=StepRings(capacity=10), obs_shape=(STACK, *FRAME))
    repeated = np.ones((STACK, *FRAME), np.uint8)  # FrameStackObservation's default padding repeats the first frame
    with pytest.raises(ValueError, match="padding_type='zero'"):
        buffer.add(repeated, 0, 0.0, repeated, False, False)


def test_the_packed_transfer_used_on_cuda_carries_the_same_batch() -> None:
    # CUDA batches travel as one pinned buffer: frames, then float32 scalars at an 8-byte aligned offset.
    # Packing without pinning runs the same code on CPU (3x5 frames: 15 bytes each, so the offset needs padding).
    buffer = FrameReplayBuffer(rings=StepRings(capacity=30, n_step=2, gamma=0.9), obs_shape=(STACK, 3, 5),
        sampler=functools.partial(PrioritizedSampler))
    obs = np.zeros((STACK, 3, 5), np.uint8)
    for i in range(1, 20):
        next_obs = np.concatenate([obs[1:], np.full((1, 3, 5), i, np.uint8)])
        buffer.add(obs, i % 4, float(i), next_obs, i % 7 == 0, False)
        obs = np.zeros_like(obs) if i % 7 == 0 else next_obs
    rows, weights = buffer.sampler.sample(6, beta=0.5)
    plain = buffer.transitions(rows, weights)
    buffer._staging = HostStaging(torch.device("cpu"), packed=True)
    packed = buffer.transitions(rows, weights)
    for name in ("obs", "actions", "rewards", "next_obs", "discounts", "weights"):
        assert torch.equal(getattr(plain, name), getattr(packed, name)), name
    assert packed.actions.dtype == torch.int64 and packed.obs.dtype == torch.uint8


def test_saved_arrays_restore_the_buffer_and_its_priorities() -> None:
    make = functools.partial(FrameReplayBuffer, rings=StepRings(capacity=25, n_step=2, gamma=0.9), obs_shape=(STACK,
        *FRAME),
                             sampler=functools.partial(PrioritizedSampler, alpha=0.5))
    buffer, naive = make(), NaiveReplay(n_step=2, gamma=0.9)
    feed(buffer, naive, [FakeAtari(0, episode_lengths=[6, 9])], steps=40)
    buffer.update_priorities(sampleable_rows(buffer)[:3], np.array([4.0, 9.0, 16.0]))
    restored = make()
    restored.load_state_dict({k: v.copy() for k, v in buffer.state_dict().items()}, n_actions=5)  # FakeAtari acts 0..4
    np.testing.assert_array_equal(sampleable_rows(restored), sampleable_rows(buffer))
    assert restored.sampler.weights().tobytes() == buffer.sampler.weights().tobytes()
    assert restored.sampler.max_priority == pytest.approx(16.0 + 1e-6)
    assert_matches_naive(restored, naive)
    # The next add goes where it would have.
    assert restored.state_dict()["head"].tolist() == buffer.state_dict()["head"].tolist()
    with pytest.raises(ValueError, match="saved replay frames is uint8"):
        FrameReplayBuffer(rings=StepRings(capacity=26), obs_shape=(STACK, *FRAME)).load_state_dict(buffer.state_dict(),
            n_actions=5)
    with pytest.raises(ValueError, match=r"saved replay actions holds values outside \[0, 3\]"):
        make().load_state_dict(buffer.state_dict(), n_actions=4)  # a file naming actions this env does not have
    with pytest.raises(ValueError, match=r"saved replay head holds values outside"):
        make().load_state_dict({**buffer.state_dict(), "head": -buffer.state_dict()["head"] - 1}, n_actions=5)
