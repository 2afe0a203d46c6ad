"""Thin SummaryWriter wrapper: the one list of metric names rlkit logs (RL tags on an env-step x-axis, supervised ones per epoch)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary

EPISODIC_RETURN = "charts/episodic_return"
EPISODIC_LENGTH = "charts/episodic_length"
EVAL_RETURN_MEAN = "eval/return_mean"
EVAL_RETURN_STD = "eval/return_std"
EPSILON = "train/epsilon"
LOSS = "train/loss"
Q_MEAN = "train/q_mean"
GRAD_NORM = "train/grad_norm"
STEPS_PER_SEC = "time/steps_per_sec"
EVAL_VIDEO = "eval/video"  # one greedy episode: an animated GIF (Images tab), or text boards (Text tab) for text envs
VIDEO_SECONDS = "time/video_seconds"  # what recording that episode cost; kept out of steps/s

HPARAM_PREFIX = "hparam/"  # final metrics recorded with the hyperparameters: hparam/eval/return_mean, ...

TAGS = (
    EPISODIC_RETURN, EPISODIC_LENGTH, EVAL_RETURN_MEAN, EVAL_RETURN_STD, EPSILON, LOSS, Q_MEAN, GRAD_NORM, STEPS_PER_SEC,
    EVAL_VIDEO, VIDEO_SECONDS,
)

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

    def __init__(self, log_dir: str | Path | None, *, purge_step: int | None = None) -> None:
        """purge_step: a resumed run hides the events an interrupted one logged at or after this step."""
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self._writer = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars({tag: value}, step)

    def scalars(self, metrics: Mapping[str, float], step: int) -> None:
        """All metrics of one step as one event: each event costs ~50 us, whatever it holds."""
        if self._writer is not None and metrics:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in metrics.items()])
            self._writer._get_file_writer().add_summary(summary, step)  # add_scalar, minus per-tag events

    def hparams(self, hparams: Mapping[str, Any], final_metrics: Mapping[str, float]) -> None:
        """Record the run's hyperparameters next to its final results (TensorBoard's HPARAMS tab)."""
        if self._writer is not None:
            self._writer.add_hparams(flatten(hparams), {f"{HPARAM_PREFIX}{k}": float(v) for k, v in final_metrics.items()}, run_name=".")

    def image(self, tag: str, image_HWC: Any, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, image_HWC, step, dataformats="HWC")

    def gif(self, tag: str, gif: bytes, shape_HWC: tuple[int, ...], step: int) -> None:
        """An animated GIF as the image summary SummaryWriter.add_video writes (TensorBoard's Images tab plays it)."""
        if self._writer is not None:
            image = Summary.Image(height=shape_HWC[0], width=shape_HWC[1], colorspace=shape_HWC[2], encoded_image_string=gif)
            self._writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def text(self, tag: str, text: str, step: int) -> None:
        if self._writer is not None:
            self._writer.add_text(tag, text, step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
