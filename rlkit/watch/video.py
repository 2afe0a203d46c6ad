"""Evaluation videos in TensorBoard under eval/video, one greedy episode every N env steps: a GIF in the Images tab,
or a text env's boards in the Text tab, at a small and visible cost (time/video_seconds)."""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Mapping, Sequence
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
    """An animated GIF, the format TensorBoard's Images tab plays (and add_video writes).

    torch's add_video needs moviepy.editor, which moviepy 2 removed (it then logs nothing), so rlkit encodes
    with Pillow, the library beneath moviepy's GIF writer. One palette shared by all frames and no
    transparency optimisation: 0.6 ms a CartPole frame instead of 8 (moviepy) or 4 (Pillow's defaults).
    """
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


_ANSI = re.compile(r"\x1b\[([0-9;]*)m")


def ansi_to_html(text: str) -> str:
    """A text board as HTML for TensorBoard's Text tab: highlighted cells (the taxi, the agent) in bold, a blank one
    as a block."""
    out, highlighted, position = [], False, 0
    for match in _ANSI.finditer(text + "\x1b[0m"):
        for char in text[position : match.start()]:
            if highlighted and char != "\n":
                out.append(f"<strong>{html.escape('█' if char == ' ' else char)}</strong>")
            else:
                out.append(html.escape(char))
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


class EvalVideo:
    """Plays one greedy episode on its own rendering env and logs it; the loop calls record() every `every_steps`."""

    def __init__(
        self,
        *,
        env: gym.Env,
        logger: tb.Logger,
        every_steps: int,
        max_steps: int,
        frame_stride: int,
        size: tuple[int, int] | None,
        overlay: QOverlay | None,
        seed: int,
    ) -> None:
        self.env, self.logger, self.overlay = env, logger, overlay
        self.every_steps, self.max_steps, self.frame_stride = every_steps, max_steps, frame_stride
        self.size, self.seed = size, seed
        self.text = env.render_mode == "ansi"
        self.fps = float(env.metadata.get("render_fps") or 30) / frame_stride
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
) -> EvalVideo | None:
    """The recorder `video.*` asks for, or None when video.every_steps is 0; every requirement is checked here,
    before training starts, with one line that names the fix."""
    if video.every_steps == 0:
        return None
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
    size = _frame_size(video.size, video.scale, first) if render_mode == "rgb_array" else None
    return EvalVideo(
        env=env, logger=logger, every_steps=video.every_steps, max_steps=video.max_steps,
        frame_stride=video.frame_stride, size=size,
        overlay=overlay_by_name(video.overlay, policy, env, key="video.overlay"), seed=seed + 20_000_000,
    )


def _frame_size(size: tuple[int, int] | None, scale: float, first_frame: np.ndarray) -> tuple[int, int]:
    """(height, width) of the logged frames: video.size when given, else the rendered size times video.scale."""
    if size is not None:
        return size
    height, width = first_frame.shape[:2]
    return max(1, round(height * scale)), max(1, round(width * scale))
