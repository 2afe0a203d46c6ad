"""The entry points as a user runs them: tiny budgets, a tmp run folder, one-line errors."""

import re
import shutil

import pytest
from conftest import run_cli, run_cli_into_closed_pipe, run_main, run_python
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlkit import tb
from rlkit.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def taxi_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "taxi"
    proc = run_cli(
        "rlkit.train", "env=taxi", "total_steps=3000", "eval_every_steps=1000", "final_eval_episodes=5",
        "log_every_steps=500", "progress=false", f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    return run_dir, proc


def test_train_writes_config_events_and_checkpoint(taxi_run):
    run_dir, proc = taxi_run
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert not list(run_dir.glob("*.log"))  # Hydra's job logging is off: no empty train.log
    assert list(run_dir.glob("events.out.tfevents.*"))
    data = load_checkpoint(run_dir)
    assert (data["env"], data["agent"], data["step"]) == ("taxi", "q_learning", 3000)
    assert data["config"]["env"]["id"] == "Taxi-v4"
    assert f"python -m rlkit.play run={run_dir}" in proc.stdout
    assert re.search(r"final evaluation over 5 greedy episodes: return -?[\d.]+ \+- [\d.]+ \([\d.]+ s\)\n", proc.stdout)
    assert re.search(  # what the run's time went to: two periodic evaluations and the final one are not training
        r"\ntime: [\d.]+ s training \([\d,]+ steps/s; evaluations and videos not included\), [\d.]+ s in 3 "
            r"evaluations, "
        r"[\d.]+ s wall in all\n", proc.stdout
    )


def test_train_logs_the_fixed_tags_on_env_steps(taxi_run):
    run_dir, _ = taxi_run
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (tb.EPISODIC_RETURN, tb.EPISODIC_LENGTH, tb.EVAL_RETURN_MEAN, tb.EVAL_RETURN_STD, tb.EPSILON,
            tb.STEPS_PER_SEC):
        assert tag in tags, tag
    assert [e.step for e in events.Scalars(tb.EVAL_RETURN_MEAN)] == [1000, 2000, 3000]
    assert [e.step for e in events.Scalars(tb.STEPS_PER_SEC)] == [500 * i for i in range(1, 7)]


def test_hparams_are_in_the_hparams_tab_only(taxi_run):
    """The HPARAMS tab shows the last eval/return_mean and time/steps_per_sec beside them: no one-point hparam/*
    charts."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, _ = taxi_run
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    assert not [tag for tag in events.Tags()["scalars"] if not tag.startswith(("charts/", "eval/", "train/", "time/"))]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.SummaryMetadata("_hparams_/experiment").plugin_data.content)
    assert [m.name.tag for m in experiment.experiment.metric_infos] == [tb.EVAL_RETURN_MEAN, tb.STEPS_PER_SEC]
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content)
    assert start.session_start_info.hparams["agent.learning_rate"].number_value == 1.0
    assert start.session_start_info.hparams["env.id"].string_value == "Taxi-v4"


def test_play_prints_board_and_returns(taxi_run):
    run_dir, _ = taxi_run
    proc = run_cli("rlkit.play", f"run={run_dir}", "episodes=2")
    assert proc.returncode == 0, proc.stderr
    assert "+---------+" in proc.stdout  # Taxi's text board
    assert proc.stdout.count("episode ") == 2 and "mean return over 2 episodes" in proc.stdout


def test_one_episode_is_one_episode(taxi_run):
    proc = run_cli("rlkit.play", f"run={taxi_run[0]}", "episodes=1", "delay=0")
    assert proc.returncode == 0 and "mean return over 1 episode: " in proc.stdout and "episodes:" not in proc.stdout


def test_play_records_a_video(taxi_run, tmp_path):
    run_dir, _ = taxi_run
    proc = run_cli("rlkit.play", f"run={run_dir}", "episodes=1", f"video={tmp_path / 'taxi.mp4'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "taxi.mp4").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taxi.mp4"]


@pytest.mark.parametrize(
    "module,args,message",
    [
        ("rlkit.train", ["env=nope"],
            "unknown env 'nope'; choose one of: acrobot, atari, breakout, cartpole, cliffwalking"),
        ("rlkit.train", ["agent=sarsa"], "unknown agent 'sarsa'; choose one of:"),
        ("rlkit.train", ["device=tpu"], "unknown device 'tpu'; choose one of: auto, cpu, cuda, mps"),
        ("rlkit.train", ["total_steps=-5"], "total_steps must be a positive number of steps/episodes, got -5"),
        ("rlkit.train", ["eval_every_steps=-1"], "eval_every_steps must be >= 0"),
        ("rlkit.train", ["eval_max_steps=0"], "eval_max_steps must be >= 1 or null (no cap), got 0"),
        ("rlkit.play", ["run=/nonexistent/run"], "run folder /nonexistent/run does not exist"),
        ("rlkit.play", ["run=/dev", "render=tv"], "no checkpoint.pt in /dev"),
    ],
)
def test_bad_input_is_one_line_and_status_2(module, args, message, tmp_path, capsys):
    """In this process (test_bad_inputs.py and test_train.py run such cases as real processes too)."""
    from rlkit import play, train

    main = {"rlkit.train": train.main, "rlkit.play": play.main}[module]
    code, _, err = run_main(main, *args,
        f"hydra.run.dir={tmp_path / 'run'}" if module == "rlkit.train" else "hydra.run.dir=.", capsys=capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_play_render_choices(taxi_run, capsys):
    from rlkit.play import main

    code, _, err = run_main(main, f"run={taxi_run[0]}", "render=tv", capsys=capsys)
    assert code == 2 and err == "error: render=tv is not valid; choose one of: auto, ansi, human, none\n"


HEAVY_MODULES = ("torch", "gymnasium", "tensorboard")


@pytest.mark.parametrize(
    "module,groups,absent",
    [
        ("rlkit.train", ("env", "agent", "agent/sampler", "net", "optim", "replay", "preset", "device",
            "hydra/launcher", "hydra/sweeper"), ("data", "data_net", "tuned")),
        ("rlkit.supervised", ("data", "net", "optim", "device", "hydra/launcher", "hydra/sweeper"), ("env", "agent",
            "preset", "tuned", "data_net")),
    ],
)
def test_help_lists_only_the_groups_the_entry_point_takes(module, groups, absent):
    proc = run_cli(module, "--help")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    listed = proc.stdout.split("== Config groups (group=option) ==\n")[1].split("\n\n")[0]
    assert [line.split(":")[0] for line in listed.splitlines()] == list(groups)
    assert not set(absent) & {line.split(":")[0] for line in listed.splitlines()}


def test_train_help_shows_the_taxi_id_that_is_used():
    """gymnasium >= 1.3 (installed here) registers Taxi-v4 and refuses v3: help shows what the run will make."""
    from rlkit.envs.gym import resolve_env_id

    config = run_cli("rlkit.train", "--help").stdout.split("== Composed config")[1]
    assert "  id: Taxi-v4\n" in config and resolve_env_id("Taxi-v4") == "Taxi-v4"


@pytest.mark.parametrize("module", ["rlkit.train", "rlkit.play"])
def test_help_loads_no_torch_gymnasium_or_tensorboard(module):
    """What makes --help come up at once: 2-3 s of imports are left for a run that needs them."""
    code = (
        "import runpy, sys; sys.argv = ['x', '--help']\n"
        f"runpy.run_module('{module}', run_name='__main__')\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_help_with_overrides_shows_their_config_and_refuses_a_bad_choice():
    proc = run_cli("rlkit.train", "env=pong", "--help")
    assert proc.returncode == 0 and "game: Pong" in proc.stdout
    proc = run_cli("rlkit.train", "agent=dqm", "--help")
    assert proc.returncode == 2 and proc.stderr == "error: unknown agent 'dqm'; choose one of: dqn, q_learning\n"


@pytest.mark.parametrize("module", ["rlkit.train", "rlkit.play", "rlkit.report", "rlkit.supervised"])
def test_output_into_a_closed_pipe_is_dropped_and_the_entry_point_finishes(module, taxi_run, tmp_path):
    """`... | head` closes stdout early: no BrokenPipeError, the run writes all its files and exits 0 (issue 11)."""
    run_dir = tmp_path / "run"
    args = {
        "rlkit.train": ["env=taxi", "total_steps=2000", "eval_every_steps=1000", "final_eval_episodes=5",
            "progress=false",
                        f"hydra.run.dir={run_dir}"],
        "rlkit.play": [f"run={taxi_run[0]}", "episodes=5", "delay=0"],
        "rlkit.report": [str(run_dir), "--reps", "50"],
        "rlkit.supervised": ["epochs=1", "progress=false", f"hydra.run.dir={run_dir}"],
    }[module]
    if module == "rlkit.report":
        shutil.copytree(taxi_run[0], run_dir)
    assert run_cli_into_closed_pipe(module, *args) == (0, "")
    if module == "rlkit.train":
        assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG" and (
            load_checkpoint(run_dir)["step"] == 2000)
    if module == "rlkit.report":
        assert (run_dir / "report.md").is_file() and (run_dir / "report.png").is_file()
    if module == "rlkit.supervised":
        assert load_checkpoint(run_dir)["task"] == "supervised"


@pytest.mark.parametrize("module", ["rlkit.train", "rlkit.supervised"])
def test_a_run_in_this_process_leaves_the_process_logging_handlers_open(module, tmp_path, capsys):
    """Hydra's logging setup runs logging.config.dictConfig, which flushes and closes every logging handler in the
    process: under pytest, handlers bound to earlier tests' closed captures, hence a cascade of "ValueError: I/O
    operation on closed file" after the in-process runs of test_resume.py. rlkit's configs turn it off."""
    import logging

    from rlkit import supervised, train

    class Watched(logging.Handler):
        closed = False

        def close(self) -> None:
            Watched.closed = True
            super().close()

    handler = Watched()
    logging.getLogger("rlkit-test-watched").addHandler(handler)
    try:
        main, args = {
            "rlkit.train": (train.main, ["env=taxi", "total_steps=500", "eval_every_steps=0", "final_eval_episodes=1"]),
            "rlkit.supervised": (supervised.main, ["epochs=1", "net=perceptron"]),
        }[module]
        code, _, err = run_main(main, *args, "progress=false", f"hydra.run.dir={tmp_path}", capsys=capsys)
    finally:
        logging.getLogger("rlkit-test-watched").removeHandler(handler)
    assert code == 0, err
    assert not Watched.closed and not list(tmp_path.glob("*.log"))


def test_the_sweep_callback_keeps_its_first_dotted_path():
    """Configs written before the packages name rlkit.callbacks.SweepSummary; conf/ names the package's."""
    from conftest import REPO
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from rlkit.cli.callbacks import SweepSummary

    assert get_class("rlkit.callbacks.SweepSummary") is SweepSummary
    named = OmegaConf.load(REPO / "conf" / "train.yaml").hydra.callbacks.sweep_summary._target_
    assert get_class(named) is SweepSummary and named == "rlkit.cli.callbacks.SweepSummary"
