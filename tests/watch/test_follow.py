"""play on a run still training: the latest checkpoint and its step, and follow=true reloading each new one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import torch
from conftest import REPO, lake_table, tabular_run

from rlkit.checkpoint import load_checkpoint, save_checkpoint
from rlkit.watch.follow import FileStamp, RunProgress, follow


def rewrite(path) -> None:
    """A new checkpoint as the trainer writes one: a complete file renamed into place."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(os.urandom(64))
    os.replace(tmp, path)


def test_follow_reloads_a_checkpoint_written_during_an_episode_and_stops_when_the_run_is_done(tmp_path, capsys) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    rewrite(checkpoint)
    stamp = FileStamp(checkpoint)
    played, reloads = [], [RunProgress(200, 300), RunProgress(300, 300)]

    def play_episode(episode: int) -> float:
        played.append(episode)
        rewrite(checkpoint)  # the trainer saved while this episode played
        return 0.0

    last = follow(stamp, RunProgress(100, 300), play_episode=play_episode, reload=lambda: reloads.pop(0),
        idle_timeout_s=60)
    assert last == RunProgress(300, 300) and played == [0, 1, 2] and reloads == []
    out = capsys.readouterr().out
    assert "reloaded the checkpoint at step 200 of 300" in out and "the run finished at step 300" in out
    assert "waiting" not in out


def test_follow_waits_for_the_next_checkpoint(tmp_path, capsys) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    rewrite(checkpoint)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            rewrite(checkpoint)

    follow(FileStamp(checkpoint), RunProgress(100, 300), play_episode=lambda _: 0.0, reload=lambda: RunProgress(300,
        300),
           idle_timeout_s=60, poll_s=0.25, sleep=sleep)
    assert naps == [0.25] * 3
    out = capsys.readouterr().out
    assert out.index("waiting for a checkpoint newer than step 100") < out.index("reloaded the checkpoint at step 300")


def test_follow_stops_when_the_run_folder_has_been_idle_too_long(tmp_path, capsys) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    rewrite(checkpoint)
    follow(FileStamp(checkpoint), RunProgress(100, 300), play_episode=lambda _: 0.0, reload=lambda: RunProgress(0, 0),
           idle_timeout_s=30, clock=lambda: time.time() + 31, sleep=lambda _: None)
    assert f"nothing in {tmp_path} changed for 30 s; the run has stopped" in capsys.readouterr().out


def test_play_follow_picks_up_a_checkpoint_written_after_it_started(tmp_path) -> None:
    run_dir = tabular_run(tmp_path / "lake", "env=frozenlake", "env.kwargs.is_slippery=false", table=lake_table())
    final = load_checkpoint(run_dir)  # step 500 of 500, the table that walks to the goal in 6 steps
    early = {**final, "step": 250, "agent_state": {**final["agent_state"], "q_table": torch.zeros(16, 4,
        dtype=torch.float64)}}
    save_checkpoint(run_dir / "checkpoint.pt", early)  # the run as it was halfway: all-zero table, always "left"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "rlkit.play", f"run={run_dir}", "follow=true", "follow_timeout=120"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:  # until the first episode with the early checkpoint is over
            lines.append(line)
            if line.startswith("episode 1:"):
                break
        save_checkpoint(run_dir / "checkpoint.pt", final)  # the trainer's next (and last) checkpoint
        rest, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert "after 250 steps" in out and "the run is at step 250 of 500" in out
    assert "episode 1: return 0.00 in 100 steps" in out  # zero table: "left" forever at the start, cut at 100 steps
    assert out.index("reloaded the checkpoint at step 500 of 500") < out.index("episode 2: return 1.00 in 6 steps")
    assert "follow: the run finished at step 500" in out and "mean return over 2 episodes: 0.50" in out
    assert np.isclose(load_checkpoint(run_dir)["agent_state"]["q_table"].sum().item(), lake_table().sum())
