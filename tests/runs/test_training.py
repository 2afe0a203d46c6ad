"""python -m rlkit.train end to end for DQN: a short CartPole run, its checkpoint, and device errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.config.registry import build_agent, check_parts
from rlkit.checkpoint import load_checkpoint, save_checkpoint
from rlkit.runs.playback import ACTING_REPLAY_ROWS, for_acting

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


def test_play_builds_a_small_replay_whatever_the_run_kept(tmp_path: Path) -> None:
    """A 1M-step Pong run keeps 7 GB of replay; play only acts, so it must not ask the RAM for it (issue 14)."""
    def acting(agent: dict) -> Any:
        return for_acting(check_parts({"agent": agent, "net": {"type": "mlp"}, "optim": {"type": "adam"}})).settings

    big = acting({"type": "dqn", "buffer_size": 1_000_000, "batch_size": 32})
    assert (big.buffer_size, big.batch_size) == (ACTING_REPLAY_ROWS, 32)
    assert acting({"type": "dqn", "buffer_size": 5000, "batch_size": 4096}).buffer_size == 4096
    assert acting({"type": "dqn", "buffer_size": 500}).buffer_size == 500
    assert acting({"type": "q_learning", "gamma": 0.9}) == {"gamma": 0.9}
    done = run_train("env=cartpole", "total_steps=300", "agent.learning_starts_steps=100", "eval_every_steps=0",
                     "final_eval_episodes=1", "progress=false", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 0, done.stderr
    data = load_checkpoint(tmp_path)
    data["config"]["agent"]["buffer_size"] = 10_000_000_000  # 428 GiB: train refuses it, play must not care
    save_checkpoint(tmp_path / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("kind", "format")})
    played = subprocess.run([sys.executable, "-m", "rlkit.play", f"run={tmp_path}", "episodes=1", "render=none"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert played.returncode == 0 and "episode 1" in played.stdout, played.stderr


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
