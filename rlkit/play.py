"""python -m rlkit.play: the command line that replays a trained agent (rlkit.runs.playback does the work).
rlkit.runs.playback is imported only once a replay starts, so `--help` comes up without loading torch or gymnasium."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from rlkit.cli.app import App, conf_dir, report_errors, run_hydra_app
from rlkit.cli.streams import quiet_closed_pipes
from rlkit.errors import RlkitError


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="play")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    from rlkit.runs.playback import play

    play(cfg)


def check_play(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "run"):
        raise RlkitError("play needs run=<a run folder that python -m rlkit.train printed>")


APP = App(name="rlkit.play", conf=conf_dir(), config_name="play", groups=("device",), check=check_play)


def main() -> None:
    with quiet_closed_pipes():
        run_hydra_app(_hydra_main, APP)


if __name__ == "__main__":
    main()
