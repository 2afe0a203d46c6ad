"""Device selection never falls back silently; thread pinning refuses nonsense; conf/ is found."""

from __future__ import annotations

import pytest
import torch

from rlkit.cli.app import conf_dir
from rlkit.errors import RlkitError
from rlkit.runtime import resolve_device, set_torch_threads


@pytest.mark.parametrize("cuda,mps,expected", [
    (True, True, torch.device("cuda")),
    (True, False, torch.device("cuda")),
    (False, True, torch.device("mps")),
    (False, False, torch.device("cpu")),
])
def test_auto_picks_cuda_then_mps_then_cpu(cuda: bool, mps: bool, expected: torch.device, monkeypatch) -> None:
    """Each machine this can run on, as torch would report it: the order is the test, not this machine's answer."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == expected
    assert resolve_device(" Auto ") == expected  # as typed, case and spaces aside
    assert resolve_device("CPU") == torch.device("cpu")  # asked for by name: whatever else is there


def test_cuda_index_must_be_one_that_is_visible(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert (resolve_device("cuda"), resolve_device("cuda:1")) == (torch.device("cuda", 0), torch.device("cuda", 1))
    with pytest.raises(RlkitError,
            match=r"^device=cuda:2 but only 2 CUDA device\(s\) are visible \(cuda:0\.\.cuda:1\)$"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_missing_cuda_is_an_error_that_names_the_fix(name: str, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RlkitError,
            match=f"^device={name} but no CUDA device is visible; use device=auto or device=cpu$"):
        resolve_device(name)


def test_missing_mps_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RlkitError,
            match="^device=mps but no Apple MPS device is available; use device=auto or device=cpu$"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu"])
def test_unknown_device_lists_the_choices(name: str) -> None:
    with pytest.raises(RlkitError,
            match=f"^device={name} is not a device; choose one of: auto, cpu, cuda, cuda:<index>, mps$"):
        resolve_device(name)


def test_torch_threads() -> None:
    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
        set_torch_threads(None)
        assert torch.get_num_threads() == 1  # None leaves it alone
        with pytest.raises(RlkitError, match=r"^torch_threads must be >= 1 or null \(torch's default\), got 0$"):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)


def test_conf_dir_holds_train_config() -> None:
    assert (conf_dir() / "train.yaml").is_file()
