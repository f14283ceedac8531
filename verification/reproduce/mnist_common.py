"""Shared by the MNIST experiments: inputs scaled to [0, 1] and normalised, minibatch epochs, accuracy."""

from __future__ import annotations

import numpy as np
import torch

from impls.functional import predict
from impls.spec import NetSpec
from verification.data import Digits

MEAN, STD = 0.1307, 0.3081  # the usual MNIST normalisation (torchvision examples, the UMONS lab)


def normalised(d: Digits) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """x / 255, then (x - 0.1307) / 0.3081; labels int64."""

    def f(x: np.ndarray) -> torch.Tensor:
        return (torch.tensor(x, dtype=torch.float32) / 255 - MEAN) / STD

    return f(d.x_train), torch.tensor(d.y_train), f(d.x_test), torch.tensor(d.y_test)


def epoch_batches(n: int, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's shuffled minibatch indices (the last batch may be shorter)."""
    return list(torch.randperm(n, generator=generator).split(batch))


def accuracy(spec: NetSpec, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of argmax predictions equal to the labels."""
    return float((predict(spec, params, x).argmax(1) == y).float().mean())
