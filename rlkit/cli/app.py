"""Command-line plumbing shared by the entry points: where their configs live, their --help, argv checks before
Hydra, one-line errors after. It imports no torch or gymnasium: help and refusals come up at once."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import re
import shlex
import string
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig, OmegaConf, open_dict

from rlkit.cli.overrides import compose, compose_checked, first_values, parse_overrides, resolved_run_dir
from rlkit.errors import RlkitError, one_line
from rlkit.run_folder import check_new_run_dir, claim_run_dir, fresh_folder

F = TypeVar("F", bound=Callable[..., Any])

# The Hydra plugins of the `scale` extra by option name: the modules each needs -> the pip distribution.
SCALE_EXTRA = 'pip install "rlkit[scale]"'
PLUGIN_GROUPS = ("hydra/launcher", "hydra/sweeper")
PLUGINS: dict[str, dict[str, str]] = {
    "joblib": {"hydra_plugins.hydra_joblib_launcher": "hydra-joblib-launcher"},
    "ray": {"hydra_plugins.hydra_ray_launcher": "hydra-ray-launcher", "ray": "ray"},
    "ray_aws": {"hydra_plugins.hydra_ray_launcher": "hydra-ray-launcher", "ray": "ray"},
    "optuna": {"hydra_plugins.hydra_optuna_sweeper": "hydra-optuna-sweeper", "optuna": "optuna"},
    "submitit_local": {"hydra_plugins.hydra_submitit_launcher": "hydra-submitit-launcher", "submitit": "submitit"},
    "submitit_slurm": {"hydra_plugins.hydra_submitit_launcher": "hydra-submitit-launcher", "submitit": "submitit"},
}


def conf_dir() -> Path:
    """conf/ at the top of a source checkout, or rlkit/conf inside an installed wheel."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise RlkitError(f"rlkit's conf/ folder is missing next to {package}; reinstall with `pip install .`")


def group_choices(conf: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf / group).glob("*.yaml"))


def check_group_overrides(argv: Sequence[str], conf: Path, groups: Sequence[str]) -> list[str]:
    """Refuse unknown group options in one line with the valid choices (Hydra's report spans many), and spell
    device=cuda:N as Hydra needs it."""
    out: list[str] = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        bare_key = key.lstrip("+~")
        if not sep or bare_key not in groups:
            out.append(arg)
            continue
        if bare_key == "device" and value.startswith("cuda:"):
            out += ["device=cuda", f"device.name={value}"]
            continue
        choices = group_choices(conf, bare_key)
        for option in value.split(","):  # multirun: env=taxi,frozenlake
            if option not in choices:
                raise RlkitError(f"unknown {bare_key} '{option}'; choose one of: {', '.join(choices)}")
        out.append(arg)
    return out


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package, e.g. no hydra_plugins at all
        return False


def check_plugin_overrides(argv: Sequence[str], conf: Path) -> list[str]:
    """Refuse a launcher or sweeper whose plugin is not installed, naming the pip command; `hydra/launcher=ray` picks
    rlkit's conf/hydra/launcher/rlkit_ray.yaml (Hydra refuses a YAML named like the plugin's own config)."""
    out: list[str] = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key.lstrip("+~") not in PLUGIN_GROUPS:
            out.append(arg)
            continue
        name = value.removeprefix("rlkit_")
        missing = [dist for module, dist in PLUGINS.get(name, {}).items() if not _importable(module)]
        if missing:
            raise RlkitError(f"{arg} needs {' and '.join(missing)}, not installed here; {SCALE_EXTRA}")
        ours = (conf / key.lstrip("+~") / f"rlkit_{name}.yaml").is_file()
        out.append(f"{key}=rlkit_{name}" if ours else arg)
    return out


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn RlkitError into `error: <message>` on stderr and exit status 2, without a traceback."""
    try:
        yield
    except RlkitError as exc:
        print("error: " + one_line(exc), file=sys.stderr, flush=True)  # a torch error may span several lines
        sys.exit(2)


def report_errors(task: F) -> F:
    """one_line_errors() around a function (a @hydra.main task; joblib pickles it, so no ContextDecorator)."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_line_errors():
            return task(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # same signature as task


# Hydra answers these without composing a job, or composes another config that it checks itself.
UNCHECKED_FLAGS = ("help", "hydra_help", "shell_completion", "config_path", "config_name", "config_dir",
    "experimental_rerun")


@dataclass(frozen=True)
class App:
    """An entry point as run_hydra_app prepares it: its config, its groups, and what it checks before Hydra runs."""

    name: str  # the module, for messages: rlkit.train
    conf: Path  # conf_dir()
    config_name: str
    groups: Sequence[str]
    check: Callable[[DictConfig], None] | None = None  # entry-specific checks of the composed job config
    new_run_hint: str | None = None  # how to continue a run whose folder a new run would reuse ({run_dir})
    hydra_groups: Sequence[str] = ()  # Hydra's own groups that --help lists: the launchers and sweepers of -m
    # Choices made from one job's overrides where argv left them open (train: env=gym's agent and net), added to
    # argv so that Hydra records them and a resume composes the same.
    choose: Callable[[Sequence[str]], list[str]] | None = None


def prepare_argv(app: App, argv: Sequence[str]) -> list[str]:
    """Check the command line and the config it composes before Hydra creates a run folder: argv for Hydra, with
    hydra.run.dir pinned to the folder that was checked and claimed (hydra.sweep.dir to a fresh one)."""
    argv = check_plugin_overrides(check_group_overrides(argv, app.conf, app.groups), app.conf)
    args = get_args_parser().parse_args(argv)
    if any(getattr(args, flag) for flag in UNCHECKED_FLAGS):
        return argv
    chosen = app.choose(first_values(parse_overrides(args.overrides))) if app.choose is not None else []
    argv = [*chosen, *argv]  # before any flag: argparse takes overrides in one run
    overrides = parse_overrides([*args.overrides, *chosen])
    cfg = compose_checked(app.conf, app.config_name, overrides, groups=app.groups, entry=app.name)
    if args.cfg or args.info:
        return argv
    if app.check is not None:
        app.check(cfg)  # in a sweep: the first job's config, the one that can be checked before it runs
    if cfg.hydra.output_subdir is None:  # play makes no folder
        return argv
    given = {override.key_or_group for override in parse_overrides(args.overrides)}
    if args.multirun:  # Hydra makes a folder per job inside the sweep's: two sweeps of one second get two
        if "hydra.sweep.dir" in given:
            return argv
        return [*argv, f"hydra.sweep.dir={hydra_quote(fresh_folder(resolved_run_dir(cfg, 'hydra.sweep.dir')))}"]
    run_dir = resolved_run_dir(cfg)
    hint = app.new_run_hint.format(run_dir=shlex.quote(str(run_dir))) if app.new_run_hint else None
    check_new_run_dir(run_dir, continue_with=hint)
    # Claimed before Hydra writes .hydra/ in it; pinned, so that ${now:...} cannot tick past the claimed second.
    claimed = claim_run_dir(run_dir, fresh="hydra.run.dir" not in given)
    return [*argv, f"hydra.run.dir={hydra_quote(claimed)}"]


def hydra_quote(value: object) -> str:
    """A value as Hydra's override grammar reads it back unchanged: quoted where it holds more than [\\w./+-]."""
    text = str(value)
    if re.fullmatch(r"[\w./+-]+", text, re.ASCII):
        return text
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)  # a quote and the backslashes before it
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text).replace("${", "\\${")  # no interpolation
    return f"'{text}'"


def _option_lines(app: App) -> str:
    """`group: option, ...` for the groups this entry point takes, then the launchers and sweepers it configures."""
    lines = [f"{group}: {', '.join(group_choices(app.conf, group))}" for group in app.groups]
    for group in app.hydra_groups:
        ours = [name.removeprefix("rlkit_") for name in group_choices(app.conf, group)]
        lines.append(f"{group}: basic (the default), {', '.join(ours)}  (with -m; {SCALE_EXTRA})")
    return "\n".join(lines) + "\n"


def app_help(app: App, argv: Sequence[str]) -> str:
    """The entry point's help template filled with only the groups it takes (Hydra's lists every group under conf/)
    and the config these overrides compose."""
    checked = check_group_overrides(get_args_parser().parse_args(argv).overrides, app.conf, app.groups)
    cfg = compose(app.conf, app.config_name, first_values(parse_overrides(checked)))
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    template = string.Template(str(cfg.hydra.help.template))
    return template.safe_substitute(APP_CONFIG_GROUPS=_option_lines(app), CONFIG=OmegaConf.to_yaml(job))


def log_sweep_progress() -> None:
    """Hydra's own lines of a sweep on stdout ("Launching 3 jobs locally"), through one plain handler: rlkit's configs
    turn Hydra's logging setup off, as its dictConfig closes every handler in the process (pytest's among them)."""
    for name in ("hydra", "hydra_plugins"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("[%(asctime)s][HYDRA] %(message)s", "%Y-%m-%d %H:%M:%S"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)


def run_hydra_app(hydra_main: Callable[[], Any], app: App) -> None:
    """Answer --help, or check argv and the config it composes (one-line errors), then hand over to @hydra.main."""
    with one_line_errors():
        if any(arg in ("--help", "-h") for arg in sys.argv[1:]):
            print(app_help(app, sys.argv[1:]), end="")
            return
        sys.argv[1:] = prepare_argv(app, sys.argv[1:])
    if any(arg in ("-m", "--multirun") for arg in sys.argv[1:]):
        log_sweep_progress()
    hydra_main()
