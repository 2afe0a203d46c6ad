import re

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit import tb
from rlkit.agents.base import Transition
from rlkit.agents.tabular import QLearningAgent
from rlkit.envs.builders import make_env, make_train_env
from rlkit.errors import RlkitError
from rlkit.loop import TrainPlan, evaluate, train


def make_agent(n_states=3, n_actions=2, **overrides):
    kwargs = dict(
        observation_space=gym.spaces.Discrete(n_states),
        action_space=gym.spaces.Discrete(n_actions),
        learning_rate=0.5,
        gamma=0.9,
        epsilon_start=1.0,
        epsilon_end=0.1,
        epsilon_decay_steps=10,
    )
    kwargs.update(overrides)
    return QLearningAgent(**kwargs)


def test_terminated_does_not_bootstrap():
    agent = make_agent()
    agent.q_table[1] = [4.0, 8.0]
    agent.observe(Transition(obs=0, action=1, reward=1.0, next_obs=1, terminated=True, truncated=False))
    assert agent.q_table[0][1] == pytest.approx(0.5 * 1.0)


def test_truncated_bootstraps_from_next_state():
    agent = make_agent()
    agent.q_table[1] = [4.0, 8.0]
    agent.observe(Transition(obs=0, action=1, reward=1.0, next_obs=1, terminated=False, truncated=True))
    assert agent.q_table[0][1] == pytest.approx(0.5 * (1.0 + 0.9 * 8.0))


def test_vector_batch_skips_autoreset_rows():
    agent = make_agent()
    agent.q_table[2] = [10.0, 0.0]
    transition = Transition(
        obs=np.array([0, 1]),
        action=np.array([0, 0]),
        reward=np.array([1.0, 5.0]),
        next_obs=np.array([2, 2]),
        terminated=np.array([False, False]),
        truncated=np.array([False, False]),
        valid=np.array([True, False]),
    )
    agent.observe(transition)
    assert agent.q_table[0][0] == pytest.approx(0.5 * (1.0 + 0.9 * 10.0))
    assert agent.q_table[1][0] == 0.0
    assert agent.steps == 2


def test_epsilon_follows_linear_schedule():
    agent = make_agent()
    for _ in range(5):
        agent.observe(Transition(0, 0, 0.0, 1, False, False))
    assert agent.epsilon == pytest.approx(1.0 + (0.1 - 1.0) * 5 / 10)
    for _ in range(10):
        agent.observe(Transition(0, 0, 0.0, 1, False, False))
    assert agent.epsilon == pytest.approx(0.1)


def test_greedy_action_is_argmax_and_batch_shape():
    agent = make_agent(n_states=2, n_actions=3)
    agent.q_table[0] = [0.0, 2.0, 1.0]
    agent.q_table[1] = [3.0, 2.0, 1.0]
    assert agent.act(0, explore=False) == 1
    np.testing.assert_array_equal(agent.act(np.array([0, 1, 0]), explore=False), [1, 0, 1])


@pytest.mark.parametrize("setting,message", [
    ({"gamma": 1.5}, r"^agent\.gamma must be in \[0, 1\], got 1\.5$"),
    ({"gamma": -0.1}, r"^agent\.gamma must be in \[0, 1\], got -0\.1$"),
    ({"learning_rate": 0.0}, r"^agent\.learning_rate must be in \(0, 1\], got 0\.0$"),
    ({"epsilon_end": 2.0}, r"^agent\.epsilon_end must be in \[0, 1\], got 2\.0$"),
])
def test_settings_out_of_range_are_refused_by_name(setting, message):
    with pytest.raises(RlkitError, match=message):
        make_agent(**setting)


def test_gamma_zero_learns_only_the_reward_and_gamma_one_the_whole_future():
    for gamma, expected in ((0.0, 0.5 * 1.0), (1.0, 0.5 * (1.0 + 8.0))):
        agent = make_agent(gamma=gamma)
        agent.q_table[1] = [4.0, 8.0]
        agent.observe(Transition(obs=0, action=1, reward=1.0, next_obs=1, terminated=False, truncated=False))
        assert (agent.gamma, agent.q_table[0][1]) == (gamma, expected)


def test_continuous_observations_are_refused_with_the_fix():
    fix = "; use agent=dqn (a network instead of a table)"
    with pytest.raises(RlkitError,
            match=r"^agent=q_learning needs a discrete observation space, but the env has Box\(.+\)"
            + re.escape(fix) + "$"):
        QLearningAgent(
            observation_space=gym.spaces.Box(-1, 1, (4,)),
            action_space=gym.spaces.Discrete(2),
            learning_rate=0.1,
            gamma=0.9,
            epsilon_start=1.0,
            epsilon_end=0.1,
            epsilon_decay_steps=10,
        )


def test_state_dict_round_trip_restores_table_and_rng():
    agent = make_agent()
    for i in range(7):
        agent.observe(Transition(i % 3, i % 2, float(i), (i + 1) % 3, False, False))
    clone = make_agent(seed=99)
    clone.load_state_dict(agent.state_dict())
    assert clone.q_table == agent.q_table
    assert clone.epsilon == agent.epsilon
    assert [clone.act(0, explore=True) for _ in range(20)] == [agent.act(0, explore=True) for _ in range(20)]


def test_load_refuses_a_table_of_another_shape():
    with pytest.raises(RlkitError, match=r"\(4, 2\)"):
        make_agent(n_states=3).load_state_dict(make_agent(n_states=4).state_dict())


@pytest.mark.parametrize("num_envs", [1, 2])
def test_learns_frozenlake_4x4_non_slippery_to_optimal_return(num_envs):
    cfg = {"id": "FrozenLake-v1", "kwargs": {"map_name": "4x4", "is_slippery": False}, "num_envs": num_envs}
    env, eval_env = make_train_env(cfg), make_env(cfg)
    agent = QLearningAgent(
        observation_space=eval_env.observation_space,
        action_space=eval_env.action_space,
        learning_rate=1.0,
        gamma=0.95,
        epsilon_start=1.0,
        epsilon_end=0.05,
        epsilon_decay_steps=5000,
        initial_q=1.0,
    )
    train(env=env, agent=agent, plan=TrainPlan(total_steps=10_000, seed=0, progress=False), logger=tb.Logger(None))
    result = evaluate(eval_env, agent.policy(), episodes=20, seed=0)
    assert result.mean == 1.0
    assert (result.lengths == 6).all()  # the shortest path to the goal


def test_the_table_policy_acts_as_the_agents_greedy_act_on_the_live_table() -> None:
    from rlkit.agents.tabular import TablePolicy, table_from_state

    agent = QLearningAgent(observation_space=gym.spaces.Discrete(16), action_space=gym.spaces.Discrete(4),
        learning_rate=0.5,
                           gamma=0.9, epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=10)
    table = np.random.default_rng(1).uniform(-1, 1, size=(16, 4))
    agent.load_state_dict({"q_table": torch.tensor(table), "steps": 0, "epsilon": 1.0})
    policy = agent.policy()
    states = np.arange(16)
    assert policy.act(states).tolist() == agent.act(states, explore=False).tolist() == table.argmax(axis=1).tolist()
    assert [policy.act(int(s)) for s in states] == table.argmax(axis=1).tolist()
    agent.load_state_dict({"q_table": torch.tensor(-table), "steps": 5, "epsilon": 0.5})  # in place: the policy follows
    assert policy.act(states).tolist() == (-table).argmax(axis=1).tolist()
    from_weights = TablePolicy(table_from_state({"q_table": torch.tensor(table)}, n_states=16, n_actions=4))
    np.testing.assert_array_equal(from_weights.q_values(states), table)
