"""Command-line plumbing shared by the entry points: argv checks before Hydra, one-line errors after."""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rlkit.errors import RlkitError

F = TypeVar("F", bound=Callable[..., Any])

# Issue 6: the Hydra plugins of the `scale` extra, by option name, with the modules each one needs
# (module -> the pip distribution that provides it).
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


def group_choices(conf: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf / group).glob("*.yaml"))


def check_group_overrides(argv: Sequence[str], conf: Path, groups: Sequence[str]) -> list[str]:
    """Refuse unknown group options with the valid choices, and spell device=cuda:N as Hydra needs it.

    Hydra would also refuse them, but with a multi-line report; users asked for one line.
    """
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
    """Refuse a launcher or sweeper whose plugin is not installed, naming the pip command; pick rlkit's settings.

    Hydra refuses a YAML that reuses a plugin's own config name, so rlkit's settings for plugin `ray` live in
    conf/hydra/launcher/rlkit_ray.yaml, which extends the plugin's config; `hydra/launcher=ray` selects it.
    """
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


def report_errors(task: F) -> F:
    """Turn RlkitError into `error: <message>` on stderr and exit status 2, without a traceback."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except RlkitError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]  # same signature as task


def run_hydra_app(
    hydra_main: Callable[[], Any],
    conf: Path,
    groups: Sequence[str],
    prepare: Callable[[Sequence[str]], list[str]] | None = None,
) -> None:
    """Rewrite and check argv (one-line errors), then hand over to the @hydra.main function."""
    try:
        argv = prepare(sys.argv[1:]) if prepare is not None else sys.argv[1:]
        sys.argv[1:] = check_plugin_overrides(check_group_overrides(argv, conf, groups), conf)
    except RlkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    hydra_main()
