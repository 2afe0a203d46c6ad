"""Every env x agent config composes and builds; command-line choices beat env defaults."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlkit.agents import build_agent
from rlkit.envs import make_env
from rlkit.errors import RlkitError
from rlkit.runtime import conf_dir, resolve_device

CONF = conf_dir()
ENVS = sorted(p.stem for p in (CONF / "env").glob("*.yaml"))
AGENTS = sorted(p.stem for p in (CONF / "agent").glob("*.yaml"))


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def env_agent_pairs():
    for env in ENVS:
        for agent in AGENTS:
            yield env, agent


@pytest.mark.parametrize("env_name,agent_name", list(env_agent_pairs()))
def test_every_env_agent_pair_composes_and_builds(env_name, agent_name):
    cfg = compose_train(f"env={env_name}", f"agent={agent_name}")
    assert cfg.hydra.runtime.choices.env == env_name
    assert cfg.hydra.runtime.choices.agent == agent_name
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra")
    env = make_env(plain["env"])
    try:
        agent = build_agent(
            plain["agent"], observation_space=env.observation_space, action_space=env.action_space,
            device=resolve_device("cpu"), seed=0,
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
