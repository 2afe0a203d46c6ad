"""Bounded reads (issue 20): zip, npy, DAG, depth and alias bombs in each file of a run folder, for each command that
reads it, end in one `error:` line and exit status 2, with nothing inflated, walked 2**64 times or built first.
Every case runs in-process (fast); one per file kind and command also runs as a real subprocess inside
tests/hostile.py's CPU and memory bounds, the others as subprocesses under @slow."""

from __future__ import annotations

import copy
import io
import pickle
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_cli, run_main
from hostile import Sentinel, run_hostile

from rlkit import play, report, train
from rlkit.checkpoint import KIND, content_digest, load_arrays, load_checkpoint, save_checkpoint
from rlkit.plain import load_plain_yaml

MAINS = {"rlkit.train": train.main, "rlkit.play": play.main, "rlkit.report": report.main}
ZEROS_BYTES = 16 << 20  # deflated: 16 KB on disk, a thousand times that inflated


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small DQN run that saved its replay buffer, made once; each case bombs a copy. It trains in a subprocess:
    a child's peak RSS (wait4) starts at this process's RSS when it forks, so this one must stay small."""
    run_dir = tmp_path_factory.mktemp("bombs") / "dqn"
    done = run_cli("rlkit.train", "env=cartpole", "total_steps=300", "agent.learning_starts_steps=100",
        "checkpoint.replay=true", "eval_every_steps=0", "final_eval_episodes=1", "progress=false",
        f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


def rewrite_zip(path: Path, *, drop: str = "", add: dict[str, tuple[bytes, int]] | None = None) -> None:
    """The zip at path without member `drop`, with `add` ({name: (bytes, compression)}) added last."""
    with zipfile.ZipFile(path) as old:
        kept = [(info, old.read(info)) for info in old.infolist() if info.filename != drop]
    with zipfile.ZipFile(path, "w") as new:
        for info, data in kept:
            new.writestr(info, data)
        for name, (data, compression) in (add or {}).items():
            new.writestr(name, data, compress_type=compression)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def member(path: Path, suffix: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return next(name for name in archive.namelist() if name.endswith(suffix))


# checkpoint.pt ------------------------------------------------------------------------------------------------------


def shared_lists(levels: int = 64) -> list:
    """A DAG of lists, each holding the one below twice: 2**64 lists as a tree, a few hundred bytes pickled."""
    node: list = []
    for _ in range(levels):
        node = [node, node]
    return node


def deep_list_pickle(head: bytes, depth: int = 100_000) -> bytes:
    """`head` (a pickled dict, open) + 'config': 100,000 nested lists, opcode by opcode (pickling them would
    overflow the C stack)."""
    return head + pickle.dumps("config", 2)[2:-1] + b"]" * depth + b"a" * (depth - 1) + b"u."


def pickled_payload(version: int, bomb: str) -> bytes:
    """data.pkl of a checkpoint with rlkit's marker, format `version` and a bomb as its config."""
    marker = {"kind": KIND, "format": version, "sha256": "0" * 64}
    if bomb == "dag":
        return pickle.dumps({**marker, "config": shared_lists()}, 2)
    head = pickle.dumps(marker, 2)
    return deep_list_pickle(head[: head.rindex(b"u.")])  # the dict left open for one more key


def checkpoint_pickle(version: int, bomb: str) -> Callable[[Path], None]:
    def edit(run_dir: Path) -> None:
        path = run_dir / "checkpoint.pt"
        name = member(path, "data.pkl")
        rewrite_zip(path, drop=name, add={name: (pickled_payload(version, bomb), zipfile.ZIP_STORED)})

    return edit


def checkpoint_deflated_zeros(run_dir: Path) -> None:
    path = run_dir / "checkpoint.pt"
    name = member(path, "data.pkl").replace("data.pkl", "data/999")
    rewrite_zip(path, add={name: (bytes(ZEROS_BYTES), zipfile.ZIP_DEFLATED)})


def checkpoint_edited(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    """The checkpoint rewritten with a valid SHA-256, so that the edit is what is judged."""

    def rewrite(run_dir: Path) -> None:
        data = load_checkpoint(run_dir)
        edit(data)
        for key in ("kind", "format"):
            data.pop(key)
        save_checkpoint(run_dir / "checkpoint.pt", data)

    return rewrite


def wide_net(data: dict) -> None:
    data["config"]["net"]["hidden"] = [16384] * 3  # a 4.5 GB network beside the run's 128-wide weights


# replay.npz ---------------------------------------------------------------------------------------------------------


def replay_member(name: str, data: Callable[[np.ndarray], bytes], compression: int = zipfile.ZIP_STORED,
        keep: bool = False) -> Callable[[Path], None]:
    """replay.npz with member `name` replaced (or, with keep, joined) by data(the saved obs array)."""

    def edit(run_dir: Path) -> None:
        path = run_dir / "replay.npz"
        with np.load(path) as saved:
            obs = saved["obs"]
        rewrite_zip(path, drop="" if keep else f"{name}.npy", add={f"{name}.npy": (data(obs), compression)})

    return edit


def npy_header_only(shape: tuple[int, ...]) -> Callable[[np.ndarray], bytes]:
    """An .npy header declaring float32 `shape` (4 TiB) followed by a few bytes."""

    def data(_: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
        return buffer.getvalue() + bytes(64)

    return data


# .hydra/*.yaml ------------------------------------------------------------------------------------------------------


ALIAS_BOMB = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
DEEP_YAML = {"config.yaml": "{a: " * 10_000 + "1" + "}" * 10_000, "overrides.yaml": "[" * 10_000 + "]" * 10_000}


def yaml_file(name: str, text: str) -> Callable[[Path], None]:
    def edit(run_dir: Path) -> None:
        (run_dir / ".hydra" / name).write_text(text)

    return edit


# The generated family: (file kind, bomb) x the commands that read that file, each with words its line must hold.
COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "play": lambda run_dir: ["rlkit.play", f"run={run_dir}", "render=none", "episodes=1"],
    "resume": lambda run_dir: ["rlkit.train", f"resume={run_dir}", "total_steps=600"],
    "report": lambda run_dir: ["rlkit.report", str(run_dir)],
}
BOMBS: dict[tuple[str, str], tuple[Callable[[Path], None], tuple[str, ...], tuple[str, ...]]] = {
    ("checkpoint.pt", "deflate bomb member"): (checkpoint_deflated_zeros, ("play", "resume"), ("zip bomb",)),
    ("checkpoint.pt", "DAG of shared lists, format 2"): (checkpoint_pickle(2, "dag"), ("play", "resume"),
        ("more than 200,000 values",)),
    ("checkpoint.pt", "DAG of shared lists, format 1"): (checkpoint_pickle(1, "dag"), ("play",),
        ("more than 200,000 values",)),
    ("checkpoint.pt", "100,000-deep list, format 2"): (checkpoint_pickle(2, "deep"), ("play", "resume"),
        ("deeper than 100",)),
    ("checkpoint.pt", "100,000-deep list, format 1"): (checkpoint_pickle(1, "deep"), ("play",), ("deeper than 100",)),
    ("checkpoint.pt", "net wider than its weights"): (checkpoint_edited(wide_net), ("play", "resume"),
        ("does not match its stored weights", "[2, 128]", "[2, 16384]")),
    ("replay.npz", "deflate bomb member"): (replay_member("obs", lambda obs: npy(np.zeros_like(obs)),
        zipfile.ZIP_DEFLATED), ("resume",), ("zip bomb", "obs.npy")),
    ("replay.npz", "extra junk member"): (replay_member("junk", npy, keep=True), ("resume",),
        ("junk", "not an array this buffer keeps")),
    ("replay.npz", "npy header declaring 4 TiB"): (replay_member("obs", npy_header_only((2**40,))), ("resume",),
        ("obs.npy", "declares float32(1099511627776,)")),
    ("replay.npz", "wrong dtype"): (replay_member("obs", lambda obs: npy(obs.astype(np.float64))), ("resume",),
        ("obs is float64", "this buffer float32")),
    (".hydra/config.yaml", "YAML alias bomb"): (yaml_file("config.yaml", ALIAS_BOMB), ("report",), ("alias",)),
    (".hydra/config.yaml", "YAML 10,000-deep nesting"): (yaml_file("config.yaml", DEEP_YAML["config.yaml"]),
        ("report",), ("deeper than 100",)),
    (".hydra/overrides.yaml", "YAML alias bomb"): (yaml_file("overrides.yaml", ALIAS_BOMB), ("report", "resume"),
        ("overrides.yaml", "alias")),
    (".hydra/overrides.yaml", "YAML 10,000-deep nesting"): (yaml_file("overrides.yaml", DEEP_YAML["overrides.yaml"]),
        ("report", "resume"), ("overrides.yaml", "deeper than 100")),
}
CASES = [(kind, bomb, command) for (kind, bomb), (_, commands, _) in BOMBS.items() for command in commands]
# One subprocess per (file kind, command) in the fast suite: the first bomb listed for it.
FAST = {case[0::2]: case for case in reversed(CASES)}.values()


def bombed_copy(dqn_run: Path, tmp_path: Path, kind: str, bomb: str) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(dqn_run, run_dir)
    BOMBS[kind, bomb][0](run_dir)
    return run_dir


@pytest.mark.parametrize(("kind", "bomb", "command"), [
    case if case in FAST else pytest.param(*case, marks=pytest.mark.slow) for case in CASES],
    ids=[" / ".join(case) for case in CASES])
def test_bomb_is_one_line_as_a_user_meets_it(dqn_run: Path, tmp_path: Path, kind: str, bomb: str,
        command: str) -> None:
    run_dir = bombed_copy(dqn_run, tmp_path, kind, bomb)
    sentinel = Sentinel(tmp_path / "sentinel")
    outcome = run_hostile(*COMMANDS[command](run_dir), cwd=tmp_path)
    outcome.refused(*BOMBS[kind, bomb][2])
    sentinel.untouched()


# In-process cases come after the subprocesses, which the memory they leave here would push past the RSS bound.


@pytest.mark.parametrize(("kind", "bomb", "command"), CASES, ids=[" / ".join(case) for case in CASES])
def test_bomb_is_one_line_in_process(dqn_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str,
        bomb: str, command: str) -> None:
    run_dir = bombed_copy(dqn_run, tmp_path, kind, bomb)
    module, *args = COMMANDS[command](run_dir)
    code, _, err = run_main(MAINS[module], *args, capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    for words in BOMBS[kind, bomb][2]:
        assert words in lines[0], (words, lines[0])


def test_rlkit_files_pass_the_bounds(dqn_run: Path) -> None:
    """The checks refuse only bombs: the run's own checkpoint and replay load as numpy and torch read them."""
    assert load_checkpoint(dqn_run)["config"]["net"]["hidden"] == [128, 128]
    with np.load(dqn_run / "replay.npz") as saved:
        expected = {name: saved[name] for name in saved.files}
    loaded = load_arrays(dqn_run / "replay.npz", {name: (a.shape, a.dtype) for name, a in expected.items()})
    assert sorted(loaded) == sorted(expected) and len(expected) > 5
    assert all(np.array_equal(loaded[name], expected[name]) for name in expected)


@pytest.mark.parametrize("name", ["config.yaml", "overrides.yaml", "hydra.yaml"])
def test_plain_yaml_reads_the_records_rlkit_writes_as_safe_load_does(dqn_run: Path, name: str) -> None:
    text = (dqn_run / ".hydra" / name).read_text()
    assert load_plain_yaml(text, what=name) == yaml.safe_load(text) != {}


@pytest.mark.parametrize("shared", [[1, 2], {"a": [1]}, (3, "x")])
def test_a_shared_node_hashes_as_its_tree(shared: object) -> None:
    """A few shared nodes (a format-1 run's net and optim nodes) are walked where each is met: the digest is the
    tree's, and only a DAG too large as a tree is refused."""
    tree = copy.deepcopy({"a": shared, "b": [shared, shared]})
    assert content_digest({"a": shared, "b": [shared, shared]}) == content_digest(tree)
    assert content_digest({"a": shared}) != content_digest(tree)
