import gymnasium as gym
import pytest

from rlkit.envs.builders import check_env_config, make_env, make_train_env
from rlkit.envs.gym import resolve_env_id
from rlkit.errors import RlkitError


def test_taxi_v3_resolves_on_this_gymnasium():
    env_id = resolve_env_id("Taxi-v3")
    assert env_id in gym.envs.registry
    assert env_id in ("Taxi-v3", "Taxi-v4")
    env = make_env({"id": "Taxi-v3"})
    assert env.observation_space.n == 500 and env.action_space.n == 6


def test_unknown_env_id_is_a_clear_error():
    with pytest.raises(RlkitError, match="gymnasium has no env 'Nope-v9'"):
        resolve_env_id("Nope-v9")


def test_num_envs_builds_a_vector_env():
    env = make_train_env({"id": "FrozenLake-v1", "num_envs": 3, "vectorization_mode": "sync"})
    assert isinstance(env, gym.vector.VectorEnv) and env.num_envs == 3


@pytest.mark.parametrize("bad,message", [
    ({"num_envs": 0}, r"^env\.num_envs must be >= 1, got 0$"),
    ({"num_envs": 2, "vectorization_mode": "threads"},
        r"^env\.vectorization_mode=threads is not valid; choose sync or async$"),
])
def test_bad_vector_settings_are_refused_by_name_before_any_copy_is_made(bad, message):
    with pytest.raises(RlkitError, match=message):
        make_train_env({"id": "FrozenLake-v1", **bad})
    with pytest.raises(RlkitError, match=message):
        check_env_config({"id": "FrozenLake-v1", **bad})  # the same line when a config is checked before building


def test_a_stored_env_node_names_the_file_it_came_from():
    with pytest.raises(RlkitError,
            match=r"^env\.vectorization_mode=threads in run/checkpoint\.pt is not valid; choose sync or async$"):
        check_env_config({"id": "FrozenLake-v1", "vectorization_mode": "threads"}, origin="run/checkpoint.pt")


def test_max_episode_steps_override():
    env = make_env({"id": "CliffWalking-v1", "max_episode_steps": 5})
    env.reset(seed=0)
    for _ in range(4):
        assert not env.step(0)[3]
    assert env.step(0)[3]
