"""Shared test parameters: every (implementation, device, dtype, precision) a test runs is derived from what the
implementation declares (impl_params), and collection fails when a test pairs an implementation with something
it declares unsupported (pytest_collection_modifyitems) -- so such a slip fails on CI's CPU, not first on a GPU."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pytest
import torch

if not torch.cuda.is_available():  # before triton is imported: its kernels then run on CPU tensors, interpreted
    os.environ.setdefault("TRITON_INTERPRET", "1")

import impls
from impls.base import Implementation
from impls.precision import strict_fp32

CUDA_MARKS = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: torch.cuda.is_available() is False"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_MARKS)]
AXES = ("device", "dtype", "precision")


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """cpu always; cuda when torch sees a GPU (for tests that involve no registered implementation)."""
    return request.param


@pytest.fixture(autouse=True)
def _true_fp32() -> None:
    """Tests compare with float64 at fp32 tolerances: TF32 must be off."""
    strict_fp32()


def declared_reason(name: str, device: str | None = None, dtype: str | None = None, precision: str | None = None):
    """None when the registered implementation `name` declares it runs on that device, dtype and precision (the
    ones given), else why not: the one rule tests and the collection check share."""
    cls = impls.get(name)
    if device is not None and device not in cls.devices:
        return f"{name} runs on {', '.join(cls.devices)} only, not {device}"
    if dtype is not None and getattr(torch, dtype) not in cls.dtypes:
        return f"{name} declares no {dtype}"
    if precision is not None and precision not in cls.precisions:
        return f"{name} runs in {', '.join(cls.precisions)} only, not {precision}"
    return None


def impl_params(
    axes: Sequence[str] = ("device",),
    where: Callable[[type[Implementation]], bool] = lambda cls: True,
    dtypes: Sequence[str] = ("float32", "float64"),
    precisions: Sequence[str] = ("fp32",),
) -> list:
    """pytest params (name, *axes) for every registered implementation that `where` selects, on every device,
    dtype and precision it declares (axes picks which of device, dtype, precision the test takes); cuda params
    carry the cuda mark and skip with the reason where torch sees no GPU."""
    unknown = set(axes) - set(AXES)
    assert not unknown, f"unknown axes {unknown}; choose from {AXES}"
    choices = {"device": ("cpu", "cuda"), "dtype": tuple(dtypes), "precision": tuple(precisions)}
    combos: list[dict[str, str]] = [{}]
    for axis in axes:
        combos = [{**c, axis: v} for c in combos for v in choices[axis]]
    out = []
    for name in impls.names():
        if not where(impls.get(name)):
            continue
        for c in combos:
            if declared_reason(name, **c) is None:
                marks = CUDA_MARKS if c.get("device") == "cuda" else []
                out.append(pytest.param(name, *c.values(), marks=marks, id="-".join([name, *c.values()])))
    return out


def pairing_problems(items: list[pytest.Item]) -> list[str]:
    """Collected tests whose parameters pair a registered implementation (param `name`) with a device, dtype or
    precision it declares unsupported."""
    known = set(impls.names())
    problems = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        name = params.get("name")
        if not isinstance(name, str) or name not in known:
            continue
        given = {k: params[k] for k in AXES if isinstance(params.get(k), str)}
        reason = declared_reason(name, **given)
        if reason:
            problems.append(f"{item.nodeid}: {reason}")
    return problems


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = pairing_problems(items)
    if problems:
        raise pytest.UsageError(
            "tests pair implementations with what they declare unsupported (derive them with impl_params):\n"
            + "\n".join(problems[:10])
        )
