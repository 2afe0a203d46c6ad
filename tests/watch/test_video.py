"""Evaluation videos in TensorBoard: at the expected steps, of the expected size and length, off the training clock."""

from __future__ import annotations

import io
import time

import gymnasium as gym
import numpy as np
import pytest
from conftest import compose_app, compose_train
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlkit import tb
from rlkit.config.settings import plain_config, video_settings
from rlkit.errors import RlkitError
from rlkit.loop import TrainPlan, train
from rlkit.runs.training import run
from rlkit.watch.overlay import band_height
from rlkit.watch.video import ansi_to_html, build_eval_video

# 600 steps, a video at 300 and 600; episodes capped at 6 steps and every 2nd frame kept: frames of steps 0, 2, 4, 6.
SHORT_CARTPOLE = [
    "env=cartpole", "total_steps=600", "eval_every_steps=0", "final_eval_episodes=1", "progress=false", "device=cpu",
    "agent.learning_starts_steps=200", "video.every_steps=300", "video.max_steps=6", "video.frame_stride=2",
        "video.scale=0.25",
]


def played_frames(gif: bytes, *, frame_ms: int) -> tuple[tuple[int, int], int]:
    """(width, height) and the number of frames a GIF shows: Pillow merges identical neighbours into one longer
    frame."""
    image = Image.open(io.BytesIO(gif))
    shown_ms = 0
    for index in range(image.n_frames):
        image.seek(index)
        shown_ms += image.info["duration"]
    return image.size, round(shown_ms / frame_ms)


def events(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.parametrize(("overlay", "band"), [("null", 0), ("q", band_height(150, 2))])
def test_a_short_cartpole_run_logs_videos_at_the_expected_steps(tmp_path, overlay: str, band: int) -> None:
    cfg = compose_app("train", *SHORT_CARTPOLE, f"video.overlay={overlay}")
    run(cfg, tmp_path, env_name="cartpole", agent_name="dqn")
    logged = events(tmp_path)
    videos = logged.Images(tb.EVAL_VIDEO)
    assert [v.step for v in videos] == [300, 600]
    for video in videos:
        assert (video.height, video.width) == (100 + band, 150)  # CartPole's 400x600 at a quarter, plus the Q band
        assert played_frames(video.encoded_image_string, frame_ms=40) == ((150, 100 + band), 4)  # at 50 fps / 2
    assert [s.step for s in logged.Scalars(tb.VIDEO_SECONDS)] == [300, 600]


def test_text_envs_log_their_boards_as_text(tmp_path) -> None:
    cfg = compose_app("train", "env=taxi", "total_steps=1000", "eval_every_steps=0", "final_eval_episodes=1",
        "progress=false",
                        "video.every_steps=500", "video.max_steps=3", "video.frame_stride=1", "video.overlay=q")
    run(cfg, tmp_path, env_name="taxi", agent_name="q_learning")
    logged = events(tmp_path)
    texts = logged.Tensors(f"{tb.EVAL_VIDEO}/text_summary")
    assert [t.step for t in texts] == [500, 1000]
    text = texts[-1].tensor_proto.string_val[0].decode()
    assert text.startswith("<pre>step 0\n+---------+") and "step 3\n" in text and "step 4" not in text
    assert text.count("Q: ") == 4 and "\x1b" not in text and "<strong>" in text  # the taxi's cell stands out


def test_ansi_highlights_become_bold_cells() -> None:
    board = "|R: |\x1b[43m \x1b[0m|\n|\x1b[35mY\x1b[0m|\x1b[34;1m\x1b[42mB\x1b[0m\x1b[0m|"
    assert ansi_to_html(board) == "|R: |<strong>█</strong>|\n|Y|<strong>B</strong>|"


class ActionZero:
    """An agent that always plays 0, and its own greedy policy (act without explore is the same action)."""

    def act(self, obs, *, explore=False):
        return 0

    def q_values(self, obs):
        return np.zeros(1)

    def observe(self, transition):
        return {}

    def policy(self):
        return self


class SleepyRecorder:
    """Takes 50 ms per video and remembers when it was called."""

    every_steps = 30

    def __init__(self) -> None:
        self.steps: list[int] = []

    def record(self, agent, step: int) -> float:
        self.steps.append(step)
        time.sleep(0.05)
        return 0.05


def test_the_loop_records_at_each_multiple_and_keeps_video_time_out_of_training_time() -> None:
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("rlkit-test/Counting-v0", length=3))
    recorder = SleepyRecorder()
    started = time.perf_counter()
    plan = TrainPlan(total_steps=90, seed=0, progress=False)
    result = train(env=env, agent=ActionZero(), plan=plan, logger=tb.Logger(None), video=recorder)
    wall = time.perf_counter() - started
    assert recorder.steps == [30, 60, 90]  # the last step too: the trained agent's episode
    assert result.train_seconds <= wall - 0.15


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("video.every_steps=-5", "video.every_steps must be >= 0 (0 turns videos off), got -5"),
        ("video.frame_stride=0", "video.frame_stride must be >= 1, got 0"),
        ("video.scale=0", "video.scale must be in (0, 4], got 0.0"),
        ("video.size=[84]", "video.size must be [height, width] in pixels, got [84]"),
        ("video.overlay=heatmap", "video.overlay=heatmap is not valid; choose q"),
    ],
)
def test_bad_video_settings_are_refused_before_training(override: str, message: str) -> None:
    cfg = compose_train("env=cartpole", "video.every_steps=100", override)
    env = gym.make("CartPole-v1")
    with pytest.raises(RlkitError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[",
            r"\[").replace("]", r"\]")):
        video = video_settings(plain_config(cfg)["video"])
        build_eval_video(video, env_cfg=cfg.env, logger=tb.Logger(None), policy=object(), seed=0)
    env.close()


def test_a_missing_renderer_is_named_before_training(monkeypatch) -> None:
    import rlkit.watch.video

    class NoPygame(gym.Env):
        observation_space, action_space = gym.spaces.Discrete(1), gym.spaces.Discrete(1)
        metadata = {"render_modes": ["rgb_array"]}

        def reset(self, *, seed=None, options=None):
            return 0, {}

        def render(self):
            raise gym.error.DependencyNotInstalled('pygame is not installed, run `pip install '
                '"gymnasium[classic-control]"`')

    monkeypatch.setattr(rlkit.watch.video, "make_env", lambda env_cfg, render_mode: NoPygame())
    cfg = compose_train("env=cartpole", "video.every_steps=100")
    with pytest.raises(RlkitError,
            match=r"video.every_steps=100 cannot render CartPole-v1: pygame is not installed.*video.every_steps=0"):
        build_eval_video(video_settings(plain_config(cfg)["video"]), env_cfg=cfg.env, logger=tb.Logger(None),
                         policy=object(), seed=0)


def test_the_default_configs_record_cartpole_and_atari_at_a_sensible_cadence() -> None:
    assert compose_train("env=taxi").video.every_steps == 0
    cartpole = compose_train("env=cartpole")
    assert cartpole.video.every_steps == 25_000 and cartpole.total_steps // cartpole.video.every_steps == 2
    pong = compose_train("env=pong")
    assert pong.video.every_steps == pong.eval_every_steps == 250_000 and pong.video.overlay == "q"
    assert np.isclose(pong.video.scale, 1.0) and pong.video.frame_stride == 2


def test_a_resumed_run_may_turn_videos_on(tmp_path, capsys) -> None:
    """Videos change what a run shows, not what it learns: resume takes video.* and keeps the rest of conf/'s node."""
    from conftest import run_main

    from rlkit.cli.app import conf_dir
    from rlkit.runs.resume import prepare_resume
    from rlkit.train import CONFIG_GROUPS
    from rlkit.train import main as train_main

    run_dir = tmp_path / "run"
    args = ["env=cartpole", "total_steps=300", "eval_every_steps=0", "final_eval_episodes=1", "video.every_steps=0"]
    code, _, err = run_main(train_main, *args, "progress=false", f"hydra.run.dir={run_dir}", capsys=capsys)
    assert code == 0, err
    plan = prepare_resume(run_dir, ["total_steps=600", "video.every_steps=5000", "video.overlay=q"], conf=conf_dir(),
        groups=CONFIG_GROUPS)
    assert plan.config["video"]["every_steps"] == 5000 and plan.config["video"]["overlay"] == "q"
    assert plan.config["video"]["max_steps"] == compose_train("env=cartpole").video.max_steps
    kept = prepare_resume(run_dir, ["total_steps=600"], conf=conf_dir(), groups=CONFIG_GROUPS)
    assert kept.config["video"]["every_steps"] == 0  # as the run left it, not conf/'s cadence
