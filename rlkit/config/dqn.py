"""The DQN agent from its config: the node checked once into frozen DQNSettings (every type and range), then built
from them without checking again; replay, sampler and head are parts named in the config."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlkit.agents.base import check_unit_interval, require_discrete, require_positive
from rlkit.agents.distributions import Categorical, Expected, ValueDistribution
from rlkit.agents.dqn import DQNAgent, LinearSchedule, stored_obs_dtype
from rlkit.agents.target_nets import PolyakUpdate
from rlkit.config.nodes import checked
from rlkit.errors import RlkitError
from rlkit.lazy import LazyRegistry
from rlkit.nets import DuelingHead, LinearHead, Network, OneHot, Scale, body_for_shape
from rlkit.nets.transfer import init_body_from_supervised
from rlkit.plain import where_in
from rlkit.replay.buffer import Replay, ReplayBuffer
from rlkit.replay.rings import StepRings
from rlkit.replay.samplers import Sampler, UniformSampler

# huber: delta 1, as in the Nature DQN's clipped error
LOSSES: dict[str, Callable[..., torch.Tensor]] = {"huber": F.smooth_l1_loss, "mse": F.mse_loss}


def linear_q_head(
    *, in_features: int, n_actions: int, atoms: int = 1, noisy: bool = False, sigma0: float = 0.5,
) -> LinearHead:
    """One Q-value per action, or `atoms` outputs per action for a distribution (actions x atoms, flattened)."""
    return LinearHead(in_features=in_features, out_features=n_actions * atoms, noisy=noisy, sigma0=sigma0)


# The parts a DQN config names, each by a fixed name (rlkit.config.registry re-exports them).
REPLAYS: LazyRegistry[Callable[..., Replay]] = LazyRegistry(
    {"transitions": ReplayBuffer, "frames": "rlkit.replay.frames:FrameReplayBuffer"}
)
SAMPLERS: LazyRegistry[Callable[..., Sampler]] = LazyRegistry(
    {"uniform": UniformSampler, "prioritized": "rlkit.replay.prioritized:PrioritizedSampler"}
)
HEADS: dict[str, Callable[..., nn.Module]] = {"linear": linear_q_head, "dueling": DuelingHead}
TRAINING_COPIES = 5  # weights, gradients, Adam's two moments and the target network
# Arguments the builders pass themselves, never config values.
REPLAY_RUN_TIME = frozenset({"rings", "obs_shape", "obs_dtype", "device", "seed", "sampler"})
HEAD_RUN_TIME = frozenset({"in_features", "n_actions", "hidden", "atoms"})
DQN_PARTS = frozenset({"sampler", "replay", "head", "distribution"})  # DQNSettings fields made from their own nodes


@dataclass(frozen=True)
class UniformSampling:
    """Every stored transition equally likely (conf/agent/sampler/uniform.yaml)."""

    type: str = "uniform"

    def sampler(self) -> Callable[..., Sampler]:
        return SAMPLERS["uniform"]

    def beta(self) -> LinearSchedule | None:
        return None


@dataclass(frozen=True)
class PrioritizedSampling:
    """Prioritized replay (conf/agent/sampler/prioritized.yaml): P(i) ~ |TD error|^alpha, importance weights annealed
    from beta_start to 1 over beta_steps, which has no code default (conf/ resolves it from total_steps)."""

    beta_steps: int
    alpha: float = 0.6
    beta_start: float = 0.4
    eps: float = 1e-6
    type: str = "prioritized"

    def sampler(self) -> Callable[..., Sampler]:
        return functools.partial(SAMPLERS["prioritized"], alpha=self.alpha, eps=self.eps)

    def beta(self) -> LinearSchedule | None:
        return LinearSchedule(start=self.beta_start, end=1.0, duration_steps=self.beta_steps)


SAMPLER_SETTINGS: dict[str, Callable[..., UniformSampling | PrioritizedSampling]] = {"uniform": UniformSampling,
    "prioritized": PrioritizedSampling}


DISTRIBUTIONS: dict[str, Callable[..., ValueDistribution]] = {
    "expected": lambda settings, loss: Expected(loss),
    "c51": lambda settings, loss: Categorical(atoms=settings.atoms, v_min=settings.v_min, v_max=settings.v_max),
}


@dataclass(frozen=True)
class DistributionSettings:
    """agent.distribution: what the Q head's outputs mean (rlkit.agents.distributions). One node holds every type's
    keys, so a command line switches agent.distribution.type and sets them; each type reads only its own."""

    type: str = "expected"  # a name in DISTRIBUTIONS
    atoms: int = 51  # c51: Bellemare et al. 2017's 51 atoms on [v_min, v_max]
    v_min: float = -10.0
    v_max: float = 10.0

    def part(self, loss: Callable[..., torch.Tensor] = F.smooth_l1_loss) -> ValueDistribution:
        """The part itself; `loss` is agent.loss, which only `expected` reads."""
        return DISTRIBUTIONS[self.type](self, loss)


def distribution_settings(node: Any, *, origin: str = "") -> DistributionSettings:
    """The checked agent.distribution node (expected where a config written in code, or stored before it, has none)."""
    name, _, kwargs = checked({"type": "expected"} if node is None else node,
        dict.fromkeys(DISTRIBUTIONS, DistributionSettings), key="agent.distribution", origin=origin)
    settings = DistributionSettings(type=name, **kwargs)
    if settings.atoms < 2:
        raise RlkitError(f"{where_in('agent.distribution.atoms', origin)} must be >= 2, got {settings.atoms}")
    if not settings.v_min < settings.v_max:
        raise RlkitError(f"{where_in('agent.distribution.v_min', origin)} must be < agent.distribution.v_max, got "
            f"{settings.v_min} and {settings.v_max}")
    return settings


@dataclass(frozen=True)
class HeadSettings:
    """The checked net.head node: a name in HEADS and its noisy-layer settings (Fortunato et al. 2018); a stored
    config without noisy or sigma0 gets today's plain linear layers."""

    type: str = "linear"
    noisy: bool = False
    sigma0: float = 0.5

    def factory(self, *, atoms: int = 1) -> Callable[..., nn.Module]:
        """The head awaiting its sizes; `atoms` outputs per action for a value distribution (C51's)."""
        return functools.partial(HEADS[self.type], atoms=atoms, noisy=self.noisy, sigma0=self.sigma0)


@dataclass(frozen=True)
class DQNSettings:
    """The agent node of conf/agent/dqn.yaml, checked, with its sampler and the replay and head the config picks.
    The defaults are conf/'s (tests/config/test_settings.py composes conf/ and compares)."""

    gamma: float = 0.99
    n_step: int = 1
    double: bool = True
    buffer_size: int = 100_000
    batch_size: int = 64
    learning_starts_steps: int = 1000
    train_every_steps: int = 4
    gradient_steps: int = 1
    target_update_every_steps: int = 1000
    tau: float = 1.0
    loss: str = "huber"
    max_grad_norm: float | None = 10.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_decay_steps: int = 10_000
    metrics_every_steps: int = 500
    compile: bool = False
    body_init: str | None = None
    sampler: UniformSampling | PrioritizedSampling = UniformSampling()
    replay: str = "transitions"
    head: HeadSettings = HeadSettings()
    distribution: DistributionSettings = DistributionSettings()


def _part(node: Any, settings: Mapping[str, Callable[..., Any]], *, key: str, choose: str, origin: str) -> Any:
    """A part's settings from its node, a key its type needs but the node lacks named."""
    _, make, kwargs = checked(node, settings, key=key, origin=origin, choose=choose)
    missing = [f.name for f in dataclasses.fields(make) if f.name not in kwargs and f.default is dataclasses.MISSING]
    if missing:  # `choose` is the config group that sets all of a part's keys: agent/sampler=prioritized
        pick = "" if origin else f": pick the part with {choose}={node['type']}"
        where = where_in(f"{key}.{missing[0]}", origin)
        raise RlkitError(f"{where} is missing; {key}.type={node['type']} needs it{pick}")
    return make(**kwargs)


def replay_choice(node: Any, *, origin: str = "") -> str:
    """The replay a run's `replay` node names (transitions when a config written in code has none)."""
    return checked({"type": "transitions"} if node is None else node, REPLAYS, key="replay", origin=origin,
        run_time=REPLAY_RUN_TIME)[0]


def head_choice(node: Any, *, origin: str = "") -> HeadSettings:
    """The Q head a run's `net.head` node names and sets (linear when a config written in code has none)."""
    name, _, kwargs = checked({"type": "linear"} if node is None else node, HEADS, key="net.head", origin=origin,
        run_time=HEAD_RUN_TIME)
    head = HeadSettings(type=name, **kwargs)
    if not head.sigma0 > 0:  # sigma0 0 is a plain layer with twice the parameters
        raise RlkitError(f"{where_in('net.head.sigma0', origin)} must be > 0, got {head.sigma0}")
    return head


def dqn_settings(
    values: Mapping[str, Any], *, sampler: Any = None, replay: str = "transitions",
    head: str | HeadSettings = "linear", distribution: Any = None, origin: str = "",
) -> DQNSettings:
    """The typed DQN settings, every range checked once: `values` are the agent node's other keys, type-checked
    against DQNSettings (rlkit.config.registry), `sampler` its sampler node, `replay` the name chosen and `head` the
    checked head (a name alone: that head, no noise)."""
    head = HeadSettings(type=head) if isinstance(head, str) else head
    sampling = _part({"type": "uniform"} if sampler is None else sampler, SAMPLER_SETTINGS, key="agent.sampler",
        choose="agent/sampler", origin=origin)
    settings = DQNSettings(**values, sampler=sampling, replay=replay, head=head,
        distribution=distribution_settings(distribution, origin=origin))
    positive = ("n_step", "buffer_size", "batch_size", "train_every_steps", "gradient_steps",
        "target_update_every_steps", "metrics_every_steps")
    require_positive(**{key: getattr(settings, key) for key in positive})
    check_unit_interval(gamma=settings.gamma, epsilon_start=settings.epsilon_start, epsilon_end=settings.epsilon_end)
    if not 0.0 < settings.tau <= 1.0:
        raise RlkitError(f"agent.tau must be in (0, 1] (1 is a hard copy), got {settings.tau}")
    if settings.batch_size > settings.buffer_size:
        raise RlkitError(f"agent.batch_size={settings.batch_size} is larger than agent.buffer_size="
            f"{settings.buffer_size}; lower the batch or grow the buffer")
    if settings.max_grad_norm is not None and not settings.max_grad_norm > 0:  # -1 reversed every clipped update
        raise RlkitError(f"{where_in('agent.max_grad_norm', origin)} must be > 0 or null (no clipping), got "
            f"{settings.max_grad_norm}")
    if settings.loss not in LOSSES:
        raise RlkitError(f"agent.loss={settings.loss} is not known; choose one of: {', '.join(LOSSES)}")
    if isinstance(sampling, PrioritizedSampling):
        require_positive(**{"sampler.beta_steps": sampling.beta_steps})
        check_unit_interval(**{"sampler.beta_start": sampling.beta_start})
        if sampling.alpha < 0:
            raise RlkitError(f"agent.sampler.alpha must be >= 0 (0 is uniform), got {sampling.alpha}")
        if sampling.eps <= 0:
            raise RlkitError(f"agent.sampler.eps must be > 0 (a zero priority is never replayed), got {sampling.eps}")
    return settings


def input_encoding(space: gym.Space) -> tuple[nn.Module, tuple[int, ...]]:
    """(input module, shape the body sees) for an observation space."""
    if isinstance(space, gym.spaces.Discrete):
        return OneHot(n=int(space.n)), (int(space.n),)
    if isinstance(space, gym.spaces.Box):
        if space.dtype == np.uint8:
            return Scale(divisor=255.0), tuple(space.shape)  # frames stay uint8 in replay: 4x less memory than float
        return (nn.Identity() if space.dtype == np.float32 else Scale()), tuple(space.shape)
    raise RlkitError(f"agent=dqn reads Discrete or Box observations, but the env has {space}")


def check_network_fits(network: Callable[[], nn.Module]) -> None:
    """Refuse, before any weight exists, a network whose training copies would not fit in half the machine's RAM:
    its parameters are counted on the meta device (net.hidden=[16384]*3 from a 300 KB checkpoint built 4.5 GB)."""
    with torch.device("meta"):
        weights = sum(p.numel() * p.element_size() for p in network().parameters())
    needed, ram = weights * TRAINING_COPIES, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > ram // 2:
        raise RlkitError(f"net.hidden (and net.channels) ask for {weights / 1e9:,.1f} GB of weights, "
            f"{needed / 1e9:,.1f} GB with their gradients, optimizer state and target copy: more than half this "
            f"machine's {ram / 1e9:.0f} GB of RAM; choose smaller layers")


def build_q_network(
    *, observation_space: gym.Space, n_actions: int, net: Callable[..., nn.Module], head: Callable[..., nn.Module],
    device: torch.device, seed: int, body_init: str | None = None,
) -> Network:
    """The input encoding, a body and a Q head, on `device`; the same initial weights for a seed, whatever ran
    before. A body that cannot take the observations is one line suggesting net=mlp."""
    inputs, input_shape = input_encoding(observation_space)

    def network() -> Network:
        body = body_for_shape(net, input_shape)
        return Network(inputs=inputs, body=body, head=head(in_features=body.out_features, n_actions=n_actions))

    try:
        with torch.random.fork_rng(devices=[]):
            check_network_fits(network)
            torch.manual_seed(seed)
            q_net = network()
        if body_init:  # start from a body a supervised run trained (python -m rlkit.supervised)
            init_body_from_supervised(q_net.body, body_init)
        q_net.to(device)
        if device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in q_net.modules()):
            q_net.to(memory_format=torch.channels_last)  # oneDNN's CPU convolutions: ~6% faster updates on NHWC
    except ValueError as exc:
        raise RlkitError(f"net does not fit observations {observation_space}: {exc}; try net=mlp") from None
    return q_net


def build_replay(
    *, buffer: Callable[..., Replay], sampler: Callable[..., Sampler], observation_space: gym.Space, num_envs: int,
    capacity: int, n_step: int, gamma: float, device: torch.device, seed: int,
) -> Replay:
    """The replay buffer with its sampler; it refuses, before allocating, one that cannot fit in RAM."""
    obs_shape = tuple(observation_space.shape or ())
    try:
        return buffer(
            rings=StepRings(capacity=capacity, num_envs=num_envs, n_step=n_step, gamma=gamma), obs_shape=obs_shape,
            obs_dtype=stored_obs_dtype(observation_space), device=device, seed=seed, sampler=sampler,
        )
    except ValueError as exc:
        raise RlkitError(f"agent replay for observations {obs_shape} cannot be built: {exc}") from None


def build_dqn(
    settings: DQNSettings, *, observation_space: gym.Space, action_space: gym.Space, device: torch.device, seed: int,
    num_envs: int, net: Callable[..., nn.Module], optimizer: Callable[..., torch.optim.Optimizer],
) -> DQNAgent:
    """The DQN agent checked settings describe, for `num_envs` env copies; the spaces are checked, not the settings."""
    n_actions = require_discrete(action_space, what="action", agent="dqn", fix="pick a discrete-action env")
    input_encoding(observation_space)  # before any buffer: a space no network reads is refused
    device = torch.device(device)
    # Its own stream of the run's seed: the replay samples the same rows whatever the agent drew before.
    replay_seed = int(np.random.SeedSequence(seed).spawn(1)[0].generate_state(1)[0])
    replay = build_replay(  # before the network: a buffer that cannot fit is refused first
        buffer=REPLAYS[settings.replay], sampler=settings.sampler.sampler(), observation_space=observation_space,
        num_envs=num_envs, capacity=settings.buffer_size, n_step=settings.n_step, gamma=settings.gamma, device=device,
        seed=replay_seed,
    )
    values = settings.distribution.part(LOSSES[settings.loss])
    q_net = build_q_network(observation_space=observation_space, n_actions=n_actions, net=net,
        head=settings.head.factory(atoms=values.outputs), device=device, seed=seed, body_init=settings.body_init)
    return DQNAgent(
        observation_space=observation_space, action_space=action_space, num_envs=num_envs, q_net=q_net,
        optimizer=optimizer(list(q_net.parameters())), replay=replay,
        target_update=PolyakUpdate(tau=settings.tau, every_steps=settings.target_update_every_steps),  # tau 1: a copy
        exploration=LinearSchedule(start=settings.epsilon_start, end=settings.epsilon_end,
            duration_steps=settings.epsilon_decay_steps),
        priority_beta=settings.sampler.beta(), loss=LOSSES[settings.loss], double=settings.double,
        batch_size=settings.batch_size, learning_starts_steps=settings.learning_starts_steps,
        train_every_steps=settings.train_every_steps, gradient_steps=settings.gradient_steps,
        max_grad_norm=settings.max_grad_norm, metrics_every_steps=settings.metrics_every_steps,
        compile=settings.compile, device=device, seed=seed, distribution=values,
    )
