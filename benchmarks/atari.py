"""Atari replay memory and learning throughput on Pong, rlkit against Stable-Baselines3, in one run on one machine.

(1) Replay bytes per 1,000,000 transitions of 4x84x84 uint8 observations, from the arrays each buffer allocates
at a small capacity, scaled: rlkit's frame replay (one frame a row, plus the sampler's sums; an episode's final
frame takes one more row, counted at the rate the Pong runs below end episodes), rlkit's plain replay, and
SB3's ReplayBuffer with and without optimize_memory_usage.
(2) Env steps per second while learning: the same env for both (rlkit's Pong training env), train every 4
steps, batch 32, Nature CNN, Adam lr 1e-4, Huber loss, gradient norm clipped at 10, target copied every 1000
steps, epsilon 1 -> 0.01 over 1M steps (SB3's exploration_fraction set to match), 10k replay, learning from
step 1000; steps 1000 to 3000 are timed. Both run in this process at each torch thread count in turn
(default: 1, and torch's default of one per core), alternating, --repeats times each; medians are reported.

    python benchmarks/atari.py [--threads 1 2] [--repeats 2] [--measure-steps 2000] [--json] [--smoke] [--results-dir DIR]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402
from rlkit import tb  # noqa: E402
from rlkit.build import build_agent  # noqa: E402
from rlkit.envs import make_train_env  # noqa: E402
from rlkit.frame_replay import FrameReplayBuffer  # noqa: E402
from rlkit.loop import train  # noqa: E402
from rlkit.replay import ReplayBuffer  # noqa: E402
from rlkit.runtime import conf_dir  # noqa: E402

OBS_SHAPE = (4, 84, 84)
MILLION = 1_000_000
LEARNING_STARTS = 1000
BUFFER = 10_000
HPARAMS = dict(lr=1e-4, gamma=0.99, batch_size=32, train_every=4, target_every=1000, max_grad_norm=10.0, eps_end=0.01, eps_steps=MILLION)


def bytes_per_row(buffer: object, capacity: int) -> float:
    return buffer.nbytes / capacity  # type: ignore[attr-defined]


def sb3_replay_bytes_per_row(*, optimize_memory_usage: bool, capacity: int = 1000) -> float:
    from stable_baselines3.common.buffers import ReplayBuffer as SB3ReplayBuffer

    buffer = SB3ReplayBuffer(
        capacity, gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8), gym.spaces.Discrete(6), device="cpu",
        optimize_memory_usage=optimize_memory_usage, handle_timeout_termination=not optimize_memory_usage,
    )
    return sum(a.nbytes for a in vars(buffer).values() if isinstance(a, np.ndarray)) / capacity


def pong_config() -> dict:
    h = HPARAMS
    overrides = [
        "env=pong", "preset=adam", f"agent.buffer_size={BUFFER}", f"agent.learning_starts_steps={LEARNING_STARTS}",
        f"agent.batch_size={h['batch_size']}", f"agent.train_every_steps={h['train_every']}", f"optim.lr={h['lr']}",
        f"agent.target_update_every_steps={h['target_every']}", "agent.loss=huber", f"agent.max_grad_norm={h['max_grad_norm']}",
        "agent.double=false", "agent.epsilon_start=1.0", f"agent.epsilon_end={h['eps_end']}", f"agent.epsilon_decay_steps={h['eps_steps']}",
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="train", overrides=overrides), resolve=True)


def rlkit_run(cfg: dict, *, measure_steps: int, seed: int) -> dict:
    env = make_train_env(cfg["env"])
    agent = build_agent(cfg, observation_space=env.observation_space, action_space=env.action_space, device=torch.device("cpu"), seed=seed)
    with tempfile.TemporaryDirectory() as log_dir:
        logger = tb.Logger(log_dir)  # as a real run: TensorBoard on
        train(env=env, agent=agent, logger=logger, total_steps=LEARNING_STARTS, seed=seed, progress=False)
        result = train(
            env=env, agent=agent, logger=logger, total_steps=LEARNING_STARTS + measure_steps, seed=seed,
            start_step=LEARNING_STARTS, progress=False,
        )
        logger.close()
    started = time.perf_counter()
    for _ in range(10):
        agent._learn()  # one update alone: what learning costs before any env step (private, for the ceiling only)
    update_ms = (time.perf_counter() - started) / 10 * 1e3
    env.close()
    return {"steps_per_sec": measure_steps / result.train_seconds, "update_ms": update_ms, "episodes": result.episodes}


def sb3_run(cfg: dict, *, measure_steps: int, seed: int) -> dict:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.marks: dict[int, float] = {}

        def _on_step(self) -> bool:
            if self.num_timesteps in (LEARNING_STARTS, LEARNING_STARTS + measure_steps):
                self.marks[self.num_timesteps] = time.perf_counter()
            return True

    h, total = HPARAMS, LEARNING_STARTS + measure_steps
    env = make_train_env(cfg["env"])
    model = DQN(
        "CnnPolicy", env, learning_rate=h["lr"], buffer_size=BUFFER, learning_starts=LEARNING_STARTS,
        batch_size=h["batch_size"], gamma=h["gamma"], train_freq=h["train_every"], gradient_steps=1,
        target_update_interval=h["target_every"], exploration_initial_eps=1.0, exploration_final_eps=h["eps_end"],
        exploration_fraction=h["eps_steps"] / total, max_grad_norm=h["max_grad_norm"], device="cpu", seed=seed, verbose=0,
    )
    clock = Clock()
    model.learn(total, callback=clock)
    env.close()
    return {"steps_per_sec": measure_steps / (clock.marks[total] - clock.marks[LEARNING_STARTS])}


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts to time both libraries at (default: 1 and torch's default)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per library and thread count, alternating")
    parser.add_argument("--measure-steps", type=int, default=2000, help="env steps timed after learning starts")
    args = parser.parse_args()
    if args.smoke:
        args.threads, args.repeats, args.measure_steps = [1], 1, 40
    default_threads = torch.get_num_threads()
    thread_counts = args.threads or sorted({1, default_threads})

    cfg = pong_config()
    runs: dict[tuple[str, int], list[dict]] = {}
    for repeat in range(args.repeats):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for name, run in (("rlkit", rlkit_run), ("sb3", sb3_run)):
                runs.setdefault((name, threads), []).append(run(cfg, measure_steps=args.measure_steps, seed=repeat))
                print(f"repeat {repeat}, {threads} thread(s): {name} {runs[name, threads][-1]['steps_per_sec']:.1f} steps/s", flush=True)

    def median(name: str, threads: int, key: str = "steps_per_sec") -> float:
        return statistics.median(r[key] for r in runs[name, threads])

    episodes = sum(r["episodes"] for (name, _), rs in runs.items() if name == "rlkit" for r in rs)
    steps = sum(LEARNING_STARTS + args.measure_steps for (name, _), rs in runs.items() if name == "rlkit" for _ in rs)
    rows_per_transition = 1 + episodes / steps  # each episode end keeps its final frame in a row of its own
    frame_row = bytes_per_row(FrameReplayBuffer(capacity=10_000, obs_shape=OBS_SHAPE), 10_000)
    figures: dict = {
        "rlkit_frame_replay_bytes_per_row": frame_row,
        "rlkit_rows_per_transition_pong": rows_per_transition,
        "rlkit_replay_gb_per_1m": frame_row * rows_per_transition * MILLION / 1e9,
        "rlkit_plain_replay_gb_per_1m": bytes_per_row(ReplayBuffer(capacity=1000, obs_shape=OBS_SHAPE, obs_dtype=np.uint8), 1000) * MILLION / 1e9,
        "sb3_replay_gb_per_1m": sb3_replay_bytes_per_row(optimize_memory_usage=False) * MILLION / 1e9,
        "sb3_optimized_replay_gb_per_1m": sb3_replay_bytes_per_row(optimize_memory_usage=True) * MILLION / 1e9,
        "floor_gb_per_1m": 84 * 84 * MILLION / 1e9,
        "threads": {},
        "torch_default_threads": default_threads,
        "repeats": args.repeats,
        "measure_steps": args.measure_steps,
    }
    figures["sb3_over_rlkit_memory"] = figures["sb3_replay_gb_per_1m"] / figures["rlkit_replay_gb_per_1m"]
    for threads in thread_counts:
        rlkit_sps, sb3_sps, update_ms = median("rlkit", threads), median("sb3", threads), median("rlkit", threads, "update_ms")
        figures["threads"][str(threads)] = {
            "rlkit_steps_per_sec": rlkit_sps, "sb3_steps_per_sec": sb3_sps, "steps_ratio": rlkit_sps / sb3_sps,
            "rlkit_update_ms": update_ms, "update_ceiling_steps_per_sec": 1e3 * HPARAMS["train_every"] / update_ms,
        }

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
    print(f"\nEnv steps/s while learning on Pong (steps {LEARNING_STARTS}..{LEARNING_STARTS + args.measure_steps}, "
          f"median of {args.repeats}), by torch threads")
    per = figures["threads"]
    print_table(("", *(f"{t} thread(s)" for t in thread_counts)), [
        ("rlkit DQN", *(f"{per[str(t)]['rlkit_steps_per_sec']:.1f}" for t in thread_counts)),
        ("SB3 DQN", *(f"{per[str(t)]['sb3_steps_per_sec']:.1f}" for t in thread_counts)),
        ("rlkit / SB3", *(f"{per[str(t)]['steps_ratio']:.2f}" for t in thread_counts)),
        ("rlkit update alone (ms)", *(f"{per[str(t)]['rlkit_update_ms']:.1f}" for t in thread_counts)),
        ("ceiling at 1 update / 4 steps", *(f"{per[str(t)]['update_ceiling_steps_per_sec']:.0f}" for t in thread_counts)),
    ])
    write_results("atari", figures, results_dir=args.results_dir, echo_json=args.json)


if __name__ == "__main__":
    main()
