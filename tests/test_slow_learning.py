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
