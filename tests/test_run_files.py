"""Run folders are opened, never followed (issue 20, points 1 and 6): a link, FIFO or folder at every path rlkit reads
or writes in a run is one `error:` line naming it (or a documented clean skip), and nothing beside the run changes.
Each family runs in-process for speed; one case per command also runs as a real subprocess within the bounds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_main
from hostile import Sentinel, run_hostile

from rlkit import play, report, train
from rlkit.checkpoint import load_checkpoint
from rlkit.errors import RlkitError
from rlkit.run_files import check_no_links_out, open_run_file, read_run_text, real_folder, write_atomically

QUICK = ("eval_every_steps=0", "final_eval_episodes=2", "progress=false")
MAINS = {"rlkit.train": train.main, "rlkit.play": play.main, "rlkit.report": report.main}
LINKS = {  # what a hostile run folder holds in place of a file, each pointing into the sentinel beside it
    "link to a file": lambda path, sentinel: path.symlink_to(sentinel / "secret.txt"),
    "link to a folder": lambda path, sentinel: path.symlink_to(sentinel / "inner", target_is_directory=True),
    "dangling link": lambda path, sentinel: path.symlink_to(sentinel / "not-there"),
}
NOT_FILES = {"FIFO": lambda path, _: os.mkfifo(path), "folder": lambda path, _: path.mkdir()}
EVENTS = "events.out.tfevents.*"  # the run's own events file, whatever its name
# (command, run, path) -> how the command is started on the run folder; each path rlkit reads or writes there.
RESUME = ("rlkit.train", lambda run: [f"resume={run}", "total_steps=1200"])
RESUME_DQN = ("rlkit.train", lambda run: [f"resume={run}", "total_steps=500"])
PLAY = ("rlkit.play", lambda run: [f"run={run}", "episodes=1", "render=none"])
PLAY_VIDEO = ("rlkit.play", lambda run: [f"run={run}", "episodes=1"])  # no display: a video under videos/
REPORT = ("rlkit.report", lambda run: [str(run)])
READS = [  # paths that are read: links, FIFOs and folders are all refused
    (RESUME, "taxi", "checkpoint.pt"), (PLAY, "taxi", "checkpoint.pt"), (RESUME_DQN, "dqn", "replay.npz"),
    (RESUME, "taxi", ".hydra/overrides.yaml"), (REPORT, "taxi", ".hydra/overrides.yaml"),
    (REPORT, "taxi", ".hydra/config.yaml"), (REPORT, "taxi", EVENTS),
]
WRITES = [  # paths written, and .hydra itself: a link leading out is refused before the run is read
    (RESUME, "taxi", "learning_curve.png"), (RESUME, "taxi", EVENTS), (REPORT, "taxi", "report.md"),
    (REPORT, "taxi", "report.png"), (PLAY_VIDEO, "dqn", "videos"), (PLAY_VIDEO, "dqn", "videos/play.mp4"),
    (RESUME, "taxi", ".hydra"), (REPORT, "taxi", ".hydra"), (PLAY, "taxi", ".hydra"),
]
WRITES_NOT_FILES = [(REPORT, "taxi", "report.md"), (REPORT, "taxi", "report.png")]  # issue 20 point 8: a folder
SUBPROCESS = {  # one representative case per command runs as the user meets it
    ("rlkit.train", "checkpoint.pt", "link to a file"), ("rlkit.play", "checkpoint.pt", "FIFO"),
    ("rlkit.report", EVENTS, "FIFO"), ("rlkit.report", "report.md", "dangling link"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished taxi run and a DQN run that saved its replay, made once."""
    root = tmp_path_factory.mktemp("runs")
    for name, args in {"taxi": ("env=taxi", "total_steps=1000"), "dqn": ("env=cartpole", "total_steps=400",
            "agent.learning_starts_steps=100", "checkpoint.replay=true", "log_every_steps=200")}.items():
        assert run_main(train.main, *args, *QUICK, f"hydra.run.dir={root / name}", capsys=None)[0] == 0
    return {"taxi": root / "taxi", "dqn": root / "dqn"}


def hostile_copy(world: dict[str, Path], name: str, tmp: Path, where: str,
        make: Callable[[Path, Path], None]) -> tuple[Path, Path, Sentinel]:
    """A copy of a run with `make` put at `where` (its old entry removed), and a sentinel beside it."""
    run = tmp / "run"
    shutil.copytree(world[name], run)
    sentinel = Sentinel(tmp / "sentinel")
    path = next(run.glob(where)) if "*" in where else run / where
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.parent.mkdir(exist_ok=True)
    make(path, sentinel.path)
    return run, path, sentinel


def refused(code: int, err: str, *names: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err[-2000:])
    for name in names:
        assert name in lines[0], (name, lines[0])


CASES = [(*case, kind, make) for case in READS for kind, make in {**LINKS, **NOT_FILES}.items()] + [
    (*case, kind, make) for case in WRITES for kind, make in LINKS.items()] + [
    (*case, kind, make) for case in WRITES_NOT_FILES for kind, make in NOT_FILES.items()]


@pytest.mark.parametrize(("command", "name", "where", "kind", "make"), CASES,
    ids=[f"{c[0][0]}-{c[2]}-{c[3]}" for c in CASES])
def test_a_hostile_entry_in_a_run_is_one_line_naming_it(world, tmp_path, capsys, command, name, where, kind, make):
    (module, args), (run, path, sentinel) = command, hostile_copy(world, name, tmp_path, where, make)
    if (module, where, kind) in SUBPROCESS:
        outcome = run_hostile(module, *args(run))
        outcome.refused(path.name)
    else:
        code, _, err = run_main(MAINS[module], *args(run), capsys=capsys)
        refused(code, err, path.name)
    sentinel.untouched()


@pytest.mark.parametrize("kind", [*LINKS, *NOT_FILES])
def test_a_learning_curve_that_cannot_be_written_is_skipped_and_the_run_kept(world, tmp_path, capsys, kind):
    """Fresh training into a folder holding something at learning_curve.png: the curve is skipped with a note, the
    checkpoint is saved, and the thing is left as it was."""
    run = tmp_path / "run"
    run.mkdir()
    sentinel = Sentinel(tmp_path / "sentinel")
    {**LINKS, **NOT_FILES}[kind](run / "learning_curve.png", sentinel.path)
    before = os.lstat(run / "learning_curve.png")
    code, out, err = run_main(train.main, "env=taxi", "total_steps=300", *QUICK, f"hydra.run.dir={run}", capsys=capsys)
    assert code == 0, err
    assert "curve:  skipped (" in out and "learning_curve.png" in out
    assert load_checkpoint(run)["step"] == 300
    assert os.lstat(run / "learning_curve.png")[:2] == before[:2]  # the same inode and kind: left as it was
    sentinel.untouched()


@pytest.mark.parametrize("stale", ["folder", "FIFO", "link to a file"])
def test_a_dead_writers_temp_name_that_is_no_file_is_skipped_and_the_resume_saves(world, tmp_path, capsys, stale):
    run = tmp_path / "run"
    shutil.copytree(world["taxi"], run)
    sentinel = Sentinel(tmp_path / "sentinel")
    dead = run / ".checkpoint.pt.999999.dead.tmp"
    {**LINKS, **NOT_FILES}[stale](dead, sentinel.path)
    if stale == "link to a file":  # a link inside the run that stays inside it: the walk lets it be
        dead.unlink()
        dead.symlink_to(run / "learning_curve.png")
    before = os.lstat(dead)
    code, _, err = run_main(train.main, f"resume={run}", "total_steps=1200", capsys=capsys)
    assert code == 0, err
    assert load_checkpoint(run)["step"] == 1200
    assert os.lstat(dead)[:2] == before[:2]  # the same inode and kind: left as it was, never reused
    sentinel.untouched()


# The helpers themselves, every path of every kind: what the commands above rely on.
@pytest.mark.parametrize("kind", [*LINKS, *NOT_FILES])
@pytest.mark.parametrize("where", ["checkpoint.pt", ".hydra/config.yaml", "videos/play.mp4"])
def test_reads_and_writes_never_go_through_a_link_fifo_or_folder(tmp_path, kind, where):
    run, sentinel = tmp_path / "run", Sentinel(tmp_path / "sentinel")
    path = run / where
    path.parent.mkdir(parents=True)
    {**LINKS, **NOT_FILES}[kind](path, sentinel.path)
    with pytest.raises(RlkitError, match=f"{path.name} is a (link|FIFO|folder), not a"):
        open_run_file(path).close()
    with pytest.raises(RlkitError, match=f"{path.name} is a (link|FIFO|folder), not a file rlkit wrote"):
        write_atomically(path, lambda handle: handle.write(b"x"), root=run)
    assert os.path.lexists(path)
    sentinel.untouched()


@pytest.mark.parametrize("kind", [*LINKS, "file"])
@pytest.mark.parametrize("folder", [".hydra", "videos", "videos/nested"])
def test_folders_below_the_run_must_be_real_ones(tmp_path, kind, folder):
    run, sentinel = tmp_path / "run", Sentinel(tmp_path / "sentinel")
    top = run / folder.split("/")[0]
    run.mkdir()
    if kind == "file":
        top.write_text("a file, not a folder\n")
    else:
        LINKS[kind](top, sentinel.path)
    with pytest.raises(RlkitError, match=f"{top.name} is a (link|file), not a real folder of the run"):
        real_folder(run / folder, root=run)
    with pytest.raises(RlkitError, match=f"{top.name} is a (link|file), not a real folder of the run"):
        write_atomically(run / folder / "x.png", lambda handle: handle.write(b"x"), root=run)
    if kind != "file":
        with pytest.raises(RlkitError, match=f"{top.name} is a link, not a real folder of the run"):
            read_run_text(run / folder / "secret.txt", root=run)
    sentinel.untouched()


@pytest.mark.parametrize("kind", list(LINKS))
@pytest.mark.parametrize("where", ["checkpoint.pt", ".hydra/overrides.yaml", "videos", "a/b/c/d"])
def test_a_link_leading_out_is_found_at_any_depth_and_one_inside_is_not(tmp_path, kind, where):
    run, sentinel = tmp_path / "run", Sentinel(tmp_path / "sentinel")
    (run / where).parent.mkdir(parents=True)
    (run / "real.txt").write_text("inside\n")
    (run / "inside-link").symlink_to(run / "real.txt")
    check_no_links_out(run)  # a link that stays inside is no way out
    LINKS[kind](run / where, sentinel.path)
    with pytest.raises(RlkitError, match=f"{run / where} is a link leading outside its run folder"):
        check_no_links_out(run)


@pytest.mark.parametrize("content", [b"", b"x" * 100, bytes(range(256))])
def test_an_atomic_write_replaces_a_file_and_leaves_no_temp(tmp_path, content):
    path = tmp_path / "run" / "deep" / "report.md"
    write_atomically(path, lambda handle: handle.write(b"old"))
    write_atomically(path, lambda handle: handle.write(content))
    with open_run_file(path) as handle:
        assert handle.read() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.md"]
