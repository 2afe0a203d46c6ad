"""PNG figures: one run's learning curve, and a sweep's evaluation curves with confidence bands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from rlkit.errors import RlkitError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REPORT_EXTRA = 'pip install "rlkit[report]"'


class Band(NamedTuple):
    """One group's curve: the mean over its runs and a confidence band around it, on shared env steps."""

    panel: str  # bands of one panel share axes: returns of different envs have different scales
    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def new_figure(width: float, height: float) -> Figure:
    """A figure without pyplot: no global state and no GUI backend, so parallel sweep jobs can draw too."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RlkitError(f"plots need matplotlib, which is not installed; {REPORT_EXTRA}") from None
    return Figure(figsize=(width, height), layout="constrained")


def plot_learning_curve(
    path: Path,
    *,
    train_returns: Sequence[tuple[int, float]],
    evaluations: Sequence[tuple[int, float]],
    title: str,
) -> Path:
    """Training-episode returns (log-window means) and greedy evaluation means against env steps."""
    fig = new_figure(6.0, 3.6)
    ax = fig.subplots()
    if train_returns:
        steps, returns = zip(*train_returns)
        ax.plot(steps, returns, lw=1.2, label="training episodes (window mean)")
    if evaluations:
        steps, returns = zip(*evaluations)
        ax.plot(steps, returns, "o-", ms=4, label="greedy evaluation (mean)")
    _finish(ax, title=title, ylabel="episodic return")
    fig.savefig(path, dpi=100)
    return path


def plot_bands(path: Path, bands: Sequence[Band], *, title: str, ylabel: str) -> Path:
    """Each band's mean as a line and its confidence interval as a shaded area of the same colour; a panel each."""
    panels = list(dict.fromkeys(band.panel for band in bands)) or [""]
    fig = new_figure(6.5 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        for band in (b for b in bands if b.panel == panel):
            (line,) = ax.plot(band.steps, band.mean, lw=1.5, label=band.label)
            ax.fill_between(band.steps, band.low, band.high, color=line.get_color(), alpha=0.2, lw=0)
        _finish(ax, title=panel, ylabel=ylabel)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return path


def _finish(ax: Axes, *, title: str, ylabel: str) -> None:
    ax.set(xlabel="env steps", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
