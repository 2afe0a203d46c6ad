"""The entry points as a user runs them: tiny budgets, a tmp run folder, one-line errors."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import run_cli
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
    assert list(run_dir.glob("events.out.tfevents.*"))
    data = load_checkpoint(run_dir)
    assert (data["env"], data["agent"], data["step"]) == ("taxi", "q_learning", 3000)
    assert data["config"]["env"]["id"] == "Taxi-v3"
    assert f"python -m rlkit.play run={run_dir}" in proc.stdout
    assert "final evaluation over 5 greedy episodes" in proc.stdout


def test_train_logs_the_fixed_tags_on_env_steps(taxi_run):
    run_dir, _ = taxi_run
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (tb.EPISODIC_RETURN, tb.EPISODIC_LENGTH, tb.EVAL_RETURN_MEAN, tb.EVAL_RETURN_STD, tb.EPSILON, tb.STEPS_PER_SEC):
        assert tag in tags, tag
    assert [e.step for e in events.Scalars(tb.EVAL_RETURN_MEAN)] == [1000, 2000, 3000]
    assert [e.step for e in events.Scalars(tb.STEPS_PER_SEC)] == [500 * i for i in range(1, 7)]


def test_hparams_are_recorded(taxi_run):
    run_dir, _ = taxi_run
    raw = b"".join(p.read_bytes() for p in run_dir.rglob("events.out.tfevents.*"))
    assert b"_hparams_/session_start_info" in raw and b"agent.learning_rate" in raw


def test_play_prints_board_and_returns(taxi_run):
    run_dir, _ = taxi_run
    proc = run_cli("rlkit.play", f"run={run_dir}", "episodes=2")
    assert proc.returncode == 0, proc.stderr
    assert "+---------+" in proc.stdout  # Taxi's text board
    assert proc.stdout.count("episode ") == 2 and "mean return over 2 episodes" in proc.stdout


def test_play_records_a_video(taxi_run, tmp_path):
    run_dir, _ = taxi_run
    proc = run_cli("rlkit.play", f"run={run_dir}", "episodes=1", f"video={tmp_path / 'taxi.mp4'}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "taxi.mp4").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taxi.mp4"]


@pytest.mark.parametrize(
    "module,args,message",
    [
        ("rlkit.train", ["env=nope"], "unknown env 'nope'; choose one of: acrobot, atari, breakout, cartpole, cliffwalking"),
        ("rlkit.train", ["agent=sarsa"], "unknown agent 'sarsa'; choose one of:"),
        ("rlkit.train", ["device=tpu"], "unknown device 'tpu'; choose one of: auto, cpu, cuda, mps"),
        ("rlkit.train", ["total_steps=-5"], "total_steps must be a positive number of steps/episodes, got -5"),
        ("rlkit.train", ["eval_every_steps=-1"], "eval_every_steps must be >= 0"),
        ("rlkit.play", ["run=/nonexistent/run"], "run folder /nonexistent/run does not exist"),
        ("rlkit.play", ["run=/dev", "render=tv"], "no checkpoint.pt in /dev"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(module, args, message, tmp_path):
    proc = run_cli(module, *args, f"hydra.run.dir={tmp_path}" if module == "rlkit.train" else "hydra.run.dir=.")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = run_cli("rlkit.train", "device=cuda", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: device=cuda but no CUDA device is visible; use device=auto or device=cpu"


def test_play_render_choices(taxi_run):
    run_dir, _ = taxi_run
    proc = run_cli("rlkit.play", f"run={run_dir}", "render=tv")
    assert proc.returncode == 2 and "render=tv is not valid; choose one of: auto, ansi, human, none" in proc.stderr


def test_help_lists_the_groups():
    proc = run_cli("rlkit.train", "--help")
    assert proc.returncode == 0
    for group in ("env: ", "agent: ", "device: "):
        assert group in proc.stdout
    assert "taxi" in proc.stdout and "q_learning" in proc.stdout
