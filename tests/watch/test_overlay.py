"""Q-values drawn on the replay: from the agent interface, in the band under the frame, the greedy bar highlighted."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import LAKE_PATH, build_dqn_for, compose_app, lake_table, tabular_run

from rlkit.agents.base import QValues
from rlkit.agents.tabular import QLearningAgent
from rlkit.nets import MLPBody
from rlkit.runs.playback import play, play_episodes
from rlkit.watch.overlay import HIGHLIGHT, QOverlay, action_names, band_height, draw_q_bars, q_line, row_span

STATES = [state for state, _ in LAKE_PATH] + [15]


class Frames:
    """A screen that keeps every frame it is shown."""

    def __init__(self) -> None:
        self.frames: list = []

    def show(self, frame) -> None:
        self.frames.append(frame)

    def end_episode(self) -> None:
        pass

    def close(self) -> None:
        pass


def highlighted_rows(frame: np.ndarray, frame_height: int, n_actions: int, *, tolerance: int = 0) -> list[int]:
    """Indices of the action rows that hold pixels of the highlight colour."""
    near = np.abs(frame.astype(int) - np.array(HIGHLIGHT)).max(axis=2) <= tolerance
    rows = []
    for i in range(n_actions):
        top, bottom = row_span(i, frame.shape[1], frame_height)
        if near[top:bottom].sum() > 20:
            rows.append(i)
    return rows


def tabular(env: gym.Env, table: np.ndarray) -> QLearningAgent:
    agent = QLearningAgent(observation_space=env.observation_space, action_space=env.action_space, learning_rate=0.5,
                           gamma=0.9, epsilon_start=0.0, epsilon_end=0.0, epsilon_decay_steps=1)
    agent.q_table[:] = table.tolist()  # in place: the agent's policies share its table
    return agent


def test_both_agent_families_report_q_values_for_one_observation_or_a_batch() -> None:
    lake = gym.make("FrozenLake-v1")
    table = lake_table()
    agent = tabular(lake, table)
    assert isinstance(agent, QValues)
    np.testing.assert_array_equal(agent.q_values(9), table[9])
    np.testing.assert_array_equal(agent.q_values(np.array([9, 0])), table[[9, 0]])
    box = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    dqn = build_dqn_for(box, gym.spaces.Discrete(2), net=functools.partial(MLPBody, hidden=(8,)),
        optimizer=functools.partial(torch.optim.Adam, lr=1e-3))
    assert isinstance(dqn, QValues)
    obs = np.array([[0.1, -0.2, 0.3], [0.5, 0.5, -0.5]], dtype=np.float32)
    batch = dqn.q_values(obs)
    assert batch.shape == (2, 2) and dqn.q_values(obs[1]).shape == (2,)
    np.testing.assert_allclose(dqn.q_values(obs[1]), batch[1], rtol=1e-6)
    assert dqn.act(obs[1], explore=False) == int(batch[1].argmax())


def test_action_names_come_from_the_env_then_rlkits_table_then_indices() -> None:
    assert action_names(gym.make("CartPole-v1")) == ["left", "right"]
    assert action_names(gym.make("Taxi-v3" if "Taxi-v3" in gym.envs.registry else "Taxi-v4"))[4:] == ["pickup",
        "dropoff"]
    assert action_names(gym.make("rlkit-test/Counting-v0")) == ["a0", "a1"]
    ale_py = pytest.importorskip("ale_py")
    gym.register_envs(ale_py)
    assert action_names(gym.make("ALE/Pong-v5"))[:3] == ["NOOP", "FIRE", "RIGHT"]


@pytest.mark.parametrize("q", [[0.5, 2.0, -1.0], [-3.0, -2.5, -4.0], [0.0, 0.0, 0.0]])
def test_the_band_leaves_the_frame_untouched_and_highlights_only_the_greedy_bar(q: list[float]) -> None:
    frame = np.random.default_rng(0).integers(0, 200, size=(60, 180, 3), dtype=np.uint8)  # no pixel is the highlight
    drawn = draw_q_bars(frame, np.array(q), ["left", "stay", "right"])
    assert drawn.shape == (60 + band_height(180, 3), 180, 3) and drawn.shape[0] % 2 == 0
    np.testing.assert_array_equal(drawn[:60], frame)
    assert highlighted_rows(drawn, 60, 3) == [int(np.argmax(q))]


def test_text_boards_get_one_line_of_values_with_the_greedy_action_in_brackets() -> None:
    line = q_line(np.array([-1.2, 3.4, 0.0]), ["south", "north", "east"])
    assert line == "Q:  south -1.20 [north 3.40] east 0.00 "


def test_play_frames_differ_only_in_the_band_and_the_greedy_bar_follows_the_table(tmp_path) -> None:
    table = lake_table()
    env = gym.make("FrozenLake-v1", is_slippery=False, render_mode="rgb_array")
    agent = tabular(env, table)
    plain, overlaid = Frames(), Frames()
    policy = agent.policy()
    assert play_episodes(env, policy, episodes=1, seed=0, screen=plain) == [1.0]
    play_episodes(env, policy, episodes=1, seed=0, screen=overlaid, overlay=QOverlay(policy, action_names(env)))
    assert len(plain.frames) == len(overlaid.frames) == len(STATES)
    height = plain.frames[0].shape[0]
    for state, before, after in zip(STATES, plain.frames, overlaid.frames, strict=True):
        np.testing.assert_array_equal(after[:height], before)
        assert highlighted_rows(after, height, 4) == [int(table[state].argmax())]


def test_a_video_with_overlay_q_differs_from_the_plain_one_only_in_the_band(tmp_path, capsys) -> None:
    from moviepy.video.io.VideoFileClip import VideoFileClip

    table = lake_table()
    run_dir = tabular_run(tmp_path / "lake", "env=frozenlake", "env.kwargs.is_slippery=false", table=table)
    for name, extra in (("plain.mp4", []), ("q.mp4", ["overlay=q"])):
        play(compose_app("play", f"run={run_dir}", "episodes=1", f"video={tmp_path / name}", *extra))
    assert f"video: {tmp_path / 'q.mp4'}" in capsys.readouterr().out
    with VideoFileClip(str(tmp_path / "plain.mp4")) as clip:
        plain = [frame.astype(int) for frame in clip.iter_frames()]
    with VideoFileClip(str(tmp_path / "q.mp4")) as clip:
        overlaid = [frame.astype(int) for frame in clip.iter_frames()]
    assert len(plain) == len(overlaid) == len(STATES)  # reset frame + one per step
    height = plain[0].shape[0]
    assert overlaid[0].shape == (height + band_height(256, 4), 256, 3)
    for state, before, after in zip(STATES, plain, overlaid, strict=True):
        assert np.abs(after[:height] - before).mean() < 2.0  # the same pictures, up to H.264's rounding
        assert np.abs(after[height:] - np.asarray(before[-1:])).mean() > 20  # the band holds something else
        assert highlighted_rows(after.astype(np.uint8), height, 4, tolerance=40) == [int(table[state].argmax())]
