"""Command-line plumbing shared by the entry points: argv checks before Hydra, one-line errors after."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rlkit.errors import RlkitError

F = TypeVar("F", bound=Callable[..., Any])


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
        sys.argv[1:] = check_group_overrides(argv, conf, groups)
    except RlkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    hydra_main()
