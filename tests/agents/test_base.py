"""The learning maths of rlkit.agents.base as pure functions: schedules, epsilon-greedy, the Every cadence,
space checks."""

import re
import sys

import gymnasium as gym
import numpy as np
import pytest

from rlkit.agents.base import (
    Agent,
    Every,
    Policy,
    QValues,
    ReplayOwner,
    Transition,
    check_unit_interval,
    epsilon_greedy,
    linear_schedule,
    require_discrete,
)
from rlkit.agents.tabular import QLearningAgent
from rlkit.errors import RlkitError


# linear_schedule: values chosen to be exact in binary, so == is fair.
@pytest.mark.parametrize("step,expected", [(0, 1.0), (1, 0.75), (2, 0.5), (3, 0.25), (4, 0.0), (5, 0.0), (10**9, 0.0)])
def test_linear_schedule_falls_from_start_to_end_then_holds(step, expected):
    assert linear_schedule(start=1.0, end=0.0, duration_steps=4, step=step) == expected


@pytest.mark.parametrize("step,expected", [(0, 0.5), (2, 0.625), (4, 0.75), (8, 1.0), (9, 1.0)])
def test_linear_schedule_also_rises(step, expected):
    """Prioritized replay's beta rises towards 1 on the same schedule."""
    assert linear_schedule(start=0.5, end=1.0, duration_steps=8, step=step) == expected


@pytest.mark.parametrize("duration_steps", [0, -5])
def test_linear_schedule_of_no_duration_is_the_end_value_from_the_first_step(duration_steps):
    assert linear_schedule(start=1.0, end=0.05, duration_steps=duration_steps, step=0) == 0.05


# epsilon_greedy


def test_epsilon_zero_picks_each_rows_argmax_and_the_first_of_tied_actions():
    q_values_BA = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0], [0.0, 0.0, 0.0], [-3.0, -1.0, -1.0]])
    before = q_values_BA.copy()
    actions_B = epsilon_greedy(q_values_BA, epsilon=0.0, rng=np.random.default_rng(0))
    assert actions_B.tolist() == [1, 0, 0, 1]
    assert actions_B.shape == (4,) and actions_B.dtype == np.int64
    np.testing.assert_array_equal(q_values_BA, before)  # the Q-values are read, never written


def test_epsilon_one_ignores_the_values_and_covers_every_action_evenly():
    q_values_BA = np.tile(np.array([0.0, 0.0, 9.0, 0.0]), (4000, 1))  # greedy would always say 2
    actions_B = epsilon_greedy(q_values_BA, epsilon=1.0, rng=np.random.default_rng(1))
    counts = np.bincount(actions_B, minlength=4)
    assert actions_B.shape == (4000,) and counts.sum() == 4000
    assert counts.min() > 900 and counts.max() < 1100  # 1000 expected each, standard deviation 27


def test_epsilon_one_quarter_explores_a_quarter_of_the_rows():
    """P(greedy action) = 1 - epsilon + epsilon / actions = 0.8125 with 4 actions."""
    q_values_BA = np.tile(np.array([9.0, 0.0, 0.0, 0.0]), (4000, 1))
    actions_B = epsilon_greedy(q_values_BA, epsilon=0.25, rng=np.random.default_rng(2))
    greedy = int((actions_B == 0).sum())
    assert 3150 < greedy < 3350  # 3250 expected, standard deviation 25
    assert set(actions_B[actions_B != 0].tolist()) == {1, 2, 3}


def test_epsilon_greedy_is_reproducible_from_the_seed():
    q_values_BA = np.zeros((50, 6))
    first = epsilon_greedy(q_values_BA, epsilon=0.5, rng=np.random.default_rng(7))
    again = epsilon_greedy(q_values_BA, epsilon=0.5, rng=np.random.default_rng(7))
    other = epsilon_greedy(q_values_BA, epsilon=0.5, rng=np.random.default_rng(8))
    assert first.tolist() == again.tolist() and first.tolist() != other.tolist()


# Every: how many multiples of every_steps lie in (prev_step, step], and the next one


@pytest.mark.parametrize(
    "prev_step,step,every_steps,expected",
    [
        (3, 9, 4, 2),  # 4 and 8
        (4, 8, 4, 1),  # 8; 4 was counted when it was reached
        (0, 4, 4, 1),
        (5, 7, 4, 0),
        (7, 8, 4, 1),
        (8, 8, 4, 0),  # no step taken
        (0, 100, 10, 10),
        (0, 1, 1, 1),
        (96, 104, 8, 1),  # 8 env copies step together: one multiple of 8 passed, not eight
        (999, 1007, 1000, 1),
    ],
)
def test_every_counts_multiples_in_the_half_open_interval(prev_step, step, every_steps, expected):
    assert Every(every_steps).crossed(prev_step, step) == expected


def test_every_agrees_with_counting_one_step_at_a_time():
    for every_steps in (1, 3, 4, 7):
        for prev_step in range(0, 20):
            for step in range(prev_step, prev_step + 15):
                counted = sum(1 for s in range(prev_step + 1, step + 1) if s % every_steps == 0)
                assert Every(every_steps).crossed(prev_step, step) == counted, (prev_step, step, every_steps)


@pytest.mark.parametrize("num_envs", [1, 3, 8, 16])
def test_every_fires_once_per_multiple_passed_when_a_vector_env_jumps_num_envs_steps(num_envs):
    """The steps at which an event fires, stepping num_envs at a time: never equality, so no multiple is skipped."""
    every, fired, next_at = Every(10), [], Every(10).next_after(0)
    for step in range(num_envs, 100 + 1, num_envs):
        if step >= next_at:  # the loop's hot-path test; crossed() says how many
            fired.append((step, every.crossed(step - num_envs, step)))
            next_at = every.next_after(step)
    expected = {1: [(s, 1) for s in range(10, 101, 10)],
                3: [(12, 1), (21, 1), (30, 1), (42, 1), (51, 1), (60, 1), (72, 1), (81, 1), (90, 1)],
                8: [(16, 1), (24, 1), (32, 1), (40, 1), (56, 1), (64, 1), (72, 1), (80, 1), (96, 1)],
                16: [(16, 1), (32, 2), (48, 1), (64, 2), (80, 2), (96, 1)]}[num_envs]  # 20 and 30 in one jump
    assert fired == expected


def test_every_jumps_over_several_multiples_and_zero_means_never():
    assert Every(4).crossed(0, 16) == 4 and Every(4).next_after(16) == 20 and Every(4).next_after(17) == 20
    assert Every(0).crossed(0, 10**9) == 0 and Every(0).next_after(5) == sys.maxsize
    assert Every(-3).crossed(0, 30) == 0


# check_unit_interval and require_discrete: refusals name the key and the bad value


def test_check_unit_interval_accepts_the_closed_interval():
    assert check_unit_interval(epsilon_start=1.0, epsilon_end=0.0) is None


@pytest.mark.parametrize("values,message", [
    ({"epsilon_start": 1.5, "epsilon_end": 0.1}, "agent.epsilon_start must be in [0, 1], got 1.5"),
    ({"epsilon_start": 1.0, "epsilon_end": -0.25}, "agent.epsilon_end must be in [0, 1], got -0.25"),
    ({"epsilon_start": 5, "epsilon_end": 7}, "agent.epsilon_start must be in [0, 1], got 5"),  # the first bad one
])
def test_check_unit_interval_names_the_bad_key_and_value(values, message):
    with pytest.raises(RlkitError, match=f"^{re.escape(message)}$"):
        check_unit_interval(**values)


def test_require_discrete_returns_the_number_of_values():
    assert require_discrete(gym.spaces.Discrete(500), what="observation", agent="q_learning", fix="unused") == 500


@pytest.mark.parametrize("space,shown", [
    (gym.spaces.Box(-1.0, 1.0, (4,)), "Box(-1.0, 1.0, (4,), float32)"),
    (gym.spaces.MultiDiscrete([2, 3]), "MultiDiscrete([2 3])"),
])
def test_require_discrete_refuses_other_spaces_naming_the_space_and_the_fix(space, shown):
    message = f"agent=q_learning needs a discrete observation space, but the env has {shown}; use agent=dqn"
    with pytest.raises(RlkitError, match=f"^{re.escape(message)}$"):
        require_discrete(space, what="observation", agent="q_learning", fix="use agent=dqn")


# The interface: a Transition defaults to valid, and the tabular agent fits the protocols it claims


def test_a_transition_is_valid_unless_marked_as_an_autoreset_step():
    assert Transition(0, 1, 2.0, 3, False, True).valid is True
    assert Transition(0, 1, 2.0, 3, False, True, valid=False)[-1] is False


def test_the_tabular_agent_is_an_agent_with_q_values_and_no_replay():
    agent = QLearningAgent(
        observation_space=gym.spaces.Discrete(3), action_space=gym.spaces.Discrete(2), learning_rate=0.5, gamma=0.9,
        epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=10,
    )
    assert (isinstance(agent, Agent), isinstance(agent, QValues), isinstance(agent, ReplayOwner)) == (True, True, False)
    assert isinstance(agent.policy(), Policy) and not hasattr(agent.policy(), "observe")
