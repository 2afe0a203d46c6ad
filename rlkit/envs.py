"""Env names -> gymnasium ids, single and vector env construction, and the space checks agents need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import RecordEpisodeStatistics

from rlkit.atari import ATARI_SETTINGS, atari_env_id, make_atari_env, make_atari_train_env
from rlkit.errors import RlkitError
from rlkit.plain import check_value, refuse_code, show, where_in

# gymnasium 1.3+ registers Taxi as v4 (same default dynamics) and raises DeprecatedEnv for v3; older
# releases only know v3. We ask for what the user named and take its registered successor if needed.
ENV_ID_SUCCESSORS = {"Taxi-v3": "Taxi-v4"}
ENV_ID_PREDECESSORS = {new: old for old, new in ENV_ID_SUCCESSORS.items()}
# What an env node may hold, and the type of each value (env.kwargs: plain values for gymnasium.make).
ENV_SETTINGS: dict[str, Any] = {
    "name": str, "id": str, "kwargs": Any, "max_episode_steps": int | None, "num_envs": int,
    "vectorization_mode": str, "render_mode": str | None,
}
VECTORIZATION_MODES = ("sync", "async")


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


def check_env_config(env_cfg: Any, *, origin: str = "") -> None:
    """The env node as plain data: known settings, plain values, counts in range (env.max_episode_steps=-1 hung)."""
    refuse_code(env_cfg, "env", origin)
    if not isinstance(env_cfg, Mapping):
        raise RlkitError(f"{where_in('env', origin)} must be a mapping of env settings, got {show(env_cfg)}")
    settings = {**ENV_SETTINGS, **(ATARI_SETTINGS if env_cfg.get("kind") == "atari" else {})}
    for key, value in env_cfg.items():
        if key not in settings:
            raise RlkitError(f"{where_in('env.' + key, origin)} is not an env setting; env nodes hold: {', '.join(settings)}")
        if key != "kwargs":
            check_value(value, settings[key], f"env.{key}", origin)
    kwargs = env_cfg.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise RlkitError(f"{where_in('env.kwargs', origin)}={show(kwargs)} must be a mapping of gymnasium.make keyword arguments")
    for key, value in kwargs.items():
        check_value(value, Any, f"env.kwargs.{key}", origin)
    steps = env_cfg.get("max_episode_steps")
    if steps is not None and steps < 1:
        raise RlkitError(f"{where_in('env.max_episode_steps', origin)} must be >= 1 or null (the registered limit), got {steps}")
    if env_cfg.get("num_envs", 1) < 1:
        raise RlkitError(f"{where_in('env.num_envs', origin)} must be >= 1, got {env_cfg.get('num_envs')}")
    if env_cfg.get("vectorization_mode", "sync") not in VECTORIZATION_MODES:
        raise RlkitError(f"env.vectorization_mode={env_cfg.get('vectorization_mode')} is not valid; choose sync or async")
    if env_cfg.get("kind", "atari") != "atari":
        raise RlkitError(f"{where_in('env.kind', origin)}={show(env_cfg.get('kind'))} is not known; the only kind is atari")
    if "id" not in env_cfg and env_cfg.get("kind") != "atari":
        raise RlkitError(f"{where_in('env', origin)} names no env.id")


def check_stored_env(env_cfg: Mapping[str, Any], *, origin: str) -> None:
    """An env read from a run folder: checked as data, and only ids this installation registers, never module:Id.

    gymnasium imports the module named before a ':' in an id; a run folder must not choose code to import.
    """
    check_env_config(env_cfg, origin=origin)
    if env_cfg.get("kind") == "atari":
        atari_env_id(str(env_cfg.get("game")))
        return
    env_id = str(env_cfg["id"])
    if ":" in env_id:
        raise RlkitError(f"env.id={show(env_id)} in {origin}: a run folder may not name a module to import (module:EnvId)")
    resolve_env_id(env_id)


def _env_kwargs(env_cfg: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(env_cfg.get("kwargs") or {})
    steps = env_cfg.get("max_episode_steps")
    if steps is not None:
        if int(steps) < 1:  # gymnasium's TimeLimit would never end an episode: a hang, not an error
            raise RlkitError(f"env.max_episode_steps must be >= 1 or null (the registered limit), got {steps}")
        kwargs["max_episode_steps"] = int(steps)
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
    except (TypeError, KeyError, ValueError, AssertionError) as exc:  # e.g. FrozenLake's map_name=9x9: KeyError
        settings = ", ".join(f"{k}={show(v)}" for k, v in kwargs.items())
        raise RlkitError(f"env={env_cfg.get('name')} ({env_id}) refuses env.kwargs {settings}: {type(exc).__name__} {exc}") from None


def make_train_env(env_cfg: Mapping[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """The training env: a plain env when num_envs is 1 (fastest), else gymnasium.make_vec."""
    num_envs = int(env_cfg.get("num_envs", 1))
    if num_envs < 1:
        raise RlkitError(f"env.num_envs must be >= 1, got {num_envs}")
    mode = str(env_cfg.get("vectorization_mode", "sync"))
    if mode not in VECTORIZATION_MODES:
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
