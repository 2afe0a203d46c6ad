"""Gymnasium ids as a user names them: a retired version's registered twin, and `module:EnvId` (command line only)."""

from __future__ import annotations

import importlib

import gymnasium as gym

from rlkit.errors import RlkitError

# gymnasium 1.3+ registers Taxi as v4 (same dynamics) and refuses v3; older releases only know v3.
ENV_ID_SUCCESSORS = {"Taxi-v3": "Taxi-v4"}
ENV_ID_TWINS = {**ENV_ID_SUCCESSORS, **{new: old for old, new in ENV_ID_SUCCESSORS.items()}}
# Modules imported because the command line named them: the only ones an env.id read from a run folder may name.
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
    """The id under which gymnasium registers `env_id` (or its twin); `module:EnvId` imports the module first."""
    module, _, env_id = env_id.rpartition(":")
    if module:
        import_env_module(module)
    registry = gym.envs.registry
    for candidate in (env_id, ENV_ID_TWINS.get(env_id)):
        if candidate in registry:
            return candidate
    known = sorted(k for k in registry if "/" not in k)[:12]
    raise RlkitError(f"gymnasium has no env '{env_id}'; registered ids include: {', '.join(known)}, ...")
