"""Factorised Gaussian noisy linear layers (Fortunato et al. 2018, arXiv:1706.10295): exploration learnt in the
weights. Noise is on in train mode, off (mu weights only) in eval mode."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def scaled_noise(eps: torch.Tensor) -> torch.Tensor:
    """f(x) = sgn(x) sqrt|x|, the paper's Eq. 11 for factorised noise."""
    return eps.sign() * eps.abs().sqrt()


class NoisyLinear(nn.Module):
    """y = (mu_w + sigma_w * f(eps_out) f(eps_in)^T) x + mu_b + sigma_b * f(eps_out): p + q noise draws per layer
    instead of p * q. The noise buffers are not saved (a checkpoint holds the learnt mu and sigma only)."""

    def __init__(self, in_features: int, out_features: int, *, sigma0: float = 0.5) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(self.in_features)  # mu ~ U[-1/sqrt(p), 1/sqrt(p)], sigma = sigma0 / sqrt(p)
        self.weight_mu = nn.Parameter(torch.empty(self.out_features, self.in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((self.out_features, self.in_features), sigma0 * bound))
        self.bias_mu = nn.Parameter(torch.empty(self.out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((self.out_features,), sigma0 * bound))
        self.register_buffer("noise_in", torch.zeros(self.in_features), persistent=False)
        self.register_buffer("noise_out", torch.zeros(self.out_features), persistent=False)

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        """Draw new eps_in and eps_out, in place (a compiled update reads the same buffers)."""
        device = self.noise_in.device
        self.noise_in.copy_(scaled_noise(torch.randn(self.in_features, generator=generator, device=device)))
        self.noise_out.copy_(scaled_noise(torch.randn(self.out_features, generator=generator, device=device)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * torch.outer(self.noise_out, self.noise_in)
        return F.linear(x, weight, self.bias_mu + self.bias_sigma * self.noise_out)


def noisy_layers(module: nn.Module) -> list[NoisyLinear]:
    """A network's noisy layers, listed once so redrawing their noise does not walk the module tree each step."""
    return [m for m in module.modules() if isinstance(m, NoisyLinear)]


def reset_noise(layers: list[NoisyLinear], generator: torch.Generator | None = None) -> None:
    for layer in layers:
        layer.reset_noise(generator)
