"""Every env x agent config composes and builds; command-line choices beat env defaults."""

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import compose_train
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from rlkit.agents.dqn import DQNAgent
from rlkit.agents.tabular import QLearningAgent
from rlkit.cli.app import conf_dir
from rlkit.cli.overrides import checked_data_overrides, compose_checked, parse_overrides
from rlkit.config.registry import build_agent, check_acting_parts, optimizer_factory
from rlkit.config.settings import plain_config
from rlkit.envs.builders import make_env
from rlkit.errors import RlkitError
from rlkit.runtime import resolve_device
from rlkit.train import CONFIG_GROUPS

CONF = conf_dir()
# env=gym brings no env: test_own_env.py
ENVS = sorted(p.stem for p in (CONF / "env").glob("*.yaml") if p.stem != "gym")
AGENTS = sorted(p.stem for p in (CONF / "agent").glob("*.yaml"))


CONTROL_ENVS = ("acrobot", "cartpole", "mountaincar")  # Box observations
ATARI_ENVS = ("atari", "breakout", "pong")  # Box frames, and DQN's replay and schedule settings in their tuned files
TOY_TEXT_ENVS = ("cliffwalking", "frozenlake", "frozenlake8x8", "taxi")  # Discrete observations
MINATAR_ENVS = ("minatar",)  # Box bool grids, from the minatar extra
# The pairs that must be refused, with the whole message: the fix named, nothing else accepted as "some error".
REFUSED = {
    **{
        (env, "q_learning"): r"^agent=q_learning needs a discrete observation space, but the env has Box\(.+\); "
                             r"use agent=dqn \(a network instead of a table\)$"
        for env in (*CONTROL_ENVS, *MINATAR_ENVS)
    },
    **{
        (env, "q_learning"): r"^agent\.batch_size, .+ are not a setting of agent=q_learning; agent=dqn takes them$"
        for env in ATARI_ENVS
    },
}
BUILT = {"dqn": DQNAgent, "q_learning": QLearningAgent}


def test_every_env_is_sorted_into_a_kind_and_every_agent_is_known():
    """A new env or agent must say here whether each pair builds, so the pair test below cannot pass by accident."""
    assert sorted((*CONTROL_ENVS, *ATARI_ENVS, *TOY_TEXT_ENVS, *MINATAR_ENVS)) == ENVS
    assert sorted(BUILT) == AGENTS


def build_pair(env_name: str, agent_name: str):
    if env_name in MINATAR_ENVS:
        pytest.importorskip("minatar")
    cfg = compose_train(f"env={env_name}", f"agent={agent_name}")
    assert (cfg.hydra.runtime.choices.env, cfg.hydra.runtime.choices.agent) == (env_name, agent_name)
    plain = plain_config(cfg)
    env = make_env(plain["env"])
    agent = build_agent(plain, observation_space=env.observation_space, action_space=env.action_space,
        device=resolve_device("cpu"), seed=0)
    return env, agent


@pytest.mark.parametrize("env_name,agent_name", [(e, a) for e in ENVS for a in AGENTS if (e, a) not in REFUSED])
def test_every_env_agent_pair_not_refused_composes_and_builds(env_name, agent_name, monkeypatch):
    monkeypatch.setattr("rlkit.replay.buffer.available_memory_bytes",
        lambda: 2**40)  # Atari's 1M-frame replay, on any machine
    env, agent = build_pair(env_name, agent_name)
    assert type(agent) is BUILT[agent_name]
    first = env.reset(seed=0)[0]
    assert env.action_space.contains(agent.act(first, explore=False))


@pytest.mark.parametrize("env_name,agent_name", sorted(REFUSED))
def test_a_tabular_agent_on_an_env_without_discrete_states_is_refused_naming_the_fix(env_name, agent_name):
    with pytest.raises(RlkitError, match=REFUSED[env_name, agent_name]):
        build_pair(env_name, agent_name)


@pytest.mark.parametrize("env_name", TOY_TEXT_ENVS)
def test_q_learning_says_gamma_as_dqn_does(env_name):
    """Issue 14: one name for one thing; conf/agent/q_learning.yaml and every tuned file say gamma."""
    agent = compose_train(f"env={env_name}").agent
    assert (agent.type, agent.gamma, "discount" in agent) == ("q_learning", 0.99, False)


@pytest.mark.parametrize("env_name", ["taxi", "cartpole"])
def test_the_old_name_agent_discount_is_refused_naming_agent_gamma(env_name):
    overrides = parse_overrides([f"env={env_name}", "agent.discount=0.5"])
    with pytest.raises(RlkitError,
            match=r"^unknown key agent\.discount; it is called agent\.gamma now: agent\.gamma=<value>$"):
        compose_checked(CONF, "train", overrides, groups=CONFIG_GROUPS, entry="rlkit.train")


def test_a_recorded_agent_discount_is_read_as_agent_gamma():
    """Run folders recorded before the rename resume: their overrides.yaml may say agent.discount=0.9."""
    read = checked_data_overrides(["env=taxi", "agent.discount=0.9", "agent.discount_x=1"], origin="overrides.yaml")
    assert [o.input_line for o in read] == ["env=taxi", "agent.gamma=0.9", "agent.discount_x=1"]


def test_taxi_tuned_values_apply():
    cfg = compose_train("env=taxi")
    assert cfg.agent.learning_rate == 1.0 and cfg.total_steps == 60000 and cfg.final_eval_episodes == 1000


def test_command_line_value_beats_tuned_value():
    cfg = compose_train("env=taxi", "agent.learning_rate=0.3", "total_steps=123")
    assert cfg.agent.learning_rate == 0.3 and cfg.total_steps == 123


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "mps"])
def test_device_group(device):
    assert compose_train(f"device={device}").device.name == device


def test_run_dir_names_env_and_agent():
    cfg = compose_train("env=frozenlake")
    run_dir = OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"]
    assert run_dir.startswith("runs/${env.name}/${hydra:runtime.choices.agent}/")
    assert cfg.env.name == "frozenlake" and cfg.hydra.runtime.choices.agent == "q_learning"


OPTIMIZERS = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
              "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta}


@pytest.fixture(scope="module")
def config() -> Iterator:
    def _compose(*overrides: str, hydra_node: bool = True) -> DictConfig:
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_node)

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        yield _compose


def choices(cfg: DictConfig) -> tuple[str, str]:
    return cfg.hydra.runtime.choices.agent, cfg.hydra.runtime.choices.net


@pytest.mark.parametrize("env", ["cartpole", "acrobot", "mountaincar"])
def test_control_envs_pick_dqn_on_an_mlp_with_their_tuned_values(config, env: str) -> None:
    cfg = config(f"env={env}")
    assert choices(cfg) == ("dqn", "mlp")
    assert cfg.hydra.runtime.choices.tuned == f"{env}_dqn"
    assert cfg.agent.type == "dqn" and cfg.net.type == "mlp" and "net" not in cfg.agent  # side by side, not nested


def test_the_command_line_beats_the_envs_choice_of_agent_and_net(config) -> None:
    assert choices(config("env=cartpole", "agent=q_learning"))[0] == "q_learning"
    cfg = config("env=cartpole", "net=cnn")
    assert choices(cfg) == ("dqn", "cnn") and cfg.net.type == "cnn"
    assert config("env=cartpole", "agent.n_step=5").agent.n_step == 5  # beats the tuned file too


def test_tuned_file_applies_to_its_env_and_agent_only(config) -> None:
    cartpole = config("env=cartpole")
    assert cartpole.total_steps == 50_000 and list(cartpole.net.hidden) == [128, 128]
    taxi = config("env=taxi")
    assert choices(taxi)[0] == "q_learning" and taxi.agent.type == "q_learning"
    taxi_dqn = config("env=taxi", "agent=dqn")
    assert taxi_dqn.hydra.runtime.choices.tuned == "taxi_dqn" and taxi_dqn.agent.type == "dqn"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_option_builds_a_torch_optimizer(config, name: str) -> None:
    cfg = config("env=cartpole", f"optim={name}")
    optimizer = optimizer_factory(plain_config(cfg)["optim"])([torch.nn.Parameter(torch.zeros(2))])
    assert type(optimizer) is OPTIMIZERS[name]


@pytest.mark.parametrize(
    "overrides", [("env=cartpole",), ("env=cartpole", "net.head.type=dueling"), ("env=acrobot",), ("env=mountaincar",),
        ("env=taxi", "agent=dqn")]
)
def test_resolved_configs_rebuild_the_agent_and_the_policy_play_builds(config, overrides: tuple[str, ...]) -> None:
    from rlkit.config.policies import build_policy

    stored = plain_config(config(*overrides, hydra_node=False))  # what a checkpoint keeps
    env = make_env(stored["env"])
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space}
    agent = build_agent(stored, **spaces, device=torch.device("cpu"), seed=0)
    assert isinstance(agent, DQNAgent)
    assert isinstance(env.action_space, gym.spaces.Discrete) and agent.n_actions == env.action_space.n
    policy = build_policy(check_acting_parts(stored), agent.state_dict(), **spaces, device=torch.device("cpu"))
    assert type(policy.q_net.head).__name__ == ("DuelingHead" if "net.head.type=dueling" in overrides else "LinearHead")
    assert type(policy.q_net.head) is type(agent.q_net.head)
    obs_B = np.stack([env.observation_space.sample() for _ in range(64)])
    np.testing.assert_array_equal(policy.q_values(obs_B), agent.q_values(obs_B))
