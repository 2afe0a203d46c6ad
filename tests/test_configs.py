"""Config composition without running the app: env defaults, command-line precedence, tuned files, optimizers."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rlkit.agents import build_agent
from rlkit.agents.dqn import DQNAgent
from rlkit.envs import make_env
from rlkit.runtime import conf_dir

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
    assert cfg.agent._target_ == "rlkit.agents.dqn.DQNAgent" and cfg.agent.net._target_ == "rlkit.nets.MLPBody"


def test_the_command_line_beats_the_envs_choice_of_agent_and_net(config) -> None:
    assert choices(config("env=cartpole", "agent=q_learning"))[0] == "q_learning"
    cfg = config("env=cartpole", "net=cnn")
    assert choices(cfg) == ("dqn", "cnn") and cfg.agent.net._target_ == "rlkit.nets.CNNBody"
    assert config("env=cartpole", "agent.n_step=5").agent.n_step == 5  # beats the tuned file too


def test_tuned_file_applies_to_its_env_and_agent_only(config) -> None:
    cartpole = config("env=cartpole")
    assert cartpole.total_steps == 50_000 and list(cartpole.agent.net.hidden) == [128, 128]  # via net: ${net}
    taxi = config("env=taxi")
    assert choices(taxi)[0] == "q_learning" and taxi.agent._target_ == "rlkit.agents.tabular.QLearningAgent"
    taxi_dqn = config("env=taxi", "agent=dqn")
    assert taxi_dqn.hydra.runtime.choices.tuned == "taxi_dqn" and taxi_dqn.agent._target_ == "rlkit.agents.dqn.DQNAgent"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_option_builds_a_torch_optimizer(config, name: str) -> None:
    cfg = config("env=cartpole", f"optim={name}")
    optimizer = instantiate(cfg.agent.optimizer)([torch.nn.Parameter(torch.zeros(2))])
    assert type(optimizer) is OPTIMIZERS[name]


@pytest.mark.parametrize("overrides", [("env=cartpole",), ("env=acrobot",), ("env=mountaincar",), ("env=taxi", "agent=dqn")])
def test_resolved_configs_rebuild_the_agent_as_play_does(config, overrides: tuple[str, ...]) -> None:
    stored = OmegaConf.to_container(config(*overrides, hydra_node=False), resolve=True)  # what a checkpoint keeps
    env = make_env(stored["env"])
    agent = build_agent(stored["agent"], observation_space=env.observation_space, action_space=env.action_space,
                        device=torch.device("cpu"), seed=0)
    assert isinstance(agent, DQNAgent)
    assert isinstance(env.action_space, gym.spaces.Discrete) and agent.n_actions == env.action_space.n
