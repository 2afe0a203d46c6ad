"""python -m rlkit.report <dir>: IQM curves with 95% bands, performance profiles and a table for the runs below <dir>.
rlkit.analysis.report does the work; it is imported only once a report is asked for, so `--help` comes up at once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rlkit.cli.app import report_errors
from rlkit.cli.streams import quiet_closed_pipes


@report_errors
def _report(root: Path, *, reps: int, seed: int) -> None:
    from rlkit.analysis.report import write_report

    paths, table = write_report(root, reps=reps, seed=seed)
    print(table + "\n\n" + "\n".join(f"wrote {path}" for path in paths))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlkit.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a run or sweep folder, e.g. runs/multirun/<date>/<time>")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    args = parser.parse_args(argv)
    with quiet_closed_pipes():
        _report(args.dir, reps=args.reps, seed=args.seed)


if __name__ == "__main__":
    main()
