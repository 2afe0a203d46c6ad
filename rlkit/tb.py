"""Thin SummaryWriter wrapper and the one list of metric names rlkit logs: RL tags on an env-step x-axis,
supervised ones per epoch under their own prefix, so the two never share a chart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlkit.plain import flatten
from rlkit.run_files import real_folder

# RL runs (python -m rlkit.train); x-axis: env steps.
EPISODIC_RETURN = "charts/episodic_return"
EPISODIC_LENGTH = "charts/episodic_length"
EVAL_RETURN_MEAN = "eval/return_mean"
EVAL_RETURN_STD = "eval/return_std"
EPSILON = "train/epsilon"
LOSS = "train/loss"
Q_MEAN = "train/q_mean"
GRAD_NORM = "train/grad_norm"
STEPS_PER_SEC = "time/steps_per_sec"  # training only: evaluations and videos are kept out
EVAL_SECONDS = "time/eval_seconds"  # what each evaluation took
EVAL_VIDEO = "eval/video"  # one greedy episode: an animated GIF (Images tab), or text boards (Text tab) for text envs
VIDEO_SECONDS = "time/video_seconds"  # what recording that episode cost

# Supervised runs (python -m rlkit.supervised); x-axis: epochs.
SUPERVISED_TRAIN_LOSS = "supervised/train_loss"
SUPERVISED_TRAIN_ACCURACY = "supervised/train_accuracy"
SUPERVISED_TEST_LOSS = "supervised/test_loss"
SUPERVISED_TEST_ACCURACY = "supervised/test_accuracy"
SUPERVISED_CONFUSION_MATRIX = "supervised/confusion_matrix"
SUPERVISED_TEST_ACCURACY_UNPREFIXED = "test/accuracy"  # logged before the prefix; report reads both


def evaluation_metrics(mean: float, std: float, seconds: float) -> dict[str, float]:
    """One greedy evaluation's scalars."""
    return {EVAL_RETURN_MEAN: mean, EVAL_RETURN_STD: std, EVAL_SECONDS: seconds}


def hparam_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A nested config's leaves under dotted keys as TensorBoard takes them: numbers, bools and strings, else text."""
    return {
        key: value if isinstance(value, (bool, int, float, str)) else str(value)
        for key, value in flatten(config).items()
        if value is not None and not isinstance(value, Mapping)
    }


class Logger:
    """Writes scalars and hyperparameters under one run folder; disabled means every call is a no-op."""

    def __init__(self, log_dir: str | Path | None, *, purge_step: int | None = None) -> None:
        """purge_step: a resumed run hides the events an interrupted one logged at or after this step."""
        self.log_dir = real_folder(Path(log_dir), root=Path(log_dir)) if log_dir is not None else None
        self._writer = None
        if self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # slow import: only when logging

            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def scalars(self, metrics: Mapping[str, float], step: int) -> None:
        """All metrics of one step as one event: each event costs ~50 us, whatever it holds."""
        if self._writer is not None and metrics:
            from tensorboard.compat.proto.summary_pb2 import Summary  # here, so agents can import the tag names cheaply

            summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in metrics.items()])
            self._writer._get_file_writer().add_summary(summary, step)  # add_scalar, minus per-tag events

    def hparams(self, hparams: Mapping[str, Any], metric_tags: Sequence[str]) -> None:
        """The run's hyperparameters in TensorBoard's HPARAMS tab, beside the last value of these logged tags (unlike
        SummaryWriter.add_hparams, which also logs every metric again as a one-point chart)."""
        if self._writer is not None:
            from torch.utils.tensorboard.summary import hparams as hparams_summaries

            # only the metrics' tags are read; three summaries: experiment, session start, session end
            for summary in hparams_summaries(hparam_values(hparams), dict.fromkeys(metric_tags, 0.0)):
                self._writer._get_file_writer().add_summary(summary)

    def image(self, tag: str, image_HWC: Any, step: int) -> None:
        if self._writer is not None:
            self._writer.add_image(tag, image_HWC, step, dataformats="HWC")

    def gif(self, tag: str, gif: bytes, shape_HWC: tuple[int, ...], step: int) -> None:
        """An animated GIF as the image summary SummaryWriter.add_video writes (TensorBoard's Images tab plays it)."""
        if self._writer is not None:
            from tensorboard.compat.proto.summary_pb2 import Summary

            height, width, colorspace = shape_HWC[:3]
            image = Summary.Image(height=height, width=width, colorspace=colorspace, encoded_image_string=gif)
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
