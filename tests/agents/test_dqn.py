"""DQNAgent behind the shared interface: acting, storing, learning, target updates, metrics, checkpoints; and the
parts rlkit.config.dqn builds it from. Exact values come from a one-layer Q-network with weights set by hand."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import Corridor, CountingEnv, build_dqn_for
from torch import nn
from torch.nn import functional as F

from rlkit import tb
from rlkit.agents import Transition
from rlkit.agents.base import NO_METRICS
from rlkit.agents.distributions import Expected
from rlkit.agents.dqn import DQNAgent, LinearSchedule, dqn_update
from rlkit.agents.target_nets import PolyakUpdate, hard_update
from rlkit.checkpoint import load_checkpoint, save_checkpoint
from rlkit.config.registry import build_agent
from rlkit.errors import RlkitError
from rlkit.loop import TrainPlan, evaluate, train
from rlkit.nets import CNNBody, DuelingHead, LinearHead, MLPBody, OneHot, Scale
from rlkit.replay.buffer import ReplayBuffer
from rlkit.replay.frames import FrameReplayBuffer
from rlkit.replay.prioritized import PrioritizedSampler
from rlkit.replay.rings import StepRings
from rlkit.replay.samplers import UniformSampler

SMALL = dict(
    net=functools.partial(MLPBody, hidden=(16,)), optimizer=functools.partial(torch.optim.Adam, lr=1e-2), batch_size=8,
    learning_starts_steps=10, train_every_steps=1, target_update_every_steps=5, epsilon_decay_steps=50,
)
CPU = torch.device("cpu")
LINE = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)


def build(observation_space: gym.Space, action_space: gym.Space, **overrides: Any) -> DQNAgent:
    """The agent rlkit.config.registry makes from a config node with SMALL's values, for one env copy."""
    return build_dqn_for(observation_space, action_space, **{**SMALL, **overrides})


def make_agent(env: gym.Env, **overrides: Any) -> DQNAgent:
    return build(env.observation_space, env.action_space, **overrides)


def linear_q(weight: list[float], bias: list[float]) -> nn.Linear:
    """Q(s) = weight * s + bias for a one-number state: Q-values known by hand."""
    q_net = nn.Linear(1, len(weight))
    with torch.no_grad():
        q_net.weight.copy_(torch.tensor(weight)[:, None])
        q_net.bias.copy_(torch.tensor(bias))
    return q_net


def parts_agent(q_net: nn.Module, **overrides: Any) -> DQNAgent:
    """A DQN agent composed by hand from its parts: learns from step 1 on every step, gamma 0.5, SGD with lr 0."""
    parts: dict[str, Any] = dict(
        optimizer=torch.optim.SGD(q_net.parameters(), lr=0.0),
        replay=ReplayBuffer(rings=StepRings(capacity=16, gamma=0.5), obs_shape=(1,), obs_dtype=np.float32),
        target_update=hard_update(every_steps=1000), exploration=LinearSchedule(start=0.0, end=0.0, duration_steps=1),
        loss=F.mse_loss, batch_size=1, learning_starts_steps=1, train_every_steps=1, gradient_steps=1,
            max_grad_norm=None,
        metrics_every_steps=1,
    )
    return DQNAgent(observation_space=LINE, action_space=gym.spaces.Discrete(2), num_envs=1, q_net=q_net, **{**parts,
        **overrides})


def params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def step_transition(obs: float, reward: float = 0.0, done: bool = False) -> Transition:
    return Transition(np.array([obs], np.float32), 1, reward, np.array([obs + 1], np.float32), done, False)


def test_acts_greedily_on_one_observation_and_on_a_batch() -> None:
    agent = parts_agent(linear_q([1.0, -1.0], [0.0, 0.5]))  # Q(s) = (s, 0.5 - s): action 1 below s = 0.25
    assert agent.q_values(np.array([1.0], np.float32)).tolist() == [1.0, -0.5]
    action = agent.act(np.array([1.0], np.float32), explore=False)
    assert isinstance(action, int) and action == 0 and agent.act(np.array([0.0], np.float32), explore=False) == 1
    actions = agent.act(np.array([[0.0], [1.0], [-3.0], [0.5]], np.float32), explore=False)
    assert actions.shape == (4,) and actions.tolist() == [1, 0, 1, 0]
    agent.epsilon = 1.0  # exploring: uniform over both actions, whatever the Q-values say
    assert {agent.act(np.array([1.0], np.float32), explore=True) for _ in range(50)} == {0, 1}
    assert agent.act(np.array([[1.0]] * 200, np.float32), explore=True).tolist().count(1) in range(70, 131)


@pytest.mark.parametrize(
    ("double", "loss", "expected_loss"),
    [
        # Double: the online net picks action 0 at s' = 2, the target net values it at -2: target 0.5 + 0.5 * -2 = -0.5.
        (True, F.smooth_l1_loss, 1.0),  # |q - target| = 1.5 > 1: Huber is 1.5 - 0.5
        # Plain: max of the target net's (-2, 2.5) is 2.5: target 0.5 + 0.5 * 2.5 = 1.75, TD error 0.75.
        (False, F.smooth_l1_loss, 0.5 * 0.75**2),
        (False, F.mse_loss, 0.75**2),
    ],
)
def test_one_update_gives_the_hand_computed_loss_and_gradient(double: bool, loss: Any, expected_loss: float) -> None:
    online = linear_q([1.0, -1.0], [0.0, 0.5])  # Q(s=1) = (1, -0.5), Q(s'=2) = (2, -1.5)
    agent = parts_agent(online, double=double, loss=loss, optimizer=torch.optim.SGD(online.parameters(), lr=0.5))
    with torch.no_grad():
        agent.target_net.weight.copy_(torch.tensor([[-1.0], [1.0]]))  # target Q(s'=2) = (-2, 2.5)
    metrics = agent.observe(Transition(np.array([1.0], np.float32), 0, 0.5, np.array([2.0], np.float32), False, False))
    assert agent.updates == 1 and metrics[tb.LOSS] == expected_loss and metrics[tb.Q_MEAN] == 1.0
    # dL/dq at q = 1: Huber's slope is capped at 1 (double: q - target = 1.5); 1 - 1.75 = -0.75; MSE twice that.
    dl_dq = {1.0: 1.0, 0.5 * 0.75**2: -0.75, 0.75**2: -1.5}[expected_loss]
    # The same dL/dq reaches weight[0] (s = 1) and bias[0].
    assert metrics[tb.GRAD_NORM] == pytest.approx(abs(dl_dq) * 2**0.5)
    # SGD with lr 0.5 moved only action 0's row: weight and bias by -0.5 * dL/dq.
    assert online.weight.detach().flatten().tolist() == [1.0 - 0.5 * dl_dq, -1.0]
    assert online.bias.detach().tolist() == [0.0 - 0.5 * dl_dq, 0.5]


def test_a_terminal_step_is_not_bootstrapped() -> None:
    agent = parts_agent(linear_q([1.0, -1.0], [0.0, 0.5]))
    metrics = agent.observe(Transition(np.array([1.0], np.float32), 1, 2.0, np.array([2.0], np.float32), True, False))
    assert metrics[tb.Q_MEAN] == -0.5 and metrics[tb.LOSS] == (2.0 - -0.5) ** 2  # target is the reward alone


def test_epsilon_follows_its_schedule_exactly() -> None:
    agent = parts_agent(linear_q([0.0, 0.0], [0.0, 0.0]), exploration=LinearSchedule(start=1.0, end=0.2,
        duration_steps=8),
                        learning_starts_steps=10**6)
    seen = {0: agent.epsilon}
    for step in range(1, 13):
        agent.observe(Transition(np.array([0.0], np.float32), 0, 0.0, np.array([0.0], np.float32), False, False))
        seen[step] = agent.epsilon
    assert [seen[step] for step in (0, 2, 4, 8, 12)] == pytest.approx([1.0, 0.8, 0.6, 0.2, 0.2], abs=1e-12)


@pytest.mark.parametrize(("rule", "at_4"), [(hard_update(every_steps=4), 1.0), (PolyakUpdate(tau=0.5, every_steps=4),
    2.0)])
def test_the_target_network_follows_its_rule_exactly(rule: Any, at_4: float) -> None:
    """Online weight 1 (lr 0: it never moves), target weight 3: a hard copy gives 1, tau 0.5 the midpoint 2."""
    agent = parts_agent(linear_q([1.0, 1.0], [0.0, 0.0]), target_update=rule)
    with torch.no_grad():
        agent.target_net.weight.fill_(3.0)
    weights = {}
    for step in range(1, 9):
        agent.observe(Transition(np.array([1.0], np.float32), 0, 0.0, np.array([1.0], np.float32), False, False))
        weights[step] = agent.target_net.weight.flatten().tolist()
    assert weights[3] == [3.0, 3.0] and weights[4] == [at_4, at_4]  # only at the multiple of every_steps
    at_8 = 1.0 if rule.tau == 1.0 else 1.5  # the next multiple: a copy again, or half the gap 2 -> 1 again
    assert weights[7] == weights[4] and weights[8] == [at_8, at_8]


def test_vector_env_autoreset_steps_never_enter_replay() -> None:
    envs = gym.wrappers.vector.RecordEpisodeStatistics(gym.vector.SyncVectorEnv([CountingEnv,
        lambda: CountingEnv(length=4)]))
    agent = build_dqn_for(envs.single_observation_space, envs.single_action_space, num_envs=2, **SMALL)
    assert isinstance(agent.replay,
        ReplayBuffer) and agent.replay.num_envs == 2  # built for both copies before the first step
    train(env=envs, agent=agent, plan=TrainPlan(total_steps=40, seed=0, progress=False), logger=tb.Logger(None))
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


def test_the_config_picks_the_parts(corridor: Corridor) -> None:
    plain = make_agent(corridor)
    assert plain.target_update == hard_update(every_steps=5) and plain.loss_fn is F.smooth_l1_loss and plain.double
    assert plain.exploration == LinearSchedule(start=1.0, end=0.05, duration_steps=50) and plain.priority_beta is None
    assert isinstance(plain.replay, ReplayBuffer) and isinstance(plain.replay.sampler,
        UniformSampler) and plain.replay.capacity == 100_000
    polyak = make_agent(corridor, tau=0.25, target_update_every_steps=2, loss="mse",
                        sampler={"type": "prioritized", "alpha": 0.6, "beta_start": 0.4, "beta_steps": 300,
                            "eps": 1e-6},
                        buffer_size=64, n_step=3, gamma=0.5)
    assert polyak.target_update == PolyakUpdate(tau=0.25, every_steps=2) and polyak.loss_fn is F.mse_loss
    assert polyak.priority_beta == LinearSchedule(start=0.4, end=1.0, duration_steps=300)
    assert isinstance(polyak.replay.sampler, PrioritizedSampler) and polyak.replay.sampler.alpha == 0.6
    assert (polyak.replay.capacity, polyak.replay.rings.n_step, polyak.replay.rings.gamma) == (64, 3, 0.5)
    frames = build(gym.spaces.Box(0, 255, (4, 8, 8), np.uint8), gym.spaces.Discrete(2), replay="frames", buffer_size=50)
    assert isinstance(frames.replay, FrameReplayBuffer) and frames.replay.capacity == 50


def test_the_agent_refuses_parts_that_do_not_fit_together() -> None:
    q_net = linear_q([1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="optimizer must be built on q_net's parameters"):
        parts_agent(q_net, optimizer=torch.optim.SGD(nn.Linear(1, 2).parameters(), lr=0.1))
    agent = parts_agent(q_net)
    two = np.zeros((2, 1), np.float32)
    with pytest.raises(RlkitError, match="built for num_envs=1 env copies but observed 2"):
        agent.observe(Transition(two, np.zeros(2, np.int64), np.zeros(2), two, np.zeros(2, bool), np.zeros(2, bool),
            np.ones(2, bool)))


def test_checkpoint_round_trip_restores_identical_q_values(tmp_path: Path, corridor: Corridor) -> None:
    config = {  # a run config's agent, net and optim nodes, named from rlkit.config.registry's registries
        "agent": {"type": "dqn", "batch_size": 8, "learning_starts_steps": 10, "train_every_steps": 1, "n_step": 2},
        "net": {"type": "mlp", "hidden": [16, 16], "activation_name": "tanh", "head": {"type": "dueling"}},
        "optim": {"type": "adam", "lr": 0.01},
    }
    spaces = dict(observation_space=corridor.observation_space, action_space=corridor.action_space,
        device=torch.device("cpu"))
    agent = build_agent(config, seed=0, **spaces)
    env = gym.wrappers.RecordEpisodeStatistics(corridor)
    train(env=env, agent=agent, plan=TrainPlan(total_steps=200, seed=0, progress=False), logger=tb.Logger(None))
    save_checkpoint(tmp_path / "checkpoint.pt", {"config": config, "agent_state": agent.state_dict()})

    loaded = load_checkpoint(tmp_path)  # weights_only: tensors and plain data only
    fresh = build_agent(loaded["config"], seed=1, **spaces)
    probe = np.linspace(0.0, 1.0, 9, dtype=np.float32)[:, None]
    assert not np.array_equal(fresh.q_values(probe), agent.q_values(probe))
    fresh.load_state_dict(loaded["agent_state"])
    assert np.array_equal(fresh.q_values(probe), agent.q_values(probe))
    assert all(torch.equal(a, b) for a, b in zip(params(fresh.target_net), params(agent.target_net), strict=True))
    assert (fresh.steps, fresh.updates) == (agent.steps, agent.updates) == (200, 191) and fresh.epsilon == agent.epsilon
    # the keys every saved run folder holds: a renamed key would strand their checkpoints
    assert set(loaded["agent_state"]) == {"q_net", "target_net", "optimizer", "steps", "updates", "epsilon",
        "rng_state"}
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
    cnn = build(frames, gym.spaces.Discrete(6), net=cnn_net)
    assert isinstance(cnn.q_net.inputs, Scale) and cnn.q_net.inputs.divisor == 255.0
    assert isinstance(cnn.q_net.body, CNNBody) and cnn.q_net.body.in_channels == 4
    assert 0 <= cnn.act(np.full((4, 36, 36), 255, np.uint8), explore=False) < 6
    with pytest.raises(RlkitError, match="net=mlp"):
        vector = gym.spaces.Box(-1, 1, (4,))
        build(vector, gym.spaces.Discrete(2), net=CNNBody)


def test_the_head_the_config_names_sits_on_the_body(corridor: Corridor) -> None:
    assert isinstance(make_agent(corridor, head="dueling").q_net.head, DuelingHead)
    assert isinstance(make_agent(corridor).q_net.head, LinearHead)


@pytest.mark.parametrize(
    ("bad", "message"),
    [({"loss": "l1"}, "huber, mse"), ({"tau": 0.0}, "tau"), ({"batch_size": 0}, "batch_size"), ({"gamma": 1.5},
        "gamma")],
)
def test_bad_hyperparameters_are_refused_by_name(corridor: Corridor, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(RlkitError, match=message):
        make_agent(corridor, **bad)


def test_continuous_actions_are_refused(corridor: Corridor) -> None:
    with pytest.raises(RlkitError, match="discrete action"):
        build(corridor.observation_space, gym.spaces.Box(-1, 1, (1,)))


@pytest.mark.parametrize("variant", [{}, {"n_step": 3, "head": "dueling", "double": False, "loss": "mse"}])
def test_learns_a_tiny_deterministic_env(variant: dict[str, Any]) -> None:
    env = gym.wrappers.RecordEpisodeStatistics(Corridor(length=4))
    agent = make_agent(
        env, gamma=0.9, batch_size=32, learning_starts_steps=200, train_every_steps=2, target_update_every_steps=100,
        epsilon_decay_steps=1000, optimizer=functools.partial(torch.optim.Adam, lr=3e-3), **variant,
    )
    train(env=env, agent=agent, plan=TrainPlan(total_steps=2500, seed=0, progress=False), logger=tb.Logger(None))
    result = evaluate(Corridor(length=4), agent.policy(), episodes=3, seed=0)
    assert result.returns.tolist() == [1.0, 1.0, 1.0] and result.lengths.tolist() == [4, 4, 4]


@pytest.mark.slow
def test_a_compiled_update_matches_the_eager_one() -> None:
    """agent.compile=true: torch.compile of the whole update (25-50 s to compile on a 2-core CPU, hence slow)."""
    frames = gym.spaces.Box(0, 255, shape=(4, 12, 12), dtype=np.uint8)
    tiny_cnn = functools.partial(CNNBody, channels=(4,), kernel_sizes=(3,), strides=(2,), hidden=16)
    settings = dict(
        SMALL, net=tiny_cnn, optimizer=functools.partial(torch.optim.Adam, lr=1e-3), batch_size=16,
            learning_starts_steps=40,
        train_every_steps=40, metrics_every_steps=40, replay="frames", max_grad_norm=0.5,
        sampler={"type": "prioritized", "alpha": 0.6, "beta_start": 0.4, "beta_steps": 1_000_000, "eps": 1e-6},
    )
    stacks = np.random.default_rng(0).integers(0, 256, size=(41, *frames.shape), dtype=np.uint8)
    stacks[0, :3] = 0  # an episode's first stack is zero-padded
    untrained = params(build(frames, gym.spaces.Discrete(3), **settings).q_net)
    agents, metrics = [], []
    for compile in (False, True):
        agent = build(frames, gym.spaces.Discrete(3), compile=compile, **settings)
        for t in range(40):  # the same transitions for both; the 40th step learns once and reports
            next_stack = np.concatenate([stacks[t, 1:], stacks[t + 1, -1:]])
            out = agent.observe(Transition(stacks[t], t % 3, float(t % 7 == 0), next_stack, False, False))
        agents.append(agent)
        metrics.append(out)
    eager, compiled = agents
    assert eager.updates == compiled.updates == 1
    assert metrics[1][tb.LOSS] == pytest.approx(metrics[0][tb.LOSS], abs=1e-5) and metrics[0][tb.LOSS] > 0
    for before, a, b in zip(untrained, params(eager.q_net), params(compiled.q_net), strict=True):
        assert not torch.equal(a, before)  # the update moved every parameter
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    rows = np.arange(eager.replay.capacity)  # and gave the sampled rows the same new priorities
    np.testing.assert_allclose(compiled.replay.sampler.weights()[rows], eager.replay.sampler.weights()[rows], rtol=0,
        atol=1e-5)


# Acting apart from learning: the greedy policy and the update as a function


def test_the_policy_acts_as_the_agents_greedy_act_and_shares_its_live_weights() -> None:
    agent = parts_agent(linear_q([1.0, -1.0], [0.0, 0.5]))  # Q(s) = (s, 0.5 - s): action 1 below s = 0.25
    policy = agent.policy()
    batch = np.array([[0.0], [1.0], [-3.0], [0.5], [0.2]], np.float32)
    assert policy.act(batch).tolist() == agent.act(batch, explore=False).tolist() == [1, 0, 1, 0, 1]
    assert [policy.act(obs) for obs in batch] == [agent.act(obs, explore=False) for obs in batch] == [1, 0, 1, 0, 1]
    assert policy.q_values(batch[1]).tolist() == [1.0, -0.5] and policy.q_values(batch).shape == (5, 2)
    assert not hasattr(policy, "optimizer") and not hasattr(policy, "replay") and not hasattr(policy, "target_net")
    with torch.no_grad():
        agent.q_net.bias.copy_(torch.tensor([0.0, 5.0]))  # learning moves the agent's weights: the policy sees them
    assert policy.act(batch[1]) == 1 and policy.q_values(batch[1]).tolist() == [1.0, 4.0]


def test_dqn_update_is_a_function_of_tensors_and_modules_with_values_known_by_hand() -> None:
    q_net = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        q_net.weight.copy_(torch.tensor([[1.0], [0.5]]))
    target_net = nn.Linear(1, 2, bias=False).requires_grad_(False)
    target_net.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.SGD(q_net.parameters(), lr=0.5)
    batch = (torch.tensor([[1.0]]), torch.tensor([0]), torch.tensor([1.0]), torch.tensor([[1.0]]), torch.tensor([0.5]),
        None)
    loss, q_mean, grad_norm, td_abs_B = dqn_update(
        *batch, q_net=q_net, target_net=target_net, optimizer=optimizer, params=list(q_net.parameters()),
        distribution=Expected(F.mse_loss), double=False, max_grad_norm=None,
    )
    # Q(s, 0) = 1; target 1 + 0.5 * max(1, 0.5) = 1.5; MSE 0.25; dL/dw0 = 2 * (1 - 1.5) * 1 = -1; SGD: w0 = 1 + 0.5.
    assert (loss.item(), q_mean.item(), grad_norm, td_abs_B.tolist()) == (0.25, 1.0, None, [0.5])
    assert q_net.weight.detach().flatten().tolist() == [1.5, 0.5] and target_net.weight.flatten().tolist() == [1.0, 0.5]


def test_a_diverged_loss_is_named_by_check_finite_loss_and_never_saved(tmp_path: Path) -> None:
    from rlkit.agents.base import check_finite_loss
    from rlkit.errors import NonFiniteLossError
    from rlkit.runs.checkpointer import Checkpointer

    agent = parts_agent(linear_q([1.0, -1.0], [0.0, 0.5]))
    check_finite_loss(agent, step=0)  # no update yet: nothing to check
    agent._last_update = (torch.tensor(float("nan")), torch.tensor(0.0), None)
    with pytest.raises(NonFiniteLossError, match=r"^loss became nan by env step 7$"):
        check_finite_loss(agent, step=7)
    agent.state_dict()  # the state dict itself no longer judges: the loop and the checkpointer call the check
    saver = Checkpointer(tmp_path, env_name="e", agent_name="dqn", config={}, agent=agent, env=None, replay=None,
        last_good=None)
    with pytest.raises(NonFiniteLossError, match="by env step 3"):
        saver.save(3)
    assert list(tmp_path.iterdir()) == [] and saver.last_good is None
