"""MinAtar from env=minatar: grids reach the net as 0/1 float channels first, the paper's network, seeded runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_train, run_main
from omegaconf import OmegaConf
from PIL import Image

from rlkit.checkpoint import load_checkpoint
from rlkit.config.dqn import input_encoding
from rlkit.envs import minatar as minatar_env
from rlkit.envs.builders import make_env, make_train_env
from rlkit.errors import RlkitError
from rlkit.play import main as play_main
from rlkit.train import main as train_main

CHANNELS = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}
SHORT = ["env=minatar", "env.game=breakout", "total_steps=300", "agent.learning_starts_steps=200",
    "agent.buffer_size=1000", "eval_every_steps=0", "final_eval_episodes=1", "progress=false", "torch_threads=1"]


@pytest.fixture
def minatar():
    return pytest.importorskip("minatar")


def env_config(game: str, **overrides) -> dict:
    cfg = OmegaConf.merge(compose_train("env=minatar", f"env.game={game}").env, overrides)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("game", CHANNELS)
def test_grids_reach_the_net_as_float_zero_one_channels_first(minatar, game: str) -> None:
    env = make_train_env(env_config(game))
    assert env.observation_space.shape == (CHANNELS[game], 10, 10) and env.action_space.n == 6
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        obs, *_ = env.step(1)
    raw_HWC = env.unwrapped.game.state()  # MinAtar's own layout: [10, 10, C] bool
    encode, shape = input_encoding(env.observation_space)
    x = encode(torch.as_tensor(obs[None]))
    assert shape == (CHANNELS[game], 10, 10) and x.dtype == torch.float32 and set(x.unique().tolist()) <= {0.0, 1.0}
    assert np.array_equal(x[0].numpy(), np.moveaxis(raw_HWC, -1, 0).astype(np.float32)) and x.sum() > 0
    env.close()


def test_the_minimal_action_set_and_unknown_games(minatar) -> None:
    assert make_env(env_config("breakout", minimal_action_set=True)).action_space.n == 3
    with pytest.raises(RlkitError, match=r"^env.game=pong is not a MinAtar game; choose one of: asterix, breakout"):
        make_env(env_config("pong"))
    with pytest.raises(RlkitError, match=r"^env.sticky_action_prob must be in \[0, 1\], got 2"):
        make_env(env_config("breakout", sticky_action_prob=2.0))


def test_a_missing_minatar_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "minatar", None)
    monkeypatch.setitem(sys.modules, "minatar.gym", None)
    minatar_env._register_minatar.cache_clear()
    try:
        with pytest.raises(RlkitError, match=r'^MinAtar envs need minatar: pip install "rlkit\[minatar\]"$'):
            minatar_env.minatar_env_id("breakout")
    finally:
        minatar_env._register_minatar.cache_clear()


def test_the_grid_is_drawn_one_colour_per_channel() -> None:
    colours = np.array([[0, 0, 0], [10, 20, 30], [40, 50, 60], [70, 80, 90]], dtype=np.uint8)
    grid = np.zeros((3, 10, 10), dtype=bool)
    grid[0, 0, 0] = True
    grid[0, 1, 2] = grid[2, 1, 2] = True  # two objects in one cell: the higher channel is drawn, as MinAtar does
    image = minatar_env.draw_grid(grid, colours)
    cell = minatar_env.CELL_PIXELS
    assert image.shape == (10 * cell, 10 * cell, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [10, 20, 30] and image[cell - 1, cell - 1].tolist() == [10, 20, 30]
    assert image[cell, 2 * cell].tolist() == [70, 80, 90] and image[cell, cell].tolist() == [0, 0, 0]
    assert minatar_env.channel_colours(4).shape == (5, 3) and minatar_env.channel_colours(4)[0].tolist() == [0, 0, 0]
    assert len({tuple(c) for c in minatar_env.channel_colours(10).tolist()}) == 11


def q_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir)["agent_state"]["q_net"]


def test_the_same_seed_gives_the_same_run_and_play_draws_it(minatar, tmp_path: Path, capsys) -> None:
    """Two short Breakout runs of seed 0 on the paper's network (and seed 1 barely started), then play records the
    first as a GIF."""
    for name, seed, steps in (("a", 0, 300), ("b", 0, 300), ("c", 1, 10)):
        code, _, err = run_main(train_main, *SHORT, f"seed={seed}", f"total_steps={steps}",
            f"hydra.run.dir={tmp_path / name}", capsys=capsys)
        assert code == 0, err
    a, b, c = (q_weights(tmp_path / name) for name in "abc")
    assert {k: tuple(v.shape) for k, v in a.items()} == {  # Conv 16 3x3 stride 1 -> 16*8*8 -> 128 -> 6 actions
        "body.conv.0.weight": (16, 4, 3, 3), "body.conv.0.bias": (16,), "body.fc.0.weight": (128, 1024),
        "body.fc.0.bias": (128,), "head.linear.weight": (6, 128), "head.linear.bias": (6,)}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.linear.weight"], c["head.linear.weight"])  # the check can fail
    assert load_checkpoint(tmp_path / "a")["agent_state"]["updates"] > 0
    video = tmp_path / "breakout.gif"
    code, out, err = run_main(play_main, f"run={tmp_path / 'a'}", "episodes=1", f"video={video}", capsys=capsys)
    assert code == 0, err
    assert "episode 1: return" in out
    with Image.open(video) as gif:
        frame = np.asarray(gif.convert("RGB"))
    assert frame.shape == (160, 160, 3) and len(np.unique(frame.reshape(-1, 3), axis=0)) >= 3  # black + objects


def test_bad_minatar_settings_are_one_line_and_exit_2(minatar, tmp_path: Path, capsys) -> None:
    code, _, err = run_main(train_main, *SHORT, "env.game=pong", f"hydra.run.dir={tmp_path}", capsys=capsys)
    assert code == 2 and err.strip().splitlines() == [
        "error: env.game=pong is not a MinAtar game; choose one of: asterix, breakout, freeway, seaquest, "
        "space_invaders"]
