"""The one training loop and the one evaluation loop; neither asks which kind of agent it holds."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from rlkit import tb
from rlkit.agents.base import Agent, Transition
from rlkit.runtime import one_torch_thread


class StopRequest(Protocol):
    requested: bool


class VideoRecorder(Protocol):
    """Records and logs one greedy episode (rlkit.watch.video.EvalVideo); the loop only times it."""

    every_steps: int

    def record(self, agent: Agent, step: int) -> float:
        """Seconds spent, kept out of training time as evaluations are."""
        ...
class Saver(Protocol):
    """Writes the run's state at a step (rlkit.runs.resume.Checkpointer); the loop only says when."""

    def save(self, step: int) -> None: ...


@dataclass
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray
    seconds: float = 0.0
    cut_short: bool = False  # the evaluation's step budget ran out before it had played every episode

    @property
    def episodes(self) -> int:
        return int(self.returns.size)

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
    train_seconds: float  # acting, learning and periodic checkpoints: evaluations and videos excluded
    evaluations: list[Evaluation] = field(default_factory=list)
    interrupted: bool = False
    start_step: int = 0  # > 0 for a resumed run
    # (env step, mean return of the episodes that ended in that log window): the run's learning curve
    train_returns: list[tuple[int, float]] = field(default_factory=list)

    @property
    def steps_per_sec(self) -> float:
        """Env steps per second of this process's training (a resumed run counts from its start step)."""
        done = self.steps - self.start_step
        return done / self.train_seconds if self.train_seconds > 0 else float("nan")

    @property
    def eval_seconds(self) -> float:
        return sum(e.result.seconds for e in self.evaluations)

    @property
    def final_eval(self) -> EvalResult | None:
        return self.evaluations[-1].result if self.evaluations else None


def evaluate(
    env: gym.Env,
    agent: Agent,
    *,
    episodes: int,
    seed: int | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    desc: str = "evaluation",
) -> EvalResult:
    """Greedy episodes, one after another on a single env and one torch thread (rlkit.runtime.one_torch_thread);
    returns are the env's own rewards, unclipped.

    max_steps caps the agent steps of the whole evaluation (an Atari game can last 27,000): episodes not over by
    then are left out, unless none is, and then the one cut short counts. With progress, a bar on stderr shows
    the episodes done, the steps and the mean so far, so a long evaluation never looks hung (issue 11).
    """
    with one_torch_thread():
        return _greedy_episodes(env, agent, episodes=episodes, seed=seed, max_steps=max_steps, progress=progress, desc=desc)


def _greedy_episodes(
    env: gym.Env, agent: Agent, *, episodes: int, seed: int | None, max_steps: int | None, progress: bool, desc: str
) -> EvalResult:
    started = time.perf_counter()
    budget = max_steps if max_steps is not None else sys.maxsize
    returns: list[float] = []
    lengths: list[int] = []
    steps, cut_short = 0, False
    bar = tqdm(total=episodes, unit="episode", desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    shown = started

    def show(episode_return: float | None, *, refresh: bool) -> None:
        playing = "" if episode_return is None else f", this episode {episode_return:.1f}"
        mean = f"mean {np.mean(returns):.2f}, " if returns else ""
        bar.set_postfix_str(f"{mean}{steps:,} steps{playing}", refresh=refresh)

    for episode in range(episodes):
        obs, _ = env.reset(seed=None if seed is None else seed + episode)
        total, length, done = 0.0, 0, False
        while not done and steps < budget:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
            total += float(reward)
            length += 1
            steps += 1
            done = terminated or truncated
            if progress and steps % 100 == 0 and time.perf_counter() - shown > 0.5:  # a long episode shows it plays
                show(total, refresh=True)
                shown = time.perf_counter()
        if not done:
            cut_short = True
            if not returns:
                returns.append(total)
                lengths.append(length)
            break
        returns.append(total)
        lengths.append(length)
        show(None, refresh=False)
        bar.update(1)
    bar.close()
    return EvalResult(np.array(returns), np.array(lengths, dtype=np.int64), time.perf_counter() - started, cut_short)


def next_multiple(step: int, every: int) -> int:
    """First multiple of `every` after `step`; never, if every <= 0."""
    return (step // every + 1) * every if every > 0 else sys.maxsize


class EpisodeWindow:
    """Episodes that ended since the last log line, logged as window means.

    One event per window instead of one per episode keeps TensorBoard from costing more than the env
    on short-episode tasks like Taxi.
    """

    def __init__(self) -> None:
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.episodes = 0

    def add(self, episode_return: float, length: int) -> None:
        self.returns.append(float(episode_return))
        self.lengths.append(int(length))

    def flush(self) -> dict[str, float]:
        if not self.returns:
            return {}
        means = {tb.EPISODIC_RETURN: float(np.mean(self.returns)), tb.EPISODIC_LENGTH: float(np.mean(self.lengths))}
        self.episodes += len(self.returns)
        self.returns.clear()
        self.lengths.clear()
        return means


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
    eval_max_steps: int | None = None,
    log_every_steps: int = 1000,
    checkpoint_every_steps: int = 0,
    saver: Saver | None = None,
    start_step: int = 0,
    stop: StopRequest | None = None,
    progress: bool = True,
    video: VideoRecorder | None = None,
) -> TrainResult:
    """Act, step, observe, log, evaluate, checkpoint. Env steps count every copy of a vector env.

    With start_step > 0 the run resumes: the env is reset without a seed, continuing the RNG state the
    caller restored. When `stop.requested` turns true the loop ends after the current step.
    """
    vector = isinstance(env, gym.vector.VectorEnv)
    num_envs = env.num_envs if vector else 1
    obs, _ = env.reset(seed=seed if start_step == 0 else None)
    valid = np.ones(num_envs, dtype=bool) if vector else True
    step = start_step
    result = TrainResult(steps=step, episodes=0, train_seconds=0.0, start_step=step)
    next_log = next_multiple(step, log_every_steps)
    next_eval = next_multiple(step, eval_every_steps) if eval_env is not None else sys.maxsize
    next_checkpoint = next_multiple(step, checkpoint_every_steps) if saver is not None else sys.maxsize
    next_video = next_multiple(step, video.every_steps) if video is not None else sys.maxsize
    next_event = min(next_log, next_eval, next_checkpoint, next_video)
    window = EpisodeWindow()
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=not progress, mininterval=0.5, dynamic_ncols=True)
    started = window_start = time.perf_counter()
    window_steps = step
    off_clock = off_clock_total = 0.0  # seconds of evaluations and videos: in this log window, and in all

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
                    window.add(info["episode"]["r"][i], info["episode"]["l"][i])
        elif terminated or truncated:
            if "episode" in info:  # absent when a lost life ended the episode but not the game (Atari)
                window.add(info["episode"]["r"], info["episode"]["l"])
            next_obs, _ = env.reset()
        obs = next_obs
        if stop is not None and stop.requested:
            break
        if step < next_event:
            continue

        if step >= next_log:
            now = time.perf_counter()
            line = {tb.STEPS_PER_SEC: (step - window_steps) / max(now - window_start - off_clock, 1e-9), **window.flush()}
            logger.scalars(line, step)
            if tb.EPISODIC_RETURN in line:
                result.train_returns.append((step, line[tb.EPISODIC_RETURN]))
                bar.set_postfix(episodes=window.episodes, ret=f"{line[tb.EPISODIC_RETURN]:.2f}", refresh=False)
            bar.update(step - bar.n)
            window_start, window_steps, off_clock = now, step, 0.0
            next_log = next_multiple(step, log_every_steps)
        if step >= next_eval and step < total_steps:
            trained_seconds = time.perf_counter() - started - off_clock_total
            evaluation = evaluate(
                eval_env, agent, episodes=eval_episodes, seed=seed + 10_000 + step, max_steps=eval_max_steps,
                progress=progress, desc=f"evaluation at step {step:,}",
            )
            result.evaluations.append(Evaluation(step, trained_seconds, evaluation))
            logger.scalars(tb.evaluation_metrics(evaluation.mean, evaluation.std, evaluation.seconds), step)
            off_clock += evaluation.seconds
            off_clock_total += evaluation.seconds
            next_eval = next_multiple(step, eval_every_steps)
        if step >= next_video:  # also at the last step: the trained agent's episode
            with one_torch_thread():
                seconds = video.record(agent, step)
            off_clock += seconds  # off the training clock, as evaluations are
            off_clock_total += seconds
            next_video = next_multiple(step, video.every_steps)
        if step >= next_checkpoint and step < total_steps:
            logger.flush()  # every point up to a checkpoint is on disk with it: a resume keeps them all
            saver.save(step)
            next_checkpoint = next_multiple(step, checkpoint_every_steps)
        next_event = min(next_log, next_eval, next_checkpoint, next_video)

    logger.scalars(window.flush(), step)
    bar.update(step - bar.n)
    bar.close()
    result.steps, result.episodes = step, window.episodes
    result.interrupted = step < total_steps
    result.train_seconds = time.perf_counter() - started - off_clock_total  # evaluations and videos excluded
    if saver is not None:
        logger.flush()
        saver.save(step)
    return result
