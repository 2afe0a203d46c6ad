import multiprocessing
import os
import pickle
import random
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from rlkit import checkpoint as ckpt
from rlkit.errors import RlkitError


def payload(step: int) -> dict:
    return {"env": "taxi", "agent": "q_learning", "step": step, "config": {"seed": 0},
        "agent_state": {"q": torch.arange(6.0)}}


def test_round_trip(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(7))
    data = ckpt.load_checkpoint(tmp_path)
    assert data["step"] == 7 and data["format"] == ckpt.FORMAT_VERSION
    assert torch.equal(data["agent_state"]["q"], torch.arange(6.0))
    assert path == tmp_path / "checkpoint.pt"


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(1))

    def dying_save(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # the process is interrupted mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(2))
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


def _reaped_pid() -> int:
    """The PID of a process that has exited: it names no live writer."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_temp_files_of_dead_writers_are_removed_and_a_live_writers_kept(tmp_path):
    dead = tmp_path / f".checkpoint.pt.{_reaped_pid()}.abc123.tmp"
    live = tmp_path / f".checkpoint.pt.{os.getppid()}.def456.tmp"  # the parent process is alive while we run
    for stale in (dead, live):
        stale.write_bytes(b"PK half")
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["checkpoint.pt", live.name])


def _write_many(path: str, tag: int, count: int, failures) -> None:
    import numpy as np

    for i in range(count):
        try:
            ckpt.save_arrays(path, {"writer": np.array(tag), "i": np.array(i)})
        except Exception:  # noqa: BLE001  # counted, then asserted zero
            failures.value += 1


def test_two_concurrent_writers_never_make_a_write_fail(tmp_path):
    """Before issue 8, each writer deleted the other's temp file: 52 of 60 writes failed."""
    context = multiprocessing.get_context("fork")
    failures = context.Value("i", 0)
    path = str(tmp_path / "replay.npz")
    writers = [context.Process(target=_write_many, args=(path, tag, 40, failures)) for tag in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0] and failures.value == 0
    assert int(ckpt.load_arrays(path)["i"]) == 39
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replay.npz"]  # both writers' temps renamed or cleaned


def test_checkpoint_and_replay_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(1))
        ckpt.save_arrays(tmp_path / "replay.npz", {"a": torch.zeros(2).numpy()})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "checkpoint.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "replay.npz").stat().st_mode) == 0o644


def test_missing_run_folder_and_missing_file(tmp_path):
    with pytest.raises(RlkitError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "nope")
    with pytest.raises(RlkitError, match="no checkpoint.pt"):
        ckpt.load_checkpoint(tmp_path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RlkitError, match="truncated or corrupt"):
        ckpt.load_checkpoint(path)


def test_foreign_torch_file_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    with pytest.raises(RlkitError, match="not an rlkit checkpoint"):
        ckpt.load_checkpoint(tmp_path)


def test_newer_format_is_refused(tmp_path):
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", {**payload(1), "format": ckpt.FORMAT_VERSION + 1})
    with pytest.raises(RlkitError, match="upgrade rlkit"):
        ckpt.load_checkpoint(tmp_path)


class Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    exploit = Exploit()
    exploit.marker = str(marker)
    Exploit.marker = str(marker)
    torch.save({"kind": ckpt.KIND, "format": 1, "agent_state": exploit}, tmp_path / "checkpoint.pt")
    assert not marker.exists()
    with pytest.raises(RlkitError, match="refused"):
        ckpt.load_checkpoint(tmp_path)
    assert not marker.exists()
    with open(tmp_path / "checkpoint.pt", "rb") as handle:  # sanity: the file really is a live exploit
        assert handle.read(2) == b"PK"
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "checkpoint.pt", weights_only=True)


def _tensors_and_values(data):
    """Every leaf of a loaded checkpoint, tensors compared by value: two loads are identical iff these are equal."""
    if isinstance(data, dict):
        return {k: _tensors_and_values(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_tensors_and_values(v) for v in data]
    if isinstance(data, torch.Tensor):
        return ("tensor", str(data.dtype), tuple(data.shape), data.flatten().tolist())
    return data


def test_a_bit_flipped_checkpoint_fails_clearly_or_loads_identical(tmp_path):
    """Before issue 8, 244 of 300 bit-flipped checkpoints loaded without complaint, some with other weights."""
    state = {"q_net": {"w": torch.randn(8, 4), "b": torch.randn(4)}, "steps": 1234, "epsilon": 0.25, "name": "dqn"}
    original = ckpt.save_checkpoint(tmp_path / "checkpoint.pt", {**payload(5), "agent_state": state}).read_bytes()
    expected = _tensors_and_values(ckpt.load_checkpoint(tmp_path))
    rng = random.Random(0)
    flipped = tmp_path / "flipped" / "checkpoint.pt"
    flipped.parent.mkdir()
    outcomes = {"refused": 0, "identical": 0}
    for _ in range(300):
        data = bytearray(original)
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(8)
        flipped.write_bytes(bytes(data))
        try:
            loaded = ckpt.load_checkpoint(flipped)
        except RlkitError:
            outcomes["refused"] += 1
            continue
        assert _tensors_and_values(loaded) == expected, f"a flip at byte {position} changed the contents silently"
        outcomes["identical"] += 1
    assert outcomes["refused"] > 100  # most flips land in data or the pickle, and the SHA-256 catches them


def test_a_checkpoint_whose_contents_changed_names_the_sha256(tmp_path):
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(3))
    data = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    data["agent_state"]["q"][0] = 99.0  # what a flipped bit in a tensor does, without the zip noticing
    torch.save(data, tmp_path / "checkpoint.pt")
    with pytest.raises(RlkitError, match="corrupt: its contents do not match the SHA-256 stored in it"):
        ckpt.load_checkpoint(tmp_path)


@pytest.mark.parametrize("make", ["text", "symlink_to_text", "fifo", "folder"])
def test_files_that_are_not_checkpoints_are_one_clear_error(tmp_path, make):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n" * 100)
    target = tmp_path / "run" / "checkpoint.pt"
    target.parent.mkdir()
    if make == "text":
        target.write_bytes(text.read_bytes())
    elif make == "symlink_to_text":
        target.symlink_to(text)
    elif make == "fifo":
        os.mkfifo(target)  # reading it would block for ever
    else:
        target.mkdir()
    message = "not a regular file" if make != "text" else "not an rlkit checkpoint"  # a link is never followed
    with pytest.raises(RlkitError, match=message):
        ckpt.load_checkpoint(target.parent)


def test_a_parent_folder_names_the_runs_below_it(tmp_path):
    for name in ("a", "b"):
        ckpt.save_checkpoint(tmp_path / "runs" / name / "checkpoint.pt", payload(1))
    with pytest.raises(RlkitError,
            match=r"holds no checkpoint.pt itself but runs below it: .*runs/a, .*runs/b; pass one of them"):
        ckpt.load_checkpoint(tmp_path / "runs")
