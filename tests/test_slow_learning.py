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
    from envs.test_catch import learn_catch

    mean, seconds = learn_catch("agent.distribution.type=c51", "agent.distribution.v_min=-1",
        "agent.distribution.v_max=1")
    assert mean >= 0.5, f"greedy return {mean:.2f} after {seconds:.0f} s"
