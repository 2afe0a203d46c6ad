import pytest
import torch

from rlkit.errors import RlkitError
from rlkit.runtime import conf_dir, resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_missing_cuda_is_an_error_not_a_fallback(name):
    with pytest.raises(RlkitError, match=f"device={name} but no CUDA device is visible; use device=auto or device=cpu"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu"])
def test_unknown_device_names_the_choices(name):
    with pytest.raises(RlkitError, match="auto, cpu, cuda, cuda:<index>, mps"):
        resolve_device(name)


def test_conf_dir_holds_train_config():
    assert (conf_dir() / "train.yaml").is_file()
