"""The background notes' optimizers on the bundled digits with the same budget: test accuracy and wall time.

    python -m benchmarks.optimizers                      # 30 epochs of the default 512x512 MLP, seed 0
    python -m benchmarks.optimizers --net cnn --seeds 0 1 2 --json

Every optimizer gets the same net, epochs, batch size and seeds; its learning rate is the one in
conf/optim/<name>.yaml (shared with DQN). Writes benchmarks/results/optimizers.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from rlkit import tb
from rlkit.supervised import compose_config, run

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta")  # the background notes' order
RESULTS = Path(__file__).resolve().parent / "results" / "optimizers.json"


def measure(optim: str, *, net: str, epochs: int, batch_size: str, seed: int) -> dict[str, float]:
    """One supervised run in a throw-away folder; its own printout is swallowed to keep the table readable."""
    cfg, choices = compose_config(
        [f"optim={optim}", f"net={net}", f"epochs={epochs}", f"batch_size={batch_size}", f"seed={seed}", "progress=false"]
    )
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        result = run(cfg, Path(run_dir), choices=choices)
        wall_seconds = time.perf_counter() - started
    return {
        "lr": float(cfg.optim.lr),
        "test_accuracy": result.final[tb.TEST_ACCURACY],
        "train_seconds": result.train_seconds,
        "wall_seconds": wall_seconds,
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "lr": runs[0]["lr"],
        "test_accuracy_mean": statistics.fmean(accuracies),
        "test_accuracy_min": min(accuracies),
        "test_accuracy_per_seed": accuracies,
        "wall_seconds_mean": statistics.fmean(r["wall_seconds"] for r in runs),
        "train_seconds_mean": statistics.fmean(r["train_seconds"] for r in runs),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="mlp", choices=("mlp", "cnn", "perceptron"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", default="16", help="images per update, or 'full' for batch gradient descent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON object, last line")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    budget = {"data": "digits", "net": args.net, "epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds}
    print(f"digits, same budget for every optimizer: {budget}")
    measure(args.optimizers[0], net=args.net, epochs=1, batch_size=args.batch_size, seed=0)  # imports, caches: not timed
    print(f"{'optimizer':<10} {'lr':>7} {'test acc':>9} {'min':>7} {'wall s':>7} {'train s':>8}")
    results: dict[str, Any] = {}
    for optim in args.optimizers:
        runs = [measure(optim, net=args.net, epochs=args.epochs, batch_size=args.batch_size, seed=s) for s in args.seeds]
        row = results[optim] = summarise(runs)
        print(
            f"{optim:<10} {row['lr']:>7g} {row['test_accuracy_mean']:>9.4f} {row['test_accuracy_min']:>7.4f} "
            f"{row['wall_seconds_mean']:>7.1f} {row['train_seconds_mean']:>8.1f}",
            flush=True,
        )
    report = {
        "benchmark": "optimizers",
        "budget": budget,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),  # as the runs set it (conf/data/digits.yaml cpu_threads)
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
