"""A saved run's greedy policy from its weights and the nodes that define its network, so an odd learning setting in
a checkpoint cannot stop play: no optimizer, replay or target network is built."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import torch

from rlkit.agents.base import Policy, require_discrete
from rlkit.agents.dqn import QNetworkPolicy
from rlkit.agents.tabular import TablePolicy, table_from_state
from rlkit.config.dqn import build_q_network
from rlkit.config.registry import ActingParts
from rlkit.errors import RlkitError
from rlkit.nets.transfer import load_network_state


def dqn_policy(
    parts: ActingParts, agent_state: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device,
) -> QNetworkPolicy:
    """The run's Q-network with the checkpoint's online weights (agent_state["q_net"]), greedy on `device`."""
    n_actions = require_discrete(action_space, what="action", agent="dqn", fix="pick a discrete-action env")
    values = parts.distribution.part()  # C51's outputs are atoms: the policy acts on their expected values
    q_net = build_q_network(observation_space=observation_space, n_actions=n_actions, net=parts.net,
        head=parts.head.factory(atoms=values.outputs), device=device, seed=0)  # seed 0: overwritten below
    load_network_state(q_net, agent_state["q_net"])
    return QNetworkPolicy(q_net.requires_grad_(False).eval(), observation_space=observation_space, device=device,
        distribution=values)


def table_policy(
    parts: ActingParts, agent_state: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device,
) -> TablePolicy:
    """The checkpoint's Q-table, checked against the env's spaces."""
    fix = "use agent=dqn (a network instead of a table)"
    n_states = require_discrete(observation_space, what="observation", agent="q_learning", fix=fix)
    n_actions = require_discrete(action_space, what="action", agent="q_learning", fix="pick a discrete-action env")
    return TablePolicy(table_from_state(agent_state, n_states=n_states, n_actions=n_actions))


POLICIES: dict[str, Callable[..., Policy]] = {"dqn": dqn_policy, "q_learning": table_policy}


def build_policy(
    parts: ActingParts, agent_state: Mapping[str, Any], *, observation_space: gym.Space, action_space: gym.Space,
    device: torch.device,
) -> Policy:
    """The greedy policy of a saved run's checked parts (rlkit.runs.saved.read_saved_run)."""
    if parts.agent not in POLICIES:
        raise RlkitError(f"agent.type={parts.agent} has no policy to play; choose one of: {', '.join(POLICIES)}")
    return POLICIES[parts.agent](parts, agent_state, observation_space=observation_space, action_space=action_space,
        device=device)
