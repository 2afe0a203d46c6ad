"""Saved weights into networks: a checkpoint's Q-network, or a body trained by python -m rlkit.supervised
(agent.body_init); beside the bodies, so agents never import a CLI module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlkit.checkpoint import load_checkpoint
from rlkit.errors import LAST, RlkitError, one_line

SUPERVISED_TASK = "supervised"  # the "task" a supervised run's checkpoint records


def load_body_state(run_dir: str | Path) -> dict[str, torch.Tensor]:
    """The trained body's state dict from a supervised run folder (or its checkpoint.pt): tensors only, nothing
    else is read."""
    checkpoint = load_checkpoint(run_dir)
    body = checkpoint.get("body_state")
    if checkpoint.get("task") != SUPERVISED_TASK or not isinstance(body, dict):
        raise RlkitError(f"{run_dir} is not a supervised run; pass a folder that python -m rlkit.supervised printed")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in body.items()):
        raise RlkitError(
            f"{run_dir}: body_state must map parameter names to tensors; it was not written by rlkit.supervised"
        )
    return dict(body)


def init_body_from_supervised(body: nn.Module, run_dir: str | Path) -> None:
    """Copy a supervised run's body weights into `body`, refusing any missing, extra or reshaped parameter."""
    trained = load_body_state(run_dir)
    own = body.state_dict()
    hint = "build the body with the same net settings (and input size) as the supervised run"
    if own.keys() != trained.keys():
        missing, extra = sorted(own.keys() - trained.keys()), sorted(trained.keys() - own.keys())
        raise RlkitError(
            f"body parameters differ from the supervised run {run_dir}: this body has {missing or 'nothing'} "
            f"that the run lacks, the run has {extra or 'nothing'} that this body lacks; {hint}"
        )
    for name, tensor in own.items():
        if tensor.shape != trained[name].shape:
            raise RlkitError(
                f"body parameter {name} has shape {tuple(tensor.shape)} here but {tuple(trained[name].shape)} "
                f"in the supervised run {run_dir}; {hint}"
            )
    body.load_state_dict(trained)


def load_network_state(net: nn.Module, state: Any) -> None:
    """A checkpoint's weights into `net`; weights of another shape are one line naming what must match."""
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise RlkitError(
            f"checkpoint network does not fit this agent ({one_line(exc, lines=LAST)}); the env, net and net.head must "
            "be the run's"
        ) from None
