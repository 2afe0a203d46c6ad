"""The background notes' optimizers on the bundled digits with the same net, epochs, batch size and seeds: test
accuracy and wall time, each at its learning rate in conf/optim/<name>.yaml (shared with DQN)."""

from __future__ import annotations

import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

import torch  # noqa: E402

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402
from rlkit import tb  # noqa: E402
from rlkit.digits.training import run  # noqa: E402
from rlkit.supervised import compose_config  # noqa: E402

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adadelta")  # the background notes' order


def measure(optim: str, *, net: str, epochs: int, batch_size: str, seed: int) -> dict[str, float]:
    """One supervised run in a throw-away folder; its own printout is swallowed to keep the table readable."""
    cfg, choices = compose_config(
        [f"optim={optim}", f"net={net}", f"epochs={epochs}", f"batch_size={batch_size}", f"seed={seed}",
         "progress=false"]
    )
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        result = run(cfg, Path(run_dir), choices=choices)
        wall_seconds = time.perf_counter() - started
    return {
        "lr": float(cfg.optim.lr),
        "test_accuracy": result.final[tb.SUPERVISED_TEST_ACCURACY],
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
    parser = benchmark_parser(__doc__)
    parser.add_argument("--net", default="mlp", choices=("mlp", "cnn", "perceptron"))  # mlp: 512x512 on digits
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", default="16", help="images per update, or 'full' for batch gradient descent")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.net, args.epochs, args.seeds, args.optimizers = "perceptron", 1, [0], ["sgd", "adam"]

    budget = {
        "data": "digits", "net": args.net, "epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds
    }
    print(f"digits, same budget for every optimizer: {budget}")
    # Imports and caches, not timed.
    measure(args.optimizers[0], net=args.net, epochs=1, batch_size=args.batch_size, seed=0)
    results: dict[str, Any] = {}
    for optim in args.optimizers:
        runs = [
            measure(optim, net=args.net, epochs=args.epochs, batch_size=args.batch_size, seed=s) for s in args.seeds
        ]
        results[optim] = summarise(runs)
        print(f"{optim}: test accuracy {results[optim]['test_accuracy_mean']:.4f}", file=sys.stderr, flush=True)
    print_table(
        ("optimizer", "lr", "test acc", "min", "wall s", "train s"),
        [
            (optim, f"{row['lr']:g}", f"{row['test_accuracy_mean']:.4f}", f"{row['test_accuracy_min']:.4f}",
             f"{row['wall_seconds_mean']:.1f}", f"{row['train_seconds_mean']:.1f}")
            for optim, row in results.items()
        ],
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
    write_results("optimizers", report, results_dir=args.results_dir, echo_json=args.json)

if __name__ == "__main__":
    main()
