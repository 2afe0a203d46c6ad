"""Shared fixtures: tiny value-tagged envs whose numbers expose off-by-one and episode-boundary bugs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


class CountingEnv(gym.Env):
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


gym.register("rlkit-test/Counting-v0", entry_point=CountingEnv)


@pytest.fixture
def counting_env() -> CountingEnv:
    return CountingEnv()


def run_cli(module: str, *args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd or REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
