"""Env names -> gymnasium ids, single and vector env construction, and the space checks agents need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordEpisodeStatistics

from rlkit.atari import make_atari_env, make_atari_train_env
from rlkit.errors import RlkitError

# gymnasium 1.3+ registers Taxi as v4 (same default dynamics) and raises DeprecatedEnv for v3; older
# releases only know v3. We ask for what the user named and take its registered successor if needed.
ENV_ID_SUCCESSORS = {"Taxi-v3": "Taxi-v4"}
ENV_ID_PREDECESSORS = {new: old for old, new in ENV_ID_SUCCESSORS.items()}


def resolve_env_id(env_id: str) -> str:
    """Return the id under which this gymnasium release registers `env_id` (or its twin)."""
    registry = gym.envs.registry
    if env_id in registry:
        return env_id
    for twin in (ENV_ID_SUCCESSORS.get(env_id), ENV_ID_PREDECESSORS.get(env_id)):
        if twin is not None and twin in registry:
            return twin
    known = sorted(k for k in registry if "/" not in k)[:12]
    raise RlkitError(f"gymnasium has no env '{env_id}'; registered ids include: {', '.join(known)}, ...")


def _env_kwargs(env_cfg: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(env_cfg.get("kwargs") or {})
    if env_cfg.get("max_episode_steps") is not None:
        kwargs["max_episode_steps"] = int(env_cfg["max_episode_steps"])
    return kwargs


def make_env(env_cfg: Mapping[str, Any], *, render_mode: str | None = None) -> gym.Env:
    """One env for evaluation or play: no episode statistics, render mode as asked."""
    if env_cfg.get("kind") == "atari":
        return make_atari_env(env_cfg, train=False, render_mode=render_mode)
    env_id = resolve_env_id(str(env_cfg["id"]))
    kwargs = _env_kwargs(env_cfg)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        return gym.make(env_id, disable_env_checker=True, **kwargs)
    except TypeError as exc:
        raise RlkitError(f"env={env_cfg.get('name')} ({env_id}) rejected its kwargs: {exc}") from exc


def make_train_env(env_cfg: Mapping[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """The training env: a plain env when num_envs is 1 (fastest), else gymnasium.make_vec."""
    num_envs = int(env_cfg.get("num_envs", 1))
    if num_envs < 1:
        raise RlkitError(f"env.num_envs must be >= 1, got {num_envs}")
    mode = str(env_cfg.get("vectorization_mode", "sync"))
    if mode not in ("sync", "async"):
        raise RlkitError(f"env.vectorization_mode={mode} is not valid; choose sync or async")
    if env_cfg.get("kind") == "atari":
        return make_atari_train_env(env_cfg)
    if num_envs == 1:
        return RecordEpisodeStatistics(make_env(env_cfg))
    env_id = resolve_env_id(str(env_cfg["id"]))
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **_env_kwargs(env_cfg))
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def single_spaces(env: gym.Env | gym.vector.VectorEnv) -> tuple[gym.Space, gym.Space]:
    """(observation_space, action_space) of one copy of the env, vector or not."""
    if isinstance(env, gym.vector.VectorEnv):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def require_discrete(space: gym.Space, *, what: str, agent: str, fix: str) -> int:
    """Number of values of a Discrete space, or a clear error naming the fix."""
    if not isinstance(space, gym.spaces.Discrete):
        raise RlkitError(f"agent={agent} needs a discrete {what} space, but the env has {space}; {fix}")
    return int(space.n)


def env_rng_state(env: gym.Env | gym.vector.VectorEnv) -> list[dict[str, Any]]:
    """Bit-generator state of every env copy, as plain data, so a resumed run draws the same resets."""
    if isinstance(env, gym.vector.VectorEnv):
        generators = env.unwrapped.get_attr("np_random")
    else:
        generators = [env.unwrapped.np_random]
    return [g.bit_generator.state for g in generators]


def set_env_rng_state(env: gym.Env | gym.vector.VectorEnv, states: list[dict[str, Any]]) -> None:
    generators = []
    for state in states:
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
        generators.append(np.random.Generator(bit_generator))
    if isinstance(env, gym.vector.VectorEnv):
        env.unwrapped.set_attr("np_random", generators)
    else:
        env.unwrapped.np_random = generators[0]
