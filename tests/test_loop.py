"""The one loop: exact episode boundaries, schedules, and vector envs for tabular and DQN alike."""

import functools
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import build_dqn_for

from rlkit import tb
from rlkit.agents.base import NO_METRICS, Transition
from rlkit.agents.dqn import DQNAgent
from rlkit.agents.tabular import QLearningAgent
from rlkit.envs.builders import make_train_env, single_spaces
from rlkit.loop import TrainPlan, evaluate, train
from rlkit.nets import MLPBody


class ZeroPolicy:
    """Always action 0; all zeros as Q-values."""

    def act(self, obs):
        return np.zeros(len(obs), dtype=np.int64) if isinstance(obs, np.ndarray) else 0

    def q_values(self, obs):
        return np.zeros(2)


class RecordingAgent:
    """Always plays action 0 and keeps every transition it is shown."""

    def __init__(self):
        self.seen: list[Transition] = []

    def act(self, obs, *, explore):
        return np.zeros(len(obs), dtype=np.int64) if isinstance(obs, np.ndarray) else 0

    def observe(self, transition):
        self.seen.append(transition)
        return NO_METRICS

    def policy(self):
        return ZeroPolicy()

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_vector_env_marks_autoreset_steps_invalid():
    env = make_train_env({"id": "rlkit-test/Counting-v0", "kwargs": {"length": 3}, "num_envs": 2})
    agent = RecordingAgent()
    result = train(env=env, agent=agent, plan=TrainPlan(total_steps=16, seed=0, progress=False), logger=tb.Logger(None))
    assert result.steps == 16
    pairs = []
    for t in agent.seen:
        for i in range(2):
            pairs.append((int(t.obs[i]), int(t.next_obs[i]), bool(t.valid[i]), float(t.reward[i])))
    valid = [(o, n, r) for o, n, ok, r in pairs if ok]
    invalid = [(o, n) for o, n, ok, _ in pairs if not ok]
    assert all(n == o + 1 and r == o for o, n, r in valid)  # never across an episode boundary
    assert invalid and all((o, n) == (3, 0) for o, n in invalid)  # exactly the autoreset steps
    assert result.episodes == 4  # each copy: 3 valid steps + 1 reset step per episode, 8 steps each


def test_single_env_resets_itself_and_counts_episodes():
    env = make_train_env({"id": "rlkit-test/Counting-v0", "kwargs": {"length": 3}, "num_envs": 1})
    agent = RecordingAgent()
    result = train(env=env, agent=agent, plan=TrainPlan(total_steps=9, seed=0, progress=False), logger=tb.Logger(None))
    assert [(t.obs, t.next_obs) for t in agent.seen] == [(0, 1), (1, 2), (2, 3)] * 3
    assert [t.terminated for t in agent.seen] == [False, False, True] * 3
    assert result.episodes == 3


def test_evaluate_sums_unclipped_rewards():
    env = gym.make("rlkit-test/Counting-v0", length=4)
    result = evaluate(env, ZeroPolicy(), episodes=3, seed=0)
    np.testing.assert_array_equal(result.returns, [6.0, 6.0, 6.0])
    np.testing.assert_array_equal(result.lengths, [4, 4, 4])


def test_evaluate_stops_at_its_step_budget_and_counts_only_whole_episodes():
    env = gym.make("rlkit-test/Counting-v0", length=4)
    result = evaluate(env, ZeroPolicy(), episodes=3, seed=0, max_steps=10)  # 4 + 4 steps, then 2 of the third
    assert (result.returns.tolist(), result.lengths.tolist(), result.cut_short) == ([6.0, 6.0], [4, 4], True)
    first_only = evaluate(env, ZeroPolicy(), episodes=3, seed=0, max_steps=3)  # none ends: the cut one counts
    assert (first_only.returns.tolist(), first_only.lengths.tolist(), first_only.cut_short) == ([3.0], [3], True)
    whole = evaluate(env, ZeroPolicy(), episodes=3, seed=0, max_steps=12)
    assert (whole.episodes, whole.cut_short) == (3, False)


class SlowPolicy(ZeroPolicy):
    """50 ms a step: each 4-step episode outlasts the bar's 0.1 s refresh interval, so every update is drawn."""

    def act(self, obs):
        time.sleep(0.05)
        return super().act(obs)


def test_evaluate_shows_episodes_and_the_mean_so_far_on_stderr(capsys):
    env = gym.make("rlkit-test/Counting-v0", length=4)
    evaluate(env, SlowPolicy(), episodes=3, seed=0, progress=True, desc="final evaluation")
    out, err = capsys.readouterr()
    assert out == "" and "final evaluation" in err and "3/3" in err and "mean 6.00, 12 steps" in err
    evaluate(env, ZeroPolicy(), episodes=3, seed=0, progress=False)
    assert capsys.readouterr() == ("", "")


def test_greedy_episodes_act_on_one_torch_thread_and_the_run_keeps_its_own():
    """One observation at a time: a second thread waiting for a busy core made Pong's evaluation 4-9x slower."""
    seen = []

    class ThreadsPolicy(ZeroPolicy):
        def act(self, obs):
            seen.append(torch.get_num_threads())
            return super().act(obs)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        evaluate(gym.make("rlkit-test/Counting-v0", length=3), ThreadsPolicy(), episodes=2, seed=0)
        assert seen == [1] * 6 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class RecordingLogger(tb.Logger):
    """Keeps every scalar it is given: {tag: {step: value}}."""

    def __init__(self) -> None:
        super().__init__(None)
        self.logged: dict[str, dict[int, float]] = {}

    def scalars(self, metrics, step):
        for tag, value in metrics.items():
            self.logged.setdefault(tag, {})[step] = value


def test_each_evaluation_logs_its_seconds_and_stays_off_the_training_clock():
    env = make_train_env({"id": "rlkit-test/Counting-v0", "kwargs": {"length": 3}, "num_envs": 1})
    eval_env = gym.make("rlkit-test/Counting-v0", length=3)
    logger = RecordingLogger()
    plan = TrainPlan(total_steps=100, seed=0, eval_every_steps=30, eval_episodes=2, progress=False)
    result = train(env=env, agent=RecordingAgent(), plan=plan, logger=logger, eval_env=eval_env)
    seconds = logger.logged[tb.EVAL_SECONDS]
    assert sorted(seconds) == [30, 60,
        90] and [seconds[e.step] for e in result.evaluations] == [e.result.seconds for e in result.evaluations]
    assert result.eval_seconds == pytest.approx(sum(seconds.values())) and all(s > 0 for s in seconds.values())


def test_periodic_evaluations_happen_on_schedule():
    env = make_train_env({"id": "rlkit-test/Counting-v0", "kwargs": {"length": 3}, "num_envs": 1})
    eval_env = gym.make("rlkit-test/Counting-v0", length=3)
    plan = TrainPlan(total_steps=100, seed=0, eval_every_steps=30, eval_episodes=2, progress=False)
    result = train(env=env, agent=RecordingAgent(), plan=plan, logger=tb.Logger(None), eval_env=eval_env)
    assert [e.step for e in result.evaluations] == [30, 60, 90]
    assert all(0 < a.train_seconds < b.train_seconds
        for a, b in zip(result.evaluations, result.evaluations[1:], strict=False))


def test_train_returns_are_window_means_of_ended_episodes():
    env = make_train_env({"id": "rlkit-test/Counting-v0", "kwargs": {"length": 3}, "num_envs": 1})
    result = train(env=env, agent=RecordingAgent(), plan=TrainPlan(total_steps=8, seed=0, log_every_steps=2,
        progress=False), logger=tb.Logger(None))
    # Episodes (return 0+1+2) end at steps 3 and 6; the windows ending at 2 and 8 saw none and add no point.
    assert result.train_returns == [(4, 3.0), (6, 3.0)]


def dqn(observation_space: gym.Space, action_space: gym.Space, *, num_envs: int) -> DQNAgent:
    net, optimizer = functools.partial(MLPBody, hidden=(16,)), functools.partial(torch.optim.Adam, lr=1e-3)
    return build_dqn_for(observation_space, action_space, num_envs=num_envs, net=net, optimizer=optimizer,
        learning_starts_steps=100,
                         batch_size=16)


def q_learning(observation_space: gym.Space, action_space: gym.Space, *, num_envs: int) -> QLearningAgent:
    del num_envs  # a table learns from each transition as it comes: it keeps no per-copy replay
    return QLearningAgent(observation_space=observation_space, action_space=action_space, learning_rate=0.5, gamma=0.9,
                          epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=1000)


@pytest.mark.parametrize(
    ("env_id", "make_agent", "mode"),
    [("CartPole-v1", dqn, "sync"), ("CartPole-v1", dqn, "async"), ("FrozenLake-v1", q_learning, "sync")],
)
def test_vector_envs_train_both_kinds_of_agent(env_id: str, make_agent, mode: str) -> None:
    env = make_train_env({"id": env_id, "num_envs": 3, "vectorization_mode": mode})
    assert isinstance(env, gym.vector.VectorEnv) and env.num_envs == 3
    agent = make_agent(*single_spaces(env), num_envs=env.num_envs)
    try:
        result = train(env=env, agent=agent, plan=TrainPlan(total_steps=600, seed=0, progress=False),
            logger=tb.Logger(None))
    finally:
        env.close()
    assert result.steps == 600 and agent.steps == 600 and result.episodes > 0


def test_the_stopwatch_keeps_off_clock_time_out_of_training_seconds_and_laps():
    from rlkit.loop import Stopwatch

    now = [100.0]
    clock = Stopwatch(step=50, clock=lambda: now[0])
    now[0] = 110.0
    with clock.off_clock():  # an evaluation from 110 to 113
        now[0] = 113.0
    now[0] = 120.0
    assert clock.seconds() == 17.0
    assert clock.lap(220) == 10.0  # (220 - 50) steps in 17 training seconds
    with pytest.raises(KeyError):
        with clock.off_clock():  # a failing video still stops the clock it paused
            now[0] = 125.0
            raise KeyError("boom")
    now[0] = 127.0
    assert clock.seconds() == 19.0 and clock.lap(240) == 10.0  # 20 steps in the 2 training seconds since the lap


def test_events_fire_at_each_multiple_crossed_by_a_vector_env():
    """Three copies step 3 at a time: an every-10 event fires at the first step past each multiple (12, 21, 30, ...)."""
    env = make_train_env({"id": "rlkit-test/Counting-v0", "kwargs": {"length": 3}, "num_envs": 3})
    eval_env = gym.make("rlkit-test/Counting-v0", length=3)
    logger = RecordingLogger()
    plan = TrainPlan(total_steps=60, seed=0, eval_every_steps=10, eval_episodes=1, log_every_steps=20, progress=False)
    result = train(env=env, agent=RecordingAgent(), plan=plan, logger=logger, eval_env=eval_env)
    assert [e.step for e in result.evaluations] == [12, 21, 30, 42,
        51]  # 60 is the end: the final evaluation is the caller's
    assert sorted(logger.logged[tb.STEPS_PER_SEC]) == [21, 42, 60]
