"""Catch: a tiny image game that goes through the Atari image path (frame stack, frame replay, /255, CNNBody).

A ball falls one cell per step down a 7x7 grid drawn as 12x12-pixel blocks on an 84x84 grey frame; the paddle
on the bottom row moves left, stays or moves right. When the ball reaches the bottom row the episode ends:
+1 if the paddle is under it, -1 if not. Episodes last 4 to 6 steps and every start can be caught, so a
policy that reads the frames scores +1; uniformly random play scores -0.71 (`random_return()`, 20,000 episodes).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FrameStackObservation

CELLS = 7
CELL_PX = 12  # 7 cells x 12 px = 84 px, the Atari frame size
BALL, PADDLE = 255, 128  # grey levels: the two objects differ, as Pong's ball and paddles do


class Catch(gym.Env):
    """One 84x84 uint8 frame per step; actions 0 left, 1 stay, 2 right; the paddle starts in the middle."""

    metadata = {"render_modes": []}
    observation_space = gym.spaces.Box(0, 255, (CELLS * CELL_PX, CELLS * CELL_PX), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def __init__(self) -> None:
        self.ball_row = self.ball_col = self.paddle = 0

    def frame(self) -> np.ndarray:
        grid = np.zeros((CELLS, CELLS), np.uint8)
        grid[CELLS - 1, self.paddle] = PADDLE
        grid[self.ball_row, self.ball_col] = BALL  # over the paddle when caught
        return np.kron(grid, np.ones((CELL_PX, CELL_PX), np.uint8))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        # Starting 4 to 6 rows up puts vector env copies out of step, and leaves time to reach any column.
        self.ball_row, self.ball_col = int(self.np_random.integers(3)), int(self.np_random.integers(CELLS))
        self.paddle = CELLS // 2
        return self.frame(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.paddle = int(np.clip(self.paddle + int(action) - 1, 0, CELLS - 1))
        self.ball_row += 1
        landed = self.ball_row == CELLS - 1
        reward = (1.0 if self.paddle == self.ball_col else -1.0) if landed else 0.0
        return self.frame(), reward, landed, False, {}


def make_catch(frame_stack: int = 4) -> gym.Env:
    """Catch with the Atari frame stack: the newest 4 frames, zero before an episode's first."""
    return FrameStackObservation(Catch(), frame_stack, padding_type="zero")


def random_return(episodes: int = 20_000, seed: int = 0) -> float:
    """Mean return of uniformly random actions."""
    env, rng = Catch(), np.random.default_rng(seed)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, done, _, _ = env.step(int(rng.integers(3)))
            total += reward
    return total / episodes
