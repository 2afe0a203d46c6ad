"""Atari envs build offline from the configs, with the Nature DQN shapes and the training-only signals."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from rlkit.cli.app import conf_dir
from rlkit.envs.atari import atari_env_id
from rlkit.envs.builders import make_env, make_train_env
from rlkit.errors import RlkitError


def env_config(name: str, **overrides) -> dict:
    """conf/env/<name>.yaml merged over conf/env/atari.yaml, as Hydra composes it."""
    base = OmegaConf.load(conf_dir() / "env" / "atari.yaml")
    cfg = OmegaConf.merge(base, OmegaConf.load(conf_dir() / "env" / f"{name}.yaml"), overrides)
    cfg.pop("defaults", None)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("name,game,n_actions", [("pong", "Pong", 6), ("breakout", "Breakout", 4)])
def test_pong_and_breakout_build_with_nature_dqn_shapes(name: str, game: str, n_actions: int) -> None:
    cfg = env_config(name)
    assert cfg["game"] == game and cfg["id"] == f"ALE/{game}-v5"
    for env in (make_env(cfg), make_train_env(cfg)):
        assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
        assert env.action_space.n == n_actions
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert not obs[:3].any() and obs[3].any()  # zero padding before the first frame, as frame replay expects
        obs, *_ = env.step(0)
        assert not obs[:2].any() and obs[2:].any()
        assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
        env.close()


def test_sticky_actions_off_and_any_rom_by_name() -> None:
    env = make_env(env_config("atari", game="space_invaders", sticky_actions=False))
    assert env.spec.id == "ALE/SpaceInvaders-v5"
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    env.close()


def test_an_unknown_game_names_close_and_valid_ones() -> None:
    with pytest.raises(RlkitError, match=r"env.game=Pongg .*did you mean Pong.*Breakout.*in all"):
        atari_env_id("Pongg")


def test_training_clips_rewards_but_logs_whole_unclipped_games() -> None:
    # Space Invaders scores 5 to 30 per alien, so a clipped reward of 1 hides at least 5 points; 3 lives.
    env = make_train_env(env_config("atari", game="SpaceInvaders"))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    clipped, life_ends, steps = 0.0, 0, 0
    while True:
        _, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        steps += 1
        assert reward in (-1.0, 0.0, 1.0)
        clipped += reward
        if "episode" in info:
            break
        if terminated or truncated:
            life_ends += 1
            env.reset()
            assert env.unwrapped.ale.lives() == 3 - life_ends  # the game went on after the lost life
    assert life_ends == 2  # two lives lost before the game ended with the third
    assert clipped > 0 and float(info["episode"]["r"]) >= 5 * clipped
    assert int(info["episode"]["l"]) == steps + life_ends  # one no-op step after each lost life
    env.close()


def test_evaluation_plays_whole_games_unclipped() -> None:
    env = make_env(env_config("atari", game="SpaceInvaders", noop_max=0))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    rewards = []
    while True:
        _, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        rewards.append(reward)
        if terminated or truncated:
            break
    assert env.unwrapped.ale.lives() == 0 and max(rewards) >= 5
    env.close()


def test_vector_training_env_reports_episodes_per_copy() -> None:
    env = make_train_env(env_config("breakout", num_envs=2, terminal_on_life_loss=False))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and env.single_action_space.n == 4
    rng = np.random.default_rng(0)
    while True:
        obs, _, terminated, truncated, info = env.step(rng.integers(4, size=2))
        if "episode" in info and info["_episode"].any():
            ended = info["_episode"]
            assert (terminated | truncated)[ended].all() and (info["episode"]["l"][ended] > 0).all()
            break
    env.close()
