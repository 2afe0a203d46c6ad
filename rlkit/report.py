"""python -m rlkit.report <dir>: evaluation curves with 95% bootstrap bands and an IQM table for the runs below <dir>.

Runs are grouped by their config minus the seed. Statistics follow Agarwal et al. 2021, "Deep RL at the Edge of
the Statistical Precipice" (https://arxiv.org/abs/2108.13264): interquartile mean over runs, with percentile
bootstrap confidence intervals that resample runs.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlkit import tb
from rlkit.cli import report_errors
from rlkit.errors import RlkitError
from rlkit.plots import Band, plot_bands

PNG_NAME, MARKDOWN_NAME = "report.png", "report.md"
CURVE_TAG = tb.EVAL_RETURN_MEAN
# Keys that may differ between the runs of one group: the seed, and settings that cannot change results.
IGNORED_KEYS = ("seed", "progress")


# Statistics: pure functions over per-run values, runs on axis 0.


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle half of the runs (= scipy.stats.trim_mean(values, 0.25))."""
    ordered = np.sort(np.asarray(values, dtype=float), axis=axis)
    n = ordered.shape[axis]
    cut = int(0.25 * n)
    return np.take(ordered, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap: resample runs with replacement `reps` times; the statistic's central quantiles."""
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    resampled = values[np.random.default_rng(seed).integers(0, n, size=(reps, n))]  # (reps, runs, ...)
    stats = statistic(resampled, axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(stats, [tail, 100.0 - tail], axis=0)
    return low, high


# Reading runs: TensorBoard event files plus the config Hydra saved next to them.


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict[str, Any]  # .hydra/config.yaml without IGNORED_KEYS; {} when the run has none
    overrides: tuple[str, ...]  # .hydra/overrides.yaml without IGNORED_KEYS
    curve: dict[int, float]  # env step -> CURVE_TAG value; the last one is the evaluation after training
    steps_per_sec: float

    @property
    def final(self) -> float:
        return self.curve[max(self.curve)]


def _natural_key(path: Path) -> list[Any]:
    """Job folders 0, 1, ..., 10 in number order, not text order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_run_dirs(root: Path) -> list[Path]:
    return sorted({event.parent for event in root.rglob("events.out.tfevents.*")}, key=_natural_key)


def read_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} for every scalar in the folder's event files; a repeated step keeps its last value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def _is_ignored(override: str) -> bool:
    return override.partition("=")[0].lstrip("+~") in IGNORED_KEYS


def load_run(run_dir: Path) -> Run | None:
    """None when the folder holds no CURVE_TAG scalars (not an rlkit training run)."""
    scalars = read_scalars(run_dir)
    if not scalars.get(CURVE_TAG):
        return None
    hydra_dir = run_dir / ".hydra"
    loaded = _read_record(hydra_dir / "config.yaml", dict) or {}
    config = {str(k): v for k, v in loaded.items() if k not in (*IGNORED_KEYS, "hydra")}
    overrides = tuple(str(o) for o in _read_record(hydra_dir / "overrides.yaml", list) or [] if not _is_ignored(str(o)))
    return Run(run_dir, config, overrides, scalars[CURVE_TAG], _steps_per_sec(scalars))


def _read_record(path: Path, kind: type) -> Any:
    """A .hydra/ record as plain YAML data (never resolved, never code); None when absent; one line when broken."""
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RlkitError(f"{path} is not valid YAML ({type(exc).__name__}); fix or remove that run folder") from None
    if not isinstance(data, kind):
        raise RlkitError(f"{path} holds a {type(data).__name__}, not the {kind.__name__} Hydra writes; fix or remove that run folder")
    return data


def _steps_per_sec(scalars: dict[str, dict[int, float]]) -> float:
    """The whole run's training throughput (evaluation excluded), logged once with the hparams; else window means."""
    whole_run = scalars.get(tb.HPARAM_PREFIX + tb.STEPS_PER_SEC)
    if whole_run:
        return list(whole_run.values())[-1]
    windows = scalars.get(tb.STEPS_PER_SEC)
    return float(np.mean(list(windows.values()))) if windows else float("nan")


def shared_overrides(runs: Sequence[Run]) -> list[str]:
    """Command-line overrides (seed excluded) that every one of these runs was started with."""
    return [o for o in runs[0].overrides if all(o in run.overrides for run in runs)] if runs else []


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """label -> runs with equal configs apart from IGNORED_KEYS; the label is the overrides that set the group apart."""
    by_config: dict[str, list[Run]] = {}
    for run in runs:
        key = json.dumps(run.config, sort_keys=True, default=str) if run.config else f"no config: {run.path}"
        by_config.setdefault(key, []).append(run)
    everywhere = set(shared_overrides(runs))
    groups: dict[str, list[Run]] = {}
    for members in by_config.values():
        shared = [o for o in shared_overrides(members) if o not in everywhere]
        env = members[0].config.get("env")
        label = " ".join(shared) or (f"env={env['name']}" if isinstance(env, dict) and "name" in env else members[0].path.name)
        while label in groups:  # equal overrides, different configs (e.g. runs from different code versions)
            label += "'"
        groups[label] = members
    return groups


# Summaries, the table and the report.


@dataclass(frozen=True)
class Summary:
    label: str
    runs: int
    steps: int  # env steps of the final evaluation
    final_mean: float
    final_iqm: float
    iqm_low: float
    iqm_high: float
    steps_per_sec: float
    band: Band | None  # None when the runs share no evaluation step


def summarise(label: str, runs: Sequence[Run], *, reps: int = 2000, seed: int = 0) -> Summary:
    finals = np.array([run.final for run in runs])
    iqm_low, iqm_high = bootstrap_ci(finals, iqm, reps=reps, seed=seed)
    steps = sorted(set.intersection(*(set(run.curve) for run in runs)))
    band = None
    if steps:
        curves = np.array([[run.curve[s] for s in steps] for run in runs])  # (runs, steps)
        low, high = bootstrap_ci(curves, np.mean, reps=reps, seed=seed)
        env = runs[0].config.get("env")
        panel = str(env.get("name", "")) if isinstance(env, dict) else ""
        band = Band(panel, f"{label} (n={len(runs)})", np.array(steps), curves.mean(axis=0), low, high)
    return Summary(
        label=label,
        runs=len(runs),
        steps=max(max(run.curve) for run in runs),
        final_mean=float(finals.mean()),
        final_iqm=float(iqm(finals)),
        iqm_low=float(iqm_low),
        iqm_high=float(iqm_high),
        steps_per_sec=float(np.nanmean([run.steps_per_sec for run in runs])),
        band=band,
    )


def markdown_table(summaries: Sequence[Summary]) -> str:
    lines = [
        "| group | runs | env steps | final return (mean) | final return (IQM) | IQM 95% CI | steps/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        lines.append(
            f"| {s.label} | {s.runs} | {s.steps:,} | {s.final_mean:.2f} | {s.final_iqm:.2f} "
            f"| [{s.iqm_low:.2f}, {s.iqm_high:.2f}] | {s.steps_per_sec:,.0f} |"
        )
    return "\n".join(lines)


def write_report(root: Path, *, reps: int = 2000, seed: int = 0) -> tuple[Path, Path, str]:
    """Write <root>/report.png and <root>/report.md; return their paths and the table."""
    if reps <= 0:
        raise RlkitError(f"--reps must be a positive number of bootstrap resamples, got {reps}")
    if not root.is_dir():
        raise RlkitError(f"{root} is not a folder; give a run or sweep folder such as runs/multirun/<date>/<time>")
    runs = [run for run in map(load_run, find_run_dirs(root)) if run is not None]
    if not runs:
        raise RlkitError(f"no TensorBoard runs with {CURVE_TAG} below {root}; give a run or sweep folder")
    summaries = [summarise(label, members, reps=reps, seed=seed) for label, members in group_runs(runs).items()]
    bands = [s.band for s in summaries if s.band is not None]
    png = plot_bands(root / PNG_NAME, bands, title=f"{root.name}: mean and 95% bootstrap CI over seeds", ylabel="evaluation return")
    table = markdown_table(summaries)
    markdown = root / MARKDOWN_NAME
    markdown.write_text(
        f"# rlkit report: {root}\n\n{len(runs)} runs; every one with: {' '.join(shared_overrides(runs)) or 'no overrides'}\n\n"
        f"![evaluation return vs env steps]({PNG_NAME})\n\n{table}\n\n"
        f"Final return: each run's last `{CURVE_TAG}` (the greedy evaluation after training). IQM: mean of the "
        f"middle 50% of runs. CI: percentile bootstrap over runs, {reps} resamples (Agarwal et al. 2021, "
        "https://arxiv.org/abs/2108.13264). steps/s: training throughput, evaluation excluded, mean over runs.\n"
    )
    return png, markdown, table


@report_errors
def _report(root: Path, *, reps: int, seed: int) -> None:
    png, markdown, table = write_report(root, reps=reps, seed=seed)
    print(f"{table}\n\nwrote {png}\nwrote {markdown}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlkit.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a run or sweep folder, e.g. runs/multirun/<date>/<time>")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    args = parser.parse_args(argv)
    _report(args.dir, reps=args.reps, seed=args.seed)


if __name__ == "__main__":
    main()
