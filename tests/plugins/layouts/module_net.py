"""An nn.Module two-layer net and a loss callable, and the same with a detached hidden layer -- examples for
verification's module layout, written for the tests."""

from __future__ import annotations

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, d: int, h: int, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


class Detached(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)).detach())  # the first layer gets no gradient


def sum_of_squares(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sse: sum (y - t)^2 over the batch and outputs (identity output)."""
    return ((out - t) ** 2).sum()
