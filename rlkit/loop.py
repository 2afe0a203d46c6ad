"""The one training loop and the one evaluation loop; neither asks which kind of agent it holds."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from rlkit import tb
from rlkit.agents.base import Agent, Every, Policy, Transition, check_finite_loss
from rlkit.runtime import one_torch_thread


class StopRequest(Protocol):
    requested: bool


class VideoRecorder(Protocol):
    """Records and logs one greedy episode (rlkit.watch.video.EvalVideo); the loop only times it."""

    every_steps: int

    def record(self, policy: Policy, step: int) -> float:
        """Seconds spent, kept out of training time as evaluations are."""


class Saver(Protocol):
    """Writes the run's state at a step (rlkit.runs.checkpointer.Checkpointer); the loop only says when."""

    def save(self, step: int) -> None: ...


@dataclass
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray
    seconds: float = 0.0
    cut_short: bool = False  # the evaluation's step budget ran out before it had played every episode
    stopped: bool = False  # a stop request (SIGINT, SIGTERM) ended it; it holds the episodes that finished before

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


@one_torch_thread()
def evaluate(
    env: gym.Env, policy: Policy, *, episodes: int, seed: int | None = None, max_steps: int | None = None,
    progress: bool = False, desc: str = "evaluation", stop: StopRequest | None = None,
) -> EvalResult:
    """Greedy episodes on one env and one torch thread, unclipped rewards. max_steps caps the whole evaluation
    (an Atari game can last 27,000): unfinished episodes are left out unless none finished. `stop.requested` ends it
    at the next step, as it ends training."""
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

    def stopping() -> bool:
        return stop is not None and stop.requested

    for episode in range(episodes):
        if stopping():
            break
        obs, _ = env.reset(seed=None if seed is None else seed + episode)
        total, length, done = 0.0, 0, False
        while not done and steps < budget and not stopping():
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
            total += float(reward)
            length += 1
            steps += 1
            done = terminated or truncated
            if progress and steps % 100 == 0 and time.perf_counter() - shown > 0.5:  # a long episode shows it plays
                show(total, refresh=True)
                shown = time.perf_counter()
        if not done and stopping():
            break
        cut_short = not done
        if done or not returns:
            returns.append(total)
            lengths.append(length)
        if cut_short:
            break
        show(None, refresh=False)
        bar.update(1)
    bar.close()
    return EvalResult(np.array(returns), np.array(lengths, dtype=np.int64), time.perf_counter() - started, cut_short,
        stopping())


@dataclass(frozen=True)
class TrainPlan:
    """What one call of train() does and when; cadences in env steps, 0 for never. start_step > 0 resumes a run."""

    total_steps: int
    seed: int
    eval_every_steps: int = 0
    eval_episodes: int = 10
    eval_max_steps: int | None = None
    log_every_steps: int = 1000
    checkpoint_every_steps: int = 0
    progress: bool = True
    start_step: int = 0


class Stopwatch:
    """Training seconds: wall time since start, less the time spent inside off_clock() (evaluations, videos)."""

    def __init__(self, *, step: int = 0, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = clock()
        self._off = 0.0
        self._lap_step, self._lap_seconds = step, 0.0

    @contextmanager
    def off_clock(self) -> Iterator[None]:
        paused = self._clock()
        try:
            yield
        finally:
            self._off += self._clock() - paused

    def seconds(self) -> float:
        return self._clock() - self._started - self._off

    def lap(self, step: int) -> float:
        """Env steps per training second since the previous lap (or the start)."""
        seconds = self.seconds()
        rate = (step - self._lap_step) / max(seconds - self._lap_seconds, 1e-9)
        self._lap_step, self._lap_seconds = step, seconds
        return rate


@dataclass(frozen=True)
class Cadence:
    """The loop's four "every N steps" events; one the run lacks the part for (no eval env, no saver) is Every(0)."""

    log: Every
    eval: Every
    video: Every
    checkpoint: Every

    def next_event(self, step: int) -> int:
        """The first step after `step` at which any event is due: before it the loop only acts, steps and observes."""
        return min(every.next_after(step) for every in (self.log, self.eval, self.video, self.checkpoint))


class EpisodeWindow:
    """Episodes that ended since the last log line, logged as window means: one event per window, not per episode,
    keeps TensorBoard from costing more than the env on short-episode tasks like Taxi."""

    def __init__(self) -> None:
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.episodes = 0

    def add(self, episode_return: float, length: int) -> None:
        self.returns.append(float(episode_return))
        self.lengths.append(int(length))

    def add_vector(self, info: Mapping[str, Any]) -> None:
        """The episodes a vector env's step ended, as RecordEpisodeStatistics marks them in info["_episode"]."""
        if "episode" in info:
            for i in np.flatnonzero(info["_episode"]):
                self.add(info["episode"]["r"][i], info["episode"]["l"][i])

    def add_single(self, info: Mapping[str, Any]) -> None:
        """The episode a single env's step ended."""
        if "episode" in info:  # absent when a lost life ended the episode but not the game (Atari)
            self.add(info["episode"]["r"], info["episode"]["l"])

    def flush(self) -> dict[str, float]:
        if not self.returns:
            return {}
        means = {tb.EPISODIC_RETURN: float(np.mean(self.returns)), tb.EPISODIC_LENGTH: float(np.mean(self.lengths))}
        self.episodes += len(self.returns)
        self.returns.clear()
        self.lengths.clear()
        return means


def train(
    *, env: gym.Env | gym.vector.VectorEnv, agent: Agent, plan: TrainPlan, logger: tb.Logger,
    eval_env: gym.Env | None = None, saver: Saver | None = None, stop: StopRequest | None = None,
    video: VideoRecorder | None = None,
) -> TrainResult:
    """Act, step, observe, log, evaluate, checkpoint; env steps count every copy. A resumed run (plan.start_step > 0)
    resets without a seed, continuing the restored RNGs; `stop.requested` ends the loop after the current step."""
    vector = isinstance(env, gym.vector.VectorEnv)
    num_envs = env.num_envs if vector else 1
    obs, _ = env.reset(seed=plan.seed if plan.start_step == 0 else None)
    valid = np.ones(num_envs, dtype=bool) if vector else True
    step = plan.start_step
    result = TrainResult(steps=step, episodes=0, train_seconds=0.0, start_step=step)
    cadence = Cadence(
        log=Every(plan.log_every_steps), eval=Every(plan.eval_every_steps if eval_env is not None else 0),
        video=Every(video.every_steps if video is not None else 0),
        checkpoint=Every(plan.checkpoint_every_steps if saver is not None else 0),
    )
    next_event = cadence.next_event(step)
    window = EpisodeWindow()
    bar = tqdm(total=plan.total_steps, initial=step, unit="step", disable=not plan.progress, mininterval=0.5,
        dynamic_ncols=True)
    clock = Stopwatch(step=step)  # evaluations and videos run off the training clock

    while step < plan.total_steps:
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        metrics = agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated, valid))
        step += num_envs
        if metrics:
            check_finite_loss(agent, step=step)  # a diverged network stops the run before it is logged or saved
            logger.scalars(metrics, step)
        if vector:
            valid = ~(terminated | truncated)  # the next step of these copies is gymnasium's autoreset step
            window.add_vector(info)
        elif terminated or truncated:
            window.add_single(info)
            next_obs, _ = env.reset()
        obs = next_obs
        if stop is not None and stop.requested:
            break
        if step < next_event:
            continue
        before = step - num_envs  # a vector env's step crosses a multiple without landing on it
        if cadence.log.crossed(before, step):
            _log_window(logger, window, result, bar, step=step, steps_per_sec=clock.lap(step))
        if cadence.checkpoint.crossed(before, step) and step < plan.total_steps:
            logger.flush()  # every point up to a checkpoint is on disk with it: a resume keeps them all
            saver.save(step)  # before the evaluation: a stop during it loses no step
        if cadence.eval.crossed(before, step) and step < plan.total_steps:  # on the live weights, off the clock
            trained_seconds = clock.seconds()
            with clock.off_clock():
                evaluation = evaluate(
                    eval_env, agent.policy(), episodes=plan.eval_episodes, seed=plan.seed + 10_000 + step,
                    max_steps=plan.eval_max_steps, progress=plan.progress, desc=f"evaluation at step {step:,}",
                    stop=stop,
                )
            if evaluation.stopped:  # saved below at this step, as a stop during training is
                break
            result.evaluations.append(Evaluation(step, trained_seconds, evaluation))
            logger.scalars(tb.evaluation_metrics(evaluation.mean, evaluation.std, evaluation.seconds), step)
        if cadence.video.crossed(before, step):  # also at the last step: the trained agent's episode
            with clock.off_clock(), one_torch_thread():
                video.record(agent.policy(), step)
        next_event = cadence.next_event(step)
    result.steps, result.interrupted, result.train_seconds = step, step < plan.total_steps, clock.seconds()
    logger.scalars(window.flush(), step)  # the last window's episodes
    result.episodes = window.episodes
    bar.update(step - bar.n)
    bar.close()
    if saver is not None:  # the final checkpoint, an interrupted run's too
        logger.flush()
        saver.save(step)
    return result


def _log_window(logger: tb.Logger, window: EpisodeWindow, result: TrainResult, bar: tqdm, *, step: int,
        steps_per_sec: float) -> None:
    """One log line: training speed and the episodes that ended in the window, which also make the learning curve."""
    line = {tb.STEPS_PER_SEC: steps_per_sec, **window.flush()}
    logger.scalars(line, step)
    if tb.EPISODIC_RETURN in line:
        result.train_returns.append((step, line[tb.EPISODIC_RETURN]))
        bar.set_postfix(episodes=window.episodes, ret=f"{line[tb.EPISODIC_RETURN]:.2f}", refresh=False)
    bar.update(step - bar.n)
