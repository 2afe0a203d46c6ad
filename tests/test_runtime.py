"""Device selection never falls back silently; thread pinning refuses nonsense; conf/ is found."""

from __future__ import annotations

import pytest
import torch

from rlkit.cli import conf_dir
from rlkit.errors import RlkitError
from rlkit.runtime import resolve_device, set_torch_threads

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="an MPS device is visible")


def test_auto_picks_cuda_then_mps_then_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("CPU") == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_missing_cuda_is_an_error_that_names_the_fix(name: str) -> None:
    with pytest.raises(RlkitError, match=f"device={name} but no CUDA device is visible; use device=auto or device=cpu"):
        resolve_device(name)


@no_mps
def test_missing_mps_is_an_error() -> None:
    with pytest.raises(RlkitError, match="no Apple MPS device"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu"])
def test_unknown_device_lists_the_choices(name: str) -> None:
    with pytest.raises(RlkitError, match="auto, cpu, cuda, cuda:<index>, mps"):
        resolve_device(name)


def test_torch_threads() -> None:
    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
        set_torch_threads(None)
        assert torch.get_num_threads() == 1  # None leaves it alone
        with pytest.raises(RlkitError, match="torch_threads"):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)


def test_conf_dir_holds_train_config() -> None:
    assert (conf_dir() / "train.yaml").is_file()
