"""Nothing lost: periodic checkpoints, resume, interrupts; and same seed, same run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, run_cli
from rlkit import tb
from rlkit.checkpoint import load_checkpoint
from rlkit.errors import RlkitError
from rlkit.resume import resume_argv

TINY = ["progress=false", "eval_every_steps=0", "final_eval_episodes=5", "log_every_steps=500"]


def train(run_dir, *args):
    proc = run_cli("rlkit.train", *TINY, *args, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    return proc


def test_resume_continues_step_counter_and_restores_q_values(tmp_path):
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


def test_restore_loads_exact_q_values(tmp_path):
    from hydra import compose, initialize_config_dir

    from rlkit.agents import build_agent
    from rlkit.envs import make_train_env
    from rlkit.runtime import conf_dir, resolve_device
    from rlkit.train import restore

    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=3000")
    saved = load_checkpoint(run_dir)["agent_state"]["q_table"]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["env=taxi"])
    env = make_train_env(cfg.env)
    env.reset(seed=0)
    agent = build_agent(cfg.agent, observation_space=env.observation_space, action_space=env.action_space, device=resolve_device("cpu"), seed=5)
    step = restore(run_dir, agent=agent, env=env, env_name="taxi", agent_name="q_learning", total_steps=10_000)
    assert step == 3000
    assert torch.equal(torch.tensor(agent.q_table, dtype=torch.float64), saved)
    with pytest.raises(RlkitError, match="already reached step 3000"):
        restore(run_dir, agent=agent, env=env, env_name="taxi", agent_name="q_learning", total_steps=3000)
    with pytest.raises(RlkitError, match="is for env=taxi agent=q_learning, not frozenlake"):
        restore(run_dir, agent=agent, env=env, env_name="frozenlake", agent_name="q_learning", total_steps=9000)


def test_resume_refuses_meaning_changes_and_bad_folders(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    with pytest.raises(RlkitError, match="resume refuses agent.learning_rate=0.5"):
        resume_argv([f"resume={run_dir}", "agent.learning_rate=0.5"])
    with pytest.raises(RlkitError, match="does not exist"):
        resume_argv([f"resume={tmp_path / 'missing'}"])
    with pytest.raises(RlkitError, match="not an rlkit run folder"):
        resume_argv([f"resume={tmp_path}"])
    argv = resume_argv([f"resume={run_dir}", "total_steps=5000", "checkpoint.every_steps=100"])
    assert "env=taxi" in argv and "total_steps=5000" in argv and "total_steps=1000" not in argv
    assert argv[-2:] == [f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def test_resume_cli_error_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, "env=taxi", "total_steps=1000")
    proc = run_cli("rlkit.train", f"resume={run_dir}", "env=frozenlake")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: resume refuses env=frozenlake")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_and_resume_finishes_without_duplicate_steps(tmp_path, signum):
    run_dir = tmp_path / "run"
    args = ["env=frozenlake8x8", "total_steps=3000000", "checkpoint.every_steps=1000000", *TINY, f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlkit.train", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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


def test_same_seed_same_run(tmp_path):
    tables = []
    for name in ("a", "b"):
        train(tmp_path / name, "env=taxi", "total_steps=5000", "seed=7")
        tables.append(load_checkpoint(tmp_path / name)["agent_state"]["q_table"])
    train(tmp_path / "c", "env=taxi", "total_steps=5000", "seed=8")
    assert torch.equal(tables[0], tables[1])
    assert not torch.equal(tables[0], load_checkpoint(tmp_path / "c")["agent_state"]["q_table"])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    import rlkit.train as train_module
    from rlkit.errors import NonFiniteLossError
    from rlkit.runtime import conf_dir

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

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, state):
            self.inner.load_state_dict(state)

    real_build = train_module.build_agent
    monkeypatch.setattr(train_module, "build_agent", lambda *a, **k: Exploding(real_build(*a, **k)))
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["env=taxi", "total_steps=5000", "checkpoint.every_steps=1000", *TINY])
    with pytest.raises(RlkitError, match=r"loss became nan at step 2500; stopped without saving that state; the last good checkpoint \(step 2000\)"):
        train_module.run(cfg, tmp_path, env_name="taxi", agent_name="q_learning")
    assert load_checkpoint(tmp_path)["step"] == 2000


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_completes(tmp_path):
    """SIGKILL can land anywhere, a checkpoint write included; the previous checkpoint must stay loadable."""
    import random

    run_dir = tmp_path / "run"
    total = 1_500_000
    args = ["env=frozenlake8x8", f"total_steps={total}", "checkpoint.every_steps=20000", *TINY, f"hydra.run.dir={run_dir}"]
    rng = random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "rlkit.train", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def test_dqn_refuses_batch_larger_than_buffer(tmp_path):
    proc = run_cli("rlkit.train", "env=cartpole", "agent.batch_size=512", "agent.buffer_size=100", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: agent.batch_size=512 is larger than agent.buffer_size=100; lower the batch or grow the buffer"


def test_replay_flag_is_refused_for_a_tabular_agent(tmp_path):
    proc = run_cli("rlkit.train", "env=taxi", "checkpoint.replay=true", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2 and "agent=q_learning keeps no replay buffer" in proc.stderr


def test_dqn_resume_restores_weights_optimizer_and_replay(tmp_path):
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


def test_dqn_same_seed_same_weights(tmp_path):
    weights = []
    for name in ("a", "b"):
        train(tmp_path / name, "env=cartpole", "total_steps=1500", "agent.learning_starts_steps=500", "seed=3")
        weights.append(load_checkpoint(tmp_path / name)["agent_state"]["q_net"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
