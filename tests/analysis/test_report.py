"""rlkit.report and rlkit.analysis.stats on synthetic sweeps: event files with known values in,
exact table values out."""

import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from omegaconf import OmegaConf

from rlkit import tb
from rlkit.analysis import stats
from rlkit.analysis.plots import new_figure
from rlkit.analysis.records import load_run
from rlkit.analysis.report import group_runs, summarise, title_of, varied_settings, write_report
from rlkit.errors import RlkitError
from rlkit.loop import EvalResult, Evaluation, TrainResult

TAXI_FINALS = [0.0, 1.0, 2.0, 3.0, 10.0]  # mean 3.2; IQM drops one run at each end: mean(1, 2, 3) = 2.0
TAXI_SPEEDS = [100.0, 200.0, 300.0, 400.0, 500.0]
REPS = 500  # bootstrap resamples in tests: enough for stable quantiles, quick on a busy machine


def write_run(run_dir: Path, *, env: str, seed: int, curve: dict[int, float], steps_per_sec: float | None,
        overrides=None,
              tag: str = tb.EVAL_RETURN_MEAN, config: dict | None = None):
    """A run folder as rlkit.train leaves it: .hydra/config.yaml, overrides.yaml and TensorBoard events."""
    (run_dir / ".hydra").mkdir(parents=True)
    config = config or {"seed": seed, "progress": False, "total_steps": max(curve), "env": {"name": env,
        "id": f"{env}-v0"}}
    OmegaConf.save(config, run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(overrides if overrides is not None else [f"env={env}", f"seed={seed}"],
        run_dir / ".hydra" / "overrides.yaml")
    logger = tb.Logger(run_dir)
    for step, value in curve.items():
        logger.scalars({tag: value, tb.STEPS_PER_SEC: steps_per_sec or 1.0}, step)
    logger.hparams({"seed": seed}, [tag, tb.STEPS_PER_SEC])
    logger.close()


@pytest.fixture
def sweep(tmp_path):
    """Jobs 0-4: taxi, seeds 0-4, eval at steps 100 and 200 (value = seed, then the final); jobs 5-6: frozenlake."""
    for seed, (final, speed) in enumerate(zip(TAXI_FINALS, TAXI_SPEEDS, strict=True)):
        write_run(tmp_path / str(seed), env="taxi", seed=seed, curve={100: float(seed), 200: final},
            steps_per_sec=speed)
    for job, seed, final in ((5, 0, 0.5), (6, 1, 1.0)):
        write_run(tmp_path / str(job), env="frozenlake", seed=seed, curve={100: 0.0, 200: final}, steps_per_sec=50.0)
    return tmp_path


@pytest.fixture
def two_settings(tmp_path):
    """One env, two learning rates x 3 seeds: lr=0.5 ends at 5, 6, 7; lr=0.1 at 0, 1, 2."""
    for job, (lr, seed, final) in enumerate([(lr, s, base + s) for lr, base in ((0.5, 5.0), (0.1,
            0.0)) for s in range(3)]):
        config = {"seed": seed, "env": {"name": "taxi"}, "agent": {"learning_rate": lr}}
        write_run(tmp_path / str(job), env="taxi", seed=seed, curve={50: 0.0, 100: final}, steps_per_sec=10.0,
                  overrides=[f"agent.learning_rate={lr}", f"seed={seed}"], config=config)
    return tmp_path


# rlkit.analysis.stats: rliable's estimators on numbers whose answers are known.


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm(np.array(TAXI_FINALS), reps=REPS).point[0] == 2.0
    assert stats.iqm(np.arange(1.0, 9.0), reps=REPS).point[0] == 4.5  # 8 runs: drop 2 at each end, mean(3, 4, 5, 6)
    assert stats.iqm(np.array([1.0, 2.0, 6.0]), reps=REPS).point[0] == 3.0  # 3 runs: nothing to trim


def test_intervals_bracket_the_iqm_are_reproducible_and_leave_numpys_rng_alone():
    values = np.array(TAXI_FINALS)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    estimate = stats.iqm(values, reps=REPS, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)  # the bootstrap's global seeding is undone
    assert 0.0 <= estimate.low[0] < 2.0 < estimate.high[0] <= 10.0
    many = np.arange(20.0) ** 1.5  # many distinct resample IQMs: the seed shows in the quantiles
    first, again, other = (stats.iqm(many, reps=REPS, seed=s) for s in (0, 0, 1))
    assert (first.low, first.high) == (again.low, again.high) and (first.low, first.high) != (other.low, other.high)
    agree = stats.iqm(np.array([7.0, 7.0, 7.0]), reps=REPS)
    assert (agree.low[0], agree.high[0]) == (7.0, 7.0)  # runs that agree: no uncertainty


def test_fewer_than_three_runs_get_no_interval():
    two = stats.iqm(np.array([1.0, 3.0]), reps=REPS)
    assert two.point[0] == 2.0 and two.low is None and two.high is None
    assert stats.iqm_curve(np.array([[0.0, 1.0], [2.0, 3.0]]), reps=REPS).low is None
    assert stats.performance_profile(np.array([1.0]), np.array([0.0, 2.0]), reps=REPS).low is None


def test_iqm_curve_is_the_iqm_at_each_step():
    curves = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [100.0, 5.0]])  # step 0: IQM 2; step 1: all 5
    curve = stats.iqm_curve(curves, reps=REPS)
    np.testing.assert_array_equal(curve.point, [2.0, 5.0])
    assert curve.low[0] < 2.0 < curve.high[0] and curve.low[1] == curve.high[1] == 5.0


def test_performance_profile_counts_runs_above_each_threshold():
    profile = stats.performance_profile(np.array(TAXI_FINALS), np.array([-1.0, 0.0, 2.5, 10.0]), reps=REPS)
    np.testing.assert_array_equal(profile.point, [1.0, 0.8, 0.4, 0.0])
    assert np.all(profile.low <= profile.point) and np.all(profile.point <= profile.high)


def test_probability_of_improvement():
    assert stats.probability_of_improvement(np.array([5.0, 6.0, 7.0]), np.array([0.0, 1.0, 2.0]),
        reps=REPS).point[0] == 1.0
    assert stats.probability_of_improvement(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]),
        reps=REPS).point[0] == 0.5
    mixed = stats.probability_of_improvement(np.array([1.0, 4.0, 5.0]), np.array([2.0, 3.0, 6.0]), reps=REPS)
    assert mixed.point[0] == pytest.approx(4 / 9) and mixed.low[0] < 4 / 9 < mixed.high[0]


def test_missing_rliable_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rliable", None)  # what `import` sees when rliable is absent
    with pytest.raises(RlkitError, match=r'rlkit.report needs rliable .*; pip install "rlkit\[report\]"$'):
        stats.iqm(np.array(TAXI_FINALS), reps=REPS)


# Reading, grouping and summarising runs.


def test_runs_group_by_config_minus_seed(sweep):
    groups = group_runs([load_run(sweep / str(job)) for job in range(7)])
    assert {label: [run.path.name for run in runs] for label, runs in groups.items()} == {
        "env=taxi": ["0", "1", "2", "3", "4"],
        "env=frozenlake": ["5", "6"],
    }


def test_summary_has_known_mean_iqm_ci_and_speed(sweep):
    taxi = summarise("env=taxi", [load_run(sweep / str(job)) for job in range(5)], reps=REPS)
    assert (taxi.runs, taxi.last_step, taxi.finals.mean(), taxi.iqm.point[0], taxi.steps_per_sec) == (5, 200, 3.2, 2.0,
        300.0)
    assert 0.0 <= taxi.iqm.low[0] < 2.0 < taxi.iqm.high[0] <= 10.0
    band = taxi.band
    assert band is not None and band.x.tolist() == [100, 200] and band.label == "env=taxi (n=5)"
    np.testing.assert_allclose(band.center, [2.0, 2.0])  # IQM of seeds 0-4 at step 100; IQM of the finals at 200
    assert np.all(band.low <= band.center) and np.all(band.center <= band.high) and band.low[0] < band.high[0]
    frozen = summarise("env=frozenlake", [load_run(sweep / str(job)) for job in (5, 6)], reps=REPS)
    assert frozen.band.low is None and frozen.band.label == "env=frozenlake (n=2: too few runs for a CI)"
    assert frozen.band.runs.tolist() == [[0.0, 0.5], [0.0, 1.0]]  # drawn run by run instead of a band


def test_title_says_when_and_what_varied_not_the_time_folder(tmp_path):
    sweep_dir = tmp_path / "2024-06-08" / "06-08-28"
    for seed in range(3):
        write_run(sweep_dir / str(seed), env="taxi", seed=seed, curve={10: 1.0}, steps_per_sec=None,
                  overrides=["env=taxi", f"seed={seed}", f"agent.learning_rate={0.1 * (seed + 1):g}"])
    runs = [load_run(sweep_dir / str(seed)) for seed in range(3)]
    started = datetime.fromtimestamp(min(run.started for run in runs)).strftime("%Y-%m-%d %H:%M")
    assert varied_settings(runs) == "seed (0-2) and agent.learning_rate (0.1, 0.2, 0.3)"
    assert title_of(runs) == (f"rlkit sweep started {started}: 3 runs varying seed (0-2) and "
        "agent.learning_rate (0.1, 0.2, 0.3)")
    write_report(sweep_dir, reps=REPS)
    assert (sweep_dir / "report.md").read_text().startswith(f"# rlkit sweep started {started}: 3 runs varying")


def test_report_writes_figures_and_table_with_exact_values(sweep):
    paths, table = write_report(sweep, reps=REPS)
    assert paths == [sweep / "report.png", sweep / "performance_profile.png",
        sweep / "report.md"]  # 2 envs: profiles too
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths[:2])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines()[2:]}
    assert rows["env=taxi"][1:5] == ["5", "200", "3.20", "2.00"] and rows["env=taxi"][6] == "300 |"
    assert rows["env=frozenlake"][1:6] == ["2", "200", "0.75", "0.75", "none: < 3 runs"]
    low, high = (float(x) for x in rows["env=taxi"][5].strip("[]").split(", "))
    assert low < 2.0 < high
    markdown = (sweep / "report.md").read_text()
    assert table in markdown and "](report.png)" in markdown and "](performance_profile.png)" in markdown
    assert ("Fewer than 3 runs, so no 95% interval (runs drawn dotted instead of a band): "
        "env=frozenlake (n=2).") in markdown
    assert "Probability of improvement" not in markdown  # no env holds two groups: nothing comparable


def test_probability_of_improvement_compares_settings_within_an_env(two_settings):
    paths, table = write_report(two_settings, reps=REPS)
    assert "| taxi | agent.learning_rate=0.5 | agent.learning_rate=0.1 | 1.00 | [1.00, 1.00] |" in table
    assert "## Probability of improvement" in paths[-1].read_text() and len(paths) == 3


@pytest.mark.parametrize("tag", [tb.SUPERVISED_TEST_ACCURACY, tb.SUPERVISED_TEST_ACCURACY_UNPREFIXED])
def test_supervised_runs_are_reported_on_test_accuracy_per_epoch(tmp_path, tag):
    for seed, accuracy in enumerate([0.98, 0.99, 0.97]):
        config = {"seed": seed, "data": {"name": "digits"}, "epochs": 2}
        write_run(tmp_path / str(seed), env="-", seed=seed, curve={1: 0.5, 2: accuracy}, steps_per_sec=None,
                  tag=tag, config=config, overrides=["net=cnn", f"seed={seed}"])
    _, table = write_report(tmp_path, reps=REPS)
    assert table.splitlines()[0].startswith("| group | runs | epochs | final test accuracy (mean) | final test "
        "accuracy (IQM) |")
    assert table.splitlines()[2].startswith("| data=digits | 3 | 2 | 0.9800 | 0.9800 | [0.97")


def test_run_records_are_read_as_plain_data_never_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("RLKIT_TEST_SECRET", "leaked")
    config = {"seed": 0, "env": {"name": "taxi"}, "note": "${oc.env:RLKIT_TEST_SECRET}", "other": "${missing.key}"}
    write_run(tmp_path / "0", env="taxi", seed=0, curve={10: 1.0}, steps_per_sec=None, config=config)
    run = load_run(tmp_path / "0")
    assert run.config["note"] == "${oc.env:RLKIT_TEST_SECRET}" and run.config["other"] == "${missing.key}"


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
    assert groups["env=taxi"][0].steps_per_sec == 1.0


# The command line, as a user meets it.


def test_cli_prints_table_and_paths(sweep):
    proc = run_cli("rlkit.report", str(sweep), "--reps", str(REPS))
    assert proc.returncode == 0, proc.stderr
    assert "| env=taxi | 5 | 200 | 3.20 | 2.00 |" in proc.stdout
    assert (f"wrote {sweep / 'report.png'}\nwrote {sweep / 'performance_profile.png'}\n"
        f"wrote {sweep / 'report.md'}") in proc.stdout


def _broken_config(tmp: Path, text: str) -> Path:
    write_run(tmp / "0", env="taxi", seed=0, curve={10: 1.0}, steps_per_sec=None)
    (tmp / "0" / ".hydra" / "config.yaml").write_text(text)
    return tmp


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda tmp: tmp / "nope", "is not a folder; give a run or sweep folder"),
        (lambda tmp: tmp, "no TensorBoard runs with eval/return_mean or supervised/test_accuracy below"),
        (lambda tmp: _broken_config(tmp, "env: [taxi\nseed: 0\n"),
            "0/.hydra/config.yaml is not readable YAML (while parsing"),
        (lambda tmp: _broken_config(tmp, "- env=taxi\n- seed=0\n"),
            "0/.hydra/config.yaml holds a list, not the dict rlkit writes"),
    ],
    ids=["not-a-folder", "no-runs", "invalid-yaml", "yaml-list"],
)
def test_cli_errors_are_one_line(tmp_path, make, message):
    proc = run_cli("rlkit.report", str(make(tmp_path)))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr


def test_missing_matplotlib_is_a_clear_error(monkeypatch, tmp_path, capsys):
    from rlkit.runs.training import _write_learning_curve

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what `import` sees when matplotlib is absent
    with pytest.raises(RlkitError,
            match=r"plots need matplotlib, a dependency of rlkit that is missing here; pip install"):
        new_figure(1, 1)
    result = TrainResult(steps=10, episodes=1, train_seconds=1.0, evaluations=[Evaluation(10, 1.0,
        EvalResult(np.ones(2), np.ones(2)))])
    _write_learning_curve(result, tmp_path / "learning_curve.png", title="t")  # a finished run still ends cleanly
    assert capsys.readouterr().out.startswith("curve:  skipped (plots need matplotlib, a dependency of rlkit")
    assert not (tmp_path / "learning_curve.png").exists()


def test_whole_run_steps_per_sec_is_all_steps_over_all_window_seconds(tmp_path):
    """Windows of 100 steps at 100 and 50 steps/s take 1 s and 2 s: 200 steps in 3 s, not the windows' mean of 75."""
    logger = tb.Logger(tmp_path)
    logger.scalars({tb.EVAL_RETURN_MEAN: 1.0, tb.STEPS_PER_SEC: 100.0}, 100)
    logger.scalars({tb.EVAL_RETURN_MEAN: 2.0, tb.STEPS_PER_SEC: 50.0}, 200)
    logger.close()
    assert load_run(tmp_path).steps_per_sec == pytest.approx(200 / 3)


def test_an_old_runs_discount_groups_with_gamma(tmp_path):
    """Runs from before the tabular agent said gamma (issue 14) recorded agent.discount=...: same setting, one group."""
    for job, (key, seed) in enumerate((("agent.discount", 0), ("agent.gamma", 1), ("+agent.discount", 2),
            ("agent.gamma", 3))):
        write_run(tmp_path / str(job), env="taxi", seed=seed, curve={100: 1.0}, steps_per_sec=10.0,
                  overrides=["env=taxi", f"{key}=0.9", f"seed={seed}"])
    runs = [load_run(tmp_path / str(job)) for job in range(4)]
    assert [run.overrides[1] for run in runs] == ["agent.gamma=0.9", "agent.gamma=0.9", "+agent.gamma=0.9",
        "agent.gamma=0.9"]
    assert [len(group) for group in group_runs(runs).values()] == [4]


def test_an_old_runs_dqn_flags_group_with_the_parts_they_became(tmp_path):
    """Runs from before DQN's parts had names recorded agent.prioritized=true, agent.dueling=true,
    agent.priority_alpha=...: each groups with the run that names the part today."""
    old = ["env=cartpole", "agent.prioritized=true", "agent.dueling=true", "agent.priority_alpha=0.5",
        "agent.dedup_frames=false"]
    new = ["env=cartpole", "agent/sampler=prioritized", "net.head.type=dueling", "agent.sampler.alpha=0.5",
        "replay=transitions"]
    for job, overrides in enumerate((old, new, old)):
        write_run(tmp_path / str(job), env="cartpole", seed=job, curve={100: 1.0}, steps_per_sec=10.0,
            overrides=[*overrides, f"seed={job}"])
    runs = [load_run(tmp_path / str(job)) for job in range(3)]
    assert [list(run.overrides[:5]) for run in runs] == [new, new, new]
    assert [len(group) for group in group_runs(runs).values()] == [3]
