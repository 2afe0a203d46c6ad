"""A user's own envs, registered with gymnasium when this module is imported: `env=gym env.id=tests.own_env:<Id>`.

Each one has the spaces of one case of rlkit's choice of agent and net (rlkit.envs.builders.natural_parts).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class OwnCorridor(gym.Env):
    """Cells 0..length as Discrete observations; action 1 walks right, 0 left; reward 1 on reaching the last cell.

    The optimal greedy return is 1.0 (in `length` steps); a policy that never gets there scores 0 at the time limit.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, length: int = 4, render_mode: str | None = None) -> None:
        self.length, self.render_mode = length, render_mode
        self.observation_space = gym.spaces.Discrete(length + 1)
        self.action_space = gym.spaces.Discrete(2)
        self.cell = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.cell = 0
        return self.cell, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        self.cell = min(self.cell + 1, self.length) if int(action) == 1 else max(self.cell - 1, 0)
        done = self.cell == self.length
        return self.cell, float(done), done, False, {}

    def render(self) -> str:
        return "".join("A" if i == self.cell else "." for i in range(self.length + 1)) + "\n"


class OwnPicture(OwnCorridor):
    """The corridor as a 36x36 RGB picture, height x width x channels (36: the smallest the Nature CNN reads);
    the agent's cell lights columns 8 * cell to 8 * cell + 3 red."""

    def __init__(self, length: int = 4, render_mode: str | None = None) -> None:
        super().__init__(length, render_mode)
        self.observation_space = gym.spaces.Box(0, 255, (36, 36, 3), np.uint8)

    def _picture(self) -> np.ndarray:
        picture = np.zeros((36, 36, 3), np.uint8)
        picture[:, 8 * self.cell : 8 * self.cell + 4, 0] = 255
        return picture

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._picture(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        _, reward, terminated, truncated, info = super().step(action)
        return self._picture(), reward, terminated, truncated, info


class OwnSlider(OwnCorridor):
    """A continuous action (how far to move), which rlkit's agents cannot take."""

    def __init__(self, length: int = 4, render_mode: str | None = None) -> None:
        super().__init__(length, render_mode)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


gym.register("OwnCorridor-v0", entry_point=OwnCorridor, max_episode_steps=20)
gym.register("OwnPicture-v0", entry_point=OwnPicture, max_episode_steps=20)
gym.register("OwnSlider-v0", entry_point=OwnSlider, max_episode_steps=20)
