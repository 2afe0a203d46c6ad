"""Atari replay memory and learning throughput on Pong, rlkit against Stable-Baselines3, in one run on one machine:
replay bytes per 1M transitions, env steps/s while learning (Nature settings), rlkit at 1, 4 and 8 env copies."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402
from rlkit import tb  # noqa: E402
from rlkit.cli.app import conf_dir  # noqa: E402
from rlkit.config.registry import build_agent  # noqa: E402
from rlkit.envs.builders import make_train_env, single_spaces  # noqa: E402
from rlkit.loop import TrainPlan, train  # noqa: E402
from rlkit.replay.buffer import ReplayBuffer  # noqa: E402
from rlkit.replay.frames import FrameReplayBuffer  # noqa: E402
from rlkit.replay.rings import StepRings  # noqa: E402

OBS_SHAPE = (4, 84, 84)
MILLION = 1_000_000
LEARNING_STARTS = 1000
BUFFER = 10_000
HPARAMS = dict(
    lr=1e-4, gamma=0.99, batch_size=32, train_every=4, target_every=1000, max_grad_norm=10.0, eps_end=0.01,
    eps_steps=MILLION,
)
SMOKE = dict(learning_starts=64, buffer=1000, measure_steps=64)  # --smoke: every code path, seconds on CPU


def bytes_per_row(buffer: object, capacity: int) -> float:
    return buffer.nbytes / capacity  # type: ignore[attr-defined]


def sb3_replay_bytes_per_row(*, optimize_memory_usage: bool, capacity: int = 1000) -> float:
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer

    buffer = SB3ReplayBuffer(
        capacity, gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8), gym.spaces.Discrete(6), device="cpu",
        optimize_memory_usage=optimize_memory_usage, handle_timeout_termination=not optimize_memory_usage,
    )
    return sum(a.nbytes for a in vars(buffer).values() if isinstance(a, np.ndarray)) / capacity


def pong_config(*overrides: str, learning_starts: int = LEARNING_STARTS, buffer: int = BUFFER) -> dict[str, Any]:
    """The Pong config both libraries are timed with; `overrides` add rlkit settings (env.num_envs, agent.compile)."""
    h = HPARAMS
    fixed = [
        "env=pong", "preset=adam", f"agent.buffer_size={buffer}", f"agent.learning_starts_steps={learning_starts}",
        f"agent.batch_size={h['batch_size']}", f"agent.train_every_steps={h['train_every']}", f"optim.lr={h['lr']}",
        f"agent.target_update_every_steps={h['target_every']}", "agent.loss=huber",
        f"agent.max_grad_norm={h['max_grad_norm']}", "agent.double=false", "agent.epsilon_start=1.0",
        f"agent.epsilon_end={h['eps_end']}", f"agent.epsilon_decay_steps={h['eps_steps']}",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="train", overrides=[*fixed, *overrides]), resolve=True)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a clock read after it counts it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_updates(agent: Any, device: torch.device, updates: int = 10) -> float:
    """ms per update alone, the batch draw included: what learning costs before any env step."""
    synchronize(device)
    started = time.perf_counter()
    for _ in range(updates):
        agent._learn()  # private: for the ceiling only
    synchronize(device)
    return (time.perf_counter() - started) / updates * 1e3


def rlkit_run(cfg: dict[str, Any], *, measure_steps: int, seed: int, device: torch.device) -> dict[str, Any]:
    """Fill replay, learn 3 times (compiling, if asked, and warming the allocator), then time `measure_steps` env
    steps of learning and 10 updates alone. Acting waits for the device every step, so the clock counts the updates."""
    env = make_train_env(cfg["env"])
    observation_space, action_space = single_spaces(env)
    agent = build_agent(
        cfg, observation_space=observation_space, action_space=action_space, device=device, seed=seed,
        num_envs=getattr(env, "num_envs", 1),
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as log_dir:
        logger = tb.Logger(log_dir)  # as a real run: TensorBoard on
        # Stop one vector step short of learning_starts: the first update (and compiling) falls in the warm-up.
        fill_steps = cfg["agent"]["learning_starts_steps"] - cfg["env"].get("num_envs", 1)
        filled = train(env=env, agent=agent, plan=TrainPlan(total_steps=fill_steps, seed=seed, progress=False),
            logger=logger)
        started = time.perf_counter()
        for _ in range(3):
            agent._learn()  # private: warm-up outside the clock (compiling takes a minute, once per run)
        synchronize(device)
        warmup_s = time.perf_counter() - started
        plan = TrainPlan(
            total_steps=filled.steps + measure_steps, seed=seed, progress=False, start_step=filled.steps
        )
        result = train(env=env, agent=agent, plan=plan, logger=logger)
        logger.close()
    update_ms = time_updates(agent, device)
    env.close()
    figures = {
        "steps_per_sec": result.steps_per_sec, "update_ms": update_ms, "episodes": result.episodes, "warmup_s": warmup_s
    }
    if device.type == "cuda":
        figures["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return figures


def sb3_run(cfg: dict[str, Any], *, measure_steps: int, seed: int, device: torch.device) -> dict[str, Any]:
    """SB3 DQN with the same hyperparameters on the same env (its exploration_fraction set to match rlkit's epsilon
    decay); its clock runs from learning_starts over measure_steps."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    h, learning_starts = HPARAMS, cfg["agent"]["learning_starts_steps"]
    total = learning_starts + measure_steps

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.marks: dict[int, float] = {}

        def _on_step(self) -> bool:
            if self.num_timesteps in (learning_starts, total):
                synchronize(device)
                self.marks[self.num_timesteps] = time.perf_counter()
            return True

    env = make_train_env(cfg["env"])
    model = DQN(
        "CnnPolicy", env, learning_rate=h["lr"], buffer_size=cfg["agent"]["buffer_size"],
        learning_starts=learning_starts, batch_size=h["batch_size"], gamma=h["gamma"], train_freq=h["train_every"],
        gradient_steps=1, target_update_interval=h["target_every"], exploration_initial_eps=1.0,
        exploration_final_eps=h["eps_end"], exploration_fraction=h["eps_steps"] / total,
        max_grad_norm=h["max_grad_norm"], device=device, seed=seed, verbose=0,
    )
    clock = Clock()
    model.learn(total, callback=clock)
    env.close()
    return {"steps_per_sec": measure_steps / (clock.marks[total] - clock.marks[learning_starts])}


def update_ceiling(update_ms: float) -> float:
    """Env steps/s that one update per train_every steps allows, with env steps and acting free."""
    return 1e3 * HPARAMS["train_every"] / update_ms


def memory_figures(episodes: int, steps: int) -> dict[str, float]:
    """Replay GB per 1M Pong transitions, from the arrays each buffer allocates at a small capacity, scaled; `episodes`
    ended in `steps` env steps sets how many final-frame rows to add."""
    rows_per_transition = 1 + episodes / steps  # each episode end keeps its final frame in a row of its own
    frame_row = bytes_per_row(FrameReplayBuffer(rings=StepRings(capacity=10_000), obs_shape=OBS_SHAPE), 10_000)
    figures = {
        "rlkit_frame_replay_bytes_per_row": frame_row,
        "rlkit_rows_per_transition_pong": rows_per_transition,
        "rlkit_replay_gb_per_1m": frame_row * rows_per_transition * MILLION / 1e9,
        "rlkit_plain_replay_gb_per_1m": bytes_per_row(
            ReplayBuffer(rings=StepRings(capacity=1000), obs_shape=OBS_SHAPE, obs_dtype=np.uint8), 1000
        ) * MILLION / 1e9,
        "sb3_replay_gb_per_1m": sb3_replay_bytes_per_row(optimize_memory_usage=False) * MILLION / 1e9,
        "sb3_optimized_replay_gb_per_1m": sb3_replay_bytes_per_row(optimize_memory_usage=True) * MILLION / 1e9,
        "floor_gb_per_1m": 84 * 84 * MILLION / 1e9,
    }
    figures["sb3_over_rlkit_memory"] = figures["sb3_replay_gb_per_1m"] / figures["rlkit_replay_gb_per_1m"]
    return figures


def print_memory_table(figures: dict[str, Any]) -> None:
    gb = figures["rlkit_replay_gb_per_1m"]
    print(f"\nReplay per 1,000,000 Pong transitions (4x84x84 uint8 obs; floor {figures['floor_gb_per_1m']:.2f} GB)")
    print_table(("", "GB", "x rlkit"), [
        (name, f"{figures[key]:.2f}", f"{figures[key] / gb:.2f}")
        for name, key in (
            ("rlkit frame replay", "rlkit_replay_gb_per_1m"),
            ("rlkit plain replay (stacks)", "rlkit_plain_replay_gb_per_1m"),
            ("SB3 ReplayBuffer", "sb3_replay_gb_per_1m"),
            ("SB3 optimize_memory_usage", "sb3_optimized_replay_gb_per_1m"),
        )
    ])


def copies_overrides(copies: int) -> list[str]:
    # train_every_steps counts the steps of all copies: every copy count does one update per 4 env steps.
    return [f"env.num_envs={copies}", "env.vectorization_mode=async"] if copies > 1 else []


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts to time both libraries at (default: 1 and torch's default)")
    parser.add_argument(
        "--copies", type=int, nargs="+", default=[1, 4, 8], help="env copies to time rlkit at (1 is always timed)"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="timed runs per library, thread count and copy count, alternating"
    )
    parser.add_argument("--measure-steps", type=int, default=2000, help="env steps timed after learning starts")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    thread_counts = args.threads or sorted({1, default_threads})
    copy_counts = sorted({1, *args.copies})
    sizes = dict(learning_starts=LEARNING_STARTS, buffer=BUFFER, measure_steps=args.measure_steps)
    if args.smoke:
        sizes, thread_counts, copy_counts, args.repeats = SMOKE, [1], [1, 2], 1  # 1 thread: safe on busy cores
    cpu = torch.device("cpu")

    configs = {
        copies: pong_config(*copies_overrides(copies), learning_starts=sizes["learning_starts"], buffer=sizes["buffer"])
        for copies in copy_counts
    }
    # Both libraries run in this process at each thread count in turn, alternating, --repeats times; medians reported.
    runs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name, copies, run in (("sb3", 1, sb3_run), *(("rlkit", c, rlkit_run) for c in copy_counts)):
                figures = run(configs[copies], measure_steps=sizes["measure_steps"], seed=repeat, device=cpu)
                runs.setdefault((name, threads, copies), []).append(figures)
                print(
                    f"repeat {repeat}, {threads} thread(s): {name} x{copies} {figures['steps_per_sec']:.1f} steps/s",
                    flush=True,
                )

    def median(name: str, threads: int, key: str = "steps_per_sec", copies: int = 1) -> float:
        return statistics.median(r[key] for r in runs[name, threads, copies])

    single = [r for (name, _, copies), rs in runs.items() if name == "rlkit" and copies == 1 for r in rs]
    figures: dict[str, Any] = {
        **memory_figures(
            sum(r["episodes"] for r in single), len(single) * (sizes["learning_starts"] + sizes["measure_steps"])
        ),
        "threads": {}, "torch_default_threads": default_threads, "repeats": args.repeats,
        "measure_steps": sizes["measure_steps"], "copies": copy_counts, "smoke": args.smoke,
    }
    for threads in thread_counts:
        rlkit_sps, sb3_sps, update_ms = (
            median("rlkit", threads), median("sb3", threads), median("rlkit", threads, "update_ms")
        )
        figures["threads"][str(threads)] = {
            "rlkit_steps_per_sec": rlkit_sps, "sb3_steps_per_sec": sb3_sps, "steps_ratio": rlkit_sps / sb3_sps,
            "rlkit_update_ms": update_ms, "update_ceiling_steps_per_sec": update_ceiling(update_ms),
            "rlkit_share_of_ceiling": rlkit_sps / update_ceiling(update_ms),
            "rlkit_steps_per_sec_by_copies": {str(c): median("rlkit", threads, copies=c) for c in copy_counts},
            "rlkit_update_ms_by_copies": {str(c): median("rlkit", threads, "update_ms", copies=c) for c in copy_counts},
        }

    print_memory_table(figures)
    per = figures["threads"]
    print(f"\nEnv steps/s while learning on Pong (steps {sizes['learning_starts']}.."
          f"{sizes['learning_starts'] + sizes['measure_steps']}, median of {args.repeats}), by torch threads")
    print_table(("", *(f"{t} thread(s)" for t in thread_counts)), [
        ("rlkit DQN", *(f"{per[str(t)]['rlkit_steps_per_sec']:.1f}" for t in thread_counts)),
        ("SB3 DQN", *(f"{per[str(t)]['sb3_steps_per_sec']:.1f}" for t in thread_counts)),
        ("rlkit / SB3", *(f"{per[str(t)]['steps_ratio']:.2f}" for t in thread_counts)),
        ("rlkit update alone (ms)", *(f"{per[str(t)]['rlkit_update_ms']:.1f}" for t in thread_counts)),
        ("ceiling at 1 update / 4 steps",
         *(f"{per[str(t)]['update_ceiling_steps_per_sec']:.0f}" for t in thread_counts)),
        ("rlkit / ceiling", *(f"{per[str(t)]['rlkit_share_of_ceiling']:.0%}" for t in thread_counts)),
    ])
    print("\nrlkit env steps/s while learning by env copies (async vector env above 1 copy); "
          "one update per 4 env steps of\nall copies, so the update cost per env step is the same for every row")
    print_table(("", *(f"{t} thread(s)" for t in thread_counts)), [
        *((f"{c} cop{'y' if c == 1 else 'ies'}",
           *(f"{per[str(t)]['rlkit_steps_per_sec_by_copies'][str(c)]:.1f}" for t in thread_counts))
          for c in copy_counts),
        ("ceiling at 1 update / 4 steps",
         *(f"{per[str(t)]['update_ceiling_steps_per_sec']:.0f}" for t in thread_counts)),
    ])
    write_results("atari", figures, results_dir=args.results_dir, echo_json=args.json)


if __name__ == "__main__":
    main()
