"""CartPole-v1, same run, same machine: rlkit's default `env=cartpole` against Stable-Baselines3 DQN with RL-Zoo's
tuned hyperparameters, for training time (evaluation excluded), first greedy mean >= 475 and final greedy mean."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import multiprocessing
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402

SOLVED = 475.0
EVAL_EPISODES = 10
FINAL_EPISODES = 20
# RL-Zoo's tuned CartPole-v1 DQN (rl-baselines3-zoo hyperparams/dqn.yml).
SB3_ZOO = dict(
    learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
    exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
)


def first_solved_step(evaluations: list[tuple[int, float]]) -> int | None:
    return next((step for step, mean in evaluations if mean >= SOLVED), None)


def run_rlkit(seed: int, steps: int, eval_every: int, overrides: list[str]) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir

    from rlkit.cli.app import conf_dir
    from rlkit.runs.training import run

    fixed = [f"seed={seed}", f"total_steps={steps}", f"eval_every_steps={eval_every}", f"eval_episodes={EVAL_EPISODES}",
             f"final_eval_episodes={FINAL_EPISODES}", "progress=false"]
    with initialize_config_dir(str(conf_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["env=cartpole", *fixed, *overrides])
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
        agent_name = next((o.split("=", 1)[1] for o in overrides if o.startswith("agent=")), "dqn")
        result = run(cfg, Path(run_dir), env_name="cartpole", agent_name=agent_name)
    periodic = [(evaluation.step, evaluation.result.mean) for evaluation in result.evaluations[:-1]]  # the last: final
    return {"train_seconds": result.train_seconds, "steps": result.steps,
            "first_solved_step": first_solved_step(periodic), "final_mean": result.evaluations[-1].result.mean,
            "evaluations": periodic}


def run_sb3(seed: int, steps: int, eval_every: int, threads: int) -> dict[str, Any]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN  # the optional bench extra, imported only here
    from stable_baselines3.common.callbacks import BaseCallback

    from rlkit.loop import evaluate

    if threads > 0:
        torch.set_num_threads(threads)

    class Greedy:  # a Policy (rlkit.agents.base) over SB3's network: evaluate only calls act
        def act(self, obs: Any) -> int:
            return int(model.predict(obs, deterministic=True)[0])

    class PeriodicEval(BaseCallback):
        """The same greedy evaluation, cadence and seeds as rlkit's loop; its time is taken out of training."""

        def __init__(self) -> None:
            super().__init__()
            self.eval_env = gym.make("CartPole-v1")
            self.next_eval, self.seconds = eval_every, 0.0
            self.evaluations: list[tuple[int, float]] = []

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                started = time.perf_counter()
                result = evaluate(
                    self.eval_env, Greedy(), episodes=EVAL_EPISODES, seed=seed + 10_000 + self.num_timesteps
                )
                self.evaluations.append((self.num_timesteps, result.mean))
                self.next_eval += eval_every
                self.seconds += time.perf_counter() - started
            return True

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, device="cpu", verbose=0, **SB3_ZOO)
    callback = PeriodicEval()
    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    train_seconds = time.perf_counter() - started - callback.seconds
    final = evaluate(callback.eval_env, Greedy(), episodes=FINAL_EPISODES, seed=seed + 1_000_000)
    return {"train_seconds": train_seconds, "steps": steps,
            "first_solved_step": first_solved_step(callback.evaluations), "final_mean": final.mean,
            "evaluations": callback.evaluations}


def run_one(job: tuple[str, int, argparse.Namespace]) -> dict[str, Any]:
    library, seed, args = job
    if library == "rlkit":
        return run_rlkit(seed, args.steps, args.eval_every, args.overrides)
    return run_sb3(seed, args.steps, args.eval_every, args.sb3_threads)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["train_seconds"] for r in runs]
    return {
        "median_train_seconds": statistics.median(seconds),
        "median_steps_per_sec": statistics.median(r["steps"] / r["train_seconds"] for r in runs),
        "first_solved_step": [r["first_solved_step"] for r in runs],
        "final_mean": [r["final_mean"] for r in runs],
        "seeds_solved": sum(r["final_mean"] >= SOLVED for r in runs),
        "train_seconds": seconds,
    }


def print_summary(summary: dict[str, dict[str, Any]], seeds: list[int]) -> float | None:
    """The table; returns rlkit's median training time over SB3-Zoo's when both ran."""
    print(f"\nCartPole-v1, seeds {seeds}")
    print_table(
        ("library", "median train s", "steps/s", "solved", f"first step >= {SOLVED:.0f}",
         f"final {FINAL_EPISODES}-episode mean"),
        [
            (library, f"{s['median_train_seconds']:.1f}", f"{s['median_steps_per_sec']:,.0f}",
             f"{s['seeds_solved']}/{len(seeds)}",
             " ".join("-" if f is None else f"{f / 1000:g}k" for f in s["first_solved_step"]),
             " ".join(f"{m:.0f}" for m in s["final_mean"]))
            for library, s in summary.items()
        ],
    )
    if "rlkit" not in summary or "sb3_zoo" not in summary:
        return None
    ratio = summary["rlkit"]["median_train_seconds"] / summary["sb3_zoo"]["median_train_seconds"]
    print(f"rlkit median training time = {ratio:.2f} x SB3-Zoo's (same run)")
    return ratio


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds, counted from --first-seed")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=2500, help="env steps between 10-episode greedy evaluations")
    parser.add_argument("--only", choices=("rlkit", "sb3"), default=None)
    parser.add_argument("--sb3-threads", type=int, default=1,
                        help="torch threads for SB3, as rlkit's torch_threads=1; 0 keeps torch's default")
    parser.add_argument("overrides", nargs="*", help="rlkit config overrides, e.g. agent.n_step=3")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.steps, args.eval_every = 1, 1500, 500

    libraries = [lib for lib in ("rlkit", "sb3") if args.only in (None, lib)]
    if "sb3" in libraries and importlib.util.find_spec("stable_baselines3") is None:
        raise SystemExit('error: Stable-Baselines3 is not installed; pip install -e ".[bench]", or pass --only rlkit')
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    # Libraries alternate, each (library, seed) in a fresh process, so load from other work falls on both alike.
    jobs = [(lib, seed, args) for seed in seeds for lib in libraries]
    runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libraries}
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:  # a fresh process per run
        for (lib, seed, _), result in zip(jobs, pool.imap(run_one, jobs), strict=True):
            runs[lib].append(result)
            print(f"{lib} seed {seed}: {result['train_seconds']:.1f} s, "
                  f"first >= {SOLVED:.0f} at {result['first_solved_step']}, final {result['final_mean']:.1f}",
                  file=sys.stderr, flush=True)
    summary = {("sb3_zoo" if lib == "sb3" else lib): summarize(r) for lib, r in runs.items()}
    ratio = print_summary(summary, seeds)
    figures = {
        "env": "CartPole-v1", "steps": args.steps, "seeds": seeds, "eval_every_steps": args.eval_every,
        "rlkit_overrides": args.overrides, "sb3_threads": args.sb3_threads, "machine": platform.platform(),
        "cpu_count": multiprocessing.cpu_count(), "rlkit_over_sb3_train_time": ratio, "smoke": args.smoke,
        "summary": summary, "runs": runs,
    }
    write_results("cartpole", figures, results_dir=args.results_dir, echo_json=args.json)


if __name__ == "__main__":
    main()
