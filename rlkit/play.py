"""python -m rlkit.play: the command line that replays a trained agent (rlkit.runs.playback does the work).
rlkit.runs.playback is imported only once a replay starts, so `--help` comes up without loading torch or gymnasium."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from rlkit.cli.app import App, conf_dir, one_line_errors, report_errors, run_hydra_app
from rlkit.cli.overrides import parse_overrides
from rlkit.cli.streams import quiet_closed_pipes
from rlkit.errors import RlkitError, shorten
from rlkit.plain import plain_value


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="play")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    from rlkit.runs.playback import play

    play(cfg)


def _whole(value: Any) -> bool:
    return plain_value(value, int)[0]


def _seconds(value: Any) -> bool:
    return plain_value(value, float)[0] and value >= 0  # finite


# play's own options: the test of a value and what to give instead, checked before torch loads (render= and overlay=
# are checked once the run is read: a bad run is named first).
PLAY_OPTIONS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "episodes": ("give a whole number >= 1", lambda v: _whole(v) and v >= 1),
    "seed": ("give a whole number >= 0", lambda v: _whole(v) and v >= 0),
    "torch_threads": ("give a whole number >= 1, or null for torch's default",
        lambda v: v is None or _whole(v) and v >= 1),
    "delay": ("give seconds >= 0, or null for the default", lambda v: v is None or _seconds(v)),
    "follow_timeout": ("give seconds > 0", lambda v: _seconds(v) and v > 0),
    "follow": ("give true or false", lambda v: isinstance(v, bool)),
    "video": ("give a path ending in .mp4 or .gif, or null", lambda v: v is None or isinstance(v, str)),
    "env_module": ("give a module name, or null", lambda v: v is None or isinstance(v, str)),
}


def check_play(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "run"):
        raise RlkitError("play needs run=<a run folder that python -m rlkit.train printed>")
    if not isinstance(cfg.run, str):
        raise RlkitError(f"run={shorten(cfg.run)} is not a path; quote it: run=\"'{shorten(cfg.run)}'\"")
    for name, (fix, valid) in PLAY_OPTIONS.items():
        if not valid(cfg.get(name)):
            raise RlkitError(f"{name}={shorten(cfg.get(name))} is not valid; {fix}")


def check_run_argument(argv: Sequence[str]) -> None:
    """Hydra reads `run=a,b` as a sweep over two runs; a path holding a comma must be quoted, which Hydra keeps."""
    for arg in argv:
        if arg.startswith("run=") and "," in arg:
            (override,) = parse_overrides([arg])
            if override.is_sweep_override():
                path = shorten(arg.removeprefix("run="), 160)
                raise RlkitError(f"run={path}: Hydra reads a comma as a list of runs; quote a path that holds one: "
                    f"run=\"'{path}'\"")


APP = App(name="rlkit.play", conf=conf_dir(), config_name="play", groups=("device",), check=check_play)


def main() -> None:
    with quiet_closed_pipes():
        with one_line_errors():
            check_run_argument(sys.argv[1:])
        run_hydra_app(_hydra_main, APP)


if __name__ == "__main__":
    main()
