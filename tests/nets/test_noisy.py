"""Noisy nets (net.head.noisy, Fortunato et al. 2018): the layer's noise by hand, the heads and the agent's use."""

import functools

import numpy as np
import pytest
import torch
from conftest import build_dqn_for, run_main

from rlkit import play, train
from rlkit.agents.base import Transition
from rlkit.config.dqn import HeadSettings, head_choice
from rlkit.errors import RlkitError
from rlkit.nets import DuelingHead, LinearHead, MLPBody
from rlkit.nets.noisy import NoisyLinear, noisy_layers, scaled_noise


def test_scaled_noise_is_sign_times_root() -> None:
    assert scaled_noise(torch.tensor([4.0, -9.0, 0.0, 0.25])).tolist() == [2.0, -3.0, 0.0, 0.5]


def test_noise_shapes_and_only_the_learnt_values_are_saved() -> None:
    layer = NoisyLinear(3, 2)
    layer.reset_noise()
    assert (layer.noise_in.shape, layer.noise_out.shape) == ((3,), (2,))
    assert {k: tuple(v.shape) for k, v in layer.state_dict().items()} == {
        "weight_mu": (2, 3), "weight_sigma": (2, 3), "bias_mu": (2,), "bias_sigma": (2,)}


def test_the_weight_noise_is_the_outer_product_of_the_factors() -> None:
    layer = NoisyLinear(3, 2)
    with torch.no_grad():
        layer.weight_mu.zero_(), layer.weight_sigma.fill_(2.0), layer.bias_sigma.fill_(1.0)
        layer.bias_mu.copy_(torch.tensor([0.1, 0.2]))
    layer.noise_in.copy_(torch.tensor([1.0, -2.0, 0.5]))
    layer.noise_out.copy_(torch.tensor([3.0, -1.0]))
    # weight = 2 * [3, -1]^T [1, -2, .5] = [[6, -12, 3], [-2, 4, -1]]; bias = [.1 + 3, .2 - 1] = [3.1, -.8]
    out = layer(torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[0.1, 0.2], [9.1, -2.8]]))


def test_the_same_seed_draws_the_same_noise() -> None:
    a, b = NoisyLinear(5, 4), NoisyLinear(5, 4)
    a.reset_noise(torch.Generator().manual_seed(7))
    b.reset_noise(torch.Generator().manual_seed(7))
    drawn = torch.randn(9, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.noise_in, b.noise_in) and torch.equal(a.noise_out, b.noise_out)
    assert torch.equal(a.noise_in, scaled_noise(drawn[:5])) and torch.equal(a.noise_out, scaled_noise(drawn[5:]))
    b.reset_noise(torch.Generator().manual_seed(8))
    assert not torch.equal(a.noise_in, b.noise_in)


def test_eval_mode_uses_the_mu_weights_only() -> None:
    layer = NoisyLinear(4, 3)
    layer.reset_noise(torch.Generator().manual_seed(0))
    x = torch.randn(6, 4)
    assert not torch.allclose(layer(x), x @ layer.weight_mu.T + layer.bias_mu)  # train mode: noisy
    layer.eval()
    assert torch.equal(layer(x), x @ layer.weight_mu.T + layer.bias_mu)


def test_initialisation_bounds() -> None:
    layer = NoisyLinear(16, 64, sigma0=0.5)  # p = 16: mu in [-1/4, 1/4], sigma = 0.5 / 4
    assert layer.weight_mu.abs().max() <= 0.25 and layer.bias_mu.abs().max() <= 0.25
    assert layer.weight_mu.abs().max() > 0.2  # spread over the interval, not a constant
    assert torch.equal(layer.weight_sigma, torch.full((64, 16), 0.125))
    assert torch.equal(layer.bias_sigma, torch.full((64,), 0.125))


def test_both_heads_take_noisy_layers_and_default_to_plain_ones() -> None:
    linear = HeadSettings(type="linear", noisy=True, sigma0=0.1).factory()(in_features=8, n_actions=3)
    dueling = HeadSettings(type="dueling", noisy=True).factory()(in_features=8, n_actions=3)
    assert isinstance(linear, LinearHead) and [m.weight_sigma[0, 0].item() for m in noisy_layers(linear)] == [
        pytest.approx(0.1 / 8 ** 0.5)]
    assert isinstance(dueling, DuelingHead) and len(noisy_layers(dueling)) == 2
    assert not noisy_layers(HeadSettings(type="dueling").factory()(in_features=8, n_actions=3))
    assert head_choice({"type": "linear"}) == HeadSettings() == head_choice(None)  # old configs: no noise


@pytest.mark.parametrize(("node", "message"), [
    ({"type": "linear", "noisy": True, "sigma0": 0.0}, "net.head.sigma0 must be > 0, got 0.0"),
    ({"type": "dueling", "noisy": "yes"}, "net.head.noisy"),
])
def test_bad_noisy_settings_are_refused(node, message) -> None:
    with pytest.raises(RlkitError, match=message):
        head_choice(node)


def test_the_agent_redraws_noise_to_explore_and_learn_and_acts_on_mu_otherwise(corridor) -> None:
    agent = build_dqn_for(corridor.observation_space, corridor.action_space, head=HeadSettings(noisy=True),
        net=functools.partial(MLPBody, hidden=(8,)), optimizer=functools.partial(torch.optim.Adam, lr=1e-3),
        epsilon_start=0.0, epsilon_end=0.0, learning_starts_steps=8, batch_size=4, train_every_steps=1)
    layer = noisy_layers(agent.q_net)[0]
    assert not agent.q_net.training and not layer.noise_in.any()  # greedy until it explores
    obs = corridor.reset(seed=0)[0]
    agent.act(obs, explore=True)
    first = layer.noise_in.clone()
    assert first.any() and not agent.q_net.training
    agent.act(obs, explore=True)
    assert not torch.equal(first, layer.noise_in)
    seen = layer.noise_in.clone()
    for _ in range(3):
        agent.policy().act(obs), agent.act(obs, explore=False)
    assert torch.equal(seen, layer.noise_in)  # greedy acting draws no noise
    q = agent.q_values(obs)
    assert np.allclose(q, agent.q_values(obs))
    x = agent.q_net.body(agent.q_net.inputs(torch.as_tensor(np.asarray([obs]))))
    assert np.allclose(q, (x @ layer.weight_mu.T + layer.bias_mu).detach().numpy()[0])
    target_layer = noisy_layers(agent.target_net)[0]
    for _ in range(9):
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, _ = corridor.step(action)
        agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, True))
        obs = corridor.reset()[0] if terminated or truncated else next_obs
    assert agent.updates >= 1 and target_layer.noise_in.any() and not agent.target_net.training


def test_a_noisy_cartpole_run_trains_without_epsilon_resumes_and_plays(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    code, out, err = run_main(train.main, "env=cartpole", "net.head.noisy=true", "agent.epsilon_start=0",
        "agent.epsilon_end=0", "total_steps=600", "agent.learning_starts_steps=200", "eval_every_steps=0",
        "final_eval_episodes=1", "progress=false", f"hydra.run.dir={run_dir}", capsys=capsys)
    assert code == 0, err
    code, out, err = run_main(train.main, f"resume={run_dir}", "total_steps=800", capsys=capsys)
    assert code == 0, err
    code, out, err = run_main(play.main, f"run={run_dir}", "episodes=1", "render=none", capsys=capsys)
    assert code == 0, err
    assert "dqn on cartpole after 800 steps" in out


@pytest.mark.slow
def test_a_compiled_noisy_update_matches_the_eager_one(corridor) -> None:
    """agent.compile=true with noisy layers: the noise is redrawn in place outside the compiled update, which reads it
    (tens of seconds to compile on a 2-core CPU, hence slow)."""
    agents = []
    for compile in (False, True):
        agent = build_dqn_for(corridor.observation_space, corridor.action_space, head=HeadSettings(noisy=True),
            net=functools.partial(MLPBody, hidden=(8,)), optimizer=functools.partial(torch.optim.Adam, lr=1e-2),
            epsilon_start=0.0, epsilon_end=0.0, learning_starts_steps=8, batch_size=4, train_every_steps=1,
            compile=compile)
        obs = corridor.reset(seed=0)[0]
        for _ in range(12):
            action = agent.act(obs, explore=True)
            next_obs, reward, terminated, truncated, _ = corridor.step(action)
            agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, True))
            obs = corridor.reset()[0] if terminated or truncated else next_obs
        agents.append(agent)
    eager, compiled = agents
    assert eager.updates == compiled.updates == 5
    for a, b in zip(eager.q_net.parameters(), compiled.q_net.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
