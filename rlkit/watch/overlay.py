"""Q-values drawn on what play and videos show: a bar per action in a band below a frame, or a line under a board."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rlkit.agents.base import QValues
from rlkit.errors import RlkitError

# Envs without get_action_meanings(), by gymnasium's env name (the id without namespace and version).
ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "Taxi": ("south", "north", "east", "west", "pickup", "dropoff"),
    "CartPole": ("left", "right"),
    "FrozenLake": ("left", "down", "right", "up"),
    "CliffWalking": ("up", "right", "down", "left"),
    "MountainCar": ("left", "coast", "right"),
    "Acrobot": ("torque -1", "torque 0", "torque +1"),
}

BACKGROUND = (24, 24, 24)
BAR = (90, 110, 140)
HIGHLIGHT = (255, 170, 0)  # the greedy action's bar and name; no other pixel of the band has this colour
TEXT = (210, 210, 210)
PAD_PX = 2
MARK_PX = 3  # a highlight stripe at the left of the greedy row: visible even when its bar has no length


def action_names(env: gym.Env) -> list[str]:
    """The env's own action meanings (Atari), else rlkit's table for known envs, else a0, a1, ..."""
    n_actions = int(env.action_space.n)
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    names: Sequence[str] | None = meanings() if callable(meanings) else None
    if names is None and env.spec is not None:
        names = ACTION_NAMES.get(env.spec.name)
    if names is None or len(names) != n_actions:
        names = [f"a{i}" for i in range(n_actions)]
    return list(names)


def row_height(width: int) -> int:
    """Pixels per action row: the text scales with the frame (25 px on CartPole's 600, 12 px on Atari's 160)."""
    return max(12, round(width / 24))


def band_height(width: int, n_actions: int) -> int:
    height = n_actions * row_height(width) + 2 * PAD_PX
    return height + height % 2  # even: video codecs want even frame sizes


def row_span(index: int, width: int, frame_height: int) -> tuple[int, int]:
    """[top, bottom) rows of action `index` in a frame drawn by draw_q_bars."""
    top = frame_height + PAD_PX + index * row_height(width)
    return top, top + row_height(width)


_font = functools.cache(ImageFont.load_default)  # one font per text size, loaded once


@functools.lru_cache(maxsize=4096)
def _text_mask(text: str, size: int) -> Image.Image:
    """A label's anti-aliased coverage, drawn once: names repeat every frame and values often do."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, int(right)), max(1, int(bottom))), 0)
    ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=font)
    return mask


def _label(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.3g}"


def q_band(q_values_A: np.ndarray, names: Sequence[str], width: int) -> Image.Image:
    """Each action's name, a bar from zero to its Q-value and the value, on one zero-anchored scale per frame."""
    q_A = np.asarray(q_values_A, dtype=np.float64)
    row = row_height(width)
    size = row - 3
    band = Image.new("RGB", (width, band_height(width, len(q_A))), BACKGROUND)
    draw = ImageDraw.Draw(band)
    labels = [_label(v) for v in q_A]
    name_px = max(_text_mask(name, size).width for name in names) + 2 * PAD_PX + MARK_PX
    value_px = max(_text_mask(text, size).width for text in [*labels, "-00.00"]) + 2 * PAD_PX
    bar_left, bar_right = name_px, max(width - value_px, name_px + 1)
    low, high = min(0.0, float(q_A.min())), max(0.0, float(q_A.max()))
    scale = (bar_right - bar_left) / ((high - low) or 1.0)
    zero_x = bar_left + (0.0 - low) * scale
    greedy = int(q_A.argmax())
    for i, (name, value, label) in enumerate(zip(names, q_A, labels, strict=False)):
        top = PAD_PX + i * row
        x = bar_left + (value - low) * scale
        draw.rectangle((min(zero_x, x), top + 1, max(zero_x, x), top + row - 2), fill=HIGHLIGHT if i == greedy else BAR)
        if i == greedy:
            draw.rectangle((0, top + 1, MARK_PX - 1, top + row - 2), fill=HIGHLIGHT)
        band.paste(HIGHLIGHT if i == greedy else TEXT, (MARK_PX + PAD_PX, top), _text_mask(name, size))
        band.paste(TEXT, (bar_right + PAD_PX, top), _text_mask(label, size))
    return band


def draw_q_bars(frame_HWC: np.ndarray, q_values_A: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The frame with the Q-value band (q_band) below it; the frame's own pixels are untouched."""
    band = q_band(q_values_A, names, frame_HWC.shape[1])
    return np.concatenate([frame_HWC, np.asarray(band, dtype=np.uint8)], axis=0)


def q_line(q_values_A: np.ndarray, names: Sequence[str]) -> str:
    """One line of a text board's Q-values, the greedy action in brackets: `Q:  south -1.20 [north 3.40] ...`."""
    q_A = np.asarray(q_values_A, dtype=np.float64)
    greedy = int(q_A.argmax())
    items = (f"{name} {_label(value)}" for name, value in zip(names, q_A, strict=False))
    return "Q: " + "".join(f"[{item}]" if i == greedy else f" {item} " for i, item in enumerate(items))


class QOverlay:
    """Draws a policy's Q-values for the observation a rendered frame shows (pixels or a text board)."""

    def __init__(self, policy: QValues, names: Sequence[str]) -> None:
        self.policy = policy
        self.names = list(names)

    def __call__(self, frame: Any, obs: Any) -> Any:
        """A text board with a line of values under it, or an RGB array with the band below it."""
        q_A = self.policy.q_values(obs)
        if isinstance(frame, str):
            return f"{frame.rstrip(chr(10))}\n{q_line(q_A, self.names)}\n"
        return draw_q_bars(frame, q_A, self.names)

    def under(self, image: Image.Image, obs: Any) -> Image.Image:
        """The same band under a Pillow image: the evaluation videos stay in Pillow from render to GIF."""
        band = q_band(self.policy.q_values(obs), self.names, image.width)
        canvas = Image.new("RGB", (image.width, image.height + band.height))
        canvas.paste(image, (0, 0))
        canvas.paste(band, (0, image.height))
        return canvas


def overlay_by_name(name: str | None, policy: Any, env: gym.Env, *, key: str) -> QOverlay | None:
    """The overlay a config asks for (`q` or null), refused with one line for an agent that has no Q-values."""
    if name in (None, "none"):
        return None
    if name != "q":
        raise RlkitError(f"{key}={name} is not valid; choose q (draw each action's Q-value) or null")
    if not isinstance(policy, QValues):
        raise RlkitError(f"{key}=q needs a policy with q_values(obs); {type(policy).__name__} has none")
    return QOverlay(policy, action_names(env))
