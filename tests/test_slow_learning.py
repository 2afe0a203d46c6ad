"""Learning targets that take longer than the fast suite allows (run with `pytest -m slow`)."""

import pytest
from conftest import run_cli


@pytest.mark.slow
def test_taxi_defaults_reach_near_optimal_return(tmp_path):
    proc = run_cli("rlkit.train", "env=taxi", "progress=false", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("final evaluation over 1000 greedy episodes"))
    mean = float(line.split("return ")[1].split()[0])
    assert mean >= 7.8, line


@pytest.mark.slow
def test_c51_learns_catch_from_pixels():
    """C51 (agent.distribution.type=c51, 51 atoms on [-1, 1]: Catch's returns) on DQN's Catch settings: greedy
    return >= 0.5 after 4,000 env steps, where random play scores -0.71."""
    mean, seconds = _learn_catch("agent.distribution.type=c51", "agent.distribution.v_min=-1",
        "agent.distribution.v_max=1")
    assert mean >= 0.5, f"greedy return {mean:.2f} after {seconds:.0f} s"


def _learn_catch(*overrides: str) -> tuple[float, float]:
    """tests/envs/test_catch.py's learn_catch (that folder is no package): greedy mean and seconds."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("catch_learning", Path(__file__).parent / "envs" / "test_catch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.learn_catch(*overrides)


@pytest.mark.slow
def test_noisy_dqn_learns_catch_without_epsilon():
    """Noisy nets (Fortunato et al. 2018) explore alone: epsilon 0 throughout, greedy mean >= 0.5 (random -0.71)."""
    mean, seconds = _learn_catch("net.head.noisy=true", "agent.epsilon_start=0", "agent.epsilon_end=0")
    assert mean >= 0.5, f"greedy return {mean:.2f} after {seconds:.0f} s"
