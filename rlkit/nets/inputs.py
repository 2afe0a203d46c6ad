"""Input encodings chosen per env or data set, kept out of the bodies so one body serves all."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Scale(nn.Module):
    """Cast to float and divide: /255 for Atari frames, /16 for the 8x8 digits."""

    def __init__(self, *, divisor: float = 1.0) -> None:
        super().__init__()
        self.divisor = float(divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return x / self.divisor if self.divisor != 1.0 else x


class OneHot(nn.Module):
    """Integer states (Taxi's 500) -> one-hot vectors, so a dense body can read them."""

    def __init__(self, *, n: int) -> None:
        super().__init__()
        self.n = int(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(x.long().reshape(-1), self.n).float()
