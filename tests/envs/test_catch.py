"""The Atari image path, end to end on Catch (tests/catch.py): 84x84 frames, FrameStackObservation, frame replay,
/255 scaling and CNNBody, with the agent built from the config as rlkit.train builds it and rlkit's own loop."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from catch import make_catch, random_return
from conftest import compose_train

from rlkit import tb
from rlkit.agents import Agent, Transition
from rlkit.agents.dqn import DQNAgent
from rlkit.config.registry import build_agent
from rlkit.config.settings import plain_config
from rlkit.envs.builders import single_spaces
from rlkit.loop import TrainPlan, evaluate, train
from rlkit.nets import CNNBody, Scale
from rlkit.replay.frames import FrameReplayBuffer

# The Nature CNN's layer kinds at half the widths: ~4x cheaper updates on CPU, the same image path.
CATCH_NET = ("net=cnn", "net.channels=[16,32]", "net.kernel_sizes=[8,4]", "net.strides=[4,2]", "net.hidden=128")
CATCH_DQN = (
    "agent=dqn", "optim=adam", "optim.lr=5e-4", "replay=frames", "agent.buffer_size=10000", "agent.batch_size=32",
    "agent.learning_starts_steps=500", "agent.train_every_steps=2", "agent.target_update_every_steps=250",
    "agent.epsilon_decay_steps=2000", "agent.epsilon_end=0.05",
)
RANDOM_RETURN = -0.71  # tests/catch.py: random_return() over 20,000 episodes


def catch_agent(env: gym.Env | gym.vector.VectorEnv, *overrides: str, total_steps: int) -> Agent:
    """The DQN agent `python -m rlkit.train` would build from these overrides, for Catch's spaces."""
    cfg = compose_train(*CATCH_NET, *CATCH_DQN, f"total_steps={total_steps}", *overrides)
    observation_space, action_space = single_spaces(env)
    return build_agent(
        plain_config(cfg), observation_space=observation_space, action_space=action_space, device=torch.device("cpu"),
            seed=0,
        num_envs=getattr(env, "num_envs", 1),
    )


class Recorder:
    """Passes everything to the agent, keeping each copy's real transitions (a vector autoreset step is not one)."""

    def __init__(self, agent: DQNAgent) -> None:
        self.agent = agent
        self.kept: Counter = Counter()
        self.dropped = 0

    def act(self, obs: Any, *, explore: bool) -> Any:
        return self.agent.act(obs, explore=explore)

    def observe(self, t: Transition) -> Mapping[str, float]:
        for i in range(len(t.obs)):
            if t.valid[i]:
                # As the replay stores it.
                discount = 0.0 if t.terminated[i] else float(np.float32(self.agent.replay.rings.gamma))
                self.kept[i, t.obs[i].tobytes(), int(t.action[i]), float(t.reward[i]), t.next_obs[i].tobytes(),
                    discount] += 1
            else:
                self.dropped += 1
        return self.agent.observe(t)

    def state_dict(self) -> dict[str, Any]:
        return self.agent.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.agent.load_state_dict(state)


def test_catch_frames_and_the_random_baseline() -> None:
    env = make_catch()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84,
        84) and obs.dtype == np.uint8 and not obs[:3].any()  # zero padding before the first frame
    assert sorted(np.unique(obs[3]).tolist()) == [0, 128, 255]  # background, paddle, ball
    assert random_return(episodes=2000) == pytest.approx(RANDOM_RETURN, abs=0.06)


def test_catch_stacks_come_back_from_the_frame_replay_exactly_per_copy() -> None:
    envs = gym.vector.SyncVectorEnv([make_catch] * 3)
    agent = catch_agent(envs, "agent.learning_starts_steps=100000", "agent.buffer_size=600", total_steps=270)
    assert isinstance(agent, DQNAgent) and isinstance(agent.q_net.inputs, Scale) and agent.q_net.inputs.divisor == 255.0
    assert isinstance(agent.q_net.body, CNNBody)
    recorder = Recorder(agent)
    train(env=envs, agent=recorder, plan=TrainPlan(total_steps=270, seed=3, progress=False), logger=tb.Logger(None))

    replay = agent.replay
    assert isinstance(replay, FrameReplayBuffer) and replay.num_envs == 3
    assert recorder.dropped > 0  # episodes of 4 to 6 steps put the copies' autoreset steps at different times
    rows = np.flatnonzero(replay.sampler.weights() > 0)
    batch = replay.transitions(rows)
    stored = Counter(
        (int(row // replay.rows_per_env), obs.tobytes(), int(action), float(reward), next_obs.tobytes(),
            float(discount))
        for row, obs, action, reward, next_obs, discount in zip(
            rows, batch.obs.numpy(), batch.actions.numpy(), batch.rewards.numpy(), batch.next_obs.numpy(),
                batch.discounts.numpy(), strict=True
        )
    )
    assert sum(stored.values()) == sum(recorder.kept.values()) == 270 - recorder.dropped
    assert stored == recorder.kept  # the same obs and next obs stacks, byte for byte, in the right copy


def learn_catch(*overrides: str, copies: int = 1, total_steps: int = 4000) -> tuple[float, float]:
    """(greedy mean return over 100 episodes, wall seconds) after training DQN on Catch, on `copies` async copies
    if > 1."""
    env = make_catch() if copies == 1 else gym.vector.AsyncVectorEnv([make_catch] * copies)
    agent = catch_agent(env, *overrides, total_steps=total_steps)
    started = time.perf_counter()
    train(env=env, agent=agent, plan=TrainPlan(total_steps=total_steps, seed=0, progress=False), logger=tb.Logger(None))
    env.close()
    result = evaluate(make_catch(), agent.policy(), episodes=100, seed=10_000)
    return result.mean, time.perf_counter() - started


@pytest.mark.slow
def test_dqn_learns_catch_from_pixels() -> None:
    """4,000 env steps (~40 s of CPU): greedy return >= 0.5, where random play scores -0.71."""
    mean, seconds = learn_catch()
    assert mean >= 0.5, f"greedy return {mean:.2f} after {seconds:.0f} s (random play: {RANDOM_RETURN})"


@pytest.mark.slow
def test_prioritized_three_step_dqn_learns_catch_from_pixels() -> None:
    """The same with agent/sampler=prioritized agent.n_step=3: greedy return >= 0.5, where random play scores -0.71."""
    mean, seconds = learn_catch("agent/sampler=prioritized", "agent.n_step=3")
    assert mean >= 0.5, f"greedy return {mean:.2f} after {seconds:.0f} s (random play: {RANDOM_RETURN})"


@pytest.mark.slow
def test_dqn_learns_catch_on_eight_async_copies() -> None:
    """4,000 env steps over 8 async copies (steps count every copy): greedy return >= 0.5, random play -0.71."""
    mean, seconds = learn_catch(copies=8)
    assert mean >= 0.5, f"greedy return {mean:.2f} after {seconds:.0f} s (random play: {RANDOM_RETURN})"
