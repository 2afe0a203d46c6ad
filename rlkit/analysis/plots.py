"""PNG figures: one run's learning curve, a sweep's evaluation curves with confidence bands, performance profiles."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rlkit.errors import RlkitError
from rlkit.run_files import write_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Points = Sequence[tuple[int, float]]  # (env step, value)
MATPLOTLIB_MISSING = "plots need matplotlib, a dependency of rlkit that is missing here; pip install 'matplotlib>=3.7'"


class Band(NamedTuple):
    """One group's curve on shared x values: a central line, its confidence band (None: too few runs) and its runs."""

    panel: str  # curves of one panel share axes: returns of different envs have different scales
    label: str
    x: np.ndarray
    center: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    runs: np.ndarray  # (runs, len(x))


def new_figure(width: float, height: float) -> Figure:
    """A figure without pyplot: no global state and no GUI backend, so parallel sweep jobs can draw too."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RlkitError(MATPLOTLIB_MISSING) from None
    return Figure(figsize=(width, height), layout="constrained")


def plot_learning_curve(path: Path, *, train_returns: Points, evaluations: Points, title: str) -> Path:
    """Training-episode returns (log-window means) and greedy evaluation means against env steps."""
    fig = new_figure(6.0, 3.6)
    ax = fig.subplots()
    if train_returns:
        steps, returns = zip(*train_returns, strict=False)
        ax.plot(steps, returns, lw=1.2, label="training episodes (window mean)")
    if evaluations:
        steps, returns = zip(*evaluations, strict=False)
        ax.plot(steps, returns, "o-", ms=4, label="greedy evaluation (mean)")
    _finish(ax, title=title, xlabel="env steps", ylabel="episodic return")
    return _save(fig, path)


def _draw_band(ax: Axes, band: Band) -> None:
    (line,) = ax.plot(band.x, band.center, lw=1.6, label=band.label)
    if band.low is not None and band.high is not None:
        ax.fill_between(band.x, band.low, band.high, color=line.get_color(), alpha=0.2, lw=0)
        return
    for run in band.runs:
        ax.plot(band.x, run, lw=0.8, ls=":", color=line.get_color())


def draw_profile(ax: Axes, profile: Band) -> None:
    """A performance profile (the fraction of runs scoring above each threshold) as steps, with its band."""
    (line,) = ax.step(profile.x, profile.center, where="post", lw=1.6, label=profile.label)
    if profile.low is not None and profile.high is not None:
        ax.fill_between(profile.x, profile.low, profile.high, step="post", color=line.get_color(), alpha=0.2, lw=0)
    ax.set_ylim(-0.02, 1.02)


def plot_bands(
    path: Path, bands: Sequence[Band], *, title: str, xlabel: str, ylabel: str, note: str = "",
    draw: Callable[[Axes, Band], None] = _draw_band,
) -> Path:
    """One panel per distinct band.panel, side by side, each band drawn by draw (its line and interval, or its runs
    dotted); note, a caveat a reader must see, goes under them in red."""
    panels = list(dict.fromkeys(band.panel for band in bands)) or [""]
    width = 6.5 * len(panels)
    fig = new_figure(width, 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        for band in (b for b in bands if b.panel == panel):
            draw(ax, band)
        _finish(ax, title=panel, xlabel=xlabel, ylabel=ylabel)
    fig.suptitle(_wrap(title, chars=int(10 * width)))
    if note:
        fig.supxlabel(_wrap(note, chars=int(14 * width)), fontsize="small", color="firebrick")
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    """A PNG written as every run-folder file is: atomically, never through a link, FIFO or folder at `path`."""
    return write_atomically(path, lambda handle: fig.savefig(handle, format="png", dpi=100))


def _wrap(text: str, *, chars: int) -> str:
    """Break long lines so a one-panel figure does not cut its title off."""
    return "\n".join(textwrap.fill(line, width=chars) for line in text.splitlines())


def _finish(ax: Axes, *, title: str, xlabel: str, ylabel: str) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
