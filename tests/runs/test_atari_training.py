"""Atari presets compose as documented; DQN stores frame stacks once and learns with prioritized replay;
a short Pong run writes a checkpoint that play records to video."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import build_dqn_for, run_cli
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rlkit import tb
from rlkit.agents import Transition
from rlkit.agents.dqn import DQNAgent
from rlkit.checkpoint import load_checkpoint
from rlkit.cli.app import conf_dir
from rlkit.config.registry import build_agent
from rlkit.config.settings import plain_config
from rlkit.envs.builders import make_train_env
from rlkit.errors import RlkitError
from rlkit.loop import TrainPlan, train
from rlkit.nets import CNNBody, MLPBody
from rlkit.replay.buffer import ReplayBuffer
from rlkit.replay.frames import FrameReplayBuffer
from rlkit.replay.prioritized import PrioritizedSampler
from rlkit.replay.samplers import UniformSampler


@pytest.fixture(scope="module")
def config() -> Iterator:
    def _compose(*overrides: str) -> DictConfig:
        return compose("train", overrides=list(overrides), return_hydra_config=True)

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        yield _compose


def test_pong_is_the_nature_dqn_by_default(config) -> None:
    cfg = config("env=pong")
    choices = cfg.hydra.runtime.choices
    assert (choices.agent, choices.net, choices.preset, choices.optim, choices.tuned) == ("dqn", "cnn", "nature",
        "rmsprop", "pong_dqn")
    agent, optim = cfg.agent, cfg.optim
    assert (agent.buffer_size, agent.batch_size, agent.learning_starts_steps, agent.train_every_steps) == (1_000_000,
        32, 50_000, 4)
    assert agent.target_update_every_steps == 40_000 and (agent.epsilon_end, agent.epsilon_decay_steps) == (0.1,
        1_000_000)
    assert optim.type == "rmsprop" and optim.lr == 2.5e-4 and optim.alpha == 0.95
    assert cfg.replay.type == "frames" and cfg.net.head.type == "linear" and agent.sampler.type == "uniform"
    assert agent.double is False and cfg.total_steps == 5_000_000
    assert (cfg.env.frame_skip, cfg.env.screen_size, cfg.env.frame_stack) == (4, 84, 4)


def test_adam_and_rainbow_lite_presets(config) -> None:
    adam = config("env=pong", "preset=adam")
    assert adam.optim.type == "adam" and adam.optim.lr == 1e-4
    assert (adam.agent.epsilon_end, adam.agent.learning_starts_steps, adam.agent.target_update_every_steps) == (0.01,
        80_000, 1000)
    rainbow = config("env=breakout", "preset=rainbow_lite")
    assert rainbow.hydra.runtime.choices.tuned == "breakout_dqn"
    a = rainbow.agent
    assert (a.double, rainbow.net.head.type, a.n_step, a.sampler.type, a.sampler.alpha) == (True, "dueling", 3,
        "prioritized", 0.5)
    assert (a.sampler.beta_start, a.sampler.beta_steps, a.sampler.eps, rainbow.replay.type) == (0.4,
        rainbow.total_steps, 1e-6, "frames")
    assert rainbow.optim.lr == 6.25e-5 and rainbow.optim.eps == 1.5e-4


def test_any_game_and_the_command_line_beat_the_preset(config) -> None:
    cfg = config("env=atari", "env.game=SpaceInvaders", "agent/sampler=prioritized", "agent.batch_size=64")
    assert cfg.env.name == "atari-SpaceInvaders" and cfg.hydra.runtime.choices.tuned == "atari_dqn"
    assert cfg.agent.sampler.type == "prioritized" and cfg.agent.batch_size == 64 and (
        cfg.agent.sampler.beta_steps == cfg.total_steps)
    assert config("env=cartpole").replay.type == "transitions"  # only envs that stack frames pick replay=frames


def test_a_preset_on_a_tabular_agent_says_to_use_dqn(config) -> None:
    cfg = plain_config(config("env=pong", "agent=q_learning"))
    with pytest.raises(RlkitError,
            match=r"agent.batch_size, .* are not a setting of agent=q_learning; agent=dqn takes them"):
        build_agent(cfg, observation_space=gym.spaces.Discrete(4), action_space=gym.spaces.Discrete(4),
            device=torch.device("cpu"), seed=0)


class Frames(gym.Env):
    """8x8 frame stacks, zero-padded at resets; frame t of an episode is filled with t + 1; episodes of 7 steps."""

    observation_space = gym.spaces.Box(0, 255, (4, 8, 8), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.stack = 0, np.zeros((4, 8, 8), np.uint8)
        self.stack[-1] = 1
        return self.stack.copy(), {}

    def step(self, action):
        self.t += 1
        self.stack = np.concatenate([self.stack[1:], np.full((1, 8, 8), self.t + 1, np.uint8)])
        return self.stack.copy(), float(action == 1), self.t >= 7, False, {}


def frames_agent(**overrides) -> DQNAgent:
    env = Frames()
    small_cnn = functools.partial(CNNBody, channels=(4,), kernel_sizes=(3,), strides=(1,), hidden=16)
    settings = dict(
        net=small_cnn, optimizer=functools.partial(torch.optim.Adam, lr=1e-3), buffer_size=200, batch_size=16,
        learning_starts_steps=20, train_every_steps=1, target_update_every_steps=10, epsilon_decay_steps=50,
    )
    return build_dqn_for(env.observation_space, env.action_space, **(settings | overrides))


def run_steps(agent: DQNAgent, steps: int) -> None:
    env = Frames()
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated))
        obs = env.reset()[0] if terminated or truncated else next_obs


def test_dqn_with_dedup_frames_and_prioritized_replay_learns_and_updates_priorities() -> None:
    agent = frames_agent(replay="frames", sampler={"type": "prioritized", "alpha": 0.5, "beta_start": 0.4,
        "beta_steps": 100, "eps": 1e-6})
    before = [p.detach().clone() for p in agent.q_net.parameters()]
    run_steps(agent, 60)
    assert isinstance(agent.replay, FrameReplayBuffer) and isinstance(agent.replay.sampler, PrioritizedSampler)
    assert agent.replay.nbytes - agent.replay.sampler.nbytes == 200 * (8 * 8 + 15)  # one frame a row, not 2 stacks of 4
    assert agent.updates == 41 and any(
        not torch.equal(a, b) for a, b in zip(before, agent.q_net.parameters(), strict=True))
    weights = agent.replay.sampler.weights()
    rows = np.flatnonzero(weights > 0)
    priorities = weights[rows]
    assert len(np.unique(priorities)) > 10  # learning replaced the new-row priority by |TD error|-based ones
    batch = agent.replay.sample(8, beta=0.4)
    assert batch.obs.shape == (8, 4, 8, 8) and batch.weights is not None and float(batch.weights.max()) == 1.0


def test_plain_stacks_and_uniform_frames_are_the_other_choices() -> None:
    plain, uniform = frames_agent(sampler={"type": "prioritized", "alpha": 0.6, "beta_start": 0.4,
        "beta_steps": 1_000_000, "eps": 1e-6}), frames_agent(replay="frames")
    run_steps(plain, 25)
    run_steps(uniform, 25)
    assert isinstance(plain.replay, ReplayBuffer) and isinstance(plain.replay.sampler, PrioritizedSampler)
    assert isinstance(uniform.replay, FrameReplayBuffer) and isinstance(uniform.replay.sampler, UniformSampler)
    assert plain.replay.sample(4, beta=1.0).weights is not None and uniform.replay.sample(4).weights is None


def test_dedup_frames_on_flat_observations_is_a_clear_error() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(RlkitError,
            match=r"agent replay for observations \(4,\) cannot be built: frame replay needs observations shaped "
                r"\[stack, \*frame\]"):
        build_dqn_for(  # refused when the agent is built (the replay is one of its parts), not at its first step
            env.observation_space, env.action_space, replay="frames", net=functools.partial(MLPBody, hidden=(8,)),
                optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        )


def test_a_short_pong_run_writes_a_checkpoint_that_play_records(tmp_path: Path) -> None:
    """The whole Atari path once, as a user runs it: 26 Nature-CNN updates, a checkpoint, a video (about 7 s idle)."""
    run_dir = tmp_path / "run"
    proc = run_cli(
        "rlkit.train", "env=pong", "total_steps=1100", "agent.learning_starts_steps=1000", "agent.buffer_size=2000",
        "agent.epsilon_decay_steps=1000", "eval_every_steps=0", "final_eval_episodes=1", "env.max_episode_steps=100",
        "progress=false", "torch_threads=1", f"hydra.run.dir={run_dir}",  # 2 threads on 2 busy cores: 8x slower updates
    )
    assert proc.returncode == 0, proc.stderr
    # Updates at steps 1000, 1004, ..., 1100.
    assert "done: 1100 steps" in proc.stdout and load_checkpoint(run_dir)["agent_state"]["updates"] == 26
    assert "A.L.E: Arcade Learning Environment" not in proc.stdout + proc.stderr and (
        "Stella" not in proc.stdout + proc.stderr)
    video = tmp_path / "pong.mp4"
    proc = run_cli("rlkit.play", f"run={run_dir}", "episodes=1", f"video={video}")
    assert proc.returncode == 0, proc.stderr
    assert "episode 1: return" in proc.stdout and video.stat().st_size > 5000
    assert "A.L.E" not in proc.stdout + proc.stderr


def test_an_unknown_preset_is_one_line_naming_the_presets(tmp_path: Path) -> None:
    proc = run_cli("rlkit.train", "env=pong", "preset=dopamine", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: unknown preset 'dopamine'; choose one of: adam, data_efficient, nature, rainbow_lite")


def test_async_pong_copies_act_in_one_batch_and_learn_from_their_own_streams(config) -> None:
    cfg = config(
        "env=pong", "env.num_envs=2", "env.vectorization_mode=async", "env.max_episode_steps=40", "preset=adam",
        "agent.buffer_size=1000", "agent.batch_size=8", "agent.learning_starts_steps=100", "total_steps=300",
    )
    env = make_train_env(cfg.env)
    agent = build_agent(
        plain_config(cfg), observation_space=env.single_observation_space, action_space=env.single_action_space,
        device=torch.device("cpu"), seed=0, num_envs=env.num_envs,
    )
    batch_sizes = []
    agent.q_net.register_forward_pre_hook(lambda _, args: batch_sizes.append(len(args[0])))
    result = train(env=env, agent=agent, plan=TrainPlan(total_steps=300, seed=0, progress=False),
        logger=tb.Logger(None))
    env.close()
    # At steps 100, 104, ..., 300: train_every_steps counts the steps of all copies.
    assert result.steps == 300 and agent.updates == 51
    assert batch_sizes.count(2) == 150  # one forward pass over both copies per vector step
    replay = agent.replay
    assert isinstance(replay, FrameReplayBuffer) and replay.num_envs == 2
    # 150 steps per copy in episodes of 40 (truncated): 3 autoreset steps dropped, 3 final frames given a row each.
    assert replay._head.tolist() == [150, 150] and len(replay) == 2 * 147
