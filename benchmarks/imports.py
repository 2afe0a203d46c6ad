"""Lines of rlkit a run loads, against the lines rlkit holds: a run should import only the parts its config names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "rlkit"
RUNS = {  # name -> train overrides
    "cartpole dqn": ["env=cartpole", "video.every_steps=0"],
    "taxi q_learning": ["env=taxi"],
}
# Modules a CartPole DQN run without videos never uses: importing one of them is a leak.
UNUSED_BY_CARTPOLE = (
    "rlkit.envs.atari", "rlkit.digits", "rlkit.replay.frames", "rlkit.replay.prioritized", "rlkit.agents.tabular",
    "rlkit.watch", "rlkit.runs.resume", "rlkit.runs.saved", "rlkit.analysis.report", "rlkit.analysis.stats",
)

# Each run is a real `python -m rlkit.train` (a short budget: what is imported does not depend on it); at exit it
# lists the rlkit modules in sys.modules.
PROBE = """
import atexit, json, runpy, sys
def dump():
    with open({out!r}, "w") as f:
        json.dump(sorted(
            m.__file__ for n, m in list(sys.modules.items()) if n.startswith("rlkit") and getattr(m, "__file__", None)
        ), f)
atexit.register(dump)
sys.argv = ["rlkit.train", *{args!r}]
runpy.run_module("rlkit.train", run_name="__main__")
"""


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def loaded_files(overrides: list[str], steps: int, folder: Path) -> list[Path]:
    out = folder / "modules.json"
    args = [*overrides, f"total_steps={steps}", "progress=false", f"hydra.run.dir={folder / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(out=str(out), args=args)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(overrides)} failed:\n{proc.stderr[-2000:]}")
    return [Path(p) for p in json.loads(out.read_text())]


def main() -> None:
    args = benchmark_parser(__doc__).parse_args()
    steps = 300 if args.smoke else 2000
    package_files = sorted(PACKAGE.rglob("*.py"))
    figures = {"rlkit_lines": sum(map(lines, package_files)), "rlkit_modules": len(package_files), "runs": {}}
    rows = [("rlkit/ (all of it)", len(package_files), figures["rlkit_lines"], "")]
    for name, overrides in RUNS.items():
        with tempfile.TemporaryDirectory() as folder:
            files = loaded_files(overrides, steps, Path(folder))
        modules = [".".join(f.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for f in files]
        leaks = [
            m for m in modules
            if name.startswith("cartpole") and any(m == u or m.startswith(u + ".") for u in UNUSED_BY_CARTPOLE)
        ]
        figures["runs"][name] = {"modules": len(files), "lines": sum(map(lines, files)), "unused_modules_loaded": leaks}
        rows.append((
            f"python -m rlkit.train {' '.join(overrides)}", len(files), figures["runs"][name]["lines"],
            ", ".join(leaks) or "-",
        ))
    print_table(("what", "modules", "lines", "unused modules loaded"), rows)
    write_results("imports", figures, results_dir=args.results_dir, echo_json=args.json)


if __name__ == "__main__":
    main()
