"""Every bad input of issue 8, as a user meets it: exit status 2, one `error:` line on stderr, no traceback, and no
run folder left behind. In-process main() calls keep the suite fast; a few cases per entry point run as real
subprocesses too."""

from __future__ import annotations

import errno
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import edit_checkpoint, run_cli, run_main

from rlkit import play, report, supervised, train
from rlkit.checkpoint import load_checkpoint
from rlkit.digits.datasets import MNIST_FILES

MAINS = {"rlkit.train": train.main, "rlkit.play": play.main, "rlkit.report": report.main,
    "rlkit.supervised": supervised.main}
QUICK = ("progress=false", "eval_every_steps=0", "final_eval_episodes=2", "log_every_steps=500")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished taxi run, a DQN run that saved its replay, a supervised run and a text file, made once."""
    root = tmp_path_factory.mktemp("world")
    capsys = None
    for name, args in {
        "taxi": ("env=taxi", "total_steps=1000", "eval_every_steps=500", *QUICK[2:], "progress=false"),
        "dqn": ("env=cartpole", "total_steps=400", "agent.learning_starts_steps=100", "checkpoint.replay=true", *QUICK),
    }.items():
        assert run_main(train.main, *args, f"hydra.run.dir={root / name}", capsys=capsys)[0] == 0
    assert run_main(supervised.main, "epochs=1", "net=perceptron", "progress=false", f"hydra.run.dir={root / 'sup'}",
        capsys=capsys)[0] == 0
    (root / "notes.txt").write_text("not a checkpoint\n")
    return {"root": root, "taxi": root / "taxi", "dqn": root / "dqn", "sup": root / "sup", "text": root / "notes.txt"}


def copy_run(world: dict[str, Path], name: str, tmp: Path) -> Path:
    target = tmp / name
    shutil.copytree(world[name], target)
    return target


def edit_replay(run_dir: Path, edit: Callable[[dict], None]) -> None:
    with np.load(run_dir / "replay.npz") as saved:
        arrays = {name: saved[name] for name in saved.files}
    edit(arrays)
    np.savez(run_dir / "replay.npz", **arrays)


def play_edited(edit: Callable[[dict], None]) -> Callable[..., list[str]]:
    """play on a copy of the taxi run whose checkpoint was edited."""

    def args(tmp: Path, world: dict[str, Path], _: object) -> list[str]:
        run_dir = copy_run(world, "taxi", tmp)
        edit_checkpoint(run_dir, edit)
        return [f"run={run_dir}"]

    return args


def resume_with_replay(edit: Callable[[dict], None]) -> Callable[..., list[str]]:
    """resume= of a copy of the DQN run whose replay.npz was edited."""

    def args(tmp: Path, world: dict[str, Path], _: object) -> list[str]:
        run_dir = copy_run(world, "dqn", tmp)
        edit_replay(run_dir, edit)
        return [f"resume={run_dir}", "total_steps=800"]

    return args


def report_with_config(text: str) -> Callable[..., list[str]]:
    """report on a copy of the taxi run whose .hydra/config.yaml holds `text`."""

    def args(tmp: Path, world: dict[str, Path], _: object) -> list[str]:
        run_dir = copy_run(world, "taxi", tmp)
        (run_dir / ".hydra" / "config.yaml").write_text(text)
        return [str(run_dir)]

    return args


def play_symlinked_to_text(tmp: Path, world: dict[str, Path], _: object) -> list[str]:
    run_dir = copy_run(world, "taxi", tmp)
    (run_dir / "checkpoint.pt").unlink()
    (run_dir / "checkpoint.pt").symlink_to(world["text"])
    return [f"run={run_dir}"]


def mnist_folder(tmp: Path, *, images_header: tuple[int, ...] | None = None, labels: np.ndarray | None = None) -> Path:
    """Four IDX files; the train images' header or the train labels replaced to make them bad."""
    folder = tmp / "mnist"
    folder.mkdir()
    images, default_labels = np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8)
    for split, (images_name, labels_name) in MNIST_FILES.items():
        bad = split == "train"
        shape = images_header if bad and images_header else images.shape
        (folder / images_name).write_bytes(bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I",
            *shape) + images.tobytes())
        y = labels if bad and labels is not None else default_labels
        (folder / labels_name).write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", len(y)) + y.tobytes())
    return folder


def full_disk_run(tmp: Path, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    _full_disk(monkeypatch)
    return ["env=taxi", "total_steps=3000", "checkpoint.every_steps=1000", *QUICK, f"hydra.run.dir={tmp / 'run'}"]


def _full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first checkpoint write succeeds, every later one meets a full disk."""
    real_save, calls = torch.save, []

    def save(obj, handle):  # noqa: ANN001
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, handle)

    monkeypatch.setattr(torch, "save", save)


# (entry point, how to make its arguments from (tmp, world, monkeypatch), the message)
CASES: dict[str, tuple[str, Callable[..., list[str]], str]] = {
    "total_steps=abc": ("rlkit.train", lambda t, w, m: ["total_steps=abc"], "total_steps=abc must be an integer"),
    "total_steps=1500.7": ("rlkit.train", lambda t, w, m: ["total_steps=1500.7"],
        "total_steps=1500.7 must be an integer"),
    "seed=abc": ("rlkit.train", lambda t, w, m: ["seed=abc"], "seed=abc must be an integer"),
    "seed=-1": ("rlkit.train", lambda t, w, m: ["seed=-1"], "seed must be >= 0 and < 2**32, got -1"),
    "map_name=9x9": (
        "rlkit.train", lambda t, w, m: ["env=frozenlake", "env.kwargs.map_name=9x9"],
        "env=frozenlake (FrozenLake-v1) refuses env.kwargs map_name=9x9, is_slippery=true: KeyError '9x9'",
    ),
    "max_episode_steps=-1": (
        "rlkit.train", lambda t, w, m: ["env=cliffwalking", "env.max_episode_steps=-1"],
        "env.max_episode_steps must be >= 1 or null (the registered limit), got -1",
    ),
    "max_episode_steps=0": (
        "rlkit.train", lambda t, w, m: ["env.max_episode_steps=0"],
            "env.max_episode_steps must be >= 1 or null (the registered limit), got 0",
    ),
    "buffer_size=1e10": (
        "rlkit.train", lambda t, w, m: ["env=cartpole", "agent.buffer_size=10000000000"],
        "agent.buffer_size=10000000000 needs 502.9 GiB of replay memory, more than the",
    ),
    "hidden=[0]": ("rlkit.train", lambda t, w, m: ["env=cartpole", "net.hidden=[0]"],
        "net=mlp cannot be built: hidden=[0] needs sizes >= 1"),
    "hidden=[-4]": ("rlkit.train", lambda t, w, m: ["env=cartpole", "net.hidden=[-4]"],
        "net=mlp cannot be built: hidden=[-4] needs sizes >= 1"),
    "lr=-1": ("rlkit.train", lambda t, w, m: ["env=cartpole", "optim.lr=-1"],
        "optim=adam refuses its settings: Invalid learning rate: -1.0"),
    "epsilon_start=5": ("rlkit.train", lambda t, w, m: ["agent.epsilon_start=5"],
        "agent.epsilon_start must be in [0, 1], got 5.0"),
    "total_step=100": ("rlkit.train", lambda t, w, m: ["total_step=100"],
        "unknown key total_step; did you mean total_steps?"),
    "agent.lr=0.1": (
        "rlkit.train", lambda t, w, m: ["env=cartpole", "agent.lr=0.1"],
            "unknown key agent.lr; did you mean optim.lr, agent.loss or agent.tau?",
    ),
    "+total_step=100": ("rlkit.train", lambda t, w, m: ["+total_step=100"],
        "unknown key total_step; did you mean total_steps?"),
    "+agent.lr=0.1": ("rlkit.train", lambda t, w, m: ["+agent.lr=0.1"], "unknown key agent.lr; did you mean optim.lr"),
    "run dir is a file": ("rlkit.train", lambda t, w, m: [f"hydra.run.dir={w['text']}"],
        "is a file; pass a folder for the new run"),
    "run dir unwritable": ("rlkit.train", lambda t, w, m: ["hydra.run.dir=/proc/rlkit-run"],
        "hydra.run.dir=/proc/rlkit-run cannot be written: /proc"),
    "run dir holds a run": (
        "rlkit.train", lambda t, w, m: [f"hydra.run.dir={w['taxi']}"],
            "already holds a run; continue it with python -m rlkit.train resume={taxi}",
    ),
    "full disk": (
        "rlkit.train", full_disk_run,
        "could not write the checkpoint of step 2000 (No space left on device); "
        "the last good checkpoint (step 1000) is",
    ),
    "play video unwritable": ("rlkit.play", lambda t, w, m: [f"run={w['taxi']}", "video=/proc/x.mp4"],
        "video=/proc/x.mp4 cannot be written"),
    "play without run=": ("rlkit.play", lambda t, w, m: [],
        "play needs run=<a run folder that python -m rlkit.train printed>"),
    "play a text file": ("rlkit.play", lambda t, w, m: [f"run={w['text']}"],
        "is not an rlkit checkpoint (not a torch zip file)"),
    "play a supervised run": ("rlkit.play", lambda t, w, m: [f"run={w['sup']}"],
        "is a supervised run (python -m rlkit.supervised)"),
    "play a parent of runs": ("rlkit.play", lambda t, w, m: [f"run={w['root']}"],
        "holds no checkpoint.pt itself but runs below it:"),
    "checkpoint lacks step": (
        "rlkit.play", play_edited(lambda d: d.pop("step")),
        "lacks its 'step' field; it was not written by rlkit.train",
    ),
    "checkpoint step is text": (
        "rlkit.play", play_edited(lambda d: d.update(step="abc")),
        "checkpoint.pt: its 'step' field holds abc, not a valid step; it was not written by rlkit.train",
    ),
    "checkpoint agent_state mistyped": (
        "rlkit.play", play_edited(lambda d: d["agent_state"].update(q_table="x")),
        "does not fit this env/agent config: AttributeError",
    ),
    "checkpoint symlinked to a text file": (
        "rlkit.play", play_symlinked_to_text,
        "checkpoint.pt is a link leading outside its run folder",
    ),
    "replay.npz wrong shape": (
        "rlkit.train", resume_with_replay(lambda a: a.update(obs=a["obs"][:, :2].copy())),
        "replay.npz does not fit this run (saved replay obs is float32(50000, 2), this buffer float32(50000, 4))",
    ),
    "replay.npz wrong dtype": (
        "rlkit.train", resume_with_replay(lambda a: a.update(rewards=a["rewards"].astype(np.float64))),
        "saved replay rewards is float64(50000,), this buffer float32(50000,)",
    ),
    "replay.npz missing key": (
        "rlkit.train", resume_with_replay(lambda a: a.pop("actions")),
        "replay.npz does not fit this run (saved replay has no actions)",
    ),
    "replay.npz pos out of range": (
        "rlkit.train", resume_with_replay(lambda a: a.update(pos=a["pos"] + 10**6)),
        "saved replay pos holds values outside [0, 49999]",
    ),
    "replay.npz size out of range": (
        "rlkit.train", resume_with_replay(lambda a: a.update(size=a["size"] - 10**6)),
        "saved replay size holds values outside [0, 50000]",
    ),
    "report on invalid YAML": (
        "rlkit.report", report_with_config("a: [1, 2\n"),
        "config.yaml is not readable YAML (",
    ),
    "report on a YAML list": (
        "rlkit.report", report_with_config("- 1\n- 2\n"),
        "config.yaml holds a list, not the dict rlkit writes there",
    ),
    "IDX header overflows": (
        "rlkit.supervised", lambda t, w, m: ["data=mnist",
            f"data.path={mnist_folder(t, images_header=(2**32 - 1,) * 3)}", f"hydra.run.dir={t / 'run'}"],
        "holds 3136 data bytes but its header (4294967295, 4294967295, 4294967295) says",
    ),
    "IDX labels of 10 or more": (
        "rlkit.supervised", lambda t, w, m: ["data=mnist",
            f"data.path={mnist_folder(t, labels=np.array([0, 3, 12, 9], np.uint8))}", f"hydra.run.dir={t / 'run'}"],
        "train labels run from 0 to 12; MNIST labels are digits 0..9",
    ),
}
if not torch.cuda.is_available():
    CASES["play device=cuda without a GPU"] = ("rlkit.play", lambda t, w, m: [f"run={w['taxi']}", "device=cuda"],
        "device=cuda but no CUDA device is visible")


def expected(message: str, world: dict[str, Path]) -> str:
    return message.replace("{taxi}", str(world["taxi"]))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_status_2(case, world, tmp_path, monkeypatch, capsys):
    entry, make_args, message = CASES[case]
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # default run folders (runs/<env>/...) would land here
    args = make_args(tmp_path, world, monkeypatch)
    new_run_dirs = [Path(a.partition("=")[2]) for a in args
        if a.startswith("hydra.run.dir=") and not Path(a.partition("=")[2]).exists()]
    code, _, err = run_main(MAINS[entry], *args, capsys=capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected(message, world) in err, err
    assert list(work.iterdir()) == []  # a refused command leaves no run folder behind
    if case != "full disk":  # the one refusal that comes mid-run, with a checkpoint to keep
        assert not any(d.exists() for d in new_run_dirs)


def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    _full_disk(monkeypatch)
    run_dir = tmp_path / "run"
    code, _, err = run_main(train.main, "env=taxi", "total_steps=3000", "checkpoint.every_steps=1000", *QUICK,
        f"hydra.run.dir={run_dir}", capsys=capsys)
    monkeypatch.undo()
    assert code == 2 and err.endswith(f"the last good checkpoint (step 1000) is {run_dir / 'checkpoint.pt'}\n")
    assert load_checkpoint(run_dir)["step"] == 1000
    assert sorted(p.name for p in run_dir.glob(".checkpoint.pt.*")) == []  # the failed write's temp file is gone


# The same inputs as a user types them: a few per entry point as real processes.
SUBPROCESS_CASES = ["max_episode_steps=-1", "agent.lr=0.1", "play a text file", "report on a YAML list",
    "IDX labels of 10 or more"]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (("env=cartpole", "agent.dueling=true"), "agent.dueling is now net.head.type: use net.head.type=dueling"),
        (("env=cartpole", "agent.prioritized=true"),
            "agent.prioritized is now agent/sampler: use agent/sampler=prioritized"),
        (("env=cartpole", "agent.prioritized=false"),
            "agent.prioritized is now agent/sampler: use agent/sampler=uniform"),
        (("env=cartpole", "agent.priority_alpha=0.5"),
         "agent.priority_alpha is now agent.sampler.alpha: use agent/sampler=prioritized agent.sampler.alpha=0.5"),
        (("env=cartpole", "agent.dedup_frames=true"), "agent.dedup_frames is now replay: use replay=frames"),
        (("env=pong", "env.dedup_frames=false"), "env.dedup_frames is now replay: use replay=transitions"),
        (("env=cartpole", "agent.sampler.beta_start=0.5"),
         "agent.sampler.beta_start is not a setting of the sampler chosen; agent/sampler=prioritized takes it: "
         "agent/sampler=prioritized agent.sampler.beta_start=0.5"),
        (("env=cartpole", "agent.sampler.type=prioritized"),
         "agent.sampler.beta_steps is missing; agent.sampler.type=prioritized needs it: pick the part with "
         "agent/sampler=prioritized"),
    ],
)
def test_a_flag_that_became_a_part_names_the_part_as_a_subprocess(typed, message, tmp_path):
    """Keys from before DQN's parts had names, typed as a user would: one line naming what to type today."""
    work = tmp_path / "cwd"
    work.mkdir()
    proc = run_cli("rlkit.train", *typed, cwd=work, timeout=300)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"error: {message}\n")
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_as_a_subprocess(case, world, tmp_path):
    entry, make_args, message = CASES[case]
    work = tmp_path / "cwd"
    work.mkdir()
    proc = run_cli(entry, *make_args(tmp_path, world, None), cwd=work, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, (
        proc.stderr)
    assert expected(message, world) in proc.stderr
    assert list(work.iterdir()) == []
