import gymnasium as gym
import pytest

from rlkit.envs import make_env, make_train_env, resolve_env_id
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


@pytest.mark.parametrize("bad", [{"num_envs": 0}, {"num_envs": 2, "vectorization_mode": "threads"}])
def test_bad_vector_settings(bad):
    with pytest.raises(RlkitError):
        make_train_env({"id": "FrozenLake-v1", **bad})


def test_max_episode_steps_override():
    env = make_env({"id": "CliffWalking-v1", "max_episode_steps": 5})
    env.reset(seed=0)
    for _ in range(4):
        assert not env.step(0)[3]
    assert env.step(0)[3]
