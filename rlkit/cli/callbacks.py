"""Hydra callbacks, configured under hydra.callbacks in conf/train.yaml and conf/supervised.yaml.
Hydra imports this module in every run and job, so it imports nothing heavy."""

from __future__ import annotations

import shlex
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    """A sweep ends by saying where it went and what to run next, instead of ending silently."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # The same config object the launcher used: Hydra's cached ${now:...} gives the folder the jobs were written to.
        sweep_dir = str(config.hydra.sweep.dir)
        print(f"sweep folder: {sweep_dir}\nreport: python -m rlkit.report {shlex.quote(sweep_dir)}", flush=True)
