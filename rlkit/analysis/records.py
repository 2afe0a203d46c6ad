"""Run folders read as data for rlkit.report: each run's TensorBoard curve and its .hydra records, never resolved,
interpolated, imported or instantiated (.hydra/*.yaml go through rlkit.plain.load_plain_yaml)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from rlkit import tb
from rlkit.cli.overrides import current_name
from rlkit.errors import RlkitError
from rlkit.plain import load_plain_yaml
from rlkit.run_files import check_no_links_out, open_run_file, read_run_text

# Keys that may differ between the runs of one group: the seed, and settings that cannot change results.
IGNORED_KEYS = ("seed", "progress")


class Metric(NamedTuple):
    """The curve a report reads from each run: RL runs' greedy evaluations, supervised runs' test accuracy."""

    tag: str
    name: str
    x_label: str
    digits: int  # decimals in the table


METRICS = (
    Metric(tb.EVAL_RETURN_MEAN, "return", "env steps", 2),
    Metric(tb.SUPERVISED_TEST_ACCURACY, "test accuracy", "epochs", 4),
    Metric(tb.SUPERVISED_TEST_ACCURACY_UNPREFIXED, "test accuracy", "epochs", 4),
)


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict[str, Any]  # .hydra/config.yaml without IGNORED_KEYS; {} when the run has none
    overrides: tuple[str, ...]  # .hydra/overrides.yaml, all of them (seed included)
    metric: Metric
    curve: dict[int, float]  # step or epoch -> metric value; the last one is the evaluation after training
    steps_per_sec: float
    started: float  # Unix time of the run's first event

    @property
    def final(self) -> float:
        return self.curve[max(self.curve)]

    @property
    def settings(self) -> tuple[str, ...]:
        """The overrides that can change results (seed and progress left out)."""
        return tuple(o for o in self.overrides if override_key(o) not in IGNORED_KEYS)

    @property
    def panel(self) -> str:
        """Runs of one env (or data set) share a panel: returns of different envs are on different scales."""
        return self.panel_setting.partition("=")[2]

    @property
    def panel_setting(self) -> str:
        """'env=<name>' or 'data=<name>' from the config; '' when it has neither."""
        for group in ("env", "data"):
            node = self.config.get(group)
            if isinstance(node, dict) and "name" in node:
                return f"{group}={node['name']}"
        return ""


def override_key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def _natural_key(path: Path) -> list[Any]:
    """Job folders 0, 1, ..., 10 in number order, not text order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def read_yaml(path: Path, expected: type) -> Any:
    """A run record as plain values (load_plain_yaml: no tags, aliases or interpolation); empty when there is none."""
    if not os.path.lexists(path):
        return expected()
    try:
        text = read_run_text(path, root=path.parent.parent)  # .hydra itself must be a real folder of the run
        loaded = load_plain_yaml(text, what=str(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # YAML errors span lines; the user gets one
        problem = f"is not readable YAML ({reason})"
    else:
        if isinstance(loaded, expected):
            return loaded
        problem = f"holds a {type(loaded).__name__}, not the {expected.__name__} rlkit writes there"
    raise RlkitError(f"{path} {problem}; fix it or move that run out of the report folder")


def load_run(run_dir: Path) -> Run | None:
    """None when the folder holds none of the METRICS curves (not an rlkit training or supervised run)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for name in os.listdir(run_dir):  # TensorBoard opens every *tfevents* file it finds: a FIFO would hang it
        if "tfevents" in name:
            open_run_file(run_dir / name).close()
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    events.Reload()
    tags = set(events.Tags()["scalars"])
    metric = next((m for m in METRICS if m.tag in tags), None)
    if metric is None:
        return None
    # A repeated step keeps its last value.
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in tags}
    hydra_dir = run_dir / ".hydra"
    loaded = read_yaml(hydra_dir / "config.yaml", dict)
    config = {str(k): v for k, v in loaded.items() if k not in (*IGNORED_KEYS, "hydra")}
    overrides = tuple(current_name(str(o)) for o in read_yaml(hydra_dir / "overrides.yaml", list))
    speed = _steps_per_sec(scalars.get(tb.STEPS_PER_SEC))
    return Run(run_dir, config, overrides, metric, scalars[metric.tag], speed, events.FirstEventTimestamp())


def _steps_per_sec(windows: dict[int, float] | None) -> float:
    """The whole run's training throughput (evaluations and videos excluded) from its log windows: their steps over
    their seconds, each window's seconds being its steps / its steps/s."""
    if not windows:
        return float("nan")
    ends = sorted(windows)
    steps = np.diff([0, *ends])
    return float(steps.sum() / sum(n / windows[end] for n, end in zip(steps, ends, strict=True)))


def load_runs(root: Path) -> list[Run]:
    """The runs below root of the first METRICS kind found (RL before supervised)."""
    if not root.is_dir():
        raise RlkitError(f"{root} is not a folder; give a run or sweep folder such as runs/multirun/<date>/<time>")
    check_no_links_out(root)
    run_dirs = sorted({event.parent for event in root.rglob("events.out.tfevents.*")}, key=_natural_key)
    runs = [run for run in map(load_run, run_dirs) if run is not None]
    if not runs:
        tags = " or ".join(m.tag for m in METRICS if m.tag != tb.SUPERVISED_TEST_ACCURACY_UNPREFIXED)
        raise RlkitError(f"no TensorBoard runs with {tags} below {root}; give a run or sweep folder")
    first = next(m for m in METRICS if any(run.metric == m for run in runs))
    return [run for run in runs if run.metric == first]
