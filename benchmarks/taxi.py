"""Taxi throughput (raw env, rlkit's Q-learning, a textbook loop) and sample efficiency (steps and training time until
a 100-episode greedy mean first reaches 7.0), all in one run on one machine."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rlkit, without PYTHONPATH or an install

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402
from rlkit import tb  # noqa: E402
from rlkit.cli.app import conf_dir  # noqa: E402
from rlkit.config.registry import build_agent  # noqa: E402
from rlkit.envs.builders import make_env, make_train_env
from rlkit.envs.gym import resolve_env_id  # noqa: E402
from rlkit.loop import TrainPlan, evaluate, train  # noqa: E402
from rlkit.runtime import resolve_device  # noqa: E402

TARGET = 7.0
EVAL_EVERY = 2_000
EVAL_EPISODES = 100
FINAL_EPISODES = 1000


def taxi_config(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["env=taxi", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def raw_env_steps_per_sec(steps: int, seed: int) -> float:
    env = gym.make(resolve_env_id("Taxi-v3"))
    env.action_space.seed(seed)
    env.reset(seed=seed)
    started = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - started)


def rlkit_run(cfg: dict, *, steps: int, seed: int, eval_every: int, final_episodes: int = FINAL_EPISODES) -> dict:
    # The default `env=taxi` config, TensorBoard logging on, as a real run.
    env, eval_env = make_train_env(cfg["env"]), make_env(cfg["env"])
    agent = build_agent(
        cfg, observation_space=env.observation_space, action_space=env.action_space,
        device=resolve_device("cpu"), seed=seed,
    )
    with tempfile.TemporaryDirectory() as log_dir:
        logger = tb.Logger(log_dir)
        plan = TrainPlan(total_steps=steps, seed=seed, eval_every_steps=eval_every, eval_episodes=EVAL_EPISODES,
            progress=False)
        result = train(env=env, agent=agent, plan=plan, logger=logger, eval_env=eval_env)
        logger.close()
    first = next((e for e in result.evaluations if e.result.mean >= TARGET), None)
    final = evaluate(eval_env, agent.policy(), episodes=final_episodes, seed=seed + 1_000_000).mean
    return {
        "steps_per_sec": result.steps_per_sec,
        "steps_to_target": first.step if first else None,
        "seconds_to_target": first.train_seconds if first else None,
        "final_mean_1000": final,
    }


def textbook_run(*, steps: int, seed: int, eval_every: int) -> dict:
    """The loop every tutorial writes: numpy Q-table, alpha 0.1, gamma 0.99, epsilon x0.995 per episode to 0.05."""
    env, eval_env = gym.make(resolve_env_id("Taxi-v3")), gym.make(resolve_env_id("Taxi-v3"))
    rng = np.random.default_rng(seed)
    q = np.zeros((env.observation_space.n, env.action_space.n))
    alpha, gamma, epsilon = 0.1, 0.99, 1.0
    state, _ = env.reset(seed=seed)
    first_step = first_seconds = None
    train_seconds = 0.0
    chunk_start = time.perf_counter()
    for step in range(1, steps + 1):
        action = int(rng.integers(6)) if rng.random() < epsilon else int(np.argmax(q[state]))
        next_state, reward, terminated, truncated, _ = env.step(action)
        target = reward if terminated else reward + gamma * q[next_state].max()
        q[state, action] += alpha * (target - q[state, action])
        state = next_state
        if terminated or truncated:
            epsilon = max(0.05, epsilon * 0.995)
            state, _ = env.reset()
        if eval_every and step % eval_every == 0:
            train_seconds += time.perf_counter() - chunk_start
            if first_step is None and greedy_mean(eval_env, q, seed + 10_000 + step) >= TARGET:
                first_step, first_seconds = step, train_seconds
            chunk_start = time.perf_counter()
    train_seconds += time.perf_counter() - chunk_start
    return {"steps_per_sec": steps / train_seconds, "steps_to_target": first_step, "seconds_to_target": first_seconds}


def greedy_mean(env: gym.Env, q: np.ndarray, seed: int) -> float:
    returns = []
    for episode in range(EVAL_EPISODES):
        state, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            state, reward, terminated, truncated, _ = env.step(int(np.argmax(q[state])))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200_000, help="env steps per throughput run")
    parser.add_argument(
        "--learn-steps", type=int, default=300_000, help="step budget of the textbook sample-efficiency runs"
    )
    args = parser.parse_args()
    if args.smoke:  # rlkit learns for its config's total_steps: cut that too
        args.seeds, args.steps, args.learn_steps = 1, 2_000, 4_000

    cfg = taxi_config(*([f"total_steps={args.learn_steps}"] if args.smoke else []))
    final_episodes = 20 if args.smoke else FINAL_EPISODES
    raw, rlkit_tp, textbook_tp, rlkit_learn, textbook_learn = [], [], [], [], []
    for seed in range(args.seeds):
        raw.append(raw_env_steps_per_sec(args.steps, seed))
        rlkit_tp.append(
            rlkit_run(cfg, steps=args.steps, seed=seed, eval_every=0, final_episodes=final_episodes)["steps_per_sec"]
        )
        textbook_tp.append(textbook_run(steps=args.steps, seed=seed, eval_every=0)["steps_per_sec"])
        rlkit_learn.append(rlkit_run(
            cfg, steps=int(cfg["total_steps"]), seed=seed, eval_every=EVAL_EVERY, final_episodes=final_episodes
        ))
        textbook_learn.append(textbook_run(steps=args.learn_steps, seed=seed, eval_every=EVAL_EVERY))
        print(f"seed {seed}: rlkit reached {TARGET} at {rlkit_learn[-1]['steps_to_target']} steps, "
              f"textbook at {textbook_learn[-1]['steps_to_target']}", flush=True)

    figures = {
        "raw_steps_per_sec": median(raw),
        "rlkit_steps_per_sec": median(rlkit_tp),
        "textbook_steps_per_sec": median(textbook_tp),
        "rlkit_over_raw": median(rlkit_tp) / median(raw),
        "textbook_over_raw": median(textbook_tp) / median(raw),
        "rlkit_steps_to_target": median([r["steps_to_target"] for r in rlkit_learn]),
        "textbook_steps_to_target": median([r["steps_to_target"] for r in textbook_learn]),
        "rlkit_seconds_to_target": median([r["seconds_to_target"] for r in rlkit_learn]),
        "textbook_seconds_to_target": median([r["seconds_to_target"] for r in textbook_learn]),
        "rlkit_final_mean_1000": median([r["final_mean_1000"] for r in rlkit_learn]),
        "rlkit_final_means_1000": [round(r["final_mean_1000"], 3) for r in rlkit_learn],
        "seeds": args.seeds,
        "throughput_steps": args.steps,
        "final_episodes": final_episodes,
        "smoke": args.smoke,
    }
    s_rl, s_tb = figures["rlkit_steps_to_target"], figures["textbook_steps_to_target"]
    t_rl, t_tb = figures["rlkit_seconds_to_target"], figures["textbook_seconds_to_target"]
    figures["steps_ratio"] = s_rl / s_tb if s_rl and s_tb else None
    figures["wall_ratio"] = t_rl / t_tb if t_rl and t_tb else None

    rows = [
        ("raw env, random policy", f"{figures['raw_steps_per_sec']:,.0f}", "1.00", "-", "-"),
        ("rlkit Q-learning", f"{figures['rlkit_steps_per_sec']:,.0f}", f"{figures['rlkit_over_raw']:.2f}", f"{s_rl}",
         f"{t_rl:.2f}" if t_rl else "-"),
        ("textbook Q-learning", f"{figures['textbook_steps_per_sec']:,.0f}", f"{figures['textbook_over_raw']:.2f}",
         f"{s_tb}", f"{t_tb:.2f}" if t_tb else "-"),
    ]
    print(f"\nTaxi, median of {args.seeds} seeds")
    print_table(("", "steps/s", "x raw", f"steps to {TARGET}", f"s to {TARGET}"), rows)
    if figures["steps_ratio"] and figures["wall_ratio"]:
        print(f"rlkit / textbook: {figures['steps_ratio']:.2f}x the steps, {figures['wall_ratio']:.2f}x the wall time")
    print(f"rlkit final {final_episodes}-episode greedy means: {figures['rlkit_final_means_1000']}")
    write_results("taxi", figures, results_dir=args.results_dir, echo_json=args.json)


if __name__ == "__main__":
    main()
