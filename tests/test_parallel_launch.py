"""One run per launch, whatever the timing (issue 20): trainers started in the same second each get a folder and
records of their own; a lock file that is not a file, and an env.name that is a path, are refused in one line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_main
from hostile import Sentinel, run_hostile

from rlkit import supervised, train
from rlkit.checkpoint import load_checkpoint
from rlkit.cli.app import hydra_quote, prepare_argv
from rlkit.cli.overrides import parse_overrides
from rlkit.errors import RlkitError
from rlkit.run_folder import LOCK_FILENAME, RunLock, claim_run_dir

TINY = ("env=taxi", "total_steps=300", "eval_every_steps=0", "final_eval_episodes=1", "progress=false")
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small run, made once; each case copies it."""
    run_dir = tmp_path_factory.mktemp("made") / "run"
    code = run_main(train.main, "env=taxi", "total_steps=1000", "eval_every_steps=0", "final_eval_episodes=2",
        "progress=false", f"hydra.run.dir={run_dir}", capsys=None)[0]
    assert code == 0
    return run_dir


def launch_together(seeds: list[int], work: Path) -> list[Path]:
    """Trainers for these seeds started in a tight loop (the same second), each in the default run folder."""
    procs = [subprocess.Popen([sys.executable, "-m", "rlkit.train", *TINY, f"seed={seed}"], cwd=work, env=ENV,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in seeds]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(seeds), errors
    return sorted((work / "runs" / "taxi" / "q_learning").iterdir())


@pytest.mark.parametrize("seeds", [
    [0, 1, 1],  # distinct seeds and a repeated one, in the default suite
    pytest.param(list(range(8)), marks=pytest.mark.slow),
    pytest.param([7] * 4, marks=pytest.mark.slow),
], ids=["3 trainers", "8 seeds", "4 of one seed"])
def test_trainers_launched_together_each_get_their_own_run(seeds, tmp_path):
    runs = launch_together(seeds, tmp_path)
    assert len(runs) == len(seeds), runs
    recorded = []
    for run in runs:
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        seed = int(next(line.partition("=")[2] for line in overrides if line.startswith("seed=")))
        assert load_checkpoint(run)["config"]["seed"] == seed  # records and checkpoint tell the same run
        assert f"_seed{seed}_" in run.name
        recorded.append(seed)
    assert sorted(recorded) == sorted(seeds)


def _link_to_a_file(lock: Path, sentinel: Sentinel) -> None:
    lock.symlink_to(sentinel.path / "secret.txt")


def _dangling_link(lock: Path, sentinel: Sentinel) -> None:
    lock.symlink_to(sentinel.path / "inner" / "created.lock")


def _fifo(lock: Path, sentinel: Sentinel) -> None:
    os.mkfifo(lock)


def _folder(lock: Path, sentinel: Sentinel) -> None:
    lock.mkdir()


LOCK_KINDS = {"link to a file": _link_to_a_file, "dangling link": _dangling_link, "FIFO": _fifo, "folder": _folder}
SUBPROCESS = {("dangling link", "fresh")}  # the rest in-process: the same code, faster


@pytest.mark.parametrize("how", ["fresh", "resume"])
@pytest.mark.parametrize("kind", list(LOCK_KINDS))
def test_a_lock_that_is_not_a_file_is_refused_and_nothing_is_written_through_it(kind, how, finished_run, tmp_path,
        capsys):
    sentinel = Sentinel(tmp_path / "sentinel")
    run_dir = tmp_path / "run"
    if how == "fresh":
        run_dir.mkdir()
        args = [*TINY, f"hydra.run.dir={run_dir}"]
    else:
        shutil.copytree(finished_run, run_dir)
        (run_dir / LOCK_FILENAME).unlink(missing_ok=True)
        args = [f"resume={run_dir}", "total_steps=2000", "progress=false"]
    LOCK_KINDS[kind](run_dir / LOCK_FILENAME, sentinel)
    before = sorted(p.name for p in run_dir.iterdir())
    if (kind, how) in SUBPROCESS:
        line = run_hostile("rlkit.train", *args, cwd=tmp_path).refused(LOCK_FILENAME)
    else:
        code, _, err = run_main(train.main, *args, capsys=capsys)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and LOCK_FILENAME in err, err
        line = err
    # resume= first refuses any link that leads out of the run (rlkit.run_files), the lock's own check comes next
    why = "a link leading outside its run folder" if how == "resume" and "link" in kind else "not rlkit's lock file"
    assert str(run_dir / LOCK_FILENAME) in line and why in line, line
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no .hydra/ records, no events
    sentinel.untouched()


PATH_NAMES = ["../x", "../../../x", "a/b", ".hidden", "a" * 300, "a\x1bb"]


@pytest.mark.parametrize("name", PATH_NAMES, ids=["../x", "../../../x", "a/b", ".hidden", "300 chars", "escape"])
def test_an_env_name_that_is_a_path_is_refused_before_any_folder(name, tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b" / "c" / "work"
    work.mkdir(parents=True)
    args = ["env=taxi", f"env.name={hydra_quote(name)}", "total_steps=300", "progress=false"]
    if name == "../../../x":
        line = run_hostile("rlkit.train", *args, cwd=work).refused("env.name")
    else:
        monkeypatch.chdir(work)
        code, _, line = run_main(train.main, *args, capsys=capsys)
        assert code == 2 and line.count("\n") == 1 and line.startswith("error: env.name="), line
    assert "\x1b" not in line and len(line) <= 300
    assert [p for p in tmp_path.rglob("*") if p not in work.parents] == [work]  # nothing made, in runs/ or above


@pytest.mark.parametrize("where", ["hydra.run.dir", pytest.param("default name", marks=pytest.mark.slow)])
def test_the_printed_replay_command_plays_a_run_under_a_non_ascii_folder_with_a_space(where, tmp_path, monkeypatch,
        capsys):
    home = tmp_path / "dossier é" / "l'été ü"
    home.mkdir(parents=True)
    monkeypatch.chdir(home)
    given = [f"hydra.run.dir={hydra_quote(home / 'run ß')}"] if where == "hydra.run.dir" else []
    code, out, err = run_main(train.main, *TINY, *given, capsys=capsys)
    assert code == 0, err
    replay = next(line for line in out.splitlines() if line.startswith("replay: ")).removeprefix("replay: ")
    played = subprocess.run(["bash", "-c", f"{replay} episodes=1 render=none"], cwd=tmp_path, env=ENV,
        capture_output=True, text=True, timeout=120)
    assert played.returncode == 0, played.stderr
    assert "rlkit.play: q_learning on taxi after 300 steps" in played.stdout and str(home) in played.stdout


@pytest.mark.parametrize("collisions", [0, 1, 5])
def test_a_default_name_taken_by_another_launch_gets_a_new_suffix(collisions, tmp_path, monkeypatch):
    suffixes = iter([f"{i:04x}" for i in range(collisions + 1)])
    monkeypatch.setattr("rlkit.run_folder.secrets.token_hex", lambda n: next(suffixes))
    base = tmp_path / "runs" / "2026-01-01_00-00-00_seed3"
    for i in range(collisions):
        (tmp_path / "runs" / f"{base.name}_{i:04x}").mkdir(parents=True)
    claimed = claim_run_dir(base, fresh=True)
    with RunLock(claimed) as lock:  # takes over the claim this process holds: no second open, no refusal
        assert claimed.name == f"{base.name}_{collisions:04x}" and lock._fd is not None
        assert (claimed / LOCK_FILENAME).read_text() == f"{os.getpid()}\n"
    assert sorted(p.name for p in claimed.iterdir()) == [LOCK_FILENAME]


def test_an_explicit_folder_another_launch_claimed_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_FILENAME).write_text("12345\n")  # the other launch's claim, made between our check and our claim
    with pytest.raises(RlkitError, match=rf"^hydra.run.dir={run_dir} was just claimed by another rlkit launch"):
        claim_run_dir(run_dir, fresh=False)
    assert (run_dir / LOCK_FILENAME).read_text() == "12345\n"


@pytest.mark.parametrize("app", [train.APP, pytest.param(supervised.APP, marks=pytest.mark.slow)],
    ids=["train", "supervised"])
def test_two_sweeps_of_one_second_get_two_sweep_folders(app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["-m", "seed=0,1", "progress=false", *(["env=taxi"] if app is train.APP else [])]
    pinned = [prepare_argv(app, args)[-1] for _ in range(2)]
    folders = [Path(line.removeprefix("hydra.sweep.dir=")) for line in pinned]
    assert all(line.startswith("hydra.sweep.dir=") for line in pinned) and folders[0] != folders[1]
    assert all(folder.is_dir() and not any(folder.iterdir()) for folder in folders)
    assert prepare_argv(app, [*args, "hydra.sweep.dir=mine"])[-1] == "hydra.sweep.dir=mine"  # given: kept as is


@pytest.mark.slow
def test_the_printed_resume_command_resumes_a_run_under_a_non_ascii_folder_with_a_space(tmp_path):
    run_dir = tmp_path / "dossier é" / "l'été ü"
    proc = subprocess.Popen([sys.executable, "-m", "rlkit.train", *TINY, "total_steps=10000000",
        f"hydra.run.dir={hydra_quote(run_dir)}"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().startswith("rlkit: env=taxi")
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    resume = next(line for line in err.splitlines() if line.startswith("resume: ")).removeprefix("resume: ")
    total = load_checkpoint(run_dir)["step"] + 300
    resumed = subprocess.run(["bash", "-c", f"{resume} total_steps={total} progress=false"], cwd=tmp_path, env=ENV,
        capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(run_dir)["step"] == total


@pytest.mark.parametrize("given", [None, "plain/run", "my run/é ü", "it's/a,b=c"], ids=["default", "plain", "space",
    "quote and comma"])
def test_the_folder_is_claimed_and_pinned_before_hydra_starts(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*TINY, "seed=4", *([f"hydra.run.dir={hydra_quote(given)}"] if given else [])]
    pinned = prepare_argv(train.APP, args)[-1]
    run_dir = Path(parse_overrides([pinned])[0].value())  # Hydra reads back the folder that was claimed
    if given is None:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_seed4_[0-9a-f]{4}", run_dir.name), run_dir
        assert run_dir.parent == Path("runs/taxi/q_learning")
    else:
        assert run_dir == Path(given)
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILENAME]  # nothing of Hydra's yet
    assert (run_dir / LOCK_FILENAME).read_text() == f"{os.getpid()}\n"
    with RunLock(run_dir):  # the run takes the claim over and lets it go when it ends
        pass
