"""A sweep's report for python -m rlkit.report: runs grouped by their config minus the seed, with IQM curves and
95% bands, performance profiles and a table (rliable's statistics, Agarwal et al. 2021: rlkit.analysis.stats)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from rlkit.analysis import stats
from rlkit.analysis.plots import Band, draw_profile, plot_bands
from rlkit.analysis.records import Metric, Run, load_runs, override_key
from rlkit.errors import RlkitError, printable, shorten
from rlkit.run_files import write_atomically

PNG_NAME, PROFILE_PNG_NAME, MARKDOWN_NAME = "report.png", "performance_profile.png", "report.md"
PROFILE_THRESHOLDS = 201


def shown(text: str) -> str:
    """A string from a run folder as the report shows it: escapes spelled out, a long value cut."""
    return printable(shorten(text, 160))


def shared_overrides(runs: Sequence[Run]) -> list[str]:
    """Command-line overrides (seed excluded) that every one of these runs was started with."""
    return [o for o in runs[0].settings if all(o in run.settings for run in runs)] if runs else []


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
        label = " ".join(map(shown, shared)) or shown(members[0].panel_setting or members[0].path.name)
        while label in groups:  # equal overrides, different configs (e.g. runs from different code versions)
            label += "'"
        groups[label] = members
    return groups


def _compact(values: list[str]) -> str:
    """'0-4' for consecutive integers, the values themselves when few, else how many."""
    if len(values) > 2 and all(v.lstrip("-").isdigit() for v in values):
        numbers = sorted(int(v) for v in values)
        if numbers == list(range(numbers[0], numbers[-1] + 1)):
            return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(values) if len(values) <= 4 else f"{len(values)} values"


def varied_settings(runs: Sequence[Run]) -> str:
    """What the sweep varied, from the runs' overrides: 'env (taxi, frozenlake) and seed (0-4)'; '' when nothing."""
    values: dict[str, dict[str, None]] = {}  # key -> its values in order of appearance
    for run in runs:
        for override in run.overrides:
            values.setdefault(override_key(override), {})[override.partition("=")[2]] = None
    varied = [
        f"{shown(key)} ({_compact([shown(value) for value in found])})"
        for key, found in values.items()
        if len(found) > 1 or any(key not in map(override_key, run.overrides) for run in runs)
    ]
    return " and ".join([", ".join(varied[:-1]), varied[-1]] if len(varied) > 1 else varied)


def title_of(runs: Sequence[Run]) -> str:
    """When the sweep started and what it varied; never the folder name (a time such as 06-08-28 reads as a date)."""
    started = datetime.fromtimestamp(min(run.started for run in runs)).strftime("%Y-%m-%d %H:%M")
    count = f"{len(runs)} run{'s' * (len(runs) != 1)}"
    varied = varied_settings(runs)
    return f"rlkit sweep started {started}: {count}" + (f" varying {varied}" if varied else "")


@dataclass(frozen=True)
class Summary:
    label: str
    panel: str
    finals: np.ndarray  # each run's final value
    last_step: int  # step (or epoch) of the final evaluation
    iqm: stats.Estimate
    steps_per_sec: float
    band: Band | None  # None when the runs share no evaluation step

    @property
    def runs(self) -> int:
        return len(self.finals)


def _band(panel: str, label: str, x: np.ndarray, estimate: stats.Estimate, runs: np.ndarray) -> Band:
    """A group's curve for the plots, labelled with its number of runs and whether they are too few for a CI."""
    n = f"n={len(runs)}" if len(runs) >= stats.MIN_RUNS_FOR_CI else f"n={len(runs)}: too few runs for a CI"
    return Band(panel, f"{label} ({n})", x, estimate.point, estimate.low, estimate.high, runs)


def summarise(label: str, runs: Sequence[Run], *, reps: int = 2000, seed: int = 0) -> Summary:
    finals, panel = np.array([run.final for run in runs]), shown(runs[0].panel)
    steps = sorted(set.intersection(*(set(run.curve) for run in runs)))
    band = None
    if steps:
        curves = np.array([[run.curve[s] for s in steps] for run in runs])  # (runs, steps)
        band = _band(panel, label, np.array(steps), stats.iqm_curve(curves, reps=reps, seed=seed), curves)
    speeds = [run.steps_per_sec for run in runs if not math.isnan(run.steps_per_sec)]
    speed = float(np.mean(speeds)) if speeds else float("nan")
    last_step = max(max(run.curve) for run in runs)
    return Summary(label, panel, finals, last_step, stats.iqm(finals, reps=reps, seed=seed), speed, band)


def profiles(summaries: Sequence[Summary], *, reps: int = 2000, seed: int = 0) -> list[Band]:
    """Each group's performance profile over thresholds spanning its panel's final values."""
    out: list[Band] = []
    for panel in dict.fromkeys(s.panel for s in summaries):
        members = [s for s in summaries if s.panel == panel]
        values = np.concatenate([s.finals for s in members])
        low, high = float(values.min()), float(values.max())
        margin = 0.05 * (high - low) or 0.5
        taus = np.linspace(low - margin, high + margin, PROFILE_THRESHOLDS)
        for s in members:
            profile = stats.performance_profile(s.finals, taus, reps=reps, seed=seed)
            out.append(_band(panel, s.label, taus, profile, s.finals[:, None]))
    return out


def improvement_table(summaries: Sequence[Summary], *, reps: int = 2000, seed: int = 0) -> str:
    """Per panel: P(a run of the top group by IQM beats a run of each other group); '' when no panel has two groups."""
    lines = ["| panel | X (top IQM) | Y | P(X > Y) | 95% CI |", "| --- | --- | --- | ---: | ---: |"]
    for panel in dict.fromkeys(s.panel for s in summaries):
        best, *others = sorted((s for s in summaries if s.panel == panel), key=lambda s: -float(s.iqm.point[0]))
        for other in others:
            estimate = stats.probability_of_improvement(best.finals, other.finals, reps=reps, seed=seed)
            lines.append(f"| {panel} | {best.label} | {other.label} | {estimate.point[0]:.2f} | {_ci(estimate, 2)} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _ci(estimate: stats.Estimate, digits: int) -> str:
    if estimate.low is None or estimate.high is None:
        return f"none: < {stats.MIN_RUNS_FOR_CI} runs"
    return f"[{estimate.low[0]:.{digits}f}, {estimate.high[0]:.{digits}f}]"


def markdown_table(summaries: Sequence[Summary], metric: Metric) -> str:
    d = metric.digits
    lines = [
        f"| group | runs | {metric.x_label} | final {metric.name} (mean) | final {metric.name} (IQM) "
        "| IQM 95% CI | steps/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        speed = "-" if math.isnan(s.steps_per_sec) else f"{s.steps_per_sec:,.0f}"
        lines.append(
            f"| {s.label} | {s.runs} | {s.last_step:,} | {s.finals.mean():.{d}f} | {s.iqm.point[0]:.{d}f} "
            f"| {_ci(s.iqm, d)} | {speed} |"
        )
    return "\n".join(lines)


def few_runs_note(summaries: Sequence[Summary]) -> str:
    """One plain sentence naming the groups with too few runs for an interval; '' when there are none."""
    few = [f"{s.label} (n={s.runs})" for s in summaries if s.runs < stats.MIN_RUNS_FOR_CI]
    if not few:
        return ""
    return (
        f"Fewer than {stats.MIN_RUNS_FOR_CI} runs, so no 95% interval (runs drawn dotted instead of a band): "
        f"{', '.join(few)}. Add seeds (seed=0,1,2,...) for an interval."
    )


def write_report(root: Path, *, reps: int = 2000, seed: int = 0) -> tuple[list[Path], str]:
    """Write report.png, report.md and (with two or more groups) performance_profile.png; return paths and tables."""
    if reps <= 0:
        raise RlkitError(f"--reps must be a positive number of bootstrap resamples, got {reps}")
    runs = load_runs(root)
    metric = runs[0].metric
    summaries = [summarise(label, members, reps=reps, seed=seed) for label, members in group_runs(runs).items()]
    title, note = title_of(runs), few_runs_note(summaries)
    heading = f"{title}\nIQM over runs and 95% stratified-bootstrap CI ({reps} resamples)"
    bands = [s.band for s in summaries if s.band is not None]
    written = [plot_bands(root / PNG_NAME, bands, title=heading, xlabel=metric.x_label, ylabel=metric.name, note=note)]
    table = markdown_table(summaries, metric)
    sections = [
        f"# {title}\n\nFolder: `{printable(str(root))}`. Every run with: "
        f"{' '.join(map(shown, shared_overrides(runs))) or 'no overrides'}.",
        f"![{metric.name} vs {metric.x_label}]({PNG_NAME})",
        table + (f"\n\n**{note}**" if note else ""),
    ]
    if len(summaries) > 1:
        heading = f"{title}\nperformance profiles, 95% stratified-bootstrap CI"
        written.append(plot_bands(
            root / PROFILE_PNG_NAME, profiles(summaries, reps=reps, seed=seed), title=heading,
            xlabel=f"final {metric.name}", ylabel="fraction of runs scoring above", note=note, draw=draw_profile,
        ))
        sections.append(
            f"## Performance profiles\n\n![performance profiles]({PROFILE_PNG_NAME})\n\n"
            f"For each threshold, the fraction of a group's runs whose final {metric.name} exceeds it; "
            "a curve that lies above another is better everywhere."
        )
    improvement = improvement_table(summaries, reps=reps, seed=seed)
    if improvement:
        table += "\n\n" + improvement
        sections.append(
            f"## Probability of improvement\n\n{improvement}\n\n"
            f"P(X > Y): the chance that a run of X ends with a higher final {metric.name} than a run of Y "
            "(ties count half), X being the group with the highest IQM in its panel."
        )
    sections.append(
        f"Final {metric.name}: each run's last `{metric.tag}` (the evaluation after training). "
        "IQM: mean of the middle 50% of runs. "
        f"Intervals: rliable's stratified bootstrap over runs, {reps} resamples, seed {seed}, "
        f"only for groups of {stats.MIN_RUNS_FOR_CI} or more runs "
        "(Agarwal et al. 2021, https://arxiv.org/abs/2108.13264). "
        "steps/s: training throughput, evaluation excluded, mean over runs.\n"
    )
    markdown = root / MARKDOWN_NAME
    write_atomically(markdown, lambda handle: handle.write("\n\n".join(sections).encode()))
    return [*written, markdown], table
