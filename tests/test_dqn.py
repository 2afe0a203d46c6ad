"""DQNAgent behind the shared interface: acting, storing, learning, target updates, metrics, checkpoints."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import CountingEnv, Corridor

from rlkit import tb
from rlkit.agents import Agent, Transition
from rlkit.build import build_agent
from rlkit.agents.base import NO_METRICS
from rlkit.agents.dqn import DQNAgent
from rlkit.checkpoint import load_checkpoint, save_checkpoint
from rlkit.errors import RlkitError
from rlkit.loop import evaluate, train
from rlkit.nets import CNNBody, DuelingHead, MLPBody, OneHot, QHead, Scale

SMALL = dict(
    net=functools.partial(MLPBody, hidden=(16,)), optimizer=functools.partial(torch.optim.Adam, lr=1e-2), batch_size=8,
    learning_starts_steps=10, train_every_steps=1, target_update_every_steps=5, epsilon_decay_steps=50,
)


def make_agent(env: gym.Env, **overrides: Any) -> DQNAgent:
    return DQNAgent(observation_space=env.observation_space, action_space=env.action_space, seed=0, **{**SMALL, **overrides})


def params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def step_transition(obs: float, reward: float = 0.0, done: bool = False) -> Transition:
    return Transition(np.array([obs], np.float32), 1, reward, np.array([obs + 1], np.float32), done, False)


def test_acts_on_one_observation_and_on_a_batch(counting_env: CountingEnv) -> None:
    agent = make_agent(counting_env)
    action = agent.act(np.array([1.0], np.float32), explore=False)
    assert isinstance(action, int) and action == int(agent.q_values([[1.0]]).argmax())
    batch = np.array([[0.0], [1.0], [2.0]], np.float32)
    actions = agent.act(batch, explore=False)
    assert actions.shape == (3,) and actions.tolist() == agent.q_values(batch).argmax(axis=1).tolist()
    agent.epsilon = 1.0  # exploring: uniform over both actions
    assert {agent.act(np.array([1.0], np.float32), explore=True) for _ in range(50)} == {0, 1}


def test_vector_env_autoreset_steps_never_enter_replay() -> None:
    envs = gym.wrappers.vector.RecordEpisodeStatistics(gym.vector.SyncVectorEnv([CountingEnv, lambda: CountingEnv(length=4)]))
    agent = DQNAgent(
        observation_space=envs.single_observation_space, action_space=envs.single_action_space, **SMALL
    )
    train(env=envs, agent=agent, logger=tb.Logger(None), total_steps=40, seed=0, progress=False)
    assert agent.replay is not None and agent.replay.num_envs == 2
    # 20 steps per copy, minus the autoreset steps: copy 0 resets every 4 steps, copy 1 every 5.
    assert len(agent.replay) == (20 - 20 // 4) + (20 - 20 // 5)
    batch = agent.replay.sample(500)
    assert torch.equal(batch.next_obs, batch.obs + 1)  # an autoreset row would pair obs 3 or 4 with next_obs 0
    assert torch.equal(batch.rewards, batch.next_obs[:, 0])


def test_metrics_come_every_few_hundred_steps_with_the_fixed_tags(corridor: Corridor) -> None:
    agent = make_agent(corridor, metrics_every_steps=50)
    reported = {}
    for step in range(1, 121):
        metrics = agent.observe(step_transition(step % 4, reward=1.0))
        if metrics is not NO_METRICS:
            reported[step] = metrics
    assert sorted(reported) == [50, 100]
    assert set(reported[100]) == {tb.LOSS, tb.Q_MEAN, tb.GRAD_NORM, tb.EPSILON}
    assert reported[100][tb.EPSILON] == pytest.approx(0.05)
    assert agent.updates == 120 - 10 + 1


@pytest.mark.parametrize("tau", [1.0, 0.25])
def test_target_network_hard_copy_or_polyak(corridor: Corridor, tau: float) -> None:
    agent = make_agent(corridor, tau=tau, target_update_every_steps=20, learning_starts_steps=0)
    for step in range(1, 20):
        agent.observe(step_transition(step % 4, reward=1.0))
    before = params(agent.target_net)
    assert not all(torch.equal(a, b) for a, b in zip(before, params(agent.q_net)))  # online has moved on
    agent.observe(step_transition(0.0))  # step 20: learn, then update the target
    for old, target, online in zip(before, params(agent.target_net), params(agent.q_net)):
        torch.testing.assert_close(target, old + tau * (online - old))


def test_checkpoint_round_trip_restores_identical_q_values(tmp_path: Path, corridor: Corridor) -> None:
    config = {  # a run config's agent, net and optim nodes, named from rlkit.build's registries
        "agent": {"type": "dqn", "batch_size": 8, "learning_starts_steps": 10, "train_every_steps": 1, "dueling": True, "n_step": 2},
        "net": {"type": "mlp", "hidden": [16, 16], "activation_name": "tanh"},
        "optim": {"type": "adam", "lr": 0.01},
    }
    spaces = dict(observation_space=corridor.observation_space, action_space=corridor.action_space, device=torch.device("cpu"))
    agent = build_agent(config, seed=0, **spaces)
    env = gym.wrappers.RecordEpisodeStatistics(corridor)
    train(env=env, agent=agent, logger=tb.Logger(None), total_steps=200, seed=0, progress=False)
    save_checkpoint(tmp_path / "checkpoint.pt", {"config": config, "agent_state": agent.state_dict()})

    loaded = load_checkpoint(tmp_path)  # weights_only: tensors and plain data only
    fresh = build_agent(loaded["config"], seed=1, **spaces)
    probe = np.linspace(0.0, 1.0, 9, dtype=np.float32)[:, None]
    assert not np.array_equal(fresh.q_values(probe), agent.q_values(probe))
    fresh.load_state_dict(loaded["agent_state"])
    assert np.array_equal(fresh.q_values(probe), agent.q_values(probe))
    assert all(torch.equal(a, b) for a, b in zip(params(fresh.target_net), params(agent.target_net)))
    assert (fresh.steps, fresh.updates) == (agent.steps, agent.updates) == (200, 191) and fresh.epsilon == agent.epsilon
    assert fresh.optimizer.state_dict()["state"][0]["step"] == agent.optimizer.state_dict()["state"][0]["step"]


def test_a_checkpoint_of_another_network_is_a_clear_error(corridor: Corridor) -> None:
    state = make_agent(corridor).state_dict()
    with pytest.raises(RlkitError, match="does not fit"):
        make_agent(corridor, net=functools.partial(MLPBody, hidden=(32,))).load_state_dict(state)


def test_input_module_follows_the_observation_space() -> None:
    taxi_like = make_agent(gym.make("Taxi-v3" if "Taxi-v3" in gym.envs.registry else "Taxi-v4"))
    assert isinstance(taxi_like.q_net.inputs, OneHot) and taxi_like.q_net.body.in_features == 500
    assert isinstance(taxi_like.act(np.int64(17), explore=False), int)
    assert taxi_like.act(np.array([3, 4]), explore=False).shape == (2,)

    frames = gym.spaces.Box(0, 255, shape=(4, 36, 36), dtype=np.uint8)
    cnn_net = functools.partial(CNNBody, hidden=32)
    cnn = DQNAgent(observation_space=frames, action_space=gym.spaces.Discrete(6), **{**SMALL, "net": cnn_net})
    assert isinstance(cnn.q_net.inputs, Scale) and cnn.q_net.inputs.divisor == 255.0
    assert isinstance(cnn.q_net.body, CNNBody) and cnn.q_net.body.in_channels == 4
    assert 0 <= cnn.act(np.full((4, 36, 36), 255, np.uint8), explore=False) < 6
    with pytest.raises(RlkitError, match="net=mlp"):
        vector = gym.spaces.Box(-1, 1, (4,))
        DQNAgent(observation_space=vector, action_space=gym.spaces.Discrete(2), **{**SMALL, "net": CNNBody})


def test_implements_the_agent_protocol(corridor: Corridor) -> None:
    assert isinstance(make_agent(corridor), Agent)


def test_dueling_flag_puts_a_dueling_head_on_the_body(corridor: Corridor) -> None:
    assert isinstance(make_agent(corridor, dueling=True).q_net.head, DuelingHead)
    assert isinstance(make_agent(corridor).q_net.head, QHead)


@pytest.mark.parametrize(
    ("bad", "message"),
    [({"loss": "l1"}, "huber, mse"), ({"tau": 0.0}, "tau"), ({"batch_size": 0}, "batch_size"), ({"gamma": 1.5}, "gamma")],
)
def test_bad_hyperparameters_are_refused_by_name(corridor: Corridor, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(RlkitError, match=message):
        make_agent(corridor, **bad)


def test_continuous_actions_are_refused(corridor: Corridor) -> None:
    with pytest.raises(RlkitError, match="discrete action"):
        DQNAgent(observation_space=corridor.observation_space, action_space=gym.spaces.Box(-1, 1, (1,)), **SMALL)


@pytest.mark.parametrize("variant", [{}, {"n_step": 3, "dueling": True, "double": False, "loss": "mse"}])
def test_learns_a_tiny_deterministic_env(variant: dict[str, Any]) -> None:
    env = gym.wrappers.RecordEpisodeStatistics(Corridor(length=4))
    agent = make_agent(
        env, gamma=0.9, batch_size=32, learning_starts_steps=200, train_every_steps=2, target_update_every_steps=100,
        epsilon_decay_steps=1000, optimizer=functools.partial(torch.optim.Adam, lr=3e-3), **variant,
    )
    train(env=env, agent=agent, logger=tb.Logger(None), total_steps=2500, seed=0, progress=False)
    result = evaluate(Corridor(length=4), agent, episodes=3, seed=0)
    assert result.returns.tolist() == [1.0, 1.0, 1.0] and result.lengths.tolist() == [4, 4, 4]


@pytest.mark.slow
def test_a_compiled_update_matches_the_eager_one() -> None:
    """agent.compile=true: torch.compile of the whole update (25-50 s to compile on a 2-core CPU, hence slow)."""
    frames = gym.spaces.Box(0, 255, shape=(4, 12, 12), dtype=np.uint8)
    tiny_cnn = functools.partial(CNNBody, channels=(4,), kernel_sizes=(3,), strides=(2,), hidden=16)
    settings = dict(
        SMALL, net=tiny_cnn, optimizer=functools.partial(torch.optim.Adam, lr=1e-3), batch_size=16, learning_starts_steps=40,
        train_every_steps=40, metrics_every_steps=40, dedup_frames=True, prioritized=True, max_grad_norm=0.5,
    )
    stacks = np.random.default_rng(0).integers(0, 256, size=(41, *frames.shape), dtype=np.uint8)
    stacks[0, :3] = 0  # an episode's first stack is zero-padded
    untrained = params(DQNAgent(observation_space=frames, action_space=gym.spaces.Discrete(3), seed=0, **settings).q_net)
    agents, metrics = [], []
    for compile in (False, True):
        agent = DQNAgent(observation_space=frames, action_space=gym.spaces.Discrete(3), seed=0, compile=compile, **settings)
        for t in range(40):  # the same transitions for both; the 40th step learns once and reports
            next_stack = np.concatenate([stacks[t, 1:], stacks[t + 1, -1:]])
            out = agent.observe(Transition(stacks[t], t % 3, float(t % 7 == 0), next_stack, False, False))
        agents.append(agent)
        metrics.append(out)
    eager, compiled = agents
    assert eager.updates == compiled.updates == 1
    assert metrics[1][tb.LOSS] == pytest.approx(metrics[0][tb.LOSS], abs=1e-5) and metrics[0][tb.LOSS] > 0
    for before, a, b in zip(untrained, params(eager.q_net), params(compiled.q_net)):
        assert not torch.equal(a, before)  # the update moved every parameter
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    rows = np.arange(eager.replay.capacity)  # and gave the sampled rows the same new priorities
    np.testing.assert_allclose(compiled.replay.sampler.tree.values(rows), eager.replay.sampler.tree.values(rows), rtol=0, atol=1e-5)
