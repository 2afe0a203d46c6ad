"""Vectorized collection: env.num_envs=N runs N copies through gymnasium.make_vec, for DQN and tabular alike."""

from __future__ import annotations

import functools

import gymnasium as gym
import pytest
import torch

from rlkit import tb
from rlkit.agents.dqn import DQNAgent
from rlkit.agents.tabular import QLearningAgent
from rlkit.envs import make_train_env, single_spaces
from rlkit.loop import train
from rlkit.nets import MLPBody


def dqn(observation_space: gym.Space, action_space: gym.Space) -> DQNAgent:
    net, optimizer = functools.partial(MLPBody, hidden=(16,)), functools.partial(torch.optim.Adam, lr=1e-3)
    return DQNAgent(observation_space=observation_space, action_space=action_space, net=net, optimizer=optimizer,
                    learning_starts_steps=100, batch_size=16)


def q_learning(observation_space: gym.Space, action_space: gym.Space) -> QLearningAgent:
    return QLearningAgent(observation_space=observation_space, action_space=action_space, learning_rate=0.5, discount=0.9,
                          epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=1000)


@pytest.mark.parametrize(
    ("env_id", "make_agent", "mode"),
    [("CartPole-v1", dqn, "sync"), ("CartPole-v1", dqn, "async"), ("FrozenLake-v1", q_learning, "sync")],
)
def test_vector_envs_train_both_kinds_of_agent(env_id: str, make_agent, mode: str) -> None:
    env = make_train_env({"id": env_id, "num_envs": 3, "vectorization_mode": mode})
    assert isinstance(env, gym.vector.VectorEnv) and env.num_envs == 3
    agent = make_agent(*single_spaces(env))
    try:
        result = train(env=env, agent=agent, logger=tb.Logger(None), total_steps=600, seed=0, progress=False)
    finally:
        env.close()
    assert result.steps == 600 and agent.steps == 600 and result.episodes > 0
