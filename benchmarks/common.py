"""What every benchmark does at the end: print a table, write its figures, optionally echo them as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """First column left-aligned, the rest right-aligned, widths fitted to the content."""
    cells = [[str(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def write_results(name: str, figures: dict[str, Any], *, echo_json: bool, results_dir: Path | None = None) -> Path:
    """<results_dir or benchmarks/results>/<name>.json; with echo_json the figures are also the last line of stdout."""
    path = (results_dir or RESULTS_DIR) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")
    if echo_json:
        print(json.dumps(figures))
    return path
