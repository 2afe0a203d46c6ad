"""Confusion matrix of a classifier's test predictions, and an RGB picture of it for TensorBoard."""

from __future__ import annotations

import numpy as np

CELL_PIXELS = 24  # side of one cell in the numpy-only picture


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, *, n_classes: int) -> np.ndarray:
    """counts[true, predicted]: row i says how the images of class i were classified."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return counts


def _row_shares(counts: np.ndarray) -> np.ndarray:
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def confusion_image(counts: np.ndarray, *, use_matplotlib: bool = True) -> np.ndarray:
    """uint8 (H, W, 3): an annotated matplotlib figure when matplotlib is installed, else a plain heat map."""
    if use_matplotlib:
        try:
            return _matplotlib_image(counts)
        except ImportError:  # matplotlib is optional (rlkit[report]); the heat map needs numpy only
            pass
    rgb = 1.0 - _row_shares(counts)[..., None] * np.array([0.9, 0.7, 0.3])  # white (0) -> dark blue (1) by share
    pixels = np.repeat(np.repeat(rgb, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)
    return (pixels * 255).round().astype(np.uint8)


def _matplotlib_image(counts: np.ndarray) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no display backend

    figure = Figure(figsize=(5, 5), dpi=80)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.imshow(_row_shares(counts), cmap="Blues", vmin=0.0, vmax=1.0)
    for (true, predicted), count in np.ndenumerate(counts):
        if count:
            color = "white" if count > 0.5 * counts[true].sum() else "black"
            axes.text(predicted, true, str(count), ha="center", va="center", fontsize=8, color=color)
    ticks = range(counts.shape[0])
    axes.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title="test confusion matrix")
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
