"""Evaluation videos in TensorBoard (eval/video): a greedy episode's GIF in Images, or a text env's boards in Text."""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from PIL import Image

from rlkit import tb
from rlkit.agents.base import Policy
from rlkit.envs.builders import make_env
from rlkit.errors import RlkitError
from rlkit.watch.overlay import QOverlay, overlay_by_name
from rlkit.watch.screens import quiet_offscreen_rendering

if TYPE_CHECKING:
    from rlkit.config.settings import VideoSettings

GIF_PALETTE_SAMPLES = 4  # frames whose colours make the one palette every frame of a GIF shares


def gif_bytes(images: Sequence[Image.Image], *, fps: float) -> bytes:
    """An animated GIF for TensorBoard's Images tab, encoded by Pillow (torch's add_video needs moviepy.editor, which
    moviepy 2 removed); one shared palette: 0.6 ms a CartPole frame, not 8 (moviepy) or 4 (Pillow's defaults)."""
    picks = np.linspace(0, len(images) - 1, num=min(GIF_PALETTE_SAMPLES, len(images))).round().astype(int)
    mosaic = Image.new("RGB", (images[0].width, images[0].height * len(picks)))
    for row, i in enumerate(picks):
        mosaic.paste(images[i], (0, row * images[0].height))
    palette = mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:], duration=round(1000 / fps), loop=0,
        optimize=False)
    return buffer.getvalue()


def ansi_to_html(text: str) -> str:
    """A text board as HTML for TensorBoard's Text tab: highlighted cells (taxi, agent) bold, a blank one a block."""
    out, highlighted, position = [], False, 0
    for match in re.finditer(r"\x1b\[([0-9;]*)m", text + "\x1b[0m"):  # each colour code, and a reset at the end
        for char in text[position : match.start()]:
            bold = highlighted and char != "\n"
            out.append(f"<strong>{html.escape('█' if char == ' ' else char)}</strong>" if bold else html.escape(char))
        codes = [int(c) for c in match.group(1).split(";") if c]
        highlighted = any(40 <= c <= 47 for c in codes) or (highlighted and bool(codes) and 0 not in codes)
        position = match.end()
    return "".join(out)


def shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to (height, width): a box filter for whole-number factors (3x faster than bilinear), else bilinear."""
    factor = image.height // size[0]
    if factor > 1 and (image.height, image.width) == (size[0] * factor, size[1] * factor):
        return image.reduce(factor)
    return image.resize(size[::-1], Image.Resampling.BILINEAR)


@dataclass(kw_only=True, eq=False)
class EvalVideo:
    """Plays one greedy episode on its own rendering env and logs it; the loop calls record() every `every_steps`."""

    env: gym.Env
    logger: tb.Logger
    every_steps: int
    max_steps: int
    frame_stride: int
    size: tuple[int, int] | None  # (height, width) of the logged frames; None for text boards
    overlay: QOverlay | None
    seed: int

    def __post_init__(self) -> None:
        self.text = self.env.render_mode == "ansi"
        self.fps = float(self.env.metadata.get("render_fps") or 30) / self.frame_stride
        self.recordings, self.total_seconds = 0, 0.0

    def record(self, policy: Policy, step: int) -> float:
        """Record, log and time one greedy episode; returns the seconds it took."""
        started = time.perf_counter()
        frames = self._episode(policy, seed=self.seed + step)
        if self.text:
            boards = "\n".join(f"step {i * self.frame_stride}\n{ansi_to_html(board)}" for i, board in enumerate(frames))
            self.logger.text(tb.EVAL_VIDEO, f"<pre>{boards}</pre>", step)
        else:
            self.logger.gif(tb.EVAL_VIDEO, gif_bytes(frames, fps=self.fps), (frames[0].height, frames[0].width, 3),
                step)
        seconds = time.perf_counter() - started
        self.logger.scalars({tb.VIDEO_SECONDS: seconds}, step)
        self.recordings += 1
        self.total_seconds += seconds
        return seconds

    def _episode(self, policy: Policy, *, seed: int) -> list[Any]:
        """Frames at steps 0, stride, 2*stride, ... up to the episode's end or max_steps; only those are rendered."""
        obs, _ = self.env.reset(seed=seed)
        frames = [self._frame(obs)]
        for t in range(1, self.max_steps + 1):
            obs, _, terminated, truncated, _ = self.env.step(policy.act(obs))
            if t % self.frame_stride == 0:
                frames.append(self._frame(obs))
            if terminated or truncated:
                break
        return frames

    def _frame(self, obs: Any) -> str | Image.Image:
        """A text board, or a Pillow image shrunk to `size` with the overlay under it."""
        frame = self.env.render()
        if self.text:
            return self.overlay(frame, obs) if self.overlay is not None else frame
        image = Image.fromarray(frame)
        if self.size is not None and self.size != (image.height, image.width):
            image = shrink(image, self.size)
        return self.overlay.under(image, obs) if self.overlay is not None else image

    def close(self) -> None:
        self.env.close()


def build_eval_video(
    video: VideoSettings, *, env_cfg: Mapping[str, Any], logger: tb.Logger, policy: Policy, seed: int
) -> EvalVideo:
    """The recorder `video.*` asks for (every_steps > 0); its requirements are checked before training, naming fixes."""
    render_mode = "ansi" if env_cfg.get("render_mode") == "ansi" else "rgb_array"
    if render_mode == "rgb_array":
        quiet_offscreen_rendering()
    try:
        env = make_env(env_cfg, render_mode=render_mode)
        env.reset(seed=seed)
        first = env.render()
    except gym.error.DependencyNotInstalled as exc:
        raise RlkitError(f"video.every_steps={video.every_steps} cannot render {env_cfg.get('id')}: {exc}; or set "
            "video.every_steps=0") from None
    size = None
    if render_mode == "rgb_array":  # video.size when given, else the rendered size times video.scale
        size = video.size or tuple(max(1, round(side * video.scale)) for side in first.shape[:2])
    overlay = overlay_by_name(video.overlay, policy, env, key="video.overlay")
    return EvalVideo(env=env, logger=logger, every_steps=video.every_steps, max_steps=video.max_steps,
        frame_stride=video.frame_stride, size=size, overlay=overlay, seed=seed + 20_000_000)
