"""Deep Q-Network (Mnih et al., 2015) behind the shared agent interface, built from parts: online network, replay,
optimizer, target-update rule and exploration schedule come ready-made (rlkit.config.dqn builds them from a config)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlkit import tb
from rlkit.agents.base import (
    NO_METRICS,
    Every,
    Transition,
    epsilon_greedy,
    linear_schedule,
    require_discrete,
    require_positive,
)
from rlkit.agents.distributions import Expected, ValueDistribution
from rlkit.errors import RlkitError
from rlkit.nets.noisy import noisy_layers, reset_noise
from rlkit.nets.transfer import load_network_state
from rlkit.replay.buffer import Replay


@dataclass(frozen=True)
class LinearSchedule:
    """A value annealed linearly over env steps, then held: epsilon for exploring, beta for prioritized replay."""

    start: float
    end: float
    duration_steps: int

    def __call__(self, step: int) -> float:
        return linear_schedule(start=self.start, end=self.end, duration_steps=self.duration_steps, step=step)


def stored_obs_dtype(space: gym.Space) -> np.dtype:
    """The dtype observations keep on their way to the network: Discrete states are int64 indices."""
    return np.dtype(np.int64) if isinstance(space, gym.spaces.Discrete) else np.dtype(space.dtype)


class QNetworkPolicy:
    """Greedy actions from a Q-network's weights on a device: no optimizer, no replay, no target network."""

    def __init__(
        self, q_net: nn.Module, *, observation_space: gym.Space, device: torch.device | str,
        distribution: ValueDistribution | None = None,
    ) -> None:
        """`distribution` turns the net's outputs into Q-values (None: they are Q-values, as for Expected)."""
        self.q_net, self.device = q_net, torch.device(device)
        self._to_q = None if distribution is None or isinstance(distribution, Expected) else distribution.q_values
        self.obs_shape: tuple[int, ...] = tuple(observation_space.shape or ())
        self.obs_dtype = stored_obs_dtype(observation_space)
        # One-observation acting writes into this tensor through a numpy view: no allocation per step.
        self._one_obs_np = np.zeros((1, *self.obs_shape), dtype=self.obs_dtype)
        self._one_obs = torch.from_numpy(self._one_obs_np)

    def act(self, obs: Any) -> Any:
        if np.ndim(obs) == len(self.obs_shape):  # one observation: an int, from the preallocated input
            self._one_obs_np[0] = obs
            with torch.inference_mode():
                out = self.q_net(self._one_obs.to(self.device))
                return int((out if self._to_q is None else self._to_q(out)).argmax())
        return self.q_values(obs).argmax(axis=1)

    def q_values(self, obs: Any) -> np.ndarray:
        """Shape (actions,) for one observation, (batch, actions) for a batch."""
        obs = np.asarray(obs, dtype=self.obs_dtype)
        one = obs.ndim == len(self.obs_shape)
        with torch.inference_mode():
            out = self.q_net(torch.as_tensor(obs[None] if one else obs).to(self.device))
            q_BA = (out if self._to_q is None else self._to_q(out)).cpu().numpy()
        return q_BA[0] if one else q_BA


def dqn_update(
    obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor, discounts: torch.Tensor,
    weights: torch.Tensor | None, *, q_net: nn.Module, target_net: nn.Module, optimizer: torch.optim.Optimizer,
    params: Sequence[torch.Tensor], distribution: ValueDistribution, double: bool, max_grad_norm: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """One gradient step on a batch, all on the device: (loss, mean Q, gradient norm or None, priority_B).
    `discounts` is gamma ** n per row (0 past a termination); `weights` are a prioritized replay's importance
    weights (None: uniform); `params` are q_net's, listed once (walking the module tree costs more than Adam does).
    The loss, target and priority are `distribution`'s (rlkit.agents.distributions): |TD error| for Expected."""
    chosen = distribution.chosen(q_net(obs), actions)
    with torch.no_grad():
        next_online = q_net(next_obs) if double else None
        target = distribution.target(target_net(next_obs), next_online, rewards, discounts)
    if weights is None:
        loss_value = distribution.loss(chosen, target)
    else:  # prioritized: importance weights undo the sampling bias
        loss_value = (weights * distribution.loss(chosen, target, reduction="none")).mean()
    optimizer.zero_grad(set_to_none=True)
    loss_value.backward()
    grad_norm = None if max_grad_norm is None else nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    chosen = chosen.detach()
    return loss_value.detach(), distribution.chosen_q(chosen).mean(), grad_norm, distribution.priority(chosen, target)


def compiled_update(update: Callable[..., tuple], device: torch.device) -> Callable[..., tuple]:
    """torch.compile a whole update (forward, loss, backward, optimizer step); on CUDA with CUDA graphs, as LeanRL
    does. A CUDA graph replays into the same output memory, so outputs kept past the next update are cloned."""
    if device.type != "cuda":
        return torch.compile(update)
    graphed = torch.compile(update, mode="reduce-overhead")

    def run(*batch: torch.Tensor | None) -> tuple:
        torch.compiler.cudagraph_mark_step_begin()  # one update is one step of the CUDA graph tree
        return tuple(None if out is None else out.clone() for out in graphed(*batch))

    return run


class DQNAgent:
    """Learns Q-values from replayed transitions with a target network; acts epsilon-greedily. Steps are env steps."""

    def __init__(
        self, *, observation_space: gym.Space, action_space: gym.Space, num_envs: int, q_net: nn.Module,
        optimizer: torch.optim.Optimizer, replay: Replay, target_update: Callable[..., bool],
        exploration: Callable[[int], float], loss: Callable[..., torch.Tensor], batch_size: int,
        learning_starts_steps: int, train_every_steps: int, gradient_steps: int, max_grad_norm: float | None,
        metrics_every_steps: int, double: bool = True, priority_beta: Callable[[int], float] | None = None,
        compile: bool = False, device: torch.device | str = "cpu", seed: int = 0,
        distribution: ValueDistribution | None = None,
    ) -> None:
        """`q_net` is already on `device`, `optimizer` was built on its parameters, `replay` for `num_envs` env copies.
        `loss(q, target, reduction=...)` as torch.nn.functional's losses; `priority_beta(step)` anneals a prioritized
        replay's importance weights (None: 1); `target_update` is a rlkit.agents.target_nets rule; `distribution`
        is what the head's outputs mean (rlkit.agents.distributions; None: Expected(loss), one Q-value per action)."""
        self.n_actions = require_discrete(action_space, what="action", agent="dqn", fix="pick a discrete-action env")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        require_positive(
            batch_size=batch_size, train_every_steps=train_every_steps, gradient_steps=gradient_steps,
            metrics_every_steps=metrics_every_steps,
        )
        self._params = list(q_net.parameters())
        owned = {id(p) for p in self._params}
        if any(id(p) not in owned for group in optimizer.param_groups for p in group["params"]):
            raise ValueError("the optimizer must be built on q_net's parameters")
        self.q_net, self.optimizer, self.replay = q_net, optimizer, replay
        self.target_net = copy.deepcopy(q_net).requires_grad_(False)
        self._target_params = list(self.target_net.parameters())
        self.target_update, self.exploration, self.priority_beta = target_update, exploration, priority_beta
        self.loss_fn, self.double = loss, bool(double)
        self.distribution = Expected(loss) if distribution is None else distribution
        self.num_envs, self.batch_size = int(num_envs), int(batch_size)
        self.learning_starts_steps = int(learning_starts_steps)
        self.gradient_steps = int(gradient_steps)
        self.max_grad_norm = float(max_grad_norm) if max_grad_norm is not None else None
        self.device = torch.device(device)
        self.obs_shape: tuple[int, ...] = tuple(observation_space.shape or ())
        self._train_every, self._metrics_every = Every(int(train_every_steps)), Every(int(metrics_every_steps))
        update = functools.partial(
            dqn_update, q_net=q_net, target_net=self.target_net, optimizer=optimizer, params=self._params,
            distribution=self.distribution, double=self.double, max_grad_norm=self.max_grad_norm,
        )
        self._update = compiled_update(update, self.device) if compile else update
        self._rng = np.random.default_rng(seed)
        self._policy = QNetworkPolicy(q_net, observation_space=observation_space, device=self.device,
            distribution=self.distribution)
        # Noisy nets (net.head.noisy): eval mode, mu weights only, except while exploring and learning, each of
        # which draws fresh noise from its own seeded stream.
        self._noisy, self._target_noisy = noisy_layers(q_net), noisy_layers(self.target_net)
        self._noise_rng = torch.Generator(self.device).manual_seed(seed)
        if self._noisy:
            q_net.eval(), self.target_net.eval()
        self._last_update: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self.steps = self.updates = 0
        self.epsilon = float(exploration(0))

    def act(self, obs: Any, *, explore: bool) -> Any:
        if explore and self._noisy:
            reset_noise(self._noisy, self._noise_rng)
            self.q_net.train()
            try:
                return self._act(obs, explore=True)
            finally:
                self.q_net.eval()
        return self._act(obs, explore=explore)

    def _act(self, obs: Any, *, explore: bool) -> Any:
        if np.ndim(obs) == len(self.obs_shape):  # one observation: the num_envs == 1 fast path
            if explore and self._rng.random() < self.epsilon:
                return int(self._rng.integers(self.n_actions))
            return self._policy.act(obs)
        return epsilon_greedy(self._policy.q_values(obs), epsilon=self.epsilon if explore else 0.0, rng=self._rng)

    def policy(self) -> QNetworkPolicy:
        """Greedy on the online network itself: evaluation during training acts on the weights as they are."""
        return self._policy

    def observe(self, transition: Transition) -> Mapping[str, float]:
        obs, action, reward, next_obs, terminated, truncated, valid = transition
        batched = np.ndim(obs) > len(self.obs_shape)
        copies = len(obs) if batched else 1
        if copies != self.num_envs:
            raise RlkitError(f"agent=dqn was built for num_envs={self.num_envs} env copies but observed {copies}")
        if not batched or valid.all():
            self.replay.add(obs, action, reward, next_obs, terminated, truncated)
        else:  # a vector env's autoreset step pairs a final obs with a first one: never store it
            ids = np.flatnonzero(valid)
            rows = (obs[ids], action[ids], reward[ids], next_obs[ids], terminated[ids], truncated[ids])
            self.replay.add(*rows, env_ids=ids)
        prev_steps, self.steps = self.steps, self.steps + copies
        self.epsilon = self.exploration(self.steps)
        if self.steps >= self.learning_starts_steps:
            updates = self._train_every.crossed(prev_steps, self.steps) * self.gradient_steps
            # A run resumed without its replay refills the buffer before learning again.
            refilled = min(self.learning_starts_steps, self.replay.capacity, self.batch_size * 4)
            if updates and len(self.replay) >= refilled:
                for _ in range(updates):
                    self._learn()
            self.target_update(self._target_params, self._params, prev_steps=prev_steps, steps=self.steps)
        return self._metrics() if self._metrics_every.crossed(prev_steps, self.steps) else NO_METRICS

    def _learn(self) -> None:
        beta = 1.0 if self.priority_beta is None else self.priority_beta(self.steps)
        batch = self.replay.sample(self.batch_size, beta=beta)
        if self._noisy:  # online and target networks each with fresh noise of their own
            reset_noise(self._noisy + self._target_noisy, self._noise_rng)
            self.q_net.train(), self.target_net.train()
        loss, q_mean, grad_norm, priority_B = self._update(batch.obs, batch.actions, batch.rewards, batch.next_obs,
            batch.discounts, batch.weights)
        if self._noisy:
            self.q_net.eval(), self.target_net.eval()
        if batch.weights is not None:  # prioritized: the part's per-sample loss is the sampled rows' new priority
            self.replay.update_priorities(batch.indices, priority_B.cpu().numpy())
        self.updates += 1
        self._last_update = (loss, q_mean, grad_norm)

    def last_loss(self) -> float | None:
        """The last update's loss, for check_finite_loss (rlkit.agents.base): a diverged network is never saved."""
        return None if self._last_update is None else self._last_update[0].item()

    def _metrics(self) -> dict[str, float]:
        metrics = {tb.EPSILON: self.epsilon}
        if self._last_update is not None:  # .item() only here: one device sync per report, not per update
            loss, q_mean, grad_norm = self._last_update
            if grad_norm is None:  # not clipping: measure the last update's gradients only when reporting
                grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self._params]))
            metrics.update({tb.LOSS: loss.item(), tb.Q_MEAN: q_mean.item(), tb.GRAD_NORM: grad_norm.item()})
        return metrics

    def q_values(self, obs: Any) -> np.ndarray:
        """The online network's Q-values for one observation, shape (actions,), or a batch, shape (batch, actions)."""
        return self._policy.q_values(obs)

    def state_dict(self) -> dict[str, Any]:
        return {
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "updates": self.updates,
            "epsilon": self.epsilon,
            "rng_state": self._rng.bit_generator.state,
        }

    def replay_arrays(self) -> dict[str, np.ndarray]:
        """The replay buffer's contents, for checkpoint.replay=true (empty before the first step)."""
        return self.replay.state_dict() if len(self.replay) else {}

    def load_replay_arrays(self, arrays: Mapping[str, np.ndarray]) -> int:
        """Refill replay (built for this agent's num_envs) from saved arrays; returns the transitions it now holds."""
        self.replay.load_state_dict(arrays, n_actions=self.n_actions)
        return len(self.replay)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        load_network_state(self.q_net, state["q_net"])
        load_network_state(self.target_net, state.get("target_net", state["q_net"]))
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        self.steps, self.updates = int(state.get("steps", 0)), int(state.get("updates", 0))
        self.epsilon = float(state.get("epsilon", self.exploration(self.steps)))
        if "rng_state" in state:
            self._rng.bit_generator.state = dict(state["rng_state"])
