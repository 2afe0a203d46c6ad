"""Gymnasium ids as a user names them: a registered twin for a retired version, and `module:EnvId`, whose module
only the command line may choose to import."""

from __future__ import annotations

import importlib

import gymnasium as gym

from rlkit.errors import RlkitError

# gymnasium 1.3+ registers Taxi as v4 (same default dynamics) and raises DeprecatedEnv for v3; older
# releases only know v3. We ask for what the user named and take its registered twin if needed.
ENV_ID_SUCCESSORS = {"Taxi-v3": "Taxi-v4"}
ENV_ID_PREDECESSORS = {new: old for old, new in ENV_ID_SUCCESSORS.items()}
# Modules this process imported because its command line named them (env.id=<module>:<EnvId>, env_module=): the
# only ones an env.id read from a run folder may name.
COMMAND_LINE_ENV_MODULES: set[str] = set()


def import_env_module(module: str) -> None:
    """Import a module that registers envs with gymnasium: named on the command line only, never by a run folder."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise RlkitError(f"cannot import {module} to register its envs: {exc}; "
            "run from the folder that holds it") from None
    except Exception as exc:  # the user's own module failed: say where, in one line
        raise RlkitError(f"importing {module} to register its envs failed: {type(exc).__name__}: {exc}") from None
    COMMAND_LINE_ENV_MODULES.add(module)


def resolve_env_id(env_id: str) -> str:
    """The id under which this gymnasium release registers `env_id` (or its twin); `module:EnvId` imports the module
    first, as gymnasium.make does."""
    module, _, env_id = env_id.rpartition(":")
    if module:
        import_env_module(module)
    registry = gym.envs.registry
    if env_id in registry:
        return env_id
    for twin in (ENV_ID_SUCCESSORS.get(env_id), ENV_ID_PREDECESSORS.get(env_id)):
        if twin is not None and twin in registry:
            return twin
    known = sorted(k for k in registry if "/" not in k)[:12]
    raise RlkitError(f"gymnasium has no env '{env_id}'; registered ids include: {', '.join(known)}, ...")
