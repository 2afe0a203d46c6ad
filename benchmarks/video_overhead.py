"""What the evaluation videos and their Q-value overlay cost a default CartPole run (the aim: at most 5%), and
that recording never touches training: the same seed gives the same final return with and without videos."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402


def run_once(*, videos: bool, total_steps: int, extra: list[str]) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlkit import tb
    from rlkit.cli.app import conf_dir
    from rlkit.runs.training import run

    overrides = ["env=cartpole", "seed=0", "progress=false", f"total_steps={total_steps}", *extra]
    if not videos:
        overrides.append("video.every_steps=0")
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run(cfg, Path(run_dir), env_name="cartpole", agent_name="dqn")
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
        events.Reload()
        # Measured inside the run: on a shared machine, wall medians move with other jobs' load more than the videos
        # cost; CPU time and the in-run video seconds do not.
        video_seconds = (
            [e.value for e in events.Scalars(tb.VIDEO_SECONDS)] if tb.VIDEO_SECONDS in events.Tags()["scalars"] else []
        )
    return {
        "wall_seconds": wall, "cpu_seconds": cpu, "train_seconds": result.train_seconds,
        "video_seconds": sum(video_seconds), "videos": len(video_seconds),
        "final_return": result.final_eval.mean if result.final_eval else float("nan"),
    }


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--total-steps", type=int, default=50_000)
    args = parser.parse_args()
    extra: list[str] = []
    if args.smoke:
        args.repeats, args.total_steps = 1, 2000
        extra = ["video.every_steps=1000", "eval_every_steps=0", "final_eval_episodes=2"]

    run_once(  # warm-up
        videos=True, total_steps=1000, extra=["video.every_steps=500", "eval_every_steps=0", "final_eval_episodes=1"]
    )
    # The default videos (conf/tuned/cartpole_dqn.yaml) against video.every_steps=0, same seed and steps, in this
    # process, alternating so machine load falls on both.
    runs: dict[str, list[dict[str, Any]]] = {"videos off": [], "videos on": []}
    for repeat in range(args.repeats):
        order = [False, True] if repeat % 2 == 0 else [True, False]
        for videos in order:
            figures = run_once(videos=videos, total_steps=args.total_steps, extra=extra)
            runs["videos on" if videos else "videos off"].append(figures)
            print(f"repeat {repeat + 1}, videos {'on' if videos else 'off'}: {figures['wall_seconds']:.1f} s wall, "
                  f"{figures['video_seconds']:.2f} s in {figures['videos']} videos, "
                  f"final return {figures['final_return']:.1f}", flush=True)

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    on_wall, off_wall = median("videos on", "wall_seconds"), median("videos off", "wall_seconds")
    on_cpu, off_cpu = median("videos on", "cpu_seconds"), median("videos off", "cpu_seconds")
    figures = {
        "total_steps": args.total_steps, "repeats": args.repeats,
        "median_wall_seconds_off": off_wall, "median_wall_seconds_on": on_wall,
        "wall_overhead": on_wall / off_wall - 1.0,
        "median_cpu_seconds_off": off_cpu, "median_cpu_seconds_on": on_cpu,
        "cpu_overhead": on_cpu / off_cpu - 1.0,
        "median_video_seconds": median("videos on", "video_seconds"),
        "median_train_seconds_on": median("videos on", "train_seconds"),
        "video_seconds_over_train_seconds": median("videos on", "video_seconds") / median("videos on", "train_seconds"),
        "video_seconds_over_wall_seconds": median("videos on", "video_seconds") / on_wall,
        "videos_per_run": runs["videos on"][0]["videos"],
        "same_final_return": all(
            a["final_return"] == b["final_return"] for a, b in zip(runs["videos on"], runs["videos off"], strict=True)
        ),
        "runs": runs,
    }
    print_table(
        ["cartpole, seed 0", "wall s (median)", "CPU s", "training loop s", "video s", "final return"],
        [[mode, f"{median(mode, 'wall_seconds'):.1f}", f"{median(mode, 'cpu_seconds'):.1f}",
          f"{median(mode, 'train_seconds'):.1f}", f"{median(mode, 'video_seconds'):.2f}",
          f"{median(mode, 'final_return'):.1f}"] for mode in runs],
    )
    walls = [r["wall_seconds"] for mode in runs for r in runs[mode]]
    print(f"videos + overlay: {figures['median_video_seconds']:.2f} s per run (time/video_seconds), "
          f"{figures['video_seconds_over_train_seconds']:.1%} of the training loop's time and "
          f"{figures['video_seconds_over_wall_seconds']:.1%} of the run's; CPU time {figures['cpu_overhead']:+.1%}; "
          f"wall medians {figures['wall_overhead']:+.1%}, with runs spread over {min(walls):.0f}-{max(walls):.0f} s")
    write_results("video_overhead", figures, results_dir=args.results_dir, echo_json=args.json)


if __name__ == "__main__":
    main()
