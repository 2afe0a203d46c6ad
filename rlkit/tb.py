"""Thin SummaryWriter wrapper: the one list of metric names rlkit logs, all on an env-step x-axis."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

EPISODIC_RETURN = "charts/episodic_return"
EPISODIC_LENGTH = "charts/episodic_length"
EVAL_RETURN_MEAN = "eval/return_mean"
EVAL_RETURN_STD = "eval/return_std"
EPSILON = "train/epsilon"
LOSS = "train/loss"
Q_MEAN = "train/q_mean"
GRAD_NORM = "train/grad_norm"
STEPS_PER_SEC = "time/steps_per_sec"

TAGS = (EPISODIC_RETURN, EPISODIC_LENGTH, EVAL_RETURN_MEAN, EVAL_RETURN_STD, EPSILON, LOSS, Q_MEAN, GRAD_NORM, STEPS_PER_SEC)

# python -m rlkit.supervised logs these once per epoch (x-axis: epoch), next to LOSS for the training loss.
TRAIN_ACCURACY = "train/accuracy"
TEST_LOSS = "test/loss"
TEST_ACCURACY = "test/accuracy"
CONFUSION_MATRIX = "test/confusion_matrix"

SUPERVISED_TAGS = (LOSS, TRAIN_ACCURACY, TEST_LOSS, TEST_ACCURACY, CONFUSION_MATRIX)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"agent.learning_rate": 0.5, ...} with TensorBoard-friendly values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is not None:
            flat[name] = str(value)
    return flat


class Logger:
    """Writes scalars and hyperparameters under one run folder; disabled means every call is a no-op."""

    def __init__(self, log_dir: str | Path | None) -> None:
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._writer = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, float(value), step)

    def scalars(self, metrics: Mapping[str, float], step: int) -> None:
        if self._writer is not None:
            for tag, value in metrics.items():
                self._writer.add_scalar(tag, float(value), step)

    def hparams(self, hparams: Mapping[str, Any], final_metrics: Mapping[str, float]) -> None:
        """Record the run's hyperparameters next to its final results (TensorBoard's HPARAMS tab)."""
        if self._writer is not None:
            self._writer.add_hparams(flatten(hparams), {f"hparam/{k}": float(v) for k, v in final_metrics.items()}, run_name=".")

    def image(self, tag: str, image_HWC: Any, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, image_HWC, step, dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
