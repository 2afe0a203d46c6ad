"""What every benchmark shares: its command-line conventions, the printed table and the results file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes: --smoke, --results-dir and --json."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    # --smoke lets tests/benchmarks/test_benchmarks.py run every script; --results-dir lets it write to a temporary
    # folder, never over the committed benchmarks/results/.
    parser.add_argument(
        "--smoke", action="store_true",
        help="a tiny budget (well under 30 s on CPU) that checks the script runs; its figures mean nothing",
    )
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where <name>.json goes (default: benchmarks/results)"
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object, last line")
    return parser


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """First column left-aligned, the rest right-aligned, widths fitted to the content; a rule under the header."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False)))
        for row in cells
    ]
    print("\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]]))


def write_results(
    name: str, figures: dict[str, Any], *, results_dir: Path = RESULTS_DIR, echo_json: bool = False
) -> Path:
    """<results_dir>/<name>.json; with echo_json the figures are also the last line of stdout."""
    path = results_dir / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")
    if echo_json:
        print(json.dumps(figures))
    return path
