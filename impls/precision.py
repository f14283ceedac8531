"""The one table of precisions (fp32, tf32, bf16, fp16): how a step enters each, how much rounding it adds, where it
runs natively. Verification's tolerance, the benchmarks' rows and peaks, and the reports read it; nothing else
lists a precision.

bf16 / fp16 are torch.autocast: it is what a user of torch writes, it applies to every torch implementation
unchanged (hand-written `batched`, `autograd`, `module`, `compiled`), and its rules are documented: matrix products
(mm, addmm, matmul, linear) take their inputs rounded to the low format and return it; the kernels accumulate in
fp32 (oneDNN/MKL on the CPU, cuBLAS with fp32 compute on CUDA); elementwise ops then run on those low-precision
tensors (internally in fp32, rounding their result). The parameters stay float32 "master weights", the update is
made in float32, and the loss and gradients are returned in the parameters' dtype (float32). Autocast leaves
float64 tensors alone, so every precision but fp32 applies to float32 parameters only.

tf32 (CUDA, compute capability >= 8.0): float32 tensors, but cuBLAS rounds the inputs of every matrix product to
TF32's 10-bit significand (unit roundoff 2^-11) and accumulates in fp32 (set with torch.backends.cuda.matmul.allow_tf32,
read back through fp32_precision: see tf32_matmuls).

Hardware: a CPU without AVX512_BF16 / AMX-BF16 (bf16) or AVX512_FP16 / AMX-FP16 (fp16) computes these formats
in software; on a 2-core AVX2 EPYC a 2048^2 bf16 product ran at 0.29 GFLOP/s vs 169 in fp32. That is reported as
unsupported (timing it would time the emulation) unless the caller allows emulation to check the arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from impls.base import Grads, Implementation, SameInputs

#: on the longest chain x -> a1 -> h -> z -> y -> dz -> dh -> da1 -> dW1, autocast rounds two inputs and the output
#: of each of the 4 products and the output of each of the 4 elementwise ops to the low format: 16 roundings
AUTOCAST_ROUNDINGS = 16
#: TF32 rounds only the two inputs of each of the 4 products on that chain (outputs and elementwise ops stay fp32)
TF32_ROUNDINGS = 8


@dataclass(frozen=True)
class Precision:
    """One way of computing a float32 step; the tolerance it needs is derived from unit_roundoff and roundings."""

    name: str
    unit_roundoff: float  # of the format that values are rounded to (0 for fp32: nothing beyond the dtype's own)
    roundings: int  # roundings to that format on the longest chain (verification.compare.tolerance)
    autocast: torch.dtype | None = None  # torch.autocast's compute dtype, for the autocast formats
    data: torch.dtype | None = None  # x and float targets stored in this dtype (converted once per batch)
    tf32: bool = False  # TF32 matrix products (CUDA)
    devices: tuple[str, ...] = ("cpu", "cuda")
    cpu_flags: tuple[str, ...] = ()  # /proc/cpuinfo flags that give native instructions for the format
    cuda_capability: tuple[int, int] = (0, 0)  # the least compute capability with native support

    @property
    def reduced(self) -> bool:
        """Computes with less precision than float32 somewhere (the tolerance grows; float64 cannot use it)."""
        return self.roundings > 0

    @contextlib.contextmanager
    def context(self, device: str) -> Iterator[None]:
        """Run a block in this precision on `device` (and restore what was set before)."""
        if self.autocast is not None:
            with torch.autocast(device, dtype=self.autocast):
                yield
            return
        matmul, cudnn = tf32_matmuls(), torch.backends.cudnn.allow_tf32  # not the legacy read: see tf32_matmuls
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn

    def hardware_reason(self, device: str) -> str | None:
        """None if `device` runs this precision natively, else why not (one line)."""
        if device not in self.devices:
            return f"{self.name} is for {', '.join(self.devices)} only, not {device}"
        if not self.reduced:
            return None
        if device == "cuda":
            if not torch.cuda.is_available():
                return "CUDA is not available"
            if torch.cuda.get_device_capability() < self.cuda_capability:
                need = ".".join(map(str, self.cuda_capability))
                return f"{torch.cuda.get_device_name()} has no native {self.name} (needs compute capability >= {need})"
            return None
        if cpu_flags() & set(self.cpu_flags):
            return None
        have = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx")))
        return (
            f"this CPU has no native {self.name} ({' or '.join(self.cpu_flags)}; it has {', '.join(have) or 'neither'}"
            "): torch would emulate it in software"
        )


FP32 = Precision("fp32", 0.0, 0)
#: the one table: name -> Precision
PRECISIONS: dict[str, Precision] = {
    "fp32": FP32,
    "tf32": Precision("tf32", 2.0**-11, TF32_ROUNDINGS, tf32=True, devices=("cuda",), cuda_capability=(8, 0)),
    "bf16": Precision(
        "bf16", 2.0**-8, AUTOCAST_ROUNDINGS, autocast=torch.bfloat16, cpu_flags=("avx512_bf16", "amx_bf16"),
        cuda_capability=(8, 0),
    ),
    "fp16": Precision(
        "fp16", 2.0**-11, AUTOCAST_ROUNDINGS, autocast=torch.float16, cpu_flags=("avx512_fp16", "amx_fp16"),
        cuda_capability=(5, 3),
    ),
    # bf16 data: x (and float targets) stored once in bf16, as a bf16 data pipeline delivers them (half the bytes of
    # every read of x), the step under bf16 autocast. x's rounding is the one autocast makes of a product's input
    # anyway; the targets' is new (y - t in bf16): one rounding more than autocast alone
    "bf16-data": Precision(
        "bf16-data", 2.0**-8, AUTOCAST_ROUNDINGS + 1, autocast=torch.bfloat16, data=torch.bfloat16,
        cpu_flags=("avx512_bf16", "amx_bf16"), cuda_capability=(8, 0),
    ),
}  # fmt: skip
#: what a torch implementation runs in (autocast and TF32 apply to any torch code)
TORCH_PRECISIONS: tuple[str, ...] = tuple(PRECISIONS)
#: what any implementation whose products are torch matmuls runs in without autocast support of its own
TF32_ONLY: tuple[str, ...] = ("fp32", "tf32")
AUTOCAST_DTYPES = frozenset(p.autocast for p in PRECISIONS.values() if p.autocast is not None)


def precision_of(name: str) -> Precision:
    """The Precision called `name`; ValueError lists the known ones."""
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}; choose from {', '.join(PRECISIONS)}") from None


def precision_name(dtype: torch.dtype) -> str:
    """The name of the autocast precision computing in `dtype` ('bf16' for torch.bfloat16), else the dtype's name."""
    return next((p.name for p in PRECISIONS.values() if p.autocast == dtype), str(dtype).removeprefix("torch."))


def strict_fp32() -> None:
    """True float32 matrix products (TF32 off): what fp32 means in every check and every fp32 row."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def tf32_matmuls() -> bool:
    """Whether CUDA float32 matrix products may run in TF32 now, read through torch's fp32_precision API. The
    project sets TF32 with the legacy allow_tf32 flag (what torch's own compiler reads, and what ran on the H200),
    but a user who set fp32_precision = "tf32" makes torch 2.13 raise on reading that flag or
    torch.get_float32_matmul_precision() ("mix of the legacy and new APIs", checked); this read never raises."""
    matmul = torch.backends.cuda.matmul.fp32_precision
    return (torch.backends.fp32_precision if matmul == "none" else matmul) == "tf32"


def matmul_precision_setting() -> str:
    """torch.get_float32_matmul_precision() where torch can answer, else the fp32_precision API's value (records)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:  # torch: "mix of the legacy and new APIs"
        return f"fp32_precision={torch.backends.cuda.matmul.fp32_precision}"


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
    return precision_of(precision).hardware_reason(device)


def precision_reason(
    cls: type[Implementation], precision: str, device: str, dtype: torch.dtype, allow_emulated: bool = False
) -> str | None:
    """None if `cls` can run `precision` here, else why not: the implementation, the dtype or the hardware."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}"
    p = PRECISIONS[precision]
    if not p.reduced:
        return None
    if precision not in cls.precisions:
        return f"{cls.name} runs in {', '.join(cls.precisions)} only, not {precision}"
    if dtype != torch.float32:
        return f"{precision} applies to float32 parameters, not {str(dtype).removeprefix('torch.')}"
    if device not in p.devices:
        return f"{precision} is for {', '.join(p.devices)} only, not {device}"
    return None if allow_emulated else hardware_reason(precision, device)


class InPrecision:
    """An implementation's step (and train) run inside a precision's context; loss and gradients come back in the
    parameters' dtype. Everything else (params, set_lr, compilations, ...) is the wrapped implementation's."""

    def __init__(self, inner: Implementation, precision: Precision, device: str) -> None:
        self.inner, self.precision, self.device = inner, precision, device
        self.dtype = inner.params()["W1"].dtype
        self._seen = SameInputs()  # the batch whose stored copy (precision.data) is held
        self._stored: tuple[Tensor, Tensor] | None = None

    def _data(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """x and float targets as the precision stores them, converted once per batch (the same unmodified batch
        again reuses the copy, as data a pipeline delivered in that format)."""
        if self.precision.data is None:
            return x, t
        if self._stored is None or not self._seen.unchanged(x, t):
            stored = self.precision.data
            self._stored = (x.to(stored), t.to(stored) if t.is_floating_point() else t)
            self._seen.remember(x, t)
        return self._stored

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        x, t = self._data(x, t)
        with self.precision.context(self.device):
            loss, grads = self.inner.step(x, t)
        return _cast(loss, self.dtype), {k: _cast(g, self.dtype) for k, g in grads.items()}

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """The wrapped train() in the precision too; the losses in the parameters' dtype."""
        x, t = self._data(x, t)
        with self.precision.context(self.device):
            losses = self.inner.train(x, t, steps)
        return _cast(losses, self.dtype)

    def per_sample_grads(self, x: Tensor, t: Tensor) -> Grads:
        """Refused rather than computed in fp32 (per-sample gradients are checked in fp32)."""
        name = self.inner.name
        raise UnsupportedPrecision(f"{name}: per-sample gradients are computed in fp32 only, not {self.precision.name}")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _cast(value: object, dtype: torch.dtype) -> object:
    """A tensor in an autocast format (bf16, fp16) in `dtype`; anything else unchanged (so malformed outputs, a
    float64 gradient for float32 parameters say, stay visible)."""
    if isinstance(value, Tensor) and value.dtype in AUTOCAST_DTYPES:
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
    p = PRECISIONS[precision]
    return impl if not p.reduced else InPrecision(impl, p, params["W1"].device.type)  # type: ignore[return-value]
