"""A saved run's greedy policy rebuilt from its config and agent state: the network or table, and nothing that learns.

Only the keys that define the network are read (the net node, the Q head, the env's spaces); the optimizer, the
replay and every other learning setting stay unbuilt, so an odd one in a checkpoint cannot stop play.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import torch

from rlkit.agents.base import Policy, require_discrete
from rlkit.agents.dqn import QNetworkPolicy
from rlkit.agents.tabular import TablePolicy, table_from_state
from rlkit.config.dqn import build_q_network, input_encoding
from rlkit.config.registry import body_factory
from rlkit.errors import RlkitError


def head_name(config: Mapping[str, Any]) -> str:
    """The Q head a run config picks, "linear" or "dueling": the one place the network rebuild reads that choice."""
    return "dueling" if config["agent"].get("dueling") else "linear"


def dqn_policy(
    config: Mapping[str, Any], agent_state: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device, origin: str = "",
) -> QNetworkPolicy:
    """The run's Q-network with the checkpoint's online weights (agent_state["q_net"]), greedy on `device`."""
    n_actions = require_discrete(action_space, what="action", agent="dqn", fix="pick a discrete-action env")
    inputs, input_shape = input_encoding(observation_space)
    try:
        q_net = build_q_network(
            inputs=inputs, input_shape=input_shape, n_actions=n_actions, net=body_factory(config["net"], origin=origin),
            dueling=head_name(config) == "dueling", device=device, seed=0,  # the seed's weights are overwritten below
        )
    except ValueError as exc:
        raise RlkitError(f"net does not fit observations {observation_space}: {exc}; try net=mlp") from None
    try:
        q_net.load_state_dict(agent_state["q_net"])
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1].strip()
        raise RlkitError(f"checkpoint network does not fit this agent ({detail}); play needs the env, net and dueling of the run") from None
    return QNetworkPolicy(q_net.requires_grad_(False), observation_space=observation_space, device=device)


def table_policy(
    config: Mapping[str, Any], agent_state: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device, origin: str = "",
) -> TablePolicy:
    """The checkpoint's Q-table, checked against the env's spaces."""
    fix = "use agent=dqn (a network instead of a table)"
    n_states = require_discrete(observation_space, what="observation", agent="q_learning", fix=fix)
    n_actions = require_discrete(action_space, what="action", agent="q_learning", fix="pick a discrete-action env")
    return TablePolicy(table_from_state(agent_state, n_states=n_states, n_actions=n_actions))


POLICIES: dict[str, Callable[..., Policy]] = {"dqn": dqn_policy, "q_learning": table_policy}


def build_policy(
    config: Mapping[str, Any], agent_state: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device, origin: str = "",
) -> Policy:
    """The greedy policy of a run config already checked as data (rlkit.runs.resume.read_saved_run)."""
    name = config["agent"]["type"]
    if name not in POLICIES:
        raise RlkitError(f"agent.type={name} has no policy to play; choose one of: {', '.join(POLICIES)}")
    return POLICIES[name](
        config, agent_state, observation_space=observation_space, action_space=action_space, device=device, origin=origin
    )
