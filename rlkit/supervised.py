"""python -m rlkit.supervised: the command line of a digits classifier run on the same bodies and optimizers as DQN.
The run itself (rlkit.digits.training) is imported only once one is checked or started, so `--help` comes up at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from rlkit import tb
from rlkit.cli.app import PLUGIN_GROUPS, App, conf_dir, report_errors, run_hydra_app
from rlkit.cli.streams import quiet_closed_pipes

CONFIG_GROUPS = ("data", "net", "optim", "device")


def compose_config(overrides: Sequence[str] = ()) -> tuple[DictConfig, dict[str, str]]:
    """The config `python -m rlkit.supervised <overrides>` would run, and its group choices, without running it."""
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("supervised", overrides=list(overrides), return_hydra_config=True)
    choices = {group: str(cfg.hydra.runtime.choices[group]) for group in CONFIG_GROUPS}
    with open_dict(cfg):
        del cfg["hydra"]  # as in a running app, whose cfg has no hydra node (its ${now:...} needs a job)
    return cfg, choices


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="supervised")
@report_errors
def _hydra_main(cfg: DictConfig) -> float:
    from rlkit.digits.training import run

    choices = {group: str(HydraConfig.get().runtime.choices.get(group)) for group in CONFIG_GROUPS}
    result = run(cfg, Path(HydraConfig.get().runtime.output_dir), choices=choices)
    return result.final[tb.SUPERVISED_TEST_ACCURACY]  # the value a Hydra sweeper would optimise


def check_job(cfg: DictConfig) -> None:
    """Everything that can refuse a run, before Hydra makes its folder (rlkit.digits.training.check_job)."""
    from rlkit.digits import training as supervised_training

    supervised_training.check_job(cfg)


APP = App(name="rlkit.supervised", conf=conf_dir(), config_name="supervised", groups=CONFIG_GROUPS, check=check_job,
    hydra_groups=PLUGIN_GROUPS)


def main() -> None:
    with quiet_closed_pipes():
        run_hydra_app(_hydra_main, APP)


if __name__ == "__main__":
    main()
