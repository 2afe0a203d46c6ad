"""benchmarks/gpu.py as a user meets it: one line and exit 2 without a GPU; --device cpu --smoke runs every part."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu.py"


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """As a user runs it from a checkout: no PYTHONPATH, any working folder."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO.parent, capture_output=True, text=True,
        timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")
def test_without_a_gpu_it_refuses_in_one_line() -> None:
    proc = run_script()
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "error: no CUDA device is visible, so there is nothing to measure on --device cuda; "
        "on a CPU machine, check the script with --device cpu --smoke"
    )


def test_an_unknown_device_is_one_line_naming_the_choices() -> None:
    proc = run_script("--device", "tpu")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --device tpu is not a device this benchmark measures; use cuda, cuda:<index> or cpu")


def test_cpu_smoke_runs_rlkit_sb3_and_eight_async_envs(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    proc = run_script("--device", "cpu", "--smoke", "--results-dir", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report == json.loads((tmp_path / "gpu.json").read_text())
    assert report["device"] == "cpu" and report["smoke"] is True
    assert sorted(report["runs"]) == ["rlkit_eager", "rlkit_eager_async8",
        "sb3"]  # compiling is left out of the smoke run
    assert all(run["steps_per_sec"] > 0 for run in report["runs"].values())
    assert report["runs"]["rlkit_eager"]["update_ms"] > 0 and set(report["update_ms_interleaved"]) == {"eager"}
    assert "learning, 8 async envs (env steps/s)" in proc.stdout and "SB3 DQN learning, 1 env" in proc.stdout
