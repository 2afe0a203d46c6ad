"""python -m rlkit.train end to end for DQN: a short CartPole run, its checkpoint, and device errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.checkpoint import load_checkpoint, save_checkpoint
from rlkit.config.registry import build_agent

ROOT = Path(__file__).resolve().parents[2]


def run_train(*overrides: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rlkit.train", *overrides]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_short_cartpole_run_writes_a_checkpoint_play_can_rebuild(tmp_path: Path) -> None:
    done = run_train(
        "env=cartpole", "env.num_envs=2", "total_steps=600", "eval_every_steps=300", "eval_episodes=1",
        "final_eval_episodes=2", "agent.learning_starts_steps=200", "progress=false", "device=cpu",
        f"hydra.run.dir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr
    assert "agent=dqn device=cpu" in done.stdout
    checkpoint = load_checkpoint(tmp_path)
    assert (checkpoint["env"], checkpoint["agent"], checkpoint["step"]) == ("cartpole", "dqn", 600)
    env = gym.make("CartPole-v1")
    agent = build_agent(checkpoint["config"], observation_space=env.observation_space,
                        action_space=env.action_space, device=torch.device("cpu"), seed=0)
    agent.load_state_dict(checkpoint["agent_state"])
    assert agent.steps == 600 and agent.act(np.zeros(4, np.float32), explore=False) in (0, 1)
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_play_rebuilds_only_the_network_and_acts_as_the_full_agent(tmp_path: Path, monkeypatch, capsys) -> None:
    """Play acts and never learns: no optimizer, no replay, no target net; odd learning settings cannot stop it."""
    from conftest import compose_app

    import rlkit.config.dqn
    import rlkit.config.registry
    from rlkit.loop import evaluate
    from rlkit.runs.playback import load_policy, play
    from rlkit.runs.saved import read_saved_run

    done = run_train("env=cartpole", "total_steps=300", "agent.learning_starts_steps=100", "eval_every_steps=0",
                     "final_eval_episodes=1", "progress=false", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    data = load_checkpoint(tmp_path)
    env = gym.make("CartPole-v1")
    agent = build_agent(data["config"], observation_space=env.observation_space, action_space=env.action_space,
                        device=torch.device("cpu"), seed=0)
    agent.load_state_dict(data["agent_state"])
    expected_returns = evaluate(env, agent.policy(), episodes=2, seed=0).returns.tolist()

    data["config"]["agent"]["buffer_size"] = 10_000_000_000  # 428 GiB: train refuses it, play must not care
    data["config"]["optim"]["lr"] = -1.0  # torch.optim refuses it: play builds no optimizer
    save_checkpoint(tmp_path / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("kind", "format")})

    def refuse(*args, **kwargs):
        raise AssertionError("play built a part that learns")

    for name in ("build_replay", "DQNAgent", "ReplayBuffer"):
        monkeypatch.setattr(rlkit.config.dqn, name, refuse)
    monkeypatch.setattr(rlkit.config.dqn, "REPLAYS", {"transitions": refuse, "frames": refuse})
    monkeypatch.setattr(rlkit.config.registry, "optimizer_factory", refuse)
    assert play(compose_app("play", f"run={tmp_path}", "episodes=2", "render=none")) == expected_returns
    assert "episode 2: return" in capsys.readouterr().out

    policy = load_policy(read_saved_run(tmp_path, acting=True), env, device=torch.device("cpu"))
    obs_B = np.random.default_rng(0).uniform(-2.0, 2.0, size=(256, 4)).astype(np.float32)
    greedy = agent.act(obs_B, explore=False)
    assert 0 < greedy.sum() < 256  # both actions occur: the comparison can fail
    assert policy.act(obs_B).tolist() == greedy.tolist()
    assert [policy.act(obs) for obs in obs_B[:20]] == [agent.act(obs, explore=False) for obs in obs_B[:20]]
    np.testing.assert_array_equal(policy.q_values(obs_B), agent.q_values(obs_B))
    assert not any(hasattr(policy, part) for part in ("optimizer", "replay", "target_net"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_device_cuda_without_a_gpu_is_a_one_line_error(tmp_path: Path) -> None:
    done = run_train("env=cartpole", "device=cuda", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: device=cuda but no CUDA device is visible; use device=auto or device=cpu"


@pytest.mark.slow
def test_default_cartpole_run_reaches_475(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from rlkit.cli.app import conf_dir
    from rlkit.config.settings import plain_config
    from rlkit.runs.training import run

    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        overrides = ["env=cartpole", "seed=0", "eval_every_steps=0", "final_eval_episodes=20", "progress=false"]
        cfg = compose("train", overrides=overrides)
    result = run(plain_config(cfg), tmp_path, env_name="cartpole", agent_name="dqn")
    assert result.steps == 50_000
    assert result.final_eval is not None and result.final_eval.mean >= 475
