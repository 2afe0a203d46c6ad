"""`python -m rlkit.play`'s work: the env and the greedy policy rebuilt from a run's checkpoint, shown on a board, a
window or a video; it acts and never learns."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig

from rlkit.agents.base import Policy
from rlkit.checkpoint import checkpoint_path
from rlkit.config.policies import build_policy
from rlkit.config.registry import ActingParts
from rlkit.envs.builders import make_env
from rlkit.envs.gym import import_env_module
from rlkit.errors import RlkitError, printable, shorten
from rlkit.run_files import check_no_links_out, real_folder
from rlkit.runs.saved import SavedRun, check_saved_network, from_saved_state, read_saved_run
from rlkit.runtime import resolve_device, set_torch_threads
from rlkit.watch import screens
from rlkit.watch.follow import FileStamp, RunProgress, follow, run_progress
from rlkit.watch.overlay import QOverlay, overlay_by_name

RENDER_CHOICES = ("auto", "ansi", "human", "none")


def load_policy(saved: SavedRun, env: gym.Env, *, device: Any) -> Policy:
    """The checkpoint's greedy policy for this env; a state that does not fit it is one clear error."""
    parts = saved.parts
    assert isinstance(parts, ActingParts)  # read_saved_run(acting=True) checked the network's nodes once
    check_saved_network(saved, parts, env)
    return from_saved_state(saved, lambda: build_policy(parts, saved.agent_state,
        observation_space=env.observation_space, action_space=env.action_space, device=device))


def choose_render(render: str, video: str | None, env_cfg: dict[str, Any],
        run_dir: Path) -> tuple[str | None, Path | None]:
    """(ansi | human | rgb_array | None, video path): what the user asked for, as this machine can show it."""
    if render not in RENDER_CHOICES:
        raise RlkitError(f"render={render} is not valid; choose one of: {', '.join(RENDER_CHOICES)}")
    if video:
        return "rgb_array", screens.check_video_path(video)
    if render == "auto":
        if env_cfg.get("render_mode") == "ansi":
            return "ansi", None
        if screens.display_available():
            return "human", None
        videos = real_folder(run_dir / "videos", root=run_dir)  # never into a folder that videos links to
        return "rgb_array", screens.check_video_path(videos / "play.mp4")
    if render == "human" and not screens.display_available():
        raise RlkitError("render=human needs a display, and none is set (DISPLAY is empty); use video=play.mp4 or "
            "render=ansi")
    return (None if render == "none" else render), None


def make_play_env(env_cfg: dict[str, Any], render: str | None) -> gym.Env:
    """The env, rendering text boards or RGB frames; a window (render=human) shows the RGB frames itself."""
    render_mode = "rgb_array" if render == "human" else render
    if render_mode == "rgb_array":
        screens.quiet_offscreen_rendering()
    try:
        env = make_env(env_cfg, render_mode=render_mode)
    except gym.error.Error as exc:
        raise RlkitError(f"env {env_cfg.get('id')} cannot render as {render_mode}: {exc}") from exc
    if render_mode is not None and render_mode not in env.metadata.get("render_modes", []):
        modes = ", ".join(env.metadata.get("render_modes", [])) or "none"
        raise RlkitError(f"env {env_cfg.get('id')} cannot render as {render_mode}; it offers: {modes}")
    return env


def open_screen(render: str | None, video: Path | None, env: gym.Env, *, delay: float | None) -> screens.Screen | None:
    fps = float(env.metadata.get("render_fps") or 30)
    if video is not None:
        return screens.VideoFile(video, fps=fps)
    if render == "ansi":
        return screens.TerminalBoard(sys.stdout, delay=delay)
    if render == "human":
        return screens.Window(fps=fps, caption=f"rlkit.play: {printable(env.spec.id) if env.spec else 'env'}")
    return None


def play_episodes(env: gym.Env, policy: Policy, *, episodes: int, seed: int, screen: screens.Screen | None,
        overlay: QOverlay | None = None, first: int = 0) -> list[float]:
    """Greedy episodes; each frame goes to the screen, with the policy's Q-values drawn on it if an overlay is given."""

    def show(obs: Any) -> None:
        if screen is not None:
            frame = env.render()
            screen.show(overlay(frame, obs) if overlay is not None else frame)

    returns = []
    for episode in range(first, first + episodes):
        obs, _ = env.reset(seed=seed + episode)
        show(obs)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
            total += float(reward)
            length += 1
            done = terminated or truncated
            show(obs)
        if screen is not None:
            screen.end_episode()
        returns.append(total)
        print(f"episode {episode + 1}: return {total:.2f} in {length} steps", flush=True)
    return returns


def play(cfg: DictConfig) -> list[float]:
    if int(cfg.episodes) <= 0:
        raise RlkitError(f"episodes must be a positive number, got {cfg.episodes}")
    set_torch_threads(cfg.get("torch_threads"))
    if cfg.get("env_module"):
        import_env_module(str(cfg.env_module))  # named on the command line; the run's env.id may then name it
    run = Path(cfg.run).expanduser()
    if run.is_dir() and os.path.lexists(checkpoint_path(run)):  # a run folder; without a checkpoint: say that
        check_no_links_out(run)
    stamp = FileStamp(checkpoint_path(cfg.run))  # before loading: follow=true must see any later checkpoint
    saved = read_saved_run(cfg.run, acting=True)  # every field checked as data; nothing instantiated or resolved
    run_dir = saved.path.parent
    device = resolve_device(cfg.device.name)
    render_mode, video = choose_render(str(cfg.render), cfg.video, saved.config["env"], run_dir)
    env = make_play_env(saved.config["env"], render_mode)
    policy = load_policy(saved, env, device=device)
    progress = run_progress(saved.step, saved.config)
    agent, env_name = (printable(shorten(name)) for name in (saved.agent_name, saved.env_name))  # the run's strings
    print(f"rlkit.play: {agent} on {env_name} after {saved.step} steps ({printable(str(run_dir))}) on "
        f"{device}{progress.note}")
    overlay = overlay_by_name(cfg.overlay, policy, env, key="overlay")
    screen = open_screen(render_mode, video, env, delay=cfg.delay)
    returns: list[float] = []

    def play_one(episode: int) -> float:
        returns.extend(play_episodes(env, policy, episodes=1, seed=int(cfg.seed), screen=screen, overlay=overlay,
            first=episode))
        return returns[-1]

    def reload() -> RunProgress:  # a new network from the newest checkpoint, and the overlay drawing its values
        nonlocal policy, overlay
        newest = read_saved_run(cfg.run, acting=True)
        policy = load_policy(newest, env, device=device)
        overlay = overlay_by_name(cfg.overlay, policy, env, key="overlay")
        return run_progress(newest.step, newest.config)

    try:
        if cfg.follow:
            follow(stamp, progress, play_episode=play_one, reload=reload, idle_timeout_s=float(cfg.follow_timeout))
        else:
            for episode in range(int(cfg.episodes)):
                play_one(episode)
    except KeyboardInterrupt:
        print("rlkit.play: stopped", flush=True)
    finally:
        env.close()
        if screen is not None:
            screen.close()
    if returns:
        print(f"mean return over {len(returns)} episode{'s' * (len(returns) != 1)}: {np.mean(returns):.2f}")
    if isinstance(screen, screens.VideoFile) and screen.frames:
        print(f"video: {printable(str(screen.path))}")
    return returns
