"""python -m rlkit.play: rebuild env and agent from a run's checkpoint and watch it play greedily."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from rlkit.agents import Agent
from rlkit.build import build_agent
from rlkit.cli import App, report_errors, run_hydra_app
from rlkit.envs import make_env
from rlkit.errors import RlkitError
from rlkit.resume import for_restoring, load_agent_state, read_saved_run
from rlkit.run_folder import check_writable
from rlkit.runtime import conf_dir, resolve_device, set_torch_threads

RENDER_CHOICES = ("auto", "ansi", "human", "none")


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def choose_render(render: str, video: str | None, env_cfg: dict[str, Any], run_dir: Path) -> tuple[str | None, Path | None]:
    """(gymnasium render_mode, video path) for what the user asked and what the machine offers."""
    if render not in RENDER_CHOICES:
        raise RlkitError(f"render={render} is not valid; choose one of: {', '.join(RENDER_CHOICES)}")
    if video:
        path = Path(video).expanduser()
        if path.suffix.lower() not in (".mp4", ".gif"):
            raise RlkitError(f"video={video} must end in .mp4 or .gif")
        check_writable(path.parent, label=f"video={video}")  # before playing, not after the episodes were recorded
        return "rgb_array", path
    if render == "auto":
        if env_cfg.get("render_mode") == "ansi":
            return "ansi", None
        if display_available():
            return "human", None
        return "rgb_array", run_dir / "videos" / "play.mp4"
    if render == "human" and not display_available():
        raise RlkitError("render=human needs a display, and none is set (DISPLAY is empty); use video=play.mp4 or render=ansi")
    return (None if render == "none" else render), None


def make_play_env(env_cfg: dict[str, Any], render_mode: str | None, video: Path | None, episodes: int) -> gym.Env:
    try:
        env = make_env(env_cfg, render_mode=render_mode)
    except gym.error.Error as exc:
        raise RlkitError(f"env {env_cfg.get('id')} cannot render as {render_mode}: {exc}") from exc
    if render_mode is not None and render_mode not in env.metadata.get("render_modes", []):
        modes = ", ".join(env.metadata.get("render_modes", [])) or "none"
        raise RlkitError(f"env {env_cfg.get('id')} cannot render as {render_mode}; it offers: {modes}")
    if video is None:
        return env
    if not display_available():  # pygame draws the rgb_array frames: give SDL a display-less driver
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        import moviepy  # noqa: F401  # RecordVideo needs it only when it saves
    except ImportError:
        raise RlkitError('video= needs moviepy: pip install "rlkit[video]"') from None
    video.parent.mkdir(parents=True, exist_ok=True)
    staging = video.parent / f".{video.stem}-recording-{os.getpid()}"  # must not exist yet: RecordVideo warns
    shutil.rmtree(staging, ignore_errors=True)
    return gym.wrappers.RecordVideo(env, str(staging), episode_trigger=lambda _: True, name_prefix=video.stem)


def finish_videos(staging: Path, video: Path) -> list[Path]:
    """RecordVideo wrote <stem>-episode-<i>.mp4 into staging: one episode takes the exact name asked for."""
    recorded = sorted(staging.glob("*.mp4"), key=lambda p: int(p.stem.rsplit("-", 1)[-1]))
    if len(recorded) == 1:
        targets = [video.with_suffix(".mp4")]
    else:
        targets = [video.parent / p.name for p in recorded]
    written = [p.replace(target) for p, target in zip(recorded, targets)]
    shutil.rmtree(staging, ignore_errors=True)
    if video.suffix.lower() == ".gif":
        from moviepy import VideoFileClip

        gifs = []
        for mp4 in written:
            gif = mp4.with_suffix(".gif")
            with VideoFileClip(str(mp4)) as clip:
                clip.write_gif(str(gif), logger=None)
            mp4.unlink()
            gifs.append(gif)
        written = gifs
    return written


def play_episodes(env: gym.Env, agent: Agent, *, episodes: int, seed: int, show_ansi: bool, delay: float) -> list[float]:
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        if show_ansi:
            print(env.render(), flush=True)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
            total += float(reward)
            length += 1
            done = terminated or truncated
            if show_ansi:
                print(env.render(), flush=True)
                time.sleep(delay)
        returns.append(total)
        print(f"episode {episode + 1}: return {total:.2f} in {length} steps", flush=True)
    return returns


def play(cfg: DictConfig) -> list[float]:
    if int(cfg.episodes) <= 0:
        raise RlkitError(f"episodes must be a positive number, got {cfg.episodes}")
    set_torch_threads(cfg.get("torch_threads"))
    saved = read_saved_run(cfg.run)  # every field checked as data; nothing in it is instantiated or resolved
    run_dir = saved.path.parent
    config = saved.config
    device = resolve_device(cfg.device.name)
    render_mode, video = choose_render(str(cfg.render), cfg.video, config["env"], run_dir)
    env = make_play_env(config["env"], render_mode, video, int(cfg.episodes))
    agent = build_agent(
        for_restoring(config), observation_space=env.observation_space, action_space=env.action_space, device=device,
        seed=int(cfg.seed), origin=str(saved.path),
    )
    load_agent_state(agent, saved)
    print(f"rlkit.play: {saved.agent_name} on {saved.env_name} after {saved.step} steps ({run_dir}) on {device}")
    try:
        returns = play_episodes(
            env, agent, episodes=int(cfg.episodes), seed=int(cfg.seed), show_ansi=render_mode == "ansi", delay=float(cfg.delay)
        )
    finally:
        env.close()
    print(f"mean return over {len(returns)} episodes: {np.mean(returns):.2f}")
    if video is not None:
        for path in finish_videos(Path(env.video_folder), video):
            print(f"video: {path}")
    return returns


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="play")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    play(cfg)


def check_play(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "run"):
        raise RlkitError("play needs run=<a run folder that python -m rlkit.train printed>")


APP = App(name="rlkit.play", conf=conf_dir(), config_name="play", groups=("device",), check=check_play)


def main() -> None:
    run_hydra_app(_hydra_main, APP)


if __name__ == "__main__":
    main()
