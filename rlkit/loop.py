"""The one training loop and the one evaluation loop; neither asks which kind of agent it holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

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


class Evaluation(NamedTuple):
    step: int
    train_seconds: float  # training wall time up to this evaluation, evaluations excluded
    result: EvalResult


@dataclass
class TrainResult:
    steps: int
    episodes: int
    train_seconds: float
    evaluations: list[Evaluation] = field(default_factory=list)
    # (env step, mean return of the episodes that ended in that log window): the run's learning curve
    train_returns: list[tuple[int, float]] = field(default_factory=list)

    @property
    def steps_per_sec(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def final_eval(self) -> EvalResult | None:
        return self.evaluations[-1].result if self.evaluations else None


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
    ended_returns: list[float] = []  # episodes that ended since the last log line
    ended_lengths: list[int] = []
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
                ended = np.flatnonzero(info["_episode"])
                ended_returns.extend(info["episode"]["r"][ended].tolist())
                ended_lengths.extend(info["episode"]["l"][ended].tolist())
        elif terminated or truncated:
            ended_returns.append(info["episode"]["r"])
            ended_lengths.append(info["episode"]["l"])
            next_obs, _ = env.reset()
        obs = next_obs

        if step >= next_log:
            # Episodes are logged as window means: one event per window instead of one per episode
            # keeps TensorBoard from costing more than the env on short-episode tasks like Taxi.
            now = time.perf_counter()
            window = {tb.STEPS_PER_SEC: (step - window_steps) / max(now - window_start - eval_seconds, 1e-9)}
            if ended_returns:
                episodes += len(ended_returns)
                window[tb.EPISODIC_RETURN] = float(np.mean(ended_returns))
                window[tb.EPISODIC_LENGTH] = float(np.mean(ended_lengths))
                result.train_returns.append((step, window[tb.EPISODIC_RETURN]))
                bar.set_postfix(episodes=episodes, ret=f"{window[tb.EPISODIC_RETURN]:.2f}", refresh=False)
                ended_returns.clear()
                ended_lengths.clear()
            logger.scalars(window, step)
            window_start, window_steps, eval_seconds = now, step, 0.0
            next_log += log_every_steps
            bar.update(step - bar.n)
        if step >= next_eval and step < total_steps and eval_env is not None:
            eval_started = time.perf_counter()
            evaluation = evaluate(eval_env, agent, episodes=eval_episodes, seed=seed + 10_000 + step)
            train_seconds = eval_started - started - eval_total_seconds
            eval_seconds += time.perf_counter() - eval_started
            eval_total_seconds += time.perf_counter() - eval_started
            result.evaluations.append(Evaluation(step, train_seconds, evaluation))
            logger.scalars({tb.EVAL_RETURN_MEAN: evaluation.mean, tb.EVAL_RETURN_STD: evaluation.std}, step)
            next_eval += eval_every_steps

    episodes += len(ended_returns)
    bar.update(step - bar.n)
    bar.close()
    result.steps, result.episodes = step, episodes
    result.train_seconds = time.perf_counter() - started - eval_total_seconds  # evaluation excluded
    if on_checkpoint is not None:
        on_checkpoint(step)
    return result
