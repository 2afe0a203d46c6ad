"""benchmarks/optimizers.py on a one-epoch budget: a row per optimizer and the JSON results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import optimizers


def test_optimizer_benchmark_prints_a_row_each_and_writes_json(tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "optimizers.json"
    optimizers.main(["--net", "perceptron", "--epochs", "1", "--optimizers", "sgd", "adadelta", "--json",
        "--results-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if line.startswith(("sgd ", "adadelta "))] == ["sgd", "adadelta"]
    report = json.loads(lines[-1])
    assert report == json.loads(out.read_text())
    assert report["budget"] == {"data": "digits", "net": "perceptron", "epochs": 1, "batch_size": "16", "seeds": [0]}
    assert sorted(report["results"]) == ["adadelta", "sgd"]
    assert report["results"]["adadelta"]["lr"] == 1.0
    assert 0.0 < report["results"]["sgd"]["test_accuracy_mean"] <= 1.0
