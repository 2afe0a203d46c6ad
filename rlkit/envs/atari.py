"""Atari 2600 games through ale-py and gymnasium's wrappers, with the Nature DQN preprocessing as config flags."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, SupportsFloat, get_type_hints

import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, ClipReward, FrameStackObservation, RecordEpisodeStatistics, TimeLimit

from rlkit.envs.builders import EnvBuilder
from rlkit.errors import RlkitError

EMULATOR_FPS = 60


@cache
def ale_env_ids() -> dict[str, str]:
    """{normalised game name: 'ALE/<Game>-v5'} for every ROM the installed ale-py ships."""
    try:
        import ale_py
    except ImportError:
        raise RlkitError('Atari envs need ale-py: pip install "rlkit[atari]"') from None
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no "A.L.E: Arcade Learning Environment" banner per env
    gym.register_envs(ale_py)
    matches = (re.fullmatch(r"ALE/(\w+)-v5", env_id) for env_id in gym.envs.registry)
    return {_normalise(match.group(1)): match.group(0) for match in matches if match}


def _normalise(game: str) -> str:
    return re.sub(r"[^a-z0-9]", "", game.lower())


def atari_env_id(game: str) -> str:
    """'Pong', 'pong' or 'montezuma_revenge' -> the ALE v5 id; an unknown game names close and valid ones."""
    ids = ale_env_ids()
    env_id = ids.get(_normalise(str(game)))
    if env_id is not None:
        return env_id
    names = sorted(i.split("/")[1].removesuffix("-v5") for i in ids.values())
    close = difflib.get_close_matches(str(game), names, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    popular = ", ".join(n for n in names if n in ("Breakout", "Pong", "SpaceInvaders", "Seaquest", "Qbert"))
    raise RlkitError(f"env.game={game} is not an Atari ROM that ale-py ships; {hint}valid names include {popular}, "
        f"... ({len(names)} in all: {', '.join(names[:6])}, ...)")


class LifeLossTerminal(gym.Wrapper):
    """A lost life ends the episode for learning while the game plays on (Mnih et al., 2015); unlike gymnasium's
    terminal_on_life_loss, reset() after a lost life takes one no-op step instead of restarting the whole game."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = terminated or truncated
        lives, previous = self.env.unwrapped.ale.lives(), self._lives
        self._lives = lives
        return obs, reward, terminated or lives < previous, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if self._game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:  # the no-op itself ended the game
                obs, info = self.env.reset(options=options)
        self._game_over = False
        self._lives = self.env.unwrapped.ale.lives()
        return obs, info


def make_atari_env(
    *, game: str, frame_skip: int, screen_size: int, frame_stack: int, noop_max: int, sticky_actions: bool,
    terminal_on_life_loss: bool, clip_rewards: bool, full_action_space: bool, max_episode_steps: int | None,
    train: bool, render_mode: str | None = None,
) -> gym.Env:
    """One Atari env copy as conf/env/atari.yaml describes it; `train` adds RecordEpisodeStatistics and the
    training-only signals (terminal_on_life_loss, clip_rewards), which evaluation and play never see."""
    env = gym.make(  # frameskip=1: AtariPreprocessing skips frames (and max-pools the last two)
        atari_env_id(game), frameskip=1, repeat_action_probability=0.25 if sticky_actions else 0.0,
        full_action_space=full_action_space, render_mode=render_mode, disable_env_checker=True)
    env = AtariPreprocessing(  # terminal_on_life_loss=False: see LifeLossTerminal
        env, noop_max=noop_max, frame_skip=frame_skip, screen_size=screen_size, terminal_on_life_loss=False)
    if max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=max_episode_steps)
    if train:
        env = RecordEpisodeStatistics(env)  # below the training signals: whole games, unclipped rewards
        if terminal_on_life_loss:
            env = LifeLossTerminal(env)
        if clip_rewards:
            env = ClipReward(env, -1.0, 1.0)
    env = FrameStackObservation(env, frame_stack, padding_type="zero")  # frame replay relies on the zero padding
    # One rendered frame per agent step: a video plays at real speed at 60 / frame_skip frames per second.
    env.metadata = {**env.metadata, "render_fps": EMULATOR_FPS / frame_skip}
    return env


# The Atari settings of an env node are make_atari_env's keyword arguments, passed as they are, with their types.
ATARI_SETTINGS = {
    k: v for k, v in get_type_hints(make_atari_env).items() if k not in ("train", "render_mode", "return")
}


def _make_atari(env_cfg: Mapping[str, Any], *, train: bool, render_mode: str | None) -> gym.Env:
    return make_atari_env(**{key: env_cfg.get(key) for key in ATARI_SETTINGS}, train=train, render_mode=render_mode)


ATARI_BUILDER = EnvBuilder(
    make=_make_atari, settings=ATARI_SETTINGS, required=tuple(k for k in ATARI_SETTINGS if k != "max_episode_steps"),
    check_stored=lambda env_cfg, origin: atari_env_id(str(env_cfg["game"])),  # a ROM ale-py ships, or close names
)
