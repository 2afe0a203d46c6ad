"""Run folders: one writer at a time, a fresh writable folder for each new run; and keys named when mistyped."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from conftest import run_main

from rlkit import play, train
from rlkit.cli.overrides import closest_keys
from rlkit.errors import RlkitError
from rlkit.run_folder import LOCK_FILENAME, RunLock, check_new_run_dir
from rlkit.runtime import resolve_device


def _hold(run_dir: str, ready, release) -> None:
    with RunLock(Path(run_dir)):
        ready.set()
        release.wait(60)


def test_a_second_writer_is_refused_with_the_holders_pid_and_a_dead_holder_blocks_nobody(tmp_path):
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(RlkitError,
                match=rf"^{tmp_path} is being written by another rlkit process \(PID {holder.pid}\); wait for it"):
            with RunLock(tmp_path):
                pass
    finally:
        release.set()
        holder.join(60)
    holder = context.Process(target=_hold, args=(str(tmp_path), ready, context.Event()))
    ready.clear()
    holder.start()
    assert ready.wait(60)
    holder.kill()  # SIGKILL: the kernel drops its lock
    holder.join(60)
    with RunLock(tmp_path):
        assert (tmp_path / LOCK_FILENAME).read_text() == f"{os.getpid()}\n"


def test_a_new_run_needs_a_folder_of_its_own(tmp_path):
    check_new_run_dir(tmp_path / "new" / "run")  # missing folders are fine: Hydra makes them
    check_new_run_dir(tmp_path)  # an empty existing folder too
    (tmp_path / "old" / ".hydra").mkdir(parents=True)
    with pytest.raises(RlkitError,
            match=r"old already holds a run; continue it with RESUME, or pass a new hydra.run.dir$"):
        check_new_run_dir(tmp_path / "old", continue_with="RESUME")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RlkitError, match="is a file; pass a folder for the new run"):
        check_new_run_dir(tmp_path / "file")
    with pytest.raises(RlkitError, match=r"cannot be created: .*file is a file"):
        check_new_run_dir(tmp_path / "file" / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "old"]  # checking created nothing


KEYS = {"total_steps", "seed", "optim", "optim.lr", "agent", "agent.type", "agent.learning_rate", "agent.loss",
    "agent.tau", "env", "env.kwargs"}


@pytest.mark.parametrize(
    "typed,meant",
    [
        ("total_step", "total_steps"),  # spelling
        ("agent.lr", "optim.lr"),  # the same name in another group comes first
        ("agent.lr", "agent.learning_rate"),  # an abbreviation
        ("optimizer", "optim"),  # a group's name
    ],
)
def test_closest_keys(typed, meant):
    close = closest_keys(typed, KEYS)
    assert meant in close and len(close) <= 3 and not any(k.endswith(".type") for k in close)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_play_takes_the_device_as_train_does(device, tmp_path, capsys):
    """Before issue 8, every device= on play failed with "Could not override 'device'"."""
    run_dir = tmp_path / "run"
    assert run_main(train.main, "env=taxi", "total_steps=300", "eval_every_steps=0", "final_eval_episodes=1",
        "progress=false", f"hydra.run.dir={run_dir}", capsys=capsys)[0] == 0
    code, out, err = run_main(play.main, f"run={run_dir}", "episodes=1", "render=none", f"device={device}",
        capsys=capsys)
    assert code == 0, err
    assert "rlkit.play: q_learning on taxi after 300 steps" in out and out.split("\n")[0].endswith(
        f" on {resolve_device(device)}")
