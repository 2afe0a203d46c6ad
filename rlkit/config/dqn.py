"""The DQN agent's parts built from its config node (conf/agent/dqn.yaml): network, replay, optimizer, target rule.

A composition-root helper (issue 14: parts, not flags): `build_dqn`'s keywords are exactly the config's keys, so
rlkit.config.registry checks a config against this signature; the agent itself only ever sees the parts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlkit.agents.base import check_unit_interval, require_discrete, require_positive
from rlkit.agents.dqn import DQNAgent, LinearSchedule, stored_obs_dtype
from rlkit.agents.target_nets import PolyakUpdate
from rlkit.errors import RlkitError
from rlkit.replay.frames import FrameReplayBuffer
from rlkit.nets import DuelingHead, LinearHead, Network, OneHot, Scale, body_for_shape
from rlkit.nets.transfer import init_body_from_supervised
from rlkit.replay.samplers import PrioritizedSampler
from rlkit.replay.buffer import Replay, ReplayBuffer
from rlkit.replay.rings import StepRings

LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "huber": F.smooth_l1_loss,  # Huber with delta 1, as in the Nature DQN's clipped error
    "mse": F.mse_loss,
}


def input_encoding(space: gym.Space) -> tuple[nn.Module, tuple[int, ...]]:
    """(input module, shape the body sees) for an observation space."""
    if isinstance(space, gym.spaces.Discrete):
        return OneHot(n=int(space.n)), (int(space.n),)
    if isinstance(space, gym.spaces.Box):
        if space.dtype == np.uint8:
            return Scale(divisor=255.0), tuple(space.shape)  # frames stay uint8 in replay: 4x less memory than float
        return (nn.Identity() if space.dtype == np.float32 else Scale()), tuple(space.shape)
    raise RlkitError(f"agent=dqn reads Discrete or Box observations, but the env has {space}")


def build_q_network(
    *, inputs: nn.Module, input_shape: tuple[int, ...], n_actions: int, net: Callable[..., nn.Module], dueling: bool,
    device: torch.device, seed: int, body_init: str | None = None,
) -> Network:
    """`inputs`, a body for `input_shape` and a Q head, on `device`; the same initial weights for a seed, whatever ran before.
    A body that cannot take `input_shape` is a ValueError."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        body = body_for_shape(net, input_shape)
        head = DuelingHead(in_features=body.out_features, n_actions=n_actions) if dueling else LinearHead(in_features=body.out_features, out_features=n_actions)
        q_net = Network(inputs=inputs, body=body, head=head)
    if body_init:  # start from a body a supervised run trained (python -m rlkit.supervised)
        init_body_from_supervised(q_net.body, body_init)
    q_net.to(device)
    if device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in q_net.modules()):
        q_net.to(memory_format=torch.channels_last)  # oneDNN's CPU convolutions: ~6% faster updates on NHWC
    return q_net


def build_replay(
    *, observation_space: gym.Space, num_envs: int, capacity: int, n_step: int, gamma: float, dedup_frames: bool,
    prioritized: bool, priority_alpha: float, priority_eps: float, device: torch.device, seed: int,
) -> Replay:
    """Frame stacks keep one frame per step (dedup_frames); prioritized replay is a sampler either buffer takes.
    The buffer refuses, before allocating, one that cannot fit in RAM."""
    sampler = functools.partial(PrioritizedSampler, alpha=priority_alpha, eps=priority_eps) if prioritized else None
    buffer = FrameReplayBuffer if dedup_frames else ReplayBuffer
    obs_shape = tuple(observation_space.shape or ())
    try:
        return buffer(
            rings=StepRings(capacity=capacity, num_envs=num_envs, n_step=n_step, gamma=gamma), obs_shape=obs_shape,
            obs_dtype=stored_obs_dtype(observation_space), device=device, seed=seed, sampler=sampler,
        )
    except ValueError as exc:
        raise RlkitError(f"agent replay for observations {obs_shape} cannot be built: {exc}") from None


def build_dqn(
    *,
    observation_space: gym.Space,
    action_space: gym.Space,
    device: torch.device,
    seed: int,
    num_envs: int,
    net: Callable[..., nn.Module],
    optimizer: Callable[..., torch.optim.Optimizer],
    gamma: float = 0.99,
    n_step: int = 1,
    double: bool = True,
    dueling: bool = False,
    buffer_size: int = 100_000,
    batch_size: int = 64,
    learning_starts_steps: int = 1000,
    train_every_steps: int = 4,
    gradient_steps: int = 1,
    target_update_every_steps: int = 1000,
    tau: float = 1.0,
    loss: str = "huber",
    max_grad_norm: float | None = 10.0,
    epsilon_start: float = 1.0,
    epsilon_end: float = 0.05,
    epsilon_decay_steps: int = 10_000,
    metrics_every_steps: int = 500,
    prioritized: bool = False,
    priority_alpha: float = 0.6,
    priority_beta_start: float = 0.4,
    priority_beta_steps: int = 1_000_000,
    priority_eps: float = 1e-6,
    dedup_frames: bool = False,
    compile: bool = False,
    body_init: str | None = None,
) -> DQNAgent:
    """The DQN agent a config node describes (keywords: conf/agent/dqn.yaml's keys), for `num_envs` env copies."""
    n_actions = require_discrete(action_space, what="action", agent="dqn", fix="pick a discrete-action env")
    require_positive(
        n_step=n_step, buffer_size=buffer_size, batch_size=batch_size, train_every_steps=train_every_steps,
        gradient_steps=gradient_steps, target_update_every_steps=target_update_every_steps,
        metrics_every_steps=metrics_every_steps, priority_beta_steps=priority_beta_steps,
    )
    check_unit_interval(gamma=gamma, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    if not 0.0 < tau <= 1.0:
        raise RlkitError(f"agent.tau must be in (0, 1] (1 is a hard copy), got {tau}")
    if int(batch_size) > int(buffer_size):
        raise RlkitError(f"agent.batch_size={batch_size} is larger than agent.buffer_size={buffer_size}; lower the batch or grow the buffer")
    if loss not in LOSSES:
        raise RlkitError(f"agent.loss={loss} is not known; choose one of: {', '.join(LOSSES)}")
    inputs, input_shape = input_encoding(observation_space)  # before any buffer: a space no network reads is refused
    device = torch.device(device)
    # Its own stream of the run's seed: the replay samples the same rows whatever the agent drew before.
    replay_seed = int(np.random.SeedSequence(seed).spawn(1)[0].generate_state(1)[0])
    replay = build_replay(  # before the network: a buffer that cannot fit is refused first
        observation_space=observation_space, num_envs=num_envs, capacity=buffer_size, n_step=n_step, gamma=gamma,
        dedup_frames=dedup_frames, prioritized=prioritized, priority_alpha=priority_alpha, priority_eps=priority_eps,
        device=device, seed=replay_seed,
    )
    try:
        q_net = build_q_network(
            inputs=inputs, input_shape=input_shape, n_actions=n_actions, net=net, dueling=dueling, device=device, seed=seed,
            body_init=body_init,
        )
    except ValueError as exc:
        raise RlkitError(f"net does not fit observations {observation_space}: {exc}; try net=mlp") from None
    return DQNAgent(
        observation_space=observation_space, action_space=action_space, num_envs=num_envs, q_net=q_net,
        optimizer=optimizer(list(q_net.parameters())), replay=replay,
        target_update=PolyakUpdate(tau=tau, every_steps=target_update_every_steps),  # tau 1: a hard copy
        exploration=LinearSchedule(start=epsilon_start, end=epsilon_end, duration_steps=epsilon_decay_steps),
        priority_beta=LinearSchedule(start=priority_beta_start, end=1.0, duration_steps=priority_beta_steps) if prioritized else None,
        loss=LOSSES[loss], double=double, batch_size=batch_size, learning_starts_steps=learning_starts_steps,
        train_every_steps=train_every_steps, gradient_steps=gradient_steps, max_grad_norm=max_grad_norm,
        metrics_every_steps=metrics_every_steps, compile=compile, device=device, seed=seed,
    )
