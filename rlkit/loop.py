"""The one training loop and the one evaluation loop; neither asks which kind of agent it holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from rlkit import tb
from rlkit.agents.base import Agent, Transition


@dataclass
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.returns.mean()) if self.returns.size else float("nan")

    @property
    def std(self) -> float:
        return float(self.returns.std()) if self.returns.size else float("nan")


@dataclass
class TrainResult:
    steps: int
    episodes: int
    train_seconds: float
    evaluations: list[tuple[int, EvalResult]] = field(default_factory=list)

    @property
    def steps_per_sec(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def final_eval(self) -> EvalResult | None:
        return self.evaluations[-1][1] if self.evaluations else None


def evaluate(env: gym.Env, agent: Agent, *, episodes: int, seed: int | None = None) -> EvalResult:
    """Greedy episodes, one after another on a single env; returns are the env's own rewards, unclipped."""
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    for episode in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + episode)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
            returns[episode] += float(reward)
            lengths[episode] += 1
            done = terminated or truncated
    return EvalResult(returns, lengths)


def train(
    *,
    env: gym.Env | gym.vector.VectorEnv,
    agent: Agent,
    logger: tb.Logger,
    total_steps: int,
    seed: int,
    eval_env: gym.Env | None = None,
    eval_every_steps: int = 0,
    eval_episodes: int = 10,
    log_every_steps: int = 1000,
    on_checkpoint: Callable[[int], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Act, step, observe, log, evaluate; checkpoint at the end. Env steps count every copy of a vector env."""
    vector = isinstance(env, gym.vector.VectorEnv)
    num_envs = env.num_envs if vector else 1
    obs, _ = env.reset(seed=seed)
    valid = np.ones(num_envs, dtype=bool) if vector else True
    step = episodes = 0
    result = TrainResult(steps=0, episodes=0, train_seconds=0.0)
    next_eval = eval_every_steps if eval_every_steps > 0 else total_steps + 1
    next_log = log_every_steps
    bar = tqdm(total=total_steps, unit="step", disable=not progress, mininterval=0.5, dynamic_ncols=True)
    recent_returns: list[float] = []
    started = window_start = time.perf_counter()
    window_steps = 0
    eval_seconds = eval_total_seconds = 0.0

    while step < total_steps:
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        metrics = agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, valid))
        step += num_envs
        if metrics:
            logger.scalars(metrics, step)
        if vector:
            valid = ~(terminated | truncated)  # the next step of these copies is gymnasium's autoreset step
            if "episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    episodes += 1
                    recent_returns.append(float(info["episode"]["r"][i]))
                    logger.scalar(tb.EPISODIC_RETURN, info["episode"]["r"][i], step)
                    logger.scalar(tb.EPISODIC_LENGTH, info["episode"]["l"][i], step)
        elif terminated or truncated:
            episodes += 1
            recent_returns.append(float(info["episode"]["r"]))
            logger.scalar(tb.EPISODIC_RETURN, info["episode"]["r"], step)
            logger.scalar(tb.EPISODIC_LENGTH, info["episode"]["l"], step)
            next_obs, _ = env.reset()
        obs = next_obs

        if step >= next_log:
            now = time.perf_counter()
            logger.scalar(tb.STEPS_PER_SEC, (step - window_steps) / max(now - window_start - eval_seconds, 1e-9), step)
            window_start, window_steps, eval_seconds = now, step, 0.0
            next_log += log_every_steps
            if recent_returns:
                bar.set_postfix(episodes=episodes, ret=f"{np.mean(recent_returns[-100:]):.2f}", refresh=False)
                del recent_returns[:-100]
            bar.update(step - bar.n)
        if step >= next_eval and eval_env is not None:
            eval_started = time.perf_counter()
            evaluation = evaluate(eval_env, agent, episodes=eval_episodes, seed=seed + 10_000 + step)
            eval_seconds += time.perf_counter() - eval_started
            eval_total_seconds += time.perf_counter() - eval_started
            result.evaluations.append((step, evaluation))
            logger.scalar(tb.EVAL_RETURN_MEAN, evaluation.mean, step)
            logger.scalar(tb.EVAL_RETURN_STD, evaluation.std, step)
            next_eval += eval_every_steps

    bar.update(step - bar.n)
    bar.close()
    result.steps, result.episodes = step, episodes
    result.train_seconds = time.perf_counter() - started - eval_total_seconds  # evaluation excluded
    if on_checkpoint is not None:
        on_checkpoint(step)
    return result
