"""rlkit.report on synthetic sweeps: event files with known values in, exact table values out."""

import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import run_cli
from rlkit import tb
from rlkit.errors import RlkitError
from rlkit.loop import EvalResult, Evaluation, TrainResult
from rlkit.plots import new_figure
from rlkit.report import bootstrap_ci, group_runs, iqm, load_run, summarise, write_report

TAXI_FINALS = [0.0, 1.0, 2.0, 3.0, 10.0]  # mean 3.2; IQM drops one run at each end: mean(1, 2, 3) = 2.0
TAXI_SPEEDS = [100.0, 200.0, 300.0, 400.0, 500.0]


def write_run(run_dir: Path, *, env: str, seed: int, curve: dict[int, float], steps_per_sec: float | None, overrides=None):
    """A run folder as rlkit.train leaves it: .hydra/config.yaml, overrides.yaml and TensorBoard events."""
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "progress": False, "total_steps": max(curve), "env": {"name": env, "id": f"{env}-v0"}}
    OmegaConf.save(config, run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(overrides if overrides is not None else [f"env={env}", f"seed={seed}"], run_dir / ".hydra" / "overrides.yaml")
    logger = tb.Logger(run_dir)
    for step, value in curve.items():
        logger.scalars({tb.EVAL_RETURN_MEAN: value, tb.STEPS_PER_SEC: 1.0}, step)
    if steps_per_sec is not None:
        logger.hparams({"seed": seed}, {"eval/return_mean": curve[max(curve)], "time/steps_per_sec": steps_per_sec})
    logger.close()


@pytest.fixture
def sweep(tmp_path):
    """Jobs 0-4: taxi, seeds 0-4, eval at steps 100 and 200 (value = seed, then the final); jobs 5-6: frozenlake."""
    for seed, (final, speed) in enumerate(zip(TAXI_FINALS, TAXI_SPEEDS)):
        write_run(tmp_path / str(seed), env="taxi", seed=seed, curve={100: float(seed), 200: final}, steps_per_sec=speed)
    for job, seed, final in ((5, 0, 0.5), (6, 1, 1.0)):
        write_run(tmp_path / str(job), env="frozenlake", seed=seed, curve={100: 0.0, 200: final}, steps_per_sec=50.0)
    return tmp_path


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array(TAXI_FINALS)) == 2.0
    assert iqm(np.arange(1.0, 9.0)) == 4.5  # 8 runs: drop 2 at each end, mean(3, 4, 5, 6)
    assert iqm(np.array([1.0, 2.0, 6.0])) == 3.0  # fewer than 4 runs: nothing to trim
    np.testing.assert_array_equal(iqm(np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0], [100.0, 50.0]])), [2.0, 30.0])


def test_bootstrap_ci_brackets_the_statistic_and_is_reproducible():
    values = np.array(TAXI_FINALS)
    low, high = bootstrap_ci(values, np.mean, reps=4000, seed=0)
    assert 0.0 <= low < values.mean() < high <= 10.0
    many = np.arange(20.0) ** 1.5  # many distinct resample means: the seed shows in the quantiles
    assert bootstrap_ci(many, seed=0) == bootstrap_ci(many, seed=0) != bootstrap_ci(many, seed=1)
    assert bootstrap_ci(np.array([7.0, 7.0, 7.0]), iqm) == (7.0, 7.0)  # runs that agree: no uncertainty
    curve_low, curve_high = bootstrap_ci(np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]]), np.mean, seed=0)
    assert curve_low.shape == (2,) and curve_low[0] < 2.0 < curve_high[0] and curve_low[1] == curve_high[1] == 5.0


def test_runs_group_by_config_minus_seed(sweep):
    groups = group_runs([load_run(sweep / str(job)) for job in range(7)])
    assert {label: [run.path.name for run in runs] for label, runs in groups.items()} == {
        "env=taxi": ["0", "1", "2", "3", "4"],
        "env=frozenlake": ["5", "6"],
    }


def test_summary_has_known_mean_iqm_ci_and_speed(sweep):
    taxi = summarise("env=taxi", [load_run(sweep / str(job)) for job in range(5)], reps=4000)
    assert (taxi.runs, taxi.steps, taxi.final_mean, taxi.final_iqm, taxi.steps_per_sec) == (5, 200, 3.2, 2.0, 300.0)
    assert 0.0 <= taxi.iqm_low < taxi.final_iqm < taxi.iqm_high <= 10.0
    band = taxi.band
    assert band is not None and band.steps.tolist() == [100, 200]
    np.testing.assert_allclose(band.mean, [2.0, 3.2])  # mean of seeds 0-4 at step 100; mean of finals at 200
    assert np.all(band.low <= band.mean) and np.all(band.mean <= band.high) and band.low[0] < band.high[0]


def test_report_writes_png_and_table_with_exact_values(sweep):
    png, markdown, table = write_report(sweep, reps=4000)
    assert (png, markdown) == (sweep / "report.png", sweep / "report.md")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines()[2:]}
    assert rows["env=taxi"][1:5] == ["5", "200", "3.20", "2.00"] and rows["env=taxi"][6] == "300 |"
    assert rows["env=frozenlake"][1:5] == ["2", "200", "0.75", "0.75"] and rows["env=frozenlake"][5] == "[0.50, 1.00]"
    low, high = (float(x) for x in rows["env=taxi"][5].strip("[]").split(", "))
    assert low < 2.0 < high
    assert table in markdown.read_text() and "](report.png)" in markdown.read_text()


def test_runs_without_config_or_eval_are_kept_apart_or_skipped(tmp_path):
    write_run(tmp_path / "a", env="taxi", seed=0, curve={10: 1.0}, steps_per_sec=None)
    plain = tb.Logger(tmp_path / "plain")  # a TensorBoard run rlkit did not write: no .hydra folder
    plain.scalars({tb.EVAL_RETURN_MEAN: 4.0}, 10)
    plain.close()
    other = tb.Logger(tmp_path / "other")  # no evaluation curve at all: not a training run
    other.scalars({"loss": 1.0}, 10)
    other.close()
    assert load_run(tmp_path / "other") is None
    groups = group_runs([load_run(tmp_path / "a"), load_run(tmp_path / "plain")])
    assert sorted(groups) == ["env=taxi", "plain"]
    assert groups["env=taxi"][0].steps_per_sec == 1.0  # no hparams: the mean of the logged windows


def test_cli_prints_table_and_paths(sweep):
    proc = run_cli("rlkit.report", str(sweep))
    assert proc.returncode == 0, proc.stderr
    assert "| env=taxi | 5 | 200 | 3.20 | 2.00 |" in proc.stdout
    assert f"wrote {sweep / 'report.png'}\nwrote {sweep / 'report.md'}" in proc.stdout


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda tmp: tmp / "nope", "is not a folder; give a run or sweep folder"),
        (lambda tmp: tmp, "no TensorBoard runs with eval/return_mean below"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, make, message):
    proc = run_cli("rlkit.report", str(make(tmp_path)))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path, capsys):
    from rlkit.train import _write_learning_curve

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what `import` sees when matplotlib is absent
    with pytest.raises(RlkitError, match=r'matplotlib, which is not installed; pip install "rlkit\[report\]"'):
        new_figure(1, 1)
    result = TrainResult(steps=10, episodes=1, train_seconds=1.0, evaluations=[Evaluation(10, 1.0, EvalResult(np.ones(2), np.ones(2)))])
    _write_learning_curve(result, tmp_path / "learning_curve.png", title="t")  # the run goes on: a note, no file
    assert capsys.readouterr().out.startswith('curve:  skipped (plots need matplotlib, which is not installed; pip install "rlkit[report]")')
    assert not (tmp_path / "learning_curve.png").exists()
