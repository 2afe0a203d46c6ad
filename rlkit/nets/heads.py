"""Output layers on top of a body's features, and the Network that joins the two."""

from __future__ import annotations

import functools

import torch
from torch import nn

from rlkit.nets.noisy import NoisyLinear


def linear_layer(in_features: int, out_features: int, *, noisy: bool = False, sigma0: float = 0.5) -> nn.Module:
    """nn.Linear, or its factorised-noise twin for net.head.noisy=true (exploration without epsilon)."""
    if noisy:
        return NoisyLinear(int(in_features), int(out_features), sigma0=sigma0)
    return nn.Linear(int(in_features), int(out_features))


class LinearHead(nn.Module):
    """One linear layer: features -> one value per output. A Q-network's outputs are actions' Q-values, the digits
    classifier's are class logits (softmax lives in the cross-entropy loss): one head, so both share it."""

    def __init__(self, *, in_features: int, out_features: int, noisy: bool = False, sigma0: float = 0.5) -> None:
        super().__init__()
        # "linear": the state-dict key checkpoints hold
        self.linear = linear_layer(in_features, out_features, noisy=noisy, sigma0=sigma0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)


class DuelingHead(nn.Module):
    """Q = V + A - mean(A): value and advantage streams (Wang et al., 2016, arXiv:1511.06581). With `atoms` outputs
    per action (a distribution's, as C51's), one value and one advantage per atom, flattened to actions x atoms."""

    def __init__(
        self, *, in_features: int, n_actions: int, hidden: int = 0, atoms: int = 1, noisy: bool = False,
        sigma0: float = 0.5,
    ) -> None:
        super().__init__()
        self.atoms = int(atoms)
        layer = functools.partial(linear_layer, noisy=noisy, sigma0=sigma0)

        def stream(out: int) -> nn.Module:
            if hidden > 0:
                return nn.Sequential(layer(in_features, hidden), nn.ReLU(), layer(hidden, out))
            return layer(in_features, out)

        self.value = stream(self.atoms)
        self.advantage = stream(int(n_actions) * self.atoms)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage_BAZ = self.advantage(features).unflatten(1, (-1, self.atoms))
        value_B1Z = self.value(features).unsqueeze(1)
        return (value_B1Z + advantage_BAZ - advantage_BAZ.mean(dim=1, keepdim=True)).flatten(1)


class Network(nn.Module):
    """input transform -> body -> head. Composition, not a subclass per combination."""

    def __init__(self, *, body: nn.Module, head: nn.Module, inputs: nn.Module | None = None) -> None:
        super().__init__()
        self.inputs = inputs if inputs is not None else nn.Identity()
        self.body = body
        self.head = head

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.inputs(obs)))
