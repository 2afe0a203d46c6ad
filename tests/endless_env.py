"""An env with no time limit whose greedy policy never ends an episode: `env=gym env.id=tests.endless_env:Endless-v0`,
for the greedy episode cap and for signals that arrive during an evaluation."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class Endless(gym.Env):
    """One state; action 1 ends the episode for reward -1, action 0 stays for reward 0. Q-learning learns to stay, so
    its greedy episodes never end but at a cap."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(1)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        leaves = int(action) == 1
        return 0, -1.0 if leaves else 0.0, leaves, False, {}

    def render(self) -> str:
        return "endless\n"


gym.register("Endless-v0", entry_point=Endless)  # no max_episode_steps: no time limit
