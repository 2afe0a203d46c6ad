"""The value-distribution parts (rlkit.agents.distributions): C51's projection by hand, Expected as today's DQN."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import run_main
from torch import nn
from torch.nn import functional as F

from rlkit.agents.base import Transition
from rlkit.agents.distributions import Categorical, Expected, categorical_projection
from rlkit.agents.dqn import QNetworkPolicy, dqn_update
from rlkit.agents.targets import bootstrap_q, td_target
from rlkit.checkpoint import load_checkpoint
from rlkit.config.dqn import DistributionSettings, distribution_settings, dqn_settings
from rlkit.config.registry import build_agent, check_acting_parts
from rlkit.errors import RlkitError
from rlkit.nets import DuelingHead

SUPPORT = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])  # 5 atoms, one apart


def test_the_c51_projection_by_hand_terminal_n_step_outside_the_support_and_on_an_atom() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.2], [0.1, 0.2, 0.3, 0.2, 0.2], [0.2] * 5, [0.2] * 5])
    rewards = torch.tensor([0.5, 1.0, 3.0, -5.0])
    discounts = torch.tensor([0.0, 0.5, 1.0, 0.9])  # terminal; gamma**n = 0.5; both outside the support
    projected = categorical_projection(probs, rewards, discounts, SUPPORT)
    expected = torch.tensor([
        # terminal: every atom lands on 0.5, halfway between atoms 0 and 1
        [0.0, 0.0, 0.5, 0.5, 0.0],
        # 1 + 0.5 z = [0, 0.5, 1, 1.5, 2]: 0, 1 and 2 land exactly on atoms (l == u), 0.5 and 1.5 split in half
        [0.0, 0.0, 0.1 + 0.1, 0.1 + 0.3 + 0.1, 0.1 + 0.2],
        # 3 + z = [1, 2, 3, 4, 5] clamped to [1, 2, 2, 2, 2]
        [0.0, 0.0, 0.0, 0.2, 0.8],
        # -5 + 0.9 z is below -2 for every atom: all mass on v_min
        [1.0, 0.0, 0.0, 0.0, 0.0],
    ])
    assert torch.allclose(projected, expected, atol=1e-6), projected
    assert torch.allclose(projected.sum(1), torch.ones(4))


def test_the_c51_target_takes_the_action_the_online_net_values_most() -> None:
    c51 = Categorical(atoms=5, v_min=-2.0, v_max=2.0)
    sure = torch.full((2, 5), -1e4)
    sure[0, 4] = sure[1, 0] = 0.0  # action 0 returns 2 for sure, action 1 returns -2 for sure
    target_out = sure.flatten().unsqueeze(0)  # (1, actions x atoms)
    assert torch.allclose(c51.q_values(target_out), torch.tensor([[2.0, -2.0]]))
    online_out = sure.flip(0).flatten().unsqueeze(0)  # the online net prefers action 1
    args = (torch.tensor([0.0]), torch.tensor([1.0]))
    assert torch.allclose(c51.target(target_out, None, *args), torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))
    assert torch.allclose(c51.target(target_out, online_out, *args), torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]]))
    # cross-entropy against a one-hot target is -log p of its atom: uniform logits give log 5
    loss_B = c51.loss(torch.zeros(2, 5), torch.eye(5)[:2], reduction="none")
    assert torch.allclose(loss_B, torch.full((2,), float(np.log(5)))) and torch.equal(c51.priority(torch.zeros(
        2, 5), torch.eye(5)[:2]), loss_B)


def test_expected_is_today_s_dqn_update_to_the_digit() -> None:
    torch.manual_seed(0)
    obs, next_obs = torch.randn(32, 3), torch.randn(32, 3)
    actions, rewards, discounts = torch.randint(0, 4, (32,)), torch.randn(32), torch.rand(32)
    weights = torch.rand(32)
    nets = [nn.Linear(3, 4) for _ in range(4)]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    for prioritized in (None, weights):
        q_net, today = nets[0], nets[1]
        target_net = nn.Linear(3, 4).requires_grad_(False)
        optimizer, today_optimizer = (torch.optim.SGD(n.parameters(), lr=0.1) for n in (q_net, today))
        out = dqn_update(obs, actions, rewards, next_obs, discounts, prioritized, q_net=q_net, target_net=target_net,
            optimizer=optimizer, params=list(q_net.parameters()), distribution=Expected(F.smooth_l1_loss),
            double=True, max_grad_norm=10.0)
        # the update as it was before distributions were parts
        q_B = today(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            target_B = td_target(rewards, bootstrap_q(target_net(next_obs), today(next_obs)), discounts)
        loss = F.smooth_l1_loss(q_B, target_B) if prioritized is None else (
            prioritized * F.smooth_l1_loss(q_B, target_B, reduction="none")).mean()
        today_optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(list(today.parameters()), 10.0)
        today_optimizer.step()
        assert torch.equal(out[0], loss.detach()) and torch.equal(out[1], q_B.detach().mean())
        assert torch.equal(out[3], (target_B - q_B).detach().abs())
        assert torch.equal(q_net.weight, today.weight) and torch.equal(q_net.bias, today.bias)
        nets = nets[2:]


def test_dueling_distributional_head_shapes_and_one_atom_is_today_s_head() -> None:
    torch.manual_seed(0)
    features = torch.randn(6, 8)
    head = DuelingHead(in_features=8, n_actions=4, atoms=5)
    out = head(features)
    assert out.shape == (6, 20) and head.value.out_features == 5 and head.advantage.out_features == 20
    # per atom, the advantages average to 0 over actions: the mean over actions is the value stream
    assert torch.allclose(out.unflatten(1, (4, 5)).mean(1), head.value(features), atol=1e-6)
    assert Categorical(atoms=5).q_values(out).shape == (6, 4)
    one = DuelingHead(in_features=8, n_actions=4)
    advantage = one.advantage(features)
    assert torch.equal(one(features), one.value(features) + advantage - advantage.mean(dim=1, keepdim=True))


def test_c51_settings_build_an_actions_x_atoms_head_and_bad_values_are_one_line() -> None:
    c51 = {"type": "c51", "atoms": 11, "v_min": 0, "v_max": 200}
    settings = dqn_settings({}, distribution=c51)
    assert settings.distribution == DistributionSettings(type="c51", atoms=11, v_min=0.0, v_max=200.0)
    assert dqn_settings({}).distribution == DistributionSettings()  # no node: expected, today's DQN
    env = gym.make("CartPole-v1")
    config = {"agent": {"type": "dqn", "distribution": c51}, "net": {"type": "mlp", "hidden": [8]},
        "optim": {"type": "adam"}}
    agent = build_agent(config, observation_space=env.observation_space, action_space=env.action_space,
        device=torch.device("cpu"), seed=0)
    assert agent.q_net.head.linear.out_features == 2 * 11 and agent.q_values(np.zeros(4, np.float32)).shape == (2,)
    assert check_acting_parts(config).distribution.type == "c51"
    del config["agent"]["distribution"]  # a run stored before the node: expected
    assert check_acting_parts(config).distribution == DistributionSettings()
    for node, message in (({"type": "qr"}, r"^agent.distribution.type=qr is not known; choose one of: expected, c51$"),
            ({"type": "c51", "atoms": 1}, r"^agent.distribution.atoms must be >= 2, got 1$"),
            ({"type": "c51", "v_min": 1, "v_max": 1}, r"^agent.distribution.v_min must be < agent.distribution.v_max")):
        with pytest.raises(RlkitError, match=message):
            distribution_settings(node)
    assert dataclasses.asdict(distribution_settings({"type": "expected", "atoms": 3})) == {"type": "expected",
        "atoms": 3, "v_min": -10.0, "v_max": 10.0}  # only c51 reads atoms


def test_the_policy_acts_on_c51_s_expected_values() -> None:
    net = nn.Linear(1, 2 * 5, bias=False)
    with torch.no_grad():  # action 1's logits put all mass on v_max, action 0's on v_min
        net.weight.copy_(torch.tensor([[1e4, 0, 0, 0, 0, 0, 0, 0, 0, 1e4]]).T)
    policy = QNetworkPolicy(net, observation_space=gym.spaces.Box(-1, 1, (1,)), device="cpu",
        distribution=Categorical(atoms=5, v_min=-2.0, v_max=2.0))
    assert np.allclose(policy.q_values(np.ones(1, np.float32)), [-2.0, 2.0]) and policy.act(np.ones(1, np.float32)) == 1


def test_a_c51_cartpole_run_trains_and_plays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rlkit.play import main as play_main
    from rlkit.train import main as train_main

    code, _, err = run_main(train_main, "env=cartpole", "agent.distribution.type=c51", "agent.distribution.v_min=0",
        "agent.distribution.v_max=200", "total_steps=400", "agent.learning_starts_steps=200", "eval_every_steps=0",
        "final_eval_episodes=1", "progress=false", "video.every_steps=0", f"hydra.run.dir={tmp_path}", capsys=capsys)
    assert code == 0, err
    data = load_checkpoint(tmp_path)
    assert data["config"]["agent"]["distribution"] == {"type": "c51", "atoms": 51, "v_min": 0, "v_max": 200}
    assert data["agent_state"]["q_net"]["head.linear.weight"].shape[0] == 2 * 51 and data["agent_state"]["updates"] > 0
    code, out, err = run_main(play_main, f"run={tmp_path}", "episodes=1", "render=none", capsys=capsys)
    assert code == 0 and "rlkit.play: dqn on cartpole after 400 steps" in out, err


def test_c51_with_dueling_prioritized_three_step_replay_sends_its_cross_entropy_as_the_priority() -> None:
    env = gym.make("CartPole-v1")
    config = {"agent": {"type": "dqn", "distribution": {"type": "c51", "atoms": 11, "v_min": 0, "v_max": 50},
        "sampler": {"type": "prioritized", "beta_steps": 100}, "n_step": 3, "learning_starts_steps": 64,
        "batch_size": 32, "train_every_steps": 16}, "net": {"type": "mlp", "hidden": [8], "head": {"type": "dueling"}},
        "optim": {"type": "adam"}}
    agent = build_agent(config, observation_space=env.observation_space, action_space=env.action_space,
        device=torch.device("cpu"), seed=0)
    sent: list[np.ndarray] = []
    update_priorities = agent.replay.update_priorities
    agent.replay.update_priorities = lambda indices, priorities: (sent.append(priorities),
        update_priorities(indices, priorities))
    rng = np.random.default_rng(0)
    for step in range(128):
        obs = rng.standard_normal(4).astype(np.float32)
        agent.observe(Transition(obs, int(rng.integers(2)), 1.0, obs, step % 20 == 19, False))
    assert agent.updates == 5 and agent.q_net.head.advantage.out_features == 2 * 11
    # one batch of per-sample cross-entropies (Categorical.priority) per update: steps 64, 80, ..., 128
    assert len(sent) == 5 and all(p.shape == (32,) and (p > 0).all() for p in sent)
    assert np.isfinite(agent.last_loss()) and agent.q_values(np.zeros(4, np.float32)).shape == (2,)
