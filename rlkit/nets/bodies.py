"""Feature extractors that know sizes, not gym spaces: the same bodies serve Q-networks and digits."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation={name} is not known; choose one of: {', '.join(ACTIVATIONS)}") from None


def check_sizes(**sizes: Sequence[int]) -> None:
    """Layer sizes below 1 build empty or invalid layers: refuse them by name."""
    for name, values in sizes.items():
        if any(int(v) < 1 for v in values):
            raise ValueError(f"{name}={list(values)} needs sizes >= 1")


class MLPBody(nn.Module):
    """Dense layers, each followed by the activation; flattens any trailing input shape."""

    def __init__(self, *, in_features: int, hidden: Sequence[int] = (64, 64), activation_name: str = "relu") -> None:
        super().__init__()
        check_sizes(hidden=hidden)
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(in_features)
        for size in hidden:
            layers += [nn.Linear(width, int(size)), activation(activation_name)]
            width = int(size)
        self.layers = nn.Sequential(*layers)
        self.in_features = int(in_features)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CNNBody(nn.Module):
    """Convolution stack then one dense layer; defaults are the Nature DQN stack (Mnih et al., 2015). The flatten
    size comes from a dry run on `input_hw`, so other image sizes (8x8 digits) work too."""

    def __init__(
        self, *, in_channels: int, input_hw: Sequence[int] = (84, 84), channels: Sequence[int] = (32, 64, 64),
        kernel_sizes: Sequence[int] = (8, 4, 3), strides: Sequence[int] = (4, 2, 1),
        paddings: Sequence[int] | None = None, pool: str | None = None, hidden: int = 512,
        activation_name: str = "relu",
    ) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(strides):
            raise ValueError("channels, kernel_sizes and strides need one entry per convolution layer")
        check_sizes(channels=channels, kernel_sizes=kernel_sizes, strides=strides, hidden=[hidden])
        if pool is not None and pool not in POOLS:
            raise ValueError(f"pool={pool} is not known; choose max, avg or null")
        paddings = paddings if paddings is not None else [0] * len(channels)
        layers: list[nn.Module] = []
        width = int(in_channels)
        for out_ch, kernel, stride, padding in zip(channels, kernel_sizes, strides, paddings, strict=False):
            conv = nn.Conv2d(width, int(out_ch), int(kernel), int(stride), int(padding))
            layers += [conv, activation(activation_name)]
            if pool is not None:
                layers.append(POOLS[pool](2))
            width = int(out_ch)
        layers.append(nn.Flatten())
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            flat = int(self.conv(torch.zeros(1, int(in_channels), *map(int, input_hw))).shape[1])
        self.fc = nn.Sequential(nn.Linear(flat, int(hidden)), activation(activation_name))
        self.in_channels = int(in_channels)
        self.flat_features = flat
        self.out_features = int(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


def body_for_shape(factory: Callable[..., nn.Module], input_shape: Sequence[int]) -> nn.Module:
    """Build a body from a partial (a net/ config) for inputs of this shape: a body that takes `in_channels` gets
    [channels, height, width] images, any other flat in_features."""
    shape = tuple(int(s) for s in input_shape)
    if "in_channels" in inspect.signature(factory).parameters:
        if len(shape) != 3:
            raise ValueError(f"a convolution body needs [channels, height, width] inputs, got shape {shape}")
        return factory(in_channels=shape[0], input_hw=shape[1:])
    return factory(in_features=math.prod(shape))
