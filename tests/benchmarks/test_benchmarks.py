"""Every script under benchmarks/ on its --smoke budget, so a benchmark cannot break unnoticed (issue 11)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELPERS = {"common.py"}  # imported by the scripts, not run
# Run by their own tests with the same command and more checks: gpu.py --device cpu --smoke (test_benchmark_gpu.py).
OWN_TESTS = {"gpu.py"}
SCRIPTS = sorted(
    p for p in (REPO / "benchmarks").glob("*.py") if p.name not in HELPERS | OWN_TESTS and not p.name.startswith("_"))
TABLE_RULE = re.compile(r"^-+(  -+)+$", re.M)  # benchmarks.common.print_table's rule under the header


def test_every_benchmark_runs_its_smoke_budget_and_writes_results(tmp_path: Path) -> None:
    """All scripts at once (each spends most of its time importing torch), run as a user would: no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    committed = {p: p.stat().st_mtime_ns for p in (REPO / "benchmarks" / "results").glob("*.json")}
    started = time.monotonic()
    procs = {
        script: subprocess.Popen(
            [sys.executable, str(script), "--smoke", "--results-dir", str(tmp_path / script.stem)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for script in SCRIPTS
    }
    failures = []
    for script, proc in procs.items():
        # 20-30 s idle on 2 cores for all of them: room for a busy machine.
        stdout, stderr = proc.communicate(timeout=600)
        results = tmp_path / script.stem / f"{script.stem}.json"
        if proc.returncode != 0:
            failures.append(f"{script.name}: exit {proc.returncode}\n{stderr[-3000:]}")
        elif not TABLE_RULE.search(stdout):
            failures.append(f"{script.name}: printed no table\n{stdout[-2000:]}")
        elif not results.is_file() or not json.loads(results.read_text()):
            failures.append(f"{script.name}: wrote no results to {results}")
    print(f"{len(SCRIPTS)} benchmark smoke runs in {time.monotonic() - started:.0f} s")
    assert {p.name for p in SCRIPTS} >= {"atari.py", "cartpole.py", "faults.py", "optimizers.py", "taxi.py"}
    assert not failures, "\n\n".join(failures)
    assert {p: p.stat().st_mtime_ns for p in committed} == committed  # --results-dir kept the committed figures intact
