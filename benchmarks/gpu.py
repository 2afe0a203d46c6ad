"""One command on a CUDA machine: rlkit's Atari learning speed on the GPU, eager and compiled, against SB3 on the same
GPU (Pong, benchmarks/atari.py's Nature settings). Without a GPU it refuses, except with --smoke, which runs on CPU."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

import torch  # noqa: E402

from benchmarks.atari import SMOKE, copies_overrides, pong_config, rlkit_run, sb3_run, time_updates, update_ceiling  # noqa: E402
from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402
from rlkit import tb  # noqa: E402
from rlkit.config.registry import build_agent  # noqa: E402
from rlkit.envs.builders import make_train_env  # noqa: E402
from rlkit.loop import TrainPlan, train  # noqa: E402

ASYNC_COPIES = 8
GOAL_STEPS_PER_SEC, GOAL_OVER_SB3 = 1000, 2.0  # the project's goal for one env on a GPU


def refuse(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def pick_device(name: str | None, *, smoke: bool) -> torch.device:
    """The device to measure on; a GPU that is not there is one line and exit 2 (a smoke run takes the CPU instead)."""
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name is None:
        if visible == 0 and smoke:
            print("gpu.py --smoke: no CUDA device is visible, so the smoke run uses the CPU")
            return torch.device("cpu")
        name = "cuda"
    try:
        device: torch.device | None = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cuda", "cpu"):
        refuse(f"--device {name} is not a device this benchmark measures; use cuda, cuda:<index> or cpu")
    if device.type == "cuda" and visible <= (device.index or 0):
        seen = f"only {visible} CUDA device(s) are visible" if visible else "no CUDA device is visible"
        refuse(
            f"{seen}, so there is nothing to measure on --device {name}; "
            "on a CPU machine, check the script with --device cpu --smoke"
        )
    return device


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict[str, Any]:
    facts = {
        "device": str(device), "torch": torch.__version__, "cpu": cpu_name(), "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        facts.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return facts


def interleaved_update_ms(
    device: torch.device, modes: tuple[str, ...], sizes: dict[str, int], rounds: int
) -> dict[str, float]:
    """Median ms per update of each mode, timed in alternating rounds of 10 on one filled replay: a same-run ratio."""
    cfg = pong_config(learning_starts=sizes["learning_starts"], buffer=sizes["buffer"])
    env = make_train_env(cfg["env"])
    agents = {
        mode: build_agent({**cfg, "agent": {**cfg["agent"], "compile": mode == "compiled"}},
                          observation_space=env.observation_space, action_space=env.action_space, device=device, seed=0)
        for mode in modes
    }
    first = agents[modes[0]]
    plan = TrainPlan(total_steps=sizes["learning_starts"] - 1, seed=0, progress=False)
    train(env=env, agent=first, plan=plan, logger=tb.Logger(None))
    env.close()
    for agent in agents.values():
        agent.replay = first.replay
        time_updates(agent, device, updates=3)  # warm-up: compiling happens here
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode, agent in agents.items():
            times[mode].append(time_updates(agent, device))
    return {mode: statistics.median(ms) for mode, ms in times.items()}


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--device", default=None, help="cuda (default), cuda:<index>, or cpu")
    parser.add_argument("--measure-steps", type=int, default=10_000, help="env steps timed per run, after the warm-up")
    args = parser.parse_args()
    device = pick_device(args.device, smoke=args.smoke)
    sizes = dict(learning_starts=1000, buffer=10_000, measure_steps=args.measure_steps)
    if args.smoke:
        sizes = SMOKE
        torch.set_num_threads(1)  # safe on busy cores
    # --smoke skips the compiled runs: compiling the update takes 25-50 s on a 2-core CPU.
    modes = ("eager",) if args.smoke else ("eager", "compiled")
    # Budgeted for 3-5 minutes on a recent GPU, 8 at most (an estimate, not yet timed on one).

    started = time.perf_counter()
    runs: dict[str, dict[str, Any]] = {}

    def measure(name: str, run: Any, *overrides: str) -> None:
        cfg = pong_config(*overrides, learning_starts=sizes["learning_starts"], buffer=sizes["buffer"])
        runs[name] = run(cfg, measure_steps=sizes["measure_steps"], seed=0, device=device)
        print(f"{time.perf_counter() - started:6.0f} s  {name}: {runs[name]['steps_per_sec']:.0f} env steps/s",
              flush=True)

    # agent.compile=true: torch.compile of the whole update with CUDA graphs, done in rlkit_run's warm-up.
    for mode in modes:
        measure(f"rlkit_{mode}", rlkit_run, f"agent.compile={mode == 'compiled'}")
    measure("sb3", sb3_run)
    for mode in modes:
        measure(
            f"rlkit_{mode}_async{ASYNC_COPIES}", rlkit_run, f"agent.compile={mode == 'compiled'}",
            *copies_overrides(ASYNC_COPIES),
        )

    update_ms = interleaved_update_ms(device, modes, sizes, rounds=1 if args.smoke else 5)
    print(f"{time.perf_counter() - started:6.0f} s  update alone: "
          + ", ".join(f"{m} {ms:.2f} ms" for m, ms in update_ms.items()), flush=True)
    for name, run in runs.items():
        if name.startswith("rlkit"):
            run["over_sb3"] = run["steps_per_sec"] / runs["sb3"]["steps_per_sec"]
    figures: dict[str, Any] = {
        **machine(device), "smoke": args.smoke, **sizes, "runs": runs, "wall_seconds": time.perf_counter() - started,
        "update_ms_interleaved": update_ms,
        "update_ceiling_steps_per_sec": {m: update_ceiling(ms) for m, ms in update_ms.items()},
    }
    best = max(runs[f"rlkit_{mode}"]["steps_per_sec"] for mode in modes)
    figures["rlkit_best_over_sb3"] = best / runs["sb3"]["steps_per_sec"]

    def per_mode(values: dict[str, float], fmt: str) -> list[str]:
        """The eager and the compiled figure ('-' where not measured)."""
        return [format(values[mode], fmt) if mode in values else "-" for mode in ("eager", "compiled")]

    def of_runs(key: str, copies: str = "") -> dict[str, float]:
        found = {mode: runs.get(f"rlkit_{mode}{copies}", {}).get(key) for mode in ("eager", "compiled")}
        return {mode: value for mode, value in found.items() if value is not None}

    where = figures.get("gpu", f"{figures['cpu']}, {figures['torch_threads']} torch thread(s)")
    print(f"\nrlkit DQN on Pong, {where} ({device}, torch {figures['torch']}); "
          "Nature CNN, batch 32, one update per 4 env steps")
    print_table(("", "eager", "compiled"), [
        ("update alone (ms, alternating rounds)", *per_mode(update_ms, ".2f")),
        ("update ceiling (env steps/s)", *per_mode(figures["update_ceiling_steps_per_sec"], ".0f")),
        ("learning, 1 env (env steps/s)", *per_mode(of_runs("steps_per_sec"), ".0f")),
        (f"learning, {ASYNC_COPIES} async envs (env steps/s)",
         *per_mode(of_runs("steps_per_sec", f"_async{ASYNC_COPIES}"), ".0f")),
        ("SB3 DQN learning, 1 env (env steps/s)", f"{runs['sb3']['steps_per_sec']:.0f}", "-"),
        ("rlkit / SB3, 1 env", *per_mode(of_runs("over_sb3"), ".2f")),
        ("warm-up incl. compiling (s)", *per_mode(of_runs("warmup_s"), ".1f")),
        ("peak GPU memory, 1 env (MB)", *per_mode(of_runs("peak_gpu_mb"), ".0f")),
    ])
    if device.type == "cuda":
        print(f"goal: >= {GOAL_STEPS_PER_SEC} env steps/s with 1 env: "
              f"{'met' if best >= GOAL_STEPS_PER_SEC else 'not met'}; "
              f">= {GOAL_OVER_SB3:.0f}x SB3: {'met' if figures['rlkit_best_over_sb3'] >= GOAL_OVER_SB3 else 'not met'}")
    if args.smoke:
        print("(--smoke: tiny budget, compiled runs skipped; the figures check the script, they measure nothing)")
    write_results("gpu", figures, echo_json=args.json, results_dir=args.results_dir)


if __name__ == "__main__":
    main()
