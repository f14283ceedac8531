"""Reduced precision (bf16, fp16) as an option of any torch implementation: the step runs under torch.autocast.

Why autocast and not explicit casts: it is what a user of torch writes, it applies to every torch implementation
unchanged (hand-written `batched`, `autograd`, `module`, `compiled`), and its rules are documented: matrix
products (mm, addmm, matmul, linear) take their inputs rounded to the low format and return it; the kernels
accumulate in fp32 (oneDNN/MKL on the CPU, cuBLAS with fp32 compute on CUDA); elementwise ops then run on those
low-precision tensors (internally in fp32, rounding their result). The parameters stay float32 "master weights",
the update is made in float32, and the loss and gradients are returned in the parameters' dtype (float32).
Autocast leaves float64 tensors alone, so a low precision applies to float32 parameters only.

Hardware: a CPU without AVX512_BF16 / AMX-BF16 (bf16) or AVX512_FP16 / AMX-FP16 (fp16) computes these formats
in software; on a 2-core AVX2 EPYC a 2048^2 bf16 product ran at 0.29 GFLOP/s vs 169 in fp32. That is reported as
unsupported (timing it would time the emulation) unless the caller allows emulation to check the arithmetic.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import Tensor

from impls.base import Grads, Implementation

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
LOW_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: CPU flags (Linux /proc/cpuinfo names) that give each low format native matrix-product instructions
CPU_FLAGS: dict[str, tuple[str, ...]] = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def precision_name(dtype: torch.dtype) -> str:
    """'bf16' for torch.bfloat16, 'fp16' for torch.float16 (the inverse of LOW_DTYPES), else the dtype's name."""
    return next((k for k, v in LOW_DTYPES.items() if v == dtype), str(dtype).removeprefix("torch."))


class UnsupportedPrecision(NotImplementedError):
    """This precision cannot run here (hardware, implementation or dtype); reported with the reason, never run
    silently in another precision."""


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: then no native format is assumed)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def hardware_reason(precision: str, device: str) -> str | None:
    """None if `device` has native arithmetic for `precision`, else why not (one line)."""
    if precision == "fp32":
        return None
    if device == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available"
        if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
            return f"{torch.cuda.get_device_name()} has no native bf16 (needs compute capability >= 8.0)"
        if precision == "fp16" and torch.cuda.get_device_capability() < (5, 3):
            return f"{torch.cuda.get_device_name()} has no native fp16 (needs compute capability >= 5.3)"
        return None
    wanted = CPU_FLAGS[precision]
    if cpu_flags() & set(wanted):
        return None
    have = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx")))
    return (
        f"this CPU has no native {precision} ({' or '.join(wanted)}; it has {', '.join(have) or 'neither'}): "
        "torch would emulate it in software"
    )


def precision_reason(
    cls: type[Implementation], precision: str, device: str, dtype: torch.dtype, allow_emulated: bool = False
) -> str | None:
    """None if `cls` can run `precision` here, else why not: the implementation, the dtype or the hardware."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}"
    if precision == "fp32":
        return None
    if precision not in cls.precisions:
        return f"{cls.name} runs in {', '.join(cls.precisions)} only, not {precision}"
    if dtype != torch.float32:
        return f"{precision} autocast applies to float32 parameters, not {str(dtype).removeprefix('torch.')}"
    return None if allow_emulated else hardware_reason(precision, device)


class Autocast:
    """An implementation's step under torch.autocast(device, low dtype); loss and gradients come back in the
    parameters' dtype. Everything else (params, set_lr, compilations, ...) is the wrapped implementation's."""

    def __init__(self, inner: Implementation, precision: str, device: str) -> None:
        self.inner, self.precision, self.device = inner, precision, device
        self.low = LOW_DTYPES[precision]
        self.dtype = inner.params()["W1"].dtype

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        with torch.autocast(self.device, dtype=self.low):
            loss, grads = self.inner.step(x, t)
        return _cast(loss, self.dtype), {k: _cast(g, self.dtype) for k, g in grads.items()}

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """The wrapped train() under autocast too; the losses in the parameters' dtype."""
        with torch.autocast(self.device, dtype=self.low):
            losses = self.inner.train(x, t, steps)
        return _cast(losses, self.dtype)

    def per_sample_grads(self, x: Tensor, t: Tensor) -> Grads:
        """Not under autocast: refused rather than computed in fp32 (per-sample gradients are checked in fp32)."""
        name = self.inner.name
        raise UnsupportedPrecision(f"{name}: per-sample gradients are computed in fp32 only, not {self.precision}")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _cast(value: object, dtype: torch.dtype) -> object:
    """A low-precision floating tensor in `dtype`; anything else unchanged (so malformed outputs stay visible)."""
    if isinstance(value, Tensor) and value.dtype in LOW_DTYPES.values():
        return value.to(dtype)
    return value


def build(
    cls: type[Implementation],
    spec: object,
    params: dict[str, Tensor],
    sgd: object,
    precision: str = "fp32",
    allow_emulated: bool = False,
) -> Implementation:
    """cls(spec, params, sgd), run in `precision`; UnsupportedPrecision says why it cannot run here."""
    reason = precision_reason(cls, precision, params["W1"].device.type, params["W1"].dtype, allow_emulated)
    if reason:
        raise UnsupportedPrecision(f"{cls.name}: {reason}")
    impl = cls(spec, params, sgd)
    return impl if precision == "fp32" else Autocast(impl, precision, params["W1"].device.type)  # type: ignore[return-value]
