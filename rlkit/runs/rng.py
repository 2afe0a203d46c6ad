"""The RNG states a checkpoint carries (Python, numpy, torch and every env copy's), as plain data and tensors that
load with weights_only, so a resumed run draws what the uninterrupted one would have."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}


def rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    numpy_state = {**numpy_state, "state": {**numpy_state["state"],
        "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))}}
    return {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    key = numpy_state["state"]["key"].numpy().astype(np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})
    torch.set_rng_state(state["torch"])


def env_rng_state(env: gym.Env | gym.vector.VectorEnv) -> list[dict[str, Any]]:
    """Bit-generator state of every env copy, so a resumed run draws the same resets."""
    vector = isinstance(env, gym.vector.VectorEnv)
    generators = env.unwrapped.get_attr("np_random") if vector else [env.unwrapped.np_random]
    return [g.bit_generator.state for g in generators]


def set_env_rng_state(env: gym.Env | gym.vector.VectorEnv, states: Sequence[Mapping[str, Any]]) -> None:
    """Bit generators are looked up by name in BIT_GENERATORS: a run folder never names an attribute to call."""
    copies = env.num_envs if isinstance(env, gym.vector.VectorEnv) else 1
    if len(states) != copies:
        raise ValueError(f"{len(states)} env RNG states for {copies} env copies")
    generators = []
    for state in states:
        bit_generator = BIT_GENERATORS[state["bit_generator"]]()
        bit_generator.state = dict(state)
        generators.append(np.random.Generator(bit_generator))
    if isinstance(env, gym.vector.VectorEnv):
        env.unwrapped.set_attr("np_random", generators)
    else:
        env.unwrapped.np_random = generators[0]
