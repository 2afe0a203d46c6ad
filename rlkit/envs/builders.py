"""Env config nodes to gymnasium envs through builders a run folder names (never code), and the parts they call for."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordEpisodeStatistics, TimeLimit, TransformObservation

from rlkit.envs.gym import COMMAND_LINE_ENV_MODULES, ENV_ID_SUCCESSORS, resolve_env_id
from rlkit.errors import RlkitError, one_line
from rlkit.lazy import LazyRegistry
from rlkit.plain import check_value, refuse_code, show, where_in
from rlkit.run_folder import check_folder_name

# What every env node may hold, and the type of each value; each builder adds its own settings.
COMMON_SETTINGS: dict[str, Any] = {
    "name": str, "builder": str, "id": str | None, "max_episode_steps": int | None, "num_envs": int,
    "vectorization_mode": str, "render_mode": str | None,
}
MAX_EPISODE_STEPS = 1_000_000  # far above any registered limit (Atari's 27,000 steps); a larger one never ends
GREEDY_EPISODE_STEPS = 10_000  # evaluation and play on an env with no time limit: a stuck greedy policy would never end
MAX_MAP_SIDE = 256  # FrozenLake's desc: a 2.3 MB map cost 97 s and 5 GB inside gymnasium.make
RENDER_MODES = ("human", "rgb_array", "ansi", "rgb_array_list", "ansi_list", "depth_array")
# What to install for a module gymnasium imports as it makes an env, by its top-level name (gymnasium's extras).
EXTRAS = {"Box2D": "gymnasium[box2d]", "jax": "gymnasium[jax]", "mujoco": "gymnasium[mujoco]",
    "ale_py": "gymnasium[atari]", "pygame": "gymnasium[classic-control]", "shimmy": "shimmy[gym-v26]"}
OWN_ENV_HINT = ("env=gym needs env.id=<a registered id>, or env.id=<module>:<EnvId> to import the module that "
    "registers it")


def channels_first(env: gym.Env) -> gym.Env:
    """uint8 images as (height, width, channels) turned (channels, height, width), the layout the CNN body reads."""
    space = env.observation_space
    image = isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
    if not (image and space.shape[-1] <= 4 < space.shape[0]):  # not an image, or already channels first
        return env
    chw = gym.spaces.Box(np.moveaxis(space.low, -1, 0), np.moveaxis(space.high, -1, 0), dtype=np.uint8)
    return TransformObservation(env, lambda obs: np.moveaxis(obs, -1, 0), chw)


class GreedyEpisodeCap(TimeLimit):
    """The time limit evaluation and play give an env that has none, so a greedy policy that makes no progress
    still ends its episode."""


def greedy_cap_note(env: gym.Env) -> str:
    """What a run's first line says of an env whose greedy episodes make_env capped; nothing for the others."""
    if not isinstance(env, GreedyEpisodeCap):
        return ""
    return f" (no time limit: greedy episodes capped at {GREEDY_EPISODE_STEPS} steps)"


def _missing_dependency(env_id: str, exc: Exception) -> RlkitError:
    """gymnasium's extras name what to install for a missing module; its own message does where none is named."""
    module = (getattr(exc, "name", None) or "").split(".")[0]
    fix = f'pip install "{EXTRAS.get(module, module)}"' if module else one_line(exc)[:200]
    return RlkitError(f"env.id={show(env_id)} needs a package that is not installed: {fix}")


def _make_gym(env_cfg: Mapping[str, Any], *, train: bool, render_mode: str | None) -> gym.Env:
    """gymnasium.make on the node's id and kwargs; training copies count whole episodes, the others end at
    GREEDY_EPISODE_STEPS where the env has no time limit."""
    env_id = resolve_env_id(str(env_cfg["id"]))
    kwargs = dict(env_cfg.get("kwargs") or {})
    if env_cfg.get("max_episode_steps") is not None:
        kwargs["max_episode_steps"] = int(env_cfg["max_episode_steps"])
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make(env_id, disable_env_checker=True, **kwargs)
    except (gym.error.DependencyNotInstalled, ImportError) as exc:  # LunarLander without box2d, phys2d/ without jax
        raise _missing_dependency(env_id, exc) from None
    except (TypeError, KeyError, ValueError, AssertionError) as exc:  # e.g. FrozenLake's map_name=9x9: KeyError
        settings = ", ".join(f"{k}={show(v)}" for k, v in kwargs.items())
        raise RlkitError(f"env={env_cfg.get('name')} ({env_id}) refuses env.kwargs {settings}: {type(exc).__name__} "
            f"{exc}") from None
    limited = env.spec is not None and env.spec.max_episode_steps is not None
    env = channels_first(env)
    if train:
        return RecordEpisodeStatistics(env)
    return env if limited else GreedyEpisodeCap(env, max_episode_steps=GREEDY_EPISODE_STEPS)


def _check_stored_gym(env_cfg: Mapping[str, Any], origin: str) -> None:
    """gymnasium imports the module named before a ':' in an id; a run folder must not choose code to import."""
    env_id = str(env_cfg["id"])
    module = env_id.rpartition(":")[0]
    if module and module not in COMMAND_LINE_ENV_MODULES:
        raise RlkitError(f"env.id={show(env_id)} in {origin}: a run folder never chooses a module to import; "
            f"import it yourself by adding env_module={module} to the command")
    resolve_env_id(env_id)


@dataclass(frozen=True)
class EnvBuilder:
    """How one copy of an env is made from its config node, and what the node holds for it."""

    make: Callable[..., gym.Env]  # (env_cfg, *, train, render_mode) -> one copy; train copies record episode statistics
    settings: Mapping[str, Any]  # the keys it reads beyond COMMON_SETTINGS, with their types
    required: tuple[str, ...]  # keys that must be set (not null); the others may be left out
    check_stored: Callable[[Mapping[str, Any], str], None]  # what an env read from a run folder must also pass


ENV_BUILDERS: LazyRegistry[EnvBuilder] = LazyRegistry({
    "gym": EnvBuilder(make=_make_gym, settings={"kwargs": Any}, required=("id",), check_stored=_check_stored_gym),
    "atari": "rlkit.envs.atari:ATARI_BUILDER",
    "minatar": "rlkit.envs.minatar:MINATAR_BUILDER",
})


def env_builder(env_cfg: Mapping[str, Any], origin: str = "") -> EnvBuilder:
    """The builder an env node names; a node without `builder` makes a gymnasium id."""
    name = env_cfg.get("builder", "gym")
    if name not in ENV_BUILDERS:
        raise RlkitError(f"{where_in(f'env.builder={show(name)}', origin)} is not known; choose one of: "
            f"{', '.join(ENV_BUILDERS)}")
    return ENV_BUILDERS[name]


def check_env_config(env_cfg: Any, *, origin: str = "") -> None:
    """The env node as plain data: known settings, plain values, counts in range (env.max_episode_steps=-1 hung)."""
    refuse_code(env_cfg, "env", origin)
    if not isinstance(env_cfg, Mapping):
        raise RlkitError(f"{where_in('env', origin)} must be a mapping of env settings, got {show(env_cfg)}")
    builder = env_builder(env_cfg, origin)
    settings = {**COMMON_SETTINGS, **builder.settings}
    for key, value in env_cfg.items():
        if key not in settings:
            raise RlkitError(f"{where_in('env.' + key, origin)} is not an env setting; env nodes hold: "
                f"{', '.join(settings)}")
        if key != "kwargs":
            check_value(value, settings[key], f"env.{key}", origin)
    if isinstance(env_cfg.get("name"), str):  # a folder of the run's path: runs/<env.name>/...
        check_folder_name(env_cfg["name"], what=where_in("env.name", origin))
    for key in builder.required:
        if env_cfg.get(key) is None:
            raise RlkitError(OWN_ENV_HINT if key == "id" and not origin else f"{where_in('env.' + key, origin)} is "
                "missing")
    kwargs = env_cfg.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise RlkitError(f"{where_in('env.kwargs', origin)}={show(kwargs)} must be a mapping of gymnasium.make keyword "
            "arguments")
    for key, value in kwargs.items():
        check_value(value, Any, f"env.kwargs.{key}", origin)
    check_episode_steps(env_cfg.get("max_episode_steps"), "env.max_episode_steps", origin)
    check_render_mode(env_cfg.get("render_mode"), "env.render_mode", origin)
    check_known_kwargs(kwargs, origin)
    vector_settings(env_cfg, origin=origin)


def check_episode_steps(steps: Any, key: str, origin: str = "") -> None:
    """A time limit gymnasium takes but that never ends an episode (-1 or 0), or as good as never (a huge one)."""
    if steps is None:
        return
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise RlkitError(f"{where_in(key, origin)} must be >= 1 or null (the registered limit), got {show(steps)}")
    if steps > MAX_EPISODE_STEPS:
        raise RlkitError(f"{where_in(key, origin)} must be <= {MAX_EPISODE_STEPS:,} or null (the registered limit), "
            f"got {steps:,}")


def check_render_mode(mode: Any, key: str, origin: str = "") -> None:
    if mode is not None and mode not in RENDER_MODES:
        raise RlkitError(f"{where_in(key, origin)} must be null or a render mode (human, rgb_array, ansi, ...), got "
            f"{show(mode)}")


def check_known_kwargs(kwargs: Mapping[str, Any], origin: str = "") -> None:
    """The gymnasium.make kwargs whose meaning rlkit knows, checked before gymnasium sees them, wherever they come
    from: the command line, a checkpoint, or a run's recorded overrides."""
    check_episode_steps(kwargs.get("max_episode_steps"), "env.kwargs.max_episode_steps", origin)
    check_render_mode(kwargs.get("render_mode"), "env.kwargs.render_mode", origin)
    name = kwargs.get("map_name")
    if not (name is None or isinstance(name, str) and len(name) <= 16):  # a short name that is no map: gymnasium's
        raise RlkitError(f"{where_in('env.kwargs.map_name', origin)} must be a FrozenLake map (4x4 or 8x8) or null, "
            f"got {show(name)}")
    if not isinstance(kwargs.get("is_slippery", False), bool):
        raise RlkitError(f"{where_in('env.kwargs.is_slippery', origin)} must be true or false, got "
            f"{show(kwargs['is_slippery'])}")
    if kwargs.get("desc") is not None:
        check_map(kwargs["desc"], origin)


def check_map(desc: Any, origin: str = "") -> None:
    """FrozenLake's desc: equal rows of S, F, H and G cells, at most MAX_MAP_SIDE a side."""
    key = where_in("env.kwargs.desc", origin)
    rows = desc if isinstance(desc, (list, tuple)) else []
    if not rows or not all(isinstance(row, str) and row for row in rows) or len({len(row) for row in rows}) != 1:
        shape = f"{len(rows)} rows" if rows else show(desc)
        raise RlkitError(f"{key} must be a list of equal rows of S, F, H and G cells, such as [SFFF,FHFH,FFFH,HFFG]; "
            f"got {shape}")
    if len(rows) > MAX_MAP_SIDE or len(rows[0]) > MAX_MAP_SIDE:
        raise RlkitError(f"{key} is a {len(rows)}x{len(rows[0])} map; maps are at most {MAX_MAP_SIDE}x{MAX_MAP_SIDE} "
            "cells")
    cells = set("".join(rows))
    if not cells <= set("SFHG") or "S" not in cells:
        raise RlkitError(f"{key} must hold a start S and only S, F, H and G cells, got {''.join(sorted(cells))[:20]}")


def vector_settings(env_cfg: Mapping[str, Any], *, origin: str = "") -> tuple[int, str]:
    """(num_envs, vectorization_mode) of an env node, each out-of-range value refused by name."""
    num_envs, mode = env_cfg.get("num_envs", 1), env_cfg.get("vectorization_mode", "sync")
    if num_envs < 1:
        raise RlkitError(f"{where_in('env.num_envs', origin)} must be >= 1, got {num_envs}")
    if mode not in ("sync", "async"):
        raise RlkitError(f"{where_in(f'env.vectorization_mode={show(mode)}', origin)} is not valid; choose sync or "
            "async")
    return int(num_envs), str(mode)


def upgrade_stored_env(env_cfg: Any) -> Any:
    """An env node from before builders had names (`kind: atari`, or none) or Taxi-v4, in today's shape; else as is."""
    if not isinstance(env_cfg, Mapping) or "builder" in env_cfg:
        return env_cfg
    node = {k: v for k, v in env_cfg.items() if k != "kind"}
    node["builder"] = env_cfg.get("kind", "gym")
    if node["builder"] == "gym" and node.get("id") in ENV_ID_SUCCESSORS:
        node["id"] = ENV_ID_SUCCESSORS[node["id"]]
    return node


def check_stored_env(env_cfg: Mapping[str, Any], *, origin: str) -> None:
    """An env read from a run folder: checked as data, and only envs this installation or the command line registers."""
    check_env_config(env_cfg, origin=origin)
    env_builder(env_cfg, origin).check_stored(env_cfg, origin)


def make_env(env_cfg: Mapping[str, Any], *, render_mode: str | None = None) -> gym.Env:
    """One env for evaluation or play: no episode statistics, no training-only signals, render mode as asked."""
    return env_builder(env_cfg).make(env_cfg, train=False, render_mode=render_mode)


def make_train_env(env_cfg: Mapping[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """The training env: one copy when num_envs is 1 (fastest), else num_envs copies in a gymnasium vector env."""
    num_envs, mode = vector_settings(env_cfg)
    make_copy = functools.partial(env_builder(env_cfg).make, env_cfg, train=True, render_mode=None)
    if num_envs == 1:
        return make_copy()
    vector = gym.vector.AsyncVectorEnv if mode == "async" else gym.vector.SyncVectorEnv
    return vector([make_copy] * num_envs)


def single_spaces(env: gym.Env | gym.vector.VectorEnv) -> tuple[gym.Space, gym.Space]:
    """(observation_space, action_space) of one copy of the env, vector or not."""
    if isinstance(env, gym.vector.VectorEnv):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def natural_parts(observation_space: gym.Space, action_space: gym.Space, *, agent: str | None = None) -> dict[str, str]:
    """The agent and net an env's spaces call for (`agent` when the user chose one): Discrete observations ->
    q_learning (dqn reads them one-hot through an MLP), vectors -> dqn + mlp, uint8 images -> dqn + cnn."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise RlkitError(f"the env acts in {action_space}, but rlkit's agents (tabular Q-learning and DQN) need "
            "discrete actions (gymnasium.spaces.Discrete)")
    if isinstance(observation_space, gym.spaces.Discrete):
        return {"agent": agent or "q_learning", "net": "mlp"}
    if isinstance(observation_space, gym.spaces.Box):
        image = observation_space.dtype == np.uint8 and len(observation_space.shape) == 3
        return {"agent": agent or "dqn", "net": "cnn" if image else "mlp"}
    raise RlkitError(f"the env observes {observation_space}; rlkit's agents read Discrete or Box observations "
        "(gymnasium.wrappers.FlattenObservation turns Dict and Tuple spaces into a Box)")


def parts_for_env(env_cfg: Mapping[str, Any], *, agent: str | None = None) -> tuple[dict[str, str], str]:
    """(the agent and net this env's spaces call for, one line saying why), from one copy made and closed."""
    check_env_config(env_cfg)
    env = make_env(env_cfg)
    try:
        parts = natural_parts(env.observation_space, env.action_space, agent=agent)
        chosen = " ".join(f"{group}={name}" for group, name in parts.items())
        return parts, f"{env_cfg['id']} observes {env.observation_space} and acts in {env.action_space}: {chosen}"
    finally:
        env.close()
