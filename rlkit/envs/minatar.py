"""MinAtar's five 10x10 games (Young & Tian 2019, arXiv:1903.03176) through its gymnasium envs, observations as
bool grids channels first (the DQN's Scale input makes them 0/1 floats) and drawn one colour per channel."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, get_type_hints

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordEpisodeStatistics, TimeLimit

from rlkit.envs.builders import GREEDY_EPISODE_STEPS, EnvBuilder, GreedyEpisodeCap
from rlkit.errors import RlkitError
from rlkit.plain import show

GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
CELL_PIXELS = 16  # a 10x10 grid drawn 160x160
DISPLAY_FPS = 20  # MinAtar's own display shows a frame for 50 ms


@cache
def _register_minatar() -> None:
    """gymnasium 1.x no longer reads MinAtar's plugin entry point, so its ids exist only once register_envs ran."""
    try:
        import minatar.gym
    except ImportError:
        raise RlkitError('MinAtar envs need minatar: pip install "rlkit[minatar]"') from None
    if "MinAtar/Breakout-v1" not in gym.registry:
        minatar.gym.register_envs()


def minatar_env_id(game: str) -> str:
    """'space_invaders' -> 'MinAtar/SpaceInvaders-v1'; its action set is chosen by a keyword (-v0 only warns that
    it is out of date)."""
    if game not in GAMES:
        raise RlkitError(f"env.game={show(game)} is not a MinAtar game; choose one of: {', '.join(GAMES)}")
    _register_minatar()
    return f"MinAtar/{game.title().replace('_', '')}-v1"


def channel_colours(n_channels: int) -> np.ndarray:
    """[n_channels + 1, 3] uint8: black for an empty cell, then MinAtar's display palette (seaborn's "cubehelix",
    which samples matplotlib's cubehelix map at n evenly spaced inner points)."""
    from matplotlib import colormaps

    inner = colormaps["cubehelix"](np.linspace(0, 1, n_channels + 2)[1:-1])[:, :3]
    return np.round(np.vstack([np.zeros(3), inner]) * 255).astype(np.uint8)


def draw_grid(grid_CHW: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """A bool [C, 10, 10] grid as an RGB image, each cell the colour of its highest channel set, as MinAtar draws it."""
    channel_HW = np.max(grid_CHW * np.arange(1, len(grid_CHW) + 1)[:, None, None], axis=0)
    return np.kron(colours[channel_HW], np.ones((CELL_PIXELS, CELL_PIXELS, 1), dtype=np.uint8))


class GridChannelsFirst(gym.ObservationWrapper):
    """MinAtar's bool [10, 10, C] grids as [C, 10, 10], the layout the CNN body reads, kept bool in replay (1 byte
    a cell); rgb_array draws them as uint8 pixels large enough to watch (minatar's own is 10x10 floats)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape
        self.observation_space = gym.spaces.Box(0, 1, (channels, height, width), dtype=bool)
        self.metadata = {**env.metadata, "render_fps": DISPLAY_FPS}
        self._colours = channel_colours(channels) if env.render_mode == "rgb_array" else None

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0))

    def render(self) -> Any:
        if self._colours is None:
            return self.env.render()
        return draw_grid(self.observation(self.env.unwrapped.game.state()), self._colours)


def make_minatar_env(
    *, game: str, sticky_action_prob: float, difficulty_ramping: bool, minimal_action_set: bool,
    max_episode_steps: int | None, train: bool, render_mode: str | None = None,
) -> gym.Env:
    """One MinAtar env copy as conf/env/minatar.yaml describes it; training copies record episode statistics, the
    others end at GREEDY_EPISODE_STEPS (MinAtar's games have no time limit)."""
    if not 0.0 <= sticky_action_prob <= 1.0:
        raise RlkitError(f"env.sticky_action_prob must be in [0, 1], got {sticky_action_prob}")
    env = gym.make(minatar_env_id(game), use_minimal_action_set=minimal_action_set,
        sticky_action_prob=float(sticky_action_prob), difficulty_ramping=difficulty_ramping, render_mode=render_mode,
        disable_env_checker=True)
    env = GridChannelsFirst(env)
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=max_episode_steps)
    if train:
        return RecordEpisodeStatistics(env)
    return env if max_episode_steps is not None else GreedyEpisodeCap(env, max_episode_steps=GREEDY_EPISODE_STEPS)


# The MinAtar settings of an env node are make_minatar_env's keyword arguments, passed as they are, with their types.
MINATAR_SETTINGS = {
    k: v for k, v in get_type_hints(make_minatar_env).items() if k not in ("train", "render_mode", "return")
}


def _make_minatar(env_cfg: Mapping[str, Any], *, train: bool, render_mode: str | None) -> gym.Env:
    return make_minatar_env(**{key: env_cfg.get(key) for key in MINATAR_SETTINGS}, train=train,
        render_mode=render_mode)


MINATAR_BUILDER = EnvBuilder(
    make=_make_minatar, settings=MINATAR_SETTINGS,
    required=tuple(k for k in MINATAR_SETTINGS if k != "max_episode_steps"),
    check_stored=lambda env_cfg, origin: minatar_env_id(str(env_cfg["game"])),
)
