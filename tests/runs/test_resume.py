"""Nothing lost: periodic checkpoints, resume, interrupts; and same seed, same run."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from conftest import REPO, run_cli, run_main
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlkit import tb
from rlkit.checkpoint import load_checkpoint, save_checkpoint
from rlkit.cli.app import conf_dir
from rlkit.config.settings import plain_config
from rlkit.errors import RlkitError
from rlkit.runs.resume import prepare_resume
from rlkit.train import CONFIG_GROUPS
from rlkit.train import main as train_main

TINY = ["progress=false", "eval_every_steps=0", "final_eval_episodes=5", "log_every_steps=500"]


@pytest.fixture
def train(capsys):
    """A finished run in run_dir, trained in this process (the real-process cases are the resume ones below)."""

    def run(run_dir, *args):
        code, out, err = run_main(train_main, *TINY, *args, f"hydra.run.dir={run_dir}", capsys=capsys)
        assert code == 0, err
        return out

    return run


def test_resume_continues_step_counter_and_restores_q_values(tmp_path, train):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=4000", "checkpoint.every_steps=1000")
    before = load_checkpoint(run_dir)
    assert before["step"] == 4000
    proc = run_cli("rlkit.train", "resume=" + str(run_dir), "total_steps=6000")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run_dir} from step 4000" in proc.stdout
    after = load_checkpoint(run_dir)
    assert after["step"] == 6000 and after["config"]["total_steps"] == 6000
    assert after["agent_state"]["steps"] == 6000  # the agent's own counter continued too
    assert after["config"]["agent"] == before["config"]["agent"]


def plan_for(run_dir, *overrides):
    return prepare_resume(run_dir, list(overrides), conf=conf_dir(), groups=CONFIG_GROUPS)


def test_restore_loads_exact_q_values(tmp_path, train):
    from rlkit.config.registry import build_agent
    from rlkit.envs.builders import make_train_env
    from rlkit.runs.resume import restore

    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=3000")
    saved = load_checkpoint(run_dir)["agent_state"]["q_table"]
    plan = plan_for(run_dir, "total_steps=10000")
    assert (plan.step, plan.config["total_steps"], plan.env_name, plan.agent_name) == (3000, 10000, "taxi",
        "q_learning")
    env = make_train_env(plan.config["env"])
    env.reset(seed=0)
    agent = build_agent(plan.config, observation_space=env.observation_space, action_space=env.action_space,
        device=torch.device("cpu"), seed=5)
    assert restore(plan, agent=agent, env=env, with_replay=False) == 3000
    assert torch.equal(torch.tensor(agent.q_table, dtype=torch.float64), saved)
    with pytest.raises(RlkitError, match="already reached step 3000 of total_steps=3000; pass total_steps=<more>"):
        plan_for(run_dir)
    (run_dir / ".hydra" / "overrides.yaml").write_text("- env=frozenlake\n")
    with pytest.raises(RlkitError, match="is for env=taxi agent=q_learning, not frozenlake/q_learning"):
        plan_for(run_dir, "total_steps=9000")


def test_resume_refuses_meaning_changes_and_bad_folders(tmp_path, train):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    for bad in ("agent.learning_rate=0.5", "env=frozenlake", "seed=3", "hydra.run.dir=/tmp/x", "+agent.foo=1",
            "total_steps=${seed}"):
        with pytest.raises(RlkitError, match=f"^resume refuses {re.escape(bad)}: it would change what the run learns"):
            plan_for(run_dir, bad)
    with pytest.raises(RlkitError, match="does not exist"):
        plan_for(tmp_path / "missing")
    with pytest.raises(RlkitError, match="not an rlkit run folder"):
        plan_for(tmp_path)
    with pytest.raises(RlkitError, match="^total_steps=abc must be an integer$"):
        plan_for(run_dir, "total_steps=abc")
    plan = plan_for(run_dir, "total_steps=5000", "checkpoint.every_steps=100", "device=cpu", "progress=false")
    assert plan.config["total_steps"] == 5000 and plan.config["checkpoint"]["every_steps"] == 100
    assert plan.config["device"] == {"name": "cpu"} and plan.config["progress"] is False


def test_a_resumed_run_keeps_the_settings_an_earlier_resume_gave(tmp_path, capsys, train):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    started_with = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert run_main(train_main, f"resume={run_dir}", "total_steps=2000", "eval_every_steps=500", capsys=capsys)[0] == 0
    plan = plan_for(run_dir, "total_steps=3000")  # eval_every_steps stays as the last resume left it
    assert plan.step == 2000 and plan.config["eval_every_steps"] == 500
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == started_with  # the record of how the run started


def test_resume_cli_error_is_one_line(tmp_path, train):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    proc = run_cli("rlkit.train", f"resume={run_dir}", "env=frozenlake")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: resume refuses env=frozenlake")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_and_resume_finishes_without_duplicate_steps(tmp_path, signum):
    run_dir = tmp_path / "run"
    args = ["env=frozenlake8x8", "total_steps=3000000", "checkpoint.every_steps=1000000", *TINY,
        f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlkit.train", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout.readline().startswith("rlkit: env=frozenlake8x8")
    time.sleep(1.5)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"resume: python -m rlkit.train resume={run_dir}" in err
    stopped_at = load_checkpoint(run_dir)["step"]
    assert 0 < stopped_at < 3_000_000

    resumed = run_cli("rlkit.train", f"resume={run_dir}", "total_steps=" + str(stopped_at + 2000))
    assert resumed.returncode == 0, resumed.stderr
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars(tb.STEPS_PER_SEC)]
    assert steps == sorted(set(steps))  # no step logged twice
    assert steps[0] < stopped_at < steps[-1] <= stopped_at + 2000  # both runs' curves, one folder


def test_same_seed_same_run(tmp_path, train):
    tables = []
    for name in ("a", "b"):
        train(tmp_path / name, "env=taxi", "total_steps=5000", "seed=7")
        tables.append(load_checkpoint(tmp_path / name)["agent_state"]["q_table"])
    train(tmp_path / "c", "env=taxi", "total_steps=5000", "seed=8")
    assert torch.equal(tables[0], tables[1])
    assert not torch.equal(tables[0], load_checkpoint(tmp_path / "c")["agent_state"]["q_table"])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    import rlkit.runs.training as train_module
    from rlkit.errors import NonFiniteLossError

    class Exploding:
        """Delegates to a real agent and fails like a diverging network at env step 2500."""

        def __init__(self, inner):
            self.inner = inner

        def act(self, obs, *, explore):
            return self.inner.act(obs, explore=explore)

        def observe(self, transition):
            metrics = self.inner.observe(transition)
            if self.inner.steps == 2500:
                raise NonFiniteLossError("loss became nan at step 2500")
            return metrics

        def policy(self):
            return self.inner.policy()

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, state):
            self.inner.load_state_dict(state)

    real_build = train_module.build_agent
    monkeypatch.setattr(train_module, "build_agent", lambda *a, **k: Exploding(real_build(*a, **k)))
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["env=taxi", "total_steps=5000", "checkpoint.every_steps=1000",
            *TINY])
    with pytest.raises(RlkitError,
            match=r"loss became nan at step 2500; stopped without saving that state; the last good checkpoint \(step "
                r"2000\)"):
        train_module.run(plain_config(cfg), tmp_path, env_name="taxi", agent_name="q_learning")
    assert load_checkpoint(tmp_path)["step"] == 2000


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_completes(tmp_path):
    """SIGKILL can land anywhere, a checkpoint write included; the previous checkpoint must stay loadable."""
    import random

    run_dir = tmp_path / "run"
    total = 1_500_000
    args = ["env=frozenlake8x8", f"total_steps={total}", "checkpoint.every_steps=20000", *TINY,
        f"hydra.run.dir={run_dir}"]
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "rlkit.train", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().startswith("rlkit:")
        time.sleep(rng.uniform(0.5, 3.0))
        proc.kill()
        proc.wait()
        step = load_checkpoint(run_dir)["step"]  # loadable after every kill
        assert 0 < step < total
        args = [f"resume={run_dir}", *TINY[:1]]
    proc = run_cli("rlkit.train", *args)
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(run_dir)["step"] == total


def test_dqn_diverging_loss_is_one_line_naming_the_step(tmp_path):
    proc = run_cli(
        "rlkit.train", "env=cartpole", "optim=sgd", "optim.lr=1e12", "agent.max_grad_norm=null", "total_steps=6000",
        "checkpoint.every_steps=1500", *TINY, f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: loss became nan by env step")
    assert "stopped without saving that state" in proc.stderr and "lower optim.lr" in proc.stderr
    assert not (tmp_path / "checkpoint.pt").exists() or load_checkpoint(tmp_path)["step"] < 6000


def test_dqn_refuses_batch_larger_than_buffer(tmp_path, capsys):
    code, _, err = run_main(train_main, "env=cartpole", "agent.batch_size=512", "agent.buffer_size=100",
        f"hydra.run.dir={tmp_path}", capsys=capsys)
    assert code == 2
    assert err == (
        "error: agent.batch_size=512 is larger than agent.buffer_size=100; lower the batch or grow the buffer\n")


def test_replay_flag_is_refused_for_a_tabular_agent(tmp_path, capsys):
    code, _, err = run_main(train_main, "env=taxi", "checkpoint.replay=true", f"hydra.run.dir={tmp_path}",
        capsys=capsys)
    assert code == 2 and err == "error: agent=q_learning keeps no replay buffer; drop checkpoint.replay=true\n"
    assert list(tmp_path.iterdir()) == []  # refused before Hydra made anything


def test_dqn_resume_restores_weights_optimizer_and_replay(tmp_path, train):
    import numpy as np

    from rlkit.checkpoint import load_arrays

    run_dir = tmp_path / "run"
    train(run_dir, "env=cartpole", "total_steps=2000", "checkpoint.replay=true", "agent.learning_starts_steps=500")
    saved = load_checkpoint(run_dir)
    replay = load_arrays(run_dir / "replay.npz")
    assert int(replay["step"]) == 2000 and int(replay["size"].sum()) == 2000
    assert saved["agent_state"]["optimizer"]["state"]  # Adam moments travel with the weights
    proc = run_cli("rlkit.train", f"resume={run_dir}", "total_steps=2500")
    assert proc.returncode == 0, proc.stderr
    assert "with its replay buffer (2,000 transitions)" in proc.stdout
    after = load_arrays(run_dir / "replay.npz")
    # the 2,000 old transitions are still there, 500 new ones were appended after them
    np.testing.assert_array_equal(after["obs"][:2000], replay["obs"][:2000])
    assert int(after["size"].sum()) == 2500 and load_checkpoint(run_dir)["agent_state"]["steps"] == 2500


def test_dqn_same_seed_same_weights(tmp_path, train):
    weights = []
    for name in ("a", "b"):
        train(tmp_path / name, "env=cartpole", "total_steps=1500", "agent.learning_starts_steps=500", "seed=3")
        weights.append(load_checkpoint(tmp_path / name)["agent_state"]["q_net"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_resume_keeps_every_tensorboard_point(tmp_path, capsys, train):
    """Before issue 8 the point at the checkpoint's step was purged from every tag."""
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=2000", "eval_every_steps=1000")
    assert run_main(train_main, f"resume={run_dir}", "total_steps=3000", capsys=capsys)[0] == 0
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars(tb.EVAL_RETURN_MEAN)] == [1000, 2000, 3000]
    assert [e.step for e in events.Scalars(tb.STEPS_PER_SEC)] == [500, 1000, 1500, 2000, 2500, 3000]


def test_a_longer_resumed_run_keeps_its_priority_beta_schedule(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["env=cartpole", "agent/sampler=prioritized", "agent.learning_starts_steps=200", "total_steps=600", *TINY,
        f"hydra.run.dir={run_dir}"]
    assert run_main(train_main, *args, capsys=capsys)[0] == 0
    assert load_checkpoint(run_dir)["config"]["agent"]["sampler"]["beta_steps"] == 600  # resolved once, stored
    assert run_main(train_main, f"resume={run_dir}", "total_steps=1200", capsys=capsys)[0] == 0
    after = load_checkpoint(run_dir)["config"]
    assert after["total_steps"] == 1200 and after["agent"]["sampler"]["beta_steps"] == 600


def snapshot(folder):
    """Every file's bytes and mtime, but the writers' lock file (its PID is the one thing a writer may leave)."""
    return {p.relative_to(folder): (p.read_bytes(),
        p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".rlkit.lock"}


def test_a_refused_resume_writes_nothing(tmp_path, capsys, train):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    before = snapshot(run_dir)
    refusals = {
        ("env=frozenlake",): "resume refuses env=frozenlake",
        ("total_steps=abc",): "total_steps=abc must be an integer",
        (): "already reached step 1000",
        ("-m",): "takes key=value settings only",
    }
    for args, message in refusals.items():
        code, _, err = run_main(train_main, f"resume={run_dir}", *args, capsys=capsys)
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    (run_dir / ".hydra" / "overrides.yaml").write_text("- env=taxi\n- hydra.job.env_set.X=1\n")
    before[Path(".hydra/overrides.yaml")] = ((run_dir / ".hydra" / "overrides.yaml").read_bytes(),
        (run_dir / ".hydra" / "overrides.yaml").stat().st_mtime_ns)
    code, _, err = run_main(train_main, f"resume={run_dir}", "total_steps=5000", capsys=capsys)
    assert code == 2 and "hydra.job.env_set.X=1 in " in err and "hydra settings are never replayed" in err
    assert snapshot(run_dir) == before


def test_a_supervised_run_folder_is_refused_and_left_alone(tmp_path, capsys):
    from rlkit.supervised import main as supervised_main

    run_dir = tmp_path / "sup"
    assert run_main(supervised_main, "epochs=1", "net=perceptron", "progress=false", f"hydra.run.dir={run_dir}",
        capsys=capsys)[0] == 0
    before = snapshot(run_dir)
    code, _, err = run_main(train_main, f"resume={run_dir}", "total_steps=5000", capsys=capsys)
    assert code == 2 and err == (f"error: {run_dir} is a supervised run (python -m rlkit.supervised); "
        "give a run of python -m rlkit.train\n")
    assert snapshot(run_dir) == before


def test_two_concurrent_resumes_of_one_run_one_is_refused(tmp_path, capsys, train):
    run_dir = tmp_path / "run"
    train(run_dir, "env=frozenlake8x8", "total_steps=1000")
    first = subprocess.Popen(
        [sys.executable, "-m", "rlkit.train", f"resume={run_dir}", "total_steps=50000000", "progress=false"], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert first.stdout.readline().startswith(f"rlkit: resuming {run_dir} from step 1000")  # it holds the lock now
        code, _, err = run_main(train_main, f"resume={run_dir}", "total_steps=60000000", capsys=capsys)
        assert code == 2
        assert err == (f"error: {run_dir} is being written by another rlkit process (PID {first.pid}); "
            "wait for it to finish or stop it, then try again\n")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 130  # stopped cleanly, its checkpoint saved: the refused resume broke nothing
    assert load_checkpoint(run_dir)["step"] > 1000


def test_a_format_1_checkpoint_plays_and_resumes_with_its_targets_read_as_names(tmp_path, capsys, train):
    """Runs written before issue 8 (the Pong run among them) name classes by import path: mapped, never imported."""
    from rlkit.play import main as play_main

    run_dir = tmp_path / "run"
    train(run_dir, "env=cartpole", "total_steps=600", "agent.learning_starts_steps=200")
    data = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    config = data["config"]
    net, optim = {"_target_": "rlkit.nets.MLPBody", "_partial_": True,
        **config["net"]}, {"_target_": "torch.optim.Adam", "_partial_": True, **config["optim"]}
    for node in (net, optim):
        node.pop("type")
    agent = {"_target_": "rlkit.agents.dqn.DQNAgent", "net": net, "optimizer": optim, **{k: v for k,
        v in config["agent"].items() if k != "type"}}
    legacy = {**{k: v for k, v in data.items() if k != "sha256"}, "format": 1, "config": {**config, "agent": agent,
        "net": net, "optim": optim, "resume": None}}
    torch.save(legacy, run_dir / "checkpoint.pt")
    code, out, err = run_main(play_main, f"run={run_dir}", "episodes=1", "render=none", capsys=capsys)
    assert code == 0 and "rlkit.play: dqn on cartpole after 600 steps" in out, err
    assert run_main(train_main, f"resume={run_dir}", "total_steps=800", capsys=capsys)[0] == 0
    # Written anew, today's shape.
    assert load_checkpoint(run_dir)["format"] == 2 and load_checkpoint(run_dir)["step"] == 800
    legacy["config"]["agent"]["optimizer"]["_target_"] = "rlkit.agents.dqn.torch.load"
    torch.save(legacy, run_dir / "checkpoint.pt")
    code, _, err = run_main(play_main, f"run={run_dir}", "episodes=1", "render=none", capsys=capsys)
    assert code == 2 and err == (
        f"error: optim._target_ in {run_dir / 'checkpoint.pt'}=rlkit.agents.dqn.torch.load is not a class rlkit ever "
            "wrote; refusing it\n"
    )


def test_resume_refuses_a_checkpoint_whose_learning_settings_differ_from_conf(tmp_path, train):
    """The recorded command, composed from this installation's conf/, must give the checkpoint's config."""
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    data = load_checkpoint(run_dir)
    data["config"]["agent"]["learning_rate"] = 0.5  # as if conf/ or the folder changed since the run started
    data["config"]["net"]["hidden"] = [7]
    save_checkpoint(run_dir / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("kind", "format")})
    with pytest.raises(RlkitError, match=(
        rf"^resume refuses {run_dir}: this installation's conf/ gives agent.learning_rate=1.0 where its checkpoint has "
            r"0.5 "
        r"\(and 1 more: net.hidden\); a resumed run must learn as it started"
    )):
        plan_for(run_dir, "total_steps=2000")


def test_a_run_saved_before_env_builders_had_names_resumes_in_todays_shape(tmp_path, train):
    """Runs written before issue 14 have no env.builder (Atari ones said kind: atari), and Taxi's said Taxi-v3."""
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    data = load_checkpoint(run_dir)
    data["config"]["env"] = {**{k: v for k, v in data["config"]["env"].items() if k != "builder"}, "id": "Taxi-v3"}
    save_checkpoint(run_dir / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("kind", "format")})
    plan = plan_for(run_dir, "total_steps=2000")
    assert (plan.config["env"]["builder"], plan.config["env"]["id"]) == ("gym", "Taxi-v4")


def test_a_run_saved_when_q_learning_said_discount_plays_and_resumes_with_gamma(tmp_path, capsys, train):
    """Issue 14 renamed the tabular agent's `discount` to `gamma` (DQN's name): old checkpoints and recorded
    overrides map."""
    from rlkit.config.registry import build_agent
    from rlkit.play import main as play_main
    from rlkit.runs.saved import read_saved_run

    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000", "agent.gamma=0.9")
    data = load_checkpoint(run_dir)
    data["config"]["agent"] = {("discount" if k == "gamma" else k): v for k, v in data["config"]["agent"].items()}
    save_checkpoint(run_dir / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("kind", "format")})
    overrides = run_dir / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text().replace("agent.gamma=0.9", "agent.discount=0.9"))
    assert "- agent.discount=0.9\n" in overrides.read_text() and (
        "discount" in load_checkpoint(run_dir)["config"]["agent"])

    saved = read_saved_run(run_dir)
    assert saved.config["agent"]["gamma"] == 0.9 and "discount" not in saved.config["agent"]
    code, out, err = run_main(play_main, f"run={run_dir}", "episodes=1", "render=none", capsys=capsys)
    assert code == 0 and "rlkit.play: q_learning on taxi after 1000 steps" in out, err
    plan = plan_for(run_dir, "total_steps=2000")
    agent = build_agent(plan.config, observation_space=gym.spaces.Discrete(500), action_space=gym.spaces.Discrete(6),
                        device=torch.device("cpu"), seed=0)
    assert (plan.config["agent"]["gamma"], agent.gamma) == (0.9, 0.9) and "discount" not in plan.config["agent"]
    code, out, err = run_main(train_main, f"resume={run_dir}", "total_steps=2000", capsys=capsys)
    assert code == 0 and f"resuming {run_dir} from step 1000" in out, err
    after = load_checkpoint(run_dir)["config"]["agent"]
    assert (after["gamma"], "discount" in after) == (0.9, False)  # written anew under today's name
    assert load_checkpoint(run_dir)["step"] == 2000
    # The record of how the run started is kept as written.
    assert overrides.read_text().count("agent.discount=0.9") == 1


def test_a_dqn_run_saved_with_the_old_flags_plays_and_resumes_with_its_parts(tmp_path, capsys, train):
    """Runs saved before DQN's parts had names stored agent.dueling, agent.prioritized, agent.priority_* and
    agent.dedup_frames, and recorded them as overrides: both map onto net.head, agent.sampler and replay (a table
    of names)."""
    from rlkit.config.registry import build_agent
    from rlkit.nets import DuelingHead
    from rlkit.play import main as play_main
    from rlkit.replay.buffer import ReplayBuffer
    from rlkit.replay.prioritized import PrioritizedSampler
    from rlkit.runs.saved import read_saved_run

    run_dir = tmp_path / "run"
    train(run_dir, "env=cartpole", "total_steps=600", "agent.learning_starts_steps=200", "agent/sampler=prioritized",
          "agent.sampler.alpha=0.5", "net.head.type=dueling")
    data = load_checkpoint(run_dir)
    config = data["config"]
    sampler = config["agent"].pop("sampler")
    assert sampler == {"type": "prioritized", "alpha": 0.5, "beta_start": 0.4, "beta_steps": 600, "eps": 1e-6}
    config["agent"].update(dueling=True, prioritized=True, priority_alpha=0.5, priority_beta_start=0.4,
        priority_beta_steps=600,
                           priority_eps=1e-6, dedup_frames=False)
    del config["net"]["head"], config["replay"]
    save_checkpoint(run_dir / "checkpoint.pt", {k: v for k, v in data.items() if k not in ("kind", "format")})
    overrides = run_dir / ".hydra" / "overrides.yaml"
    old = (overrides.read_text().replace("agent/sampler=prioritized", "agent.prioritized=true")
           .replace("agent.sampler.alpha=0.5", "agent.priority_alpha=0.5").replace("net.head.type=dueling",
               "agent.dueling=true"))
    overrides.write_text(old)
    assert "- agent.prioritized=true\n- agent.priority_alpha=0.5\n- agent.dueling=true\n" in old

    saved = read_saved_run(run_dir)
    assert (saved.config["agent"]["sampler"], saved.config["net"]["head"], saved.config["replay"]) == (
        sampler, {"type": "dueling", "noisy": False, "sigma0": 0.5}, {"type": "transitions"})  # no noisy nets then
    assert not {"dueling", "prioritized", "priority_alpha", "dedup_frames"} & set(saved.config["agent"])
    code, out, err = run_main(play_main, f"run={run_dir}", "episodes=1", "render=none", capsys=capsys)
    assert code == 0 and "rlkit.play: dqn on cartpole after 600 steps" in out, err
    plan = plan_for(run_dir, "total_steps=800")
    agent = build_agent(plan.config, observation_space=gym.spaces.Box(-5, 5, (4,)), action_space=gym.spaces.Discrete(2),
                        device=torch.device("cpu"), seed=0)
    assert isinstance(agent.q_net.head, DuelingHead) and type(agent.replay) is ReplayBuffer
    assert isinstance(agent.replay.sampler, PrioritizedSampler) and agent.replay.sampler.alpha == 0.5
    code, out, err = run_main(train_main, f"resume={run_dir}", "total_steps=800", capsys=capsys)
    assert code == 0 and f"resuming {run_dir} from step 600" in out, err
    after = load_checkpoint(run_dir)
    assert after["step"] == 800 and after["config"]["agent"]["sampler"] == sampler and (
        "dueling" not in after["config"]["agent"])
    assert overrides.read_text() == old  # the record of how the run started is kept as written


def test_an_old_runs_priority_setting_without_prioritized_replay_is_left_out_on_resume(tmp_path, train):
    """agent.priority_alpha=0.5 without agent.prioritized=true never counted: its run resumes, uniform as it learned."""
    run_dir = tmp_path / "run"
    train(run_dir, "env=cartpole", "total_steps=600", "agent.learning_starts_steps=200")
    overrides = run_dir / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + "- agent.priority_alpha=0.5\n")
    plan = plan_for(run_dir, "total_steps=800")
    assert plan.config["agent"]["sampler"] == {"type": "uniform"} and plan.config["replay"] == {"type": "transitions"}
