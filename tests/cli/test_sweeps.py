"""Multirun on Hydra's launcher and sweeper plugins: joblib and Optuna here, Ray when slow tests run."""

import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import compose_train, run_cli
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlkit import tb
from rlkit.checkpoint import load_checkpoint
from rlkit.cli.app import App, check_plugin_overrides, conf_dir, run_hydra_app
from rlkit.errors import RlkitError

CONF = conf_dir()
TINY = ("env=taxi", "total_steps=1000", "eval_every_steps=500", "final_eval_episodes=3", "log_every_steps=500",
    "progress=false")
SEARCH_SPACES = sorted(p.stem for p in (CONF / "hydra" / "sweeper" / "params").glob("*.yaml"))


def job_pid(job_dir: Path) -> str:
    """The pid in the job's event-file name (events.out.tfevents.<time>.<host>.<pid>.<n>): which process ran it."""
    return next(job_dir.glob("events.out.tfevents.*")).name.split(".")[-2]


def eval_steps(job_dir: Path) -> list[int]:
    events = EventAccumulator(str(job_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.step for e in events.Scalars(tb.EVAL_RETURN_MEAN)]


def assert_one_run_per_job(sweep_dir: Path, seeds: list[int]) -> None:
    for job, seed in enumerate(seeds):
        job_dir = sweep_dir / str(job)
        assert OmegaConf.load(job_dir / ".hydra" / "config.yaml").seed == seed
        assert eval_steps(job_dir) == [500, 1000]  # periodic evaluation, then the one after training
        assert (job_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_plugin_names_select_rlkit_settings(monkeypatch):
    monkeypatch.setattr("rlkit.cli.app._importable", lambda module: True)  # the mapping, whatever is installed here
    argv = ["hydra/launcher=ray", "hydra/sweeper=optuna", "+hydra/launcher=joblib", "hydra/launcher=basic", "seed=1",
            "hydra/launcher=submitit_local", "hydra/launcher=submitit_slurm"]
    assert check_plugin_overrides(argv, CONF) == [
        "hydra/launcher=rlkit_ray", "hydra/sweeper=rlkit_optuna", "+hydra/launcher=rlkit_joblib",
            "hydra/launcher=basic", "seed=1",
        "hydra/launcher=rlkit_submitit_local", "hydra/launcher=rlkit_submitit_slurm",
    ]


def test_missing_plugin_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setattr("rlkit.cli.app._importable", lambda module: module != "ray")
    with pytest.raises(RlkitError,
            match=r'^hydra/launcher=ray needs ray, not installed here; pip install "rlkit\[scale\]"$'):
        check_plugin_overrides(["hydra/launcher=ray"], CONF)
    monkeypatch.setattr("rlkit.cli.app._importable", lambda module: False)
    monkeypatch.setattr(sys, "argv", ["rlkit.train", "-m", "hydra/sweeper=optuna"])
    with pytest.raises(SystemExit) as exit_info:
        run_hydra_app(lambda: pytest.fail("Hydra must not start"), App(name="rlkit.train", conf=CONF,
            config_name="train", groups=["env"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'error: hydra/sweeper=optuna needs hydra-optuna-sweeper and optuna, not installed here; pip install '
            '"rlkit[scale]"\n'
    )


def test_ray_launcher_config_extends_the_plugin():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason='needs pip install "rlkit[scale]"')
    ray = compose_train("hydra/launcher=rlkit_ray", "hydra.launcher.ray.init.address=ray://head:10001").hydra.launcher
    assert ray._target_.endswith("RayLauncher") and ray.ray.init.address == "ray://head:10001"
    assert ray.ray.init.object_store_memory is None and ray.ray.remote.num_cpus == 1


def test_submitit_configs_extend_the_plugin():
    slurm = compose_train("hydra/launcher=rlkit_submitit_slurm", "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=1")
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher") and launcher.partition == "gpu"
    assert (launcher.gpus_per_node, launcher.timeout_min, launcher.cpus_per_task, launcher.mem_gb) == (1, 120, 2, 8)
    local = compose_train("hydra/launcher=rlkit_submitit_local").hydra.launcher
    assert local._target_.endswith("submitit_launcher.LocalLauncher") and local.cpus_per_task == 1


def test_missing_submitit_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setattr("rlkit.cli.app._importable", lambda module: module != "submitit")
    with pytest.raises(RlkitError,
            match=r'^hydra/launcher=submitit_slurm needs submitit, not installed here; pip install "rlkit\[scale\]"$'):
        check_plugin_overrides(["hydra/launcher=submitit_slurm"], CONF)


@pytest.mark.parametrize("app", ["train", "supervised"])
def test_sweeps_end_by_printing_their_folder_and_the_report_command(app, capsys):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=app, overrides=["hydra.sweep.dir=runs/my sweep/${now:%Y}"], return_hydra_config=True)
    callbacks = [instantiate(node) for node in cfg.hydra.callbacks.values()]  # as Hydra builds them
    for callback in callbacks:
        callback.on_multirun_end(config=cfg)
    year = time.strftime("%Y")
    assert capsys.readouterr().out == (f"sweep folder: runs/my sweep/{year}\n"
        f"report: python -m rlkit.report 'runs/my sweep/{year}'\n")


def test_launcher_and_sweeper_configs_extend_the_plugins():
    assert compose_train("hydra/launcher=rlkit_joblib").hydra.launcher.n_jobs == -1
    optuna = compose_train("hydra/sweeper=rlkit_optuna").hydra
    assert optuna.sweeper.direction == "maximize" and optuna.sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert optuna.runtime.choices["hydra/sweeper/params"] == "q_learning"  # the search space follows agent=...
    assert list(optuna.sweeper.params) == list(OmegaConf.load(CONF / "hydra/sweeper/params/q_learning.yaml"))
    other = compose_train("hydra/sweeper=rlkit_optuna", "hydra/sweeper/params=dqn").hydra.sweeper.params
    assert "optim.lr" in other and "agent.learning_rate" not in other


@pytest.mark.parametrize("space", SEARCH_SPACES)
def test_search_space_keys_exist_and_parse(space):
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
    from optuna.distributions import CategoricalDistribution, LogUniformDistribution

    params = OmegaConf.load(CONF / "hydra" / "sweeper" / "params" / f"{space}.yaml")
    distributions, fixed = create_params_from_overrides([f"{key}={value}" for key, value in params.items()])
    assert sorted(distributions) == sorted(params) and not fixed
    if space == "dqn":
        assert distributions["optim.lr"] == LogUniformDistribution(1e-4, 3e-3)
        assert distributions["net.hidden"] == CategoricalDistribution(["[64,64]", "[128,128]", "[256,256]"])
    if not (CONF / "agent" / f"{space}.yaml").is_file():
        pytest.skip(f"agent={space} is not in conf/agent yet; its keys are checked once it is")
    env = "cartpole" if space == "dqn" else "taxi"
    cfg = compose_train(f"env={env}", f"agent={space}")
    missing = [key for key in params if OmegaConf.select(cfg, key, default="<missing>") == "<missing>"]
    assert not missing, f"hydra/sweeper/params/{space}.yaml searches keys agent={space} does not have: {missing}"


def test_joblib_multirun_runs_jobs_in_parallel_processes_and_reports(tmp_path, capsys):
    from rlkit.report import main as report_main

    proc = run_cli("rlkit.train", "-m", *TINY, "seed=0,1", "hydra/launcher=joblib", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "Joblib.Parallel(n_jobs=-1" in proc.stdout + proc.stderr
    assert_one_run_per_job(tmp_path, seeds=[0, 1])
    assert job_pid(tmp_path / "0") != job_pid(tmp_path / "1")  # the basic launcher would run both in one process
    assert proc.stdout.endswith(f"sweep folder: {tmp_path}\nreport: python -m rlkit.report {tmp_path}\n")

    report_main([str(tmp_path), "--reps", "200"])  # the command it printed (as a real process in test_report.py)
    out = capsys.readouterr().out
    assert re.search(r"^\| env=taxi \| 2 \| 1,000 \|", out, re.M), out  # both seeds, one group
    assert (tmp_path / "report.png").is_file() and (tmp_path / "report.md").is_file()


def test_submitit_local_runs_each_job_as_its_own_process(tmp_path):
    """What hydra/launcher=submitit_slurm does on a cluster, as local processes: the same plugin code, no Slurm."""
    tiny = ("env=taxi", "total_steps=300", "eval_every_steps=150", "final_eval_episodes=3", "log_every_steps=150",
        "progress=false")
    proc = run_cli("rlkit.train", "-m", *tiny, "seed=0,1", "hydra/launcher=submitit_local",
        f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr
    for job, seed in enumerate([0, 1]):
        job_dir = tmp_path / str(job)
        assert OmegaConf.load(job_dir / ".hydra" / "config.yaml").seed == seed
        assert eval_steps(job_dir) == [150, 300]
        assert (job_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
        assert load_checkpoint(job_dir)["step"] == 300
    assert job_pid(tmp_path / "0") != job_pid(tmp_path / "1")
    assert len(list((tmp_path / ".submitit").glob("*/*_0_log.out"))) == 2  # submitit's own job logs, one per job
    assert proc.stdout.endswith(f"sweep folder: {tmp_path}\nreport: python -m rlkit.report {tmp_path}\n")


def test_optuna_maximises_the_final_evaluation(tmp_path):
    proc = run_cli(
        "rlkit.train", "-m", *TINY, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr
    finals = []
    for job in (0, 1):
        overrides = OmegaConf.load(tmp_path / str(job) / ".hydra" / "overrides.yaml")
        assert {o.split("=")[0] for o in overrides} >= {"agent.learning_rate", "agent.epsilon_decay_steps",
            "agent.initial_q"}
        events = EventAccumulator(str(tmp_path / str(job)), size_guidance={"scalars": 0})
        events.Reload()
        finals.append(events.Scalars(tb.EVAL_RETURN_MEAN)[-1].value)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(finals))
    assert OmegaConf.load(tmp_path / "0" / ".hydra" / "hydra.yaml").hydra.sweeper.direction == "maximize"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_ray(monkeypatch):
    """A private Ray head on a free port (ray start --block), stopped by signalling that one process."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason='needs the scale extra: pip install "rlkit[scale]"')
    # Ray >= 2.5x turns on token auth for `ray start`; this loopback-only test instance does without it.
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    temp_dir = Path(tempfile.mkdtemp(prefix="rlray", dir="/tmp"))  # short: Ray's unix socket paths must fit 107 chars
    port = _free_port()
    log = temp_dir / "head.log"
    ray_cli = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    with open(log, "w") as out:
        head = subprocess.Popen(
            [ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    while "Ray runtime started" not in log.read_text() and head.poll() is None and time.monotonic() - started < 120:
        time.sleep(0.25)
    startup_seconds = time.monotonic() - started
    try:
        assert "Ray runtime started" in log.read_text(), log.read_text()
        yield f"127.0.0.1:{port}", startup_seconds
    finally:
        head.send_signal(signal.SIGTERM)  # ray start --block stops its own raylet and GCS on SIGTERM
        head.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_ray_multirun_on_a_local_ray_instance(local_ray, tmp_path):
    address, startup_seconds = local_ray
    print(f"Ray head ready in {startup_seconds:.1f} s")
    proc = run_cli(
        "rlkit.train", "-m", *TINY, "seed=0,1", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}",
        f"hydra.sweep.dir={tmp_path}", timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    # The configured address, not a new instance.
    assert "Connecting to existing Ray cluster" in proc.stdout + proc.stderr
    assert_one_run_per_job(tmp_path, seeds=[0, 1])
    assert job_pid(tmp_path / "0") != job_pid(tmp_path / "1")
