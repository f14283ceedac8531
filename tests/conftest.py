"""Shared fixtures: the devices to test on (CUDA skipped with the reason when absent)."""

from __future__ import annotations

import pytest
import torch

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(
                not torch.cuda.is_available(), reason="CUDA not available: torch.cuda.is_available() is False"
            ),
        ],
    ),
]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """cpu always; cuda when torch sees a GPU."""
    return request.param


@pytest.fixture(autouse=True)
def _true_fp32() -> None:
    """Tests compare with float64 at fp32 tolerances: TF32 must be off."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
