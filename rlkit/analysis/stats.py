"""Statistics over runs from rliable (Agarwal et al. 2021, https://arxiv.org/abs/2108.13264), the field's standard:
IQM with stratified bootstrap confidence intervals, performance profiles and probability of improvement."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

import numpy as np

from rlkit.errors import RlkitError

MIN_RUNS_FOR_CI = 3  # fewer runs get a point estimate only: a 95% interval from two seeds means nothing
CONFIDENCE = 0.95
REPORT_EXTRA = 'pip install "rlkit[report]"'


class Estimate(NamedTuple):
    """A statistic over runs (a number or one per step/threshold) and its CI; low/high None when too few runs."""

    point: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None


def _rliable() -> tuple[ModuleType, ModuleType]:
    """rliable's library and metrics modules, or one line that names the install command."""
    try:
        from rliable import library, metrics
    except ImportError as exc:
        raise RlkitError(f"rlkit.report needs rliable ({exc}); {REPORT_EXTRA}") from None
    except TypeError as exc:  # arch < 8 fails to import on pandas 3; rliable 1.2 does not run on arch 8
        raise RlkitError(
            f"rliable could not be imported ({exc}); it needs arch<8 and pandas<3: {REPORT_EXTRA}"
        ) from None
    return library, metrics


def _estimate(
    scores: np.ndarray | list[np.ndarray], statistic: Callable[..., np.ndarray], *, reps: int, seed: int
) -> Estimate:
    """statistic(scores) and, given enough runs (axis 0), its stratified-bootstrap percentile interval; a list of
    arrays is independent groups, each resampled on its own."""
    samples = scores if isinstance(scores, list) else [scores]
    point = np.atleast_1d(np.asarray(statistic(*samples), dtype=float))
    if min(len(sample) for sample in samples) < MIN_RUNS_FOR_CI:
        return Estimate(point, None, None)
    library, _ = _rliable()
    state = np.random.get_state()
    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global RNG: seeded for a reproducible report
    try:
        _, intervals = library.get_interval_estimates(
            {"group": scores}, statistic, reps=reps, confidence_interval_size=CONFIDENCE
        )
    finally:
        np.random.set_state(state)
    low, high = np.asarray(intervals["group"], dtype=float).reshape(2, -1)
    return Estimate(point, low, high)


def _runs_column(values: np.ndarray) -> np.ndarray:
    """One task's (runs, 1): envs' returns are not on one scale."""
    return np.asarray(values, dtype=float).reshape(-1, 1)


def iqm(finals: np.ndarray, *, reps: int = 2000, seed: int = 0) -> Estimate:
    """Interquartile mean of the runs' final scores (the mean of the middle half) and its CI."""
    _, metrics = _rliable()
    return _estimate(_runs_column(finals), lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps, seed=seed)


def iqm_curve(curves_RS: np.ndarray, *, reps: int = 2000, seed: int = 0) -> Estimate:
    """IQM over runs at every evaluation step, with pointwise CIs (rliable's sample-efficiency curve)."""
    from scipy.stats import trim_mean  # rliable's aggregate_iqm at every step at once: fast enough for 2000 resamples

    curves = np.asarray(curves_RS, dtype=float)[:, None, :]  # (runs, one task, steps)
    return _estimate(curves, lambda s: trim_mean(s.reshape(-1, s.shape[-1]), 0.25, axis=0), reps=reps, seed=seed)


def performance_profile(finals: np.ndarray, taus: np.ndarray, *, reps: int = 2000, seed: int = 0) -> Estimate:
    """The fraction of runs whose final score exceeds each threshold in taus (a score distribution), with CIs."""
    thresholds = np.asarray(taus, dtype=float)
    # rliable's run_score_deviation, vectorised, as its create_performance_profile would bootstrap it.
    return _estimate(_runs_column(finals), lambda s: (s.reshape(-1, 1) > thresholds).mean(axis=0), reps=reps, seed=seed)


def probability_of_improvement(x: np.ndarray, y: np.ndarray, *, reps: int = 2000, seed: int = 0) -> Estimate:
    """P(a run of X scores higher than a run of Y), ties counting half (Mann-Whitney U), with its CI from an
    independent bootstrap."""
    _, metrics = _rliable()
    samples = [_runs_column(x), _runs_column(y)]
    return _estimate(samples, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=reps, seed=seed)
