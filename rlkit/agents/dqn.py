"""Deep Q-Network (Mnih et al., 2015) behind the shared agent interface; Double, Dueling and n-step are flags."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlkit import tb
from rlkit.agents.base import NO_METRICS, Transition, check_probabilities, crossings, epsilon_greedy, linear_schedule, require_discrete
from rlkit.agents.targets import bootstrap_q, td_target
from rlkit.errors import NonFiniteLossError, RlkitError
from rlkit.frame_replay import FrameReplayBuffer
from rlkit.nets import DuelingHead, Network, OneHot, QHead, Scale, body_for_shape
from rlkit.nets.transfer import init_body_from_supervised
from rlkit.prioritized import PrioritizedSampler
from rlkit.replay import Replay, ReplayBuffer, check_memory

LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "huber": F.smooth_l1_loss,  # Huber with delta 1, as in the Nature DQN's clipped error
    "mse": F.mse_loss,
}


def input_encoding(space: gym.Space) -> tuple[nn.Module, tuple[int, ...], np.dtype]:
    """(input module, shape the body sees, dtype replay stores) for an observation space."""
    if isinstance(space, gym.spaces.Discrete):
        return OneHot(n=int(space.n)), (int(space.n),), np.dtype(np.int64)
    if isinstance(space, gym.spaces.Box):
        shape, dtype = tuple(space.shape), np.dtype(space.dtype)
        if dtype == np.uint8:
            return Scale(divisor=255.0), shape, dtype  # frames stay uint8 in replay: 4x less memory than float
        return (nn.Identity() if dtype == np.float32 else Scale()), shape, dtype
    raise RlkitError(f"agent=dqn reads Discrete or Box observations, but the env has {space}")


def compiled_update(update: Callable[..., tuple], device: torch.device) -> Callable[..., tuple]:
    """torch.compile a whole update (forward, loss, backward, optimizer step); on CUDA with CUDA graphs, as LeanRL does.

    A CUDA graph replays into the same output memory, so outputs kept past the next update are cloned.
    """
    if device.type != "cuda":
        return torch.compile(update)
    graphed = torch.compile(update, mode="reduce-overhead")

    def run(*batch: torch.Tensor | None) -> tuple:
        torch.compiler.cudagraph_mark_step_begin()  # one update is one step of the CUDA graph tree
        return tuple(None if out is None else out.clone() for out in graphed(*batch))

    return run


class DQNAgent:
    """Online and target Q-networks, replay (uniform or prioritized), epsilon-greedy acting; step counts are env steps."""

    def __init__(
        self,
        *,
        observation_space: gym.Space,
        action_space: gym.Space,
        net: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        device: torch.device | str | None = None,
        seed: int = 0,
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
    ) -> None:
        self.n_actions = require_discrete(action_space, what="action", agent="dqn", fix="pick a discrete-action env")
        for name, value in dict(
            n_step=n_step, buffer_size=buffer_size, batch_size=batch_size, train_every_steps=train_every_steps,
            gradient_steps=gradient_steps, target_update_every_steps=target_update_every_steps,
            metrics_every_steps=metrics_every_steps, priority_beta_steps=priority_beta_steps,
        ).items():
            if int(value) < 1:
                raise RlkitError(f"agent.{name} must be >= 1, got {value}")
        if not 0.0 <= gamma <= 1.0:
            raise RlkitError(f"agent.gamma must be in [0, 1], got {gamma}")
        check_probabilities(epsilon_start=epsilon_start, epsilon_end=epsilon_end)
        if not 0.0 < tau <= 1.0:
            raise RlkitError(f"agent.tau must be in (0, 1] (1 is a hard copy), got {tau}")
        if int(batch_size) > int(buffer_size):
            raise RlkitError(f"agent.batch_size={batch_size} is larger than agent.buffer_size={buffer_size}; lower the batch or grow the buffer")
        if loss not in LOSSES:
            raise RlkitError(f"agent.loss={loss} is not known; choose one of: {', '.join(LOSSES)}")
        self.device = torch.device(device if device is not None else "cpu")
        self.gamma, self.n_step, self.double, self.tau = float(gamma), int(n_step), bool(double), float(tau)
        self.buffer_size, self.batch_size = int(buffer_size), int(batch_size)
        self.learning_starts_steps = int(learning_starts_steps)
        self.train_every_steps, self.gradient_steps = int(train_every_steps), int(gradient_steps)
        self.target_update_every_steps = int(target_update_every_steps)
        self.loss_fn = LOSSES[loss]
        self.max_grad_norm = float(max_grad_norm) if max_grad_norm is not None else None
        self.epsilon_start, self.epsilon_end = float(epsilon_start), float(epsilon_end)
        self.epsilon_decay_steps = int(epsilon_decay_steps)
        self.metrics_every_steps = int(metrics_every_steps)
        self.prioritized, self.dedup_frames = bool(prioritized), bool(dedup_frames)
        self.priority_alpha, self.priority_eps = float(priority_alpha), float(priority_eps)
        self.priority_beta_start, self.priority_beta_steps = float(priority_beta_start), int(priority_beta_steps)

        inputs, input_shape, self.obs_dtype = input_encoding(observation_space)
        self.obs_shape: tuple[int, ...] = tuple(observation_space.shape or ())
        buffer = FrameReplayBuffer if self.dedup_frames else ReplayBuffer  # refused now if it cannot fit, not at step 1
        check_memory(capacity=self.buffer_size, bytes_per_row=buffer.bytes_per_row(self.obs_shape, self.obs_dtype))
        with torch.random.fork_rng(devices=[]):  # same initial weights for a seed, whatever ran before
            torch.manual_seed(seed)
            try:
                body = body_for_shape(net, input_shape)
            except ValueError as exc:
                raise RlkitError(f"net does not fit observations {observation_space}: {exc}; try net=mlp") from None
            head = (DuelingHead if dueling else QHead)(in_features=body.out_features, n_actions=self.n_actions)
            self.q_net = Network(inputs=inputs, body=body, head=head)
        if body_init:  # start from a body a supervised run trained (python -m rlkit.supervised)
            init_body_from_supervised(self.q_net.body, body_init)
        self.q_net.to(self.device)
        if self.device.type == "cpu" and any(isinstance(m, nn.Conv2d) for m in self.q_net.modules()):
            self.q_net.to(memory_format=torch.channels_last)  # oneDNN's CPU convolutions: ~6% faster updates on NHWC
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self._params = list(self.q_net.parameters())  # walking the module tree per update costs more than the Adam step
        self.optimizer = optimizer(self._params)
        self._update = compiled_update(self._eager_update, self.device) if compile else self._eager_update
        self.replay: Replay | None = None  # built on the first observe, when the number of env copies is known
        self._rng = np.random.default_rng(seed)
        # One-observation acting writes into this tensor through a numpy view: no allocation per step.
        self._act_obs_np = np.zeros((1, *self.obs_shape), dtype=self.obs_dtype)
        self._act_obs = torch.from_numpy(self._act_obs_np)
        self._last_update: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self.steps = self.updates = 0
        self.epsilon = self.epsilon_start

    def act(self, obs: Any, *, explore: bool) -> Any:
        if np.ndim(obs) == len(self.obs_shape):  # one observation: the num_envs == 1 fast path
            if explore and self._rng.random() < self.epsilon:
                return int(self._rng.integers(self.n_actions))
            self._act_obs_np[0] = obs
            with torch.inference_mode():
                return int(self.q_net(self._act_obs.to(self.device)).argmax())
        with torch.inference_mode():
            q_BA = self.q_net(torch.as_tensor(obs).to(self.device)).cpu().numpy()
        return epsilon_greedy(q_BA, epsilon=self.epsilon if explore else 0.0, rng=self._rng)

    def observe(self, transition: Transition) -> Mapping[str, float]:
        obs, action, reward, next_obs, terminated, truncated, valid = transition
        batched = np.ndim(obs) > len(self.obs_shape)
        if self.replay is None:
            self.replay = self._make_replay(num_envs=len(obs) if batched else 1)
        if not batched or valid.all():
            self.replay.add(obs, action, reward, next_obs, terminated, truncated)
        else:  # a vector env's autoreset step pairs a final obs with a first one: never store it
            ids = np.flatnonzero(valid)
            rows = (obs[ids], action[ids], reward[ids], next_obs[ids], terminated[ids], truncated[ids])
            self.replay.add(*rows, env_ids=ids)
        prev_steps, self.steps = self.steps, self.steps + (len(obs) if batched else 1)
        self.epsilon = linear_schedule(
            start=self.epsilon_start, end=self.epsilon_end, duration_steps=self.epsilon_decay_steps, step=self.steps
        )
        if self.steps >= self.learning_starts_steps:
            updates = crossings(prev_steps, self.steps, self.train_every_steps) * self.gradient_steps
            # A run resumed without its replay refills the buffer before learning again.
            if updates and len(self.replay) >= min(self.learning_starts_steps, self.replay.capacity, self.batch_size * 4):
                for _ in range(updates):
                    self._learn()
            if crossings(prev_steps, self.steps, self.target_update_every_steps):
                self._update_target()
        if crossings(prev_steps, self.steps, self.metrics_every_steps):
            return self._metrics()
        return NO_METRICS

    def _make_replay(self, *, num_envs: int) -> Replay:
        """Frame stacks keep one frame per step (dedup_frames); prioritized replay is a sampler either buffer takes."""
        sampler = functools.partial(PrioritizedSampler, alpha=self.priority_alpha, eps=self.priority_eps) if self.prioritized else None
        buffer = FrameReplayBuffer if self.dedup_frames else ReplayBuffer
        try:
            return buffer(
                capacity=self.buffer_size, obs_shape=self.obs_shape, obs_dtype=self.obs_dtype, num_envs=num_envs,
                n_step=self.n_step, gamma=self.gamma, device=self.device, seed=int(self._rng.integers(2**31)), sampler=sampler,
            )
        except ValueError as exc:
            raise RlkitError(f"agent replay for observations {self.obs_shape} cannot be built: {exc}") from None

    def _learn(self) -> None:
        assert self.replay is not None
        beta = linear_schedule(start=self.priority_beta_start, end=1.0, duration_steps=self.priority_beta_steps, step=self.steps)
        batch = self.replay.sample(self.batch_size, beta=beta)
        loss, q_mean, grad_norm, td_abs_B = self._update(batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.discounts, batch.weights)
        if batch.weights is not None:  # prioritized: |TD error| is the sampled rows' new priority
            self.replay.update_priorities(batch.indices, td_abs_B.cpu().numpy())
        self.updates += 1
        self._last_update = (loss, q_mean, grad_norm)

    def _eager_update(
        self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
        discounts: torch.Tensor, weights: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """One gradient step on a batch, all on the device: (loss, mean Q, gradient norm or None, |TD error|_B)."""
        q_B = self.q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            next_online_BA = self.q_net(next_obs) if self.double else None
            next_q_B = bootstrap_q(self.target_net(next_obs), next_online_BA)
            target_B = td_target(rewards, next_q_B, discounts)
        if weights is None:
            loss = self.loss_fn(q_B, target_B)
        else:  # prioritized: importance weights undo the sampling bias
            loss = (weights * self.loss_fn(q_B, target_B, reduction="none")).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = None if self.max_grad_norm is None else nn.utils.clip_grad_norm_(self._params, self.max_grad_norm)
        self.optimizer.step()
        return loss.detach(), q_B.detach().mean(), grad_norm, (target_B - q_B).detach().abs()

    @torch.no_grad()
    def _update_target(self) -> None:
        """Hard copy when tau is 1, else Polyak averaging: target <- tau * online + (1 - tau) * target."""
        for target, online in zip(self.target_net.parameters(), self._params):
            if self.tau == 1.0:
                target.copy_(online)
            else:
                target.lerp_(online, self.tau)

    def _check_finite(self) -> None:
        """A diverged network must never be saved: checked at every report and before every checkpoint."""
        if self._last_update is not None and not torch.isfinite(self._last_update[0]):
            raise NonFiniteLossError(f"loss became {self._last_update[0].item()} by env step {self.steps} (update {self.updates})")

    def _metrics(self) -> dict[str, float]:
        self._check_finite()
        metrics = {tb.EPSILON: self.epsilon}
        if self._last_update is not None:  # .item() only here: one device sync per report, not per update
            loss, q_mean, grad_norm = self._last_update
            if grad_norm is None:  # not clipping: measure the last update's gradients only when reporting
                grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self._params]))
            metrics.update({tb.LOSS: loss.item(), tb.Q_MEAN: q_mean.item(), tb.GRAD_NORM: grad_norm.item()})
        return metrics

    def q_values(self, obs: Any) -> np.ndarray:
        """The online network's Q-values for one observation, shape (actions,), or a batch, shape (batch, actions)."""
        obs = np.asarray(obs, dtype=self.obs_dtype)
        one = obs.ndim == len(self.obs_shape)
        with torch.inference_mode():
            q_BA = self.q_net(torch.as_tensor(obs[None] if one else obs).to(self.device)).cpu().numpy()
        return q_BA[0] if one else q_BA

    def state_dict(self) -> dict[str, Any]:
        self._check_finite()
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
        return self.replay.state_dict() if self.replay is not None else {}

    def load_replay_arrays(self, arrays: Mapping[str, np.ndarray], *, num_envs: int) -> int:
        """Refill replay from saved arrays; returns the transitions it now holds."""
        self.replay = self._make_replay(num_envs=num_envs)
        self.replay.load_state_dict(arrays, n_actions=self.n_actions)
        return len(self.replay)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self.q_net.load_state_dict(state["q_net"])
            self.target_net.load_state_dict(state.get("target_net", state["q_net"]))
        except RuntimeError as exc:
            detail = str(exc).strip().splitlines()[-1].strip()
            raise RlkitError(
                f"checkpoint network does not fit this agent ({detail}); play needs the env, net and dueling of the run"
            ) from None
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        self.steps, self.updates = int(state.get("steps", 0)), int(state.get("updates", 0))
        self.epsilon = float(state.get("epsilon", self.epsilon_end))
        if "rng_state" in state:
            self._rng.bit_generator.state = dict(state["rng_state"])
