"""Every env x agent config composes and builds; command-line choices beat env defaults."""

from collections.abc import Iterator

import gymnasium as gym
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from conftest import compose_train
from rlkit.agents.dqn import DQNAgent
from rlkit.build import build_agent, optimizer_factory
from rlkit.cli import conf_dir
from rlkit.envs import make_env
from rlkit.errors import RlkitError
from rlkit.runtime import resolve_device
from rlkit.settings import plain_config

CONF = conf_dir()
ENVS = sorted(p.stem for p in (CONF / "env").glob("*.yaml") if p.stem != "gym")  # env=gym brings no env: test_own_env.py
AGENTS = sorted(p.stem for p in (CONF / "agent").glob("*.yaml"))


def env_agent_pairs():
    for env in ENVS:
        for agent in AGENTS:
            yield env, agent


@pytest.mark.parametrize("env_name,agent_name", list(env_agent_pairs()))
def test_every_env_agent_pair_composes_and_builds(env_name, agent_name, monkeypatch):
    monkeypatch.setattr("rlkit.replay.available_memory_bytes", lambda: 2**40)  # Atari's 1M-frame replay, on any machine
    cfg = compose_train(f"env={env_name}", f"agent={agent_name}")
    assert cfg.hydra.runtime.choices.env == env_name
    assert cfg.hydra.runtime.choices.agent == agent_name
    plain = plain_config(cfg)
    env = make_env(plain["env"])
    try:
        agent = build_agent(
            plain, observation_space=env.observation_space, action_space=env.action_space, device=resolve_device("cpu"), seed=0,
        )
    except RlkitError as exc:  # a tabular agent on a continuous env must say what to use instead
        assert "agent=dqn" in str(exc)
        return
    first = env.reset(seed=0)[0]
    assert env.action_space.contains(agent.act(first, explore=False))


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


@pytest.mark.parametrize("overrides", [("env=cartpole",), ("env=acrobot",), ("env=mountaincar",), ("env=taxi", "agent=dqn")])
def test_resolved_configs_rebuild_the_agent_as_play_does(config, overrides: tuple[str, ...]) -> None:
    stored = plain_config(config(*overrides, hydra_node=False))  # what a checkpoint keeps
    env = make_env(stored["env"])
    agent = build_agent(stored, observation_space=env.observation_space, action_space=env.action_space,
                        device=torch.device("cpu"), seed=0)
    assert isinstance(agent, DQNAgent)
    assert isinstance(env.action_space, gym.spaces.Discrete) and agent.n_actions == env.action_space.n
