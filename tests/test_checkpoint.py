import pickle
from pathlib import Path

import pytest
import torch

from rlkit import checkpoint as ckpt
from rlkit.errors import RlkitError


def payload(step: int) -> dict:
    return {"env": "taxi", "agent": "q_learning", "step": step, "config": {"seed": 0}, "agent_state": {"q": torch.arange(6.0)}}


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


def test_stale_temp_file_from_a_killed_writer_is_cleaned(tmp_path):
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"PK half")
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", payload(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


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
