"""Shared fixtures: tiny value-tagged envs whose numbers expose off-by-one and episode-boundary bugs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)  # as rlkit.train does by default (torch_threads=1): small nets, shared cores


class DiscreteCountingEnv(gym.Env):
    """obs = step index within the episode (0, 1, 2, ...); reward = that index; terminates after `length` steps."""

    def __init__(self, length: int = 3, truncate: bool = False) -> None:
        self.length = length
        self.truncate = truncate
        self.observation_space = gym.spaces.Discrete(length + 1)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self.t, {}

    def step(self, action):
        reward = float(self.t)
        self.t += 1
        done = self.t >= self.length
        return self.t, reward, done and not self.truncate, done and self.truncate, {}


gym.register("rlkit-test/Counting-v0", entry_point=DiscreteCountingEnv)


def run_python(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python args...` with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run([sys.executable, *args], cwd=cwd or REPO, env=env, capture_output=True, text=True,
        timeout=timeout)


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` with this checkout first on the path."""
    return run_python("-m", module, *args, cwd=cwd, timeout=timeout)


def run_cli_into_closed_pipe(module: str, *args: str, timeout: float = 180) -> tuple[int, str]:
    """Run `python -m <module> args... | true` as a shell would: stdout is a pipe whose reader has gone before the
    first line. Returns (exit status, stderr)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "SDL_VIDEODRIVER": "dummy"}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args], cwd=REPO, env=env, stdout=write_end, stderr=subprocess.PIPE,
                text=True,
            timeout=timeout,
        )
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


def run_main(main, *args: str, capsys: pytest.CaptureFixture[str] | None) -> tuple[int, str, str]:
    """Run an entry point's main() in this process as `python -m ... args` would: (exit status, stdout, stderr).
    capsys=None (module fixtures, where capsys is function-scoped) leaves the output on the terminal: ("", "")."""
    argv, root = sys.argv, logging.getLogger()
    handlers, level = list(root.handlers), root.level  # Hydra's job logging would outlive the captured stderr
    sys.argv = ["rlkit", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
        root.handlers[:], root.level = handlers, level
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err


def edit_checkpoint(run_dir: Path, edit: Callable[[dict], None]) -> None:
    """Rewrite a checkpoint as an attacker or a broken copy would, with a valid SHA-256, so that the edit is what is
    judged."""
    from rlkit.checkpoint import load_checkpoint, save_checkpoint

    data = load_checkpoint(run_dir)
    edit(data)
    for key in ("kind", "format"):
        data.pop(key)
    save_checkpoint(run_dir / "checkpoint.pt", data)


def compose_train(*overrides: str):
    """The config `python -m rlkit.train <overrides>` would run, with its hydra node (choices), without running it."""
    from hydra import compose, initialize_config_dir

    from rlkit.cli.app import conf_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


class CountingEnv(gym.Env):
    """Observes the step count t (0 after reset); terminates after `length` steps; reward t+1 for step t."""

    def __init__(self, length: int = 3) -> None:
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return np.array([self.t], dtype=np.float32), float(self.t), self.t >= self.length, False, {}


class Corridor(gym.Env):
    """Walk right from cell 0 to cell `length` for reward 1 (terminated); left stays put. Optimal: 'length' rights."""

    def __init__(self, length: int = 4, max_steps: int = 20) -> None:
        self.length, self.max_steps = length, max_steps
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = self.steps = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.pos / self.length], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos = self.steps = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.steps += 1
        self.pos = min(self.pos + 1, self.length) if int(action) == 1 else max(self.pos - 1, 0)
        terminated = self.pos == self.length
        return self._obs(), float(terminated), terminated, self.steps >= self.max_steps and not terminated, {}


@pytest.fixture
def counting_env() -> CountingEnv:
    return CountingEnv()


@pytest.fixture
def corridor() -> Corridor:
    return Corridor()


# FrozenLake 4x4 without slipping: the greedy path 0 -down-> 4 -down-> 8 -right-> 9 -down-> 13 -right-> 14 -right-> 15.
LAKE_PATH = [(0, 1), (4, 1), (8, 2), (9, 1), (13, 2), (14, 2)]


def lake_table() -> np.ndarray:
    """A hand-set FrozenLake Q-table whose greedy policy walks LAKE_PATH to the goal in 6 steps."""
    table = np.random.default_rng(3).uniform(-1.0, 0.5, size=(16, 4)).round(2)
    for state, action in LAKE_PATH:
        table[state, action] = 1.0 + state / 10
    return table


def tabular_run(run_dir: Path, *overrides: str, table: np.ndarray | None = None) -> Path:
    """A tiny tabular run trained in this process; with `table`, its checkpoint then holds exactly those Q-values."""
    from rlkit.checkpoint import load_checkpoint, save_checkpoint
    from rlkit.runs.training import run

    fast = ["total_steps=500", "eval_every_steps=0", "final_eval_episodes=1", "progress=false", "log_every_steps=250"]
    cfg = compose_app("train", *fast, *overrides)
    run(cfg, run_dir, env_name=str(cfg.env.name), agent_name="q_learning")
    if table is not None:
        data = load_checkpoint(run_dir)
        data["agent_state"]["q_table"] = torch.tensor(table, dtype=torch.float64)
        save_checkpoint(run_dir / "checkpoint.pt", data)
    return run_dir


def compose_app(config_name: str, *overrides: str):
    """The config `python -m rlkit.<config_name> <overrides>` hands to its function (no hydra node): for in-process
    runs."""
    from hydra import compose, initialize_config_dir

    from rlkit.cli.app import conf_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def dqn_settings_for(*, sampler: Any = None, replay: str = "transitions", head: str = "linear", **values: Any):
    """The checked DQNSettings a DQN node with these values (today's keys) gives: the one pass build_agent runs."""
    from rlkit.config.dqn import dqn_settings

    return dqn_settings(values, sampler=sampler, replay=replay, head=head)


def build_dqn_for(observation_space: gym.Space, action_space: gym.Space, *, net: Any, optimizer: Any, num_envs: int = 1,
                  seed: int = 0, device: Any = "cpu", **node: Any):
    """rlkit.config.dqn.build_dqn from a DQN node's values, checked as build_agent checks them."""
    from rlkit.config.dqn import build_dqn

    return build_dqn(dqn_settings_for(**node), observation_space=observation_space, action_space=action_space,
                     device=torch.device(device), seed=seed, num_envs=num_envs, net=net, optimizer=optimizer)
