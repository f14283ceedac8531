"""The one interface every implementation shares: build from (spec, params, SGD), then step(x, t) -> (loss, grads)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import Tensor

from impls.spec import FLOAT_DTYPES, LOSSES, PARAM_NAMES, NetSpec

Grads = dict[str, Tensor]


class UnsupportedConfig(NotImplementedError):
    """This implementation does not handle the requested spec/device/dtype; reported as unsupported, not failed."""


class CompileError(RuntimeError):
    """torch.compile (or graph capture) failed; never silently replaced by eager execution."""


@dataclass(frozen=True)
class SGD:
    """Rumelhart et al. 1986 eq. 9: dw <- momentum*dw - lr*dE/dw; w <- w + dw (torch.optim.SGD with dampening 0)."""

    lr: float = 0.1
    momentum: float = 0.0


class Implementation(ABC):
    """One way of writing the training step; subclasses are registered with @register('name')."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: place on the ladder from the textbook loop to the fused kernels: the reports' display order (records carry it)
    rank: ClassVar[int] = 1000
    #: the implementation the reports measure speed-ups against (the per-sample loop); records carry it
    baseline: ClassVar[bool] = False
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    dtypes: ClassVar[tuple[torch.dtype, ...]] = FLOAT_DTYPES
    #: True when every new (spec, shape, dtype) costs a compilation (benchmarks measure it apart).
    compiles: ClassVar[bool] = False
    #: True when the step's cost or memory is per sample (Python loop, per-sample grads): benchmarks cap its N.
    per_sample: ClassVar[bool] = False
    #: precisions the step can run in (impls.precision): low ones under torch.autocast, so torch implementations only
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: True when per_sample_grads() is implemented (verified by python -m verification --per-sample).
    gives_per_sample_grads: ClassVar[bool] = False
    #: the losses (impls.spec.LOSS_TABLE) the step computes; any other is unsupported, with unsupported_losses' reason
    losses: ClassVar[tuple[str, ...]] = LOSSES
    unsupported_losses: ClassVar[str] = ""
    #: whose allocator the step's buffers come from, so benchmarks.memory reads the meter that sees them: "torch"
    #: (c10's CPU and CUDA allocators), "numpy" (NumPy's, reported to tracemalloc) or "xla" (xla_executable()'s plan)
    allocates: ClassVar[str] = "torch"

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        reason = self.unsupported_reason(spec, params["W1"].device.type, params["W1"].dtype)
        if reason:
            raise UnsupportedConfig(f"{self.name}: {reason}")
        self.spec = spec
        self.sgd = sgd

    @classmethod
    def unsupported_reason(cls, spec: NetSpec, device: str, dtype: torch.dtype) -> str | None:
        """None if this implementation can run the configuration, else why not (one line)."""
        if device not in cls.devices:
            return f"runs on {', '.join(cls.devices)} only, not {device}"
        if dtype not in cls.dtypes:
            return f"supports {', '.join(map(str, cls.dtypes))} only, not {dtype}"
        if spec.loss not in cls.losses:
            return f"computes the {', '.join(cls.losses)} losses only, not {spec.loss}" + (
                f": {cls.unsupported_losses}" if cls.unsupported_losses else ""
            )
        return None

    @abstractmethod
    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        """One SGD step on the batch; returns the loss and gradients at the parameters *before* the update. They may
        be buffers the next step overwrites (numpy_flat, numba: no allocation per step): copy them to keep them."""

    @abstractmethod
    def params(self) -> dict[str, Tensor]:
        """The current parameters keyed W1, b1, W2, b2 (views; clone before mutating)."""

    @classmethod
    def timing_reason(cls, device: str) -> str | None:
        """None when a time measured on `device` means what it says, else why not (an interpreter, an emulation):
        benchmarks skip such rows with the reason."""
        return None

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """`steps` SGD steps on one batch; the loss before each step, (steps,) in the parameters' dtype and on their
        device. This default loops over step(); implementations that run K steps better (one kernel call, one
        graph replay, parameters kept on chip) override it, and python -m verification checks every one against
        the oracle's trajectory."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return torch.stack([self.step(x, t)[0].detach().clone() for _ in range(steps)])

    def per_sample_grads(self, x: Tensor, t: Tensor) -> Grads:
        """Per-sample gradients at the current parameters, each (N, *shape): the gradient of sample n's share of
        the data loss (means divide by the batch size N, as in the batch loss), without the L2 term, which
        belongs to the batch; their sum over n plus the L2 gradient is the batch gradient. No update is made.
        What DP-SGD clips and per-example diagnostics inspect. The tensors may be buffers that the next call
        overwrites (N x |theta| values are large): copy them to keep them."""
        raise UnsupportedConfig(f"{self.name}: gives no per-sample gradients")

    def xla_executable(self, x: Tensor, t: Tensor, steps: int | None = None) -> object:
        """Where allocates == "xla": the compiled executable step(x, t) (train of `steps` when given) calls, whose
        memory analysis is the call's allocation plan (XLA assigns every buffer ahead of the call)."""
        raise NotImplementedError(f"{self.name} allocates through {self.allocates}, not a compiler's plan")

    def set_lr(self, lr: float) -> None:
        """Change the learning rate for the following steps (schedules); momentum buffers are kept."""
        self.sgd = replace(self.sgd, lr=lr)


class ManualSGD(Implementation):
    """Implementations that produce (loss, grads) themselves and share one in-place momentum update."""

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        self._p = {k: params[k].detach().clone() for k in PARAM_NAMES}
        self._v = [torch.zeros_like(self._p[k]) for k in PARAM_NAMES] if sgd.momentum else []

    @abstractmethod
    def loss_and_grads(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        """Loss and gradients of the spec's objective at p."""

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        loss, grads = self.loss_and_grads(self._p, x, t)
        with torch.no_grad():  # autograd leaves are updated in place too
            apply_sgd([self._p[k] for k in PARAM_NAMES], [grads[k] for k in PARAM_NAMES], self._v, self.sgd)
        return loss, grads

    def params(self) -> dict[str, Tensor]:
        return self._p


def apply_sgd(ps: list[Tensor], gs: list[Tensor], vs: list[Tensor], sgd: SGD) -> None:
    """In place: v <- momentum*v - lr*g; p <- p + v (or p <- p - lr*g without momentum), as multi-tensor ops."""
    if sgd.momentum:
        torch._foreach_mul_(vs, sgd.momentum)
        torch._foreach_add_(vs, gs, alpha=-sgd.lr)
        torch._foreach_add_(ps, vs)
    else:
        torch._foreach_add_(ps, gs, alpha=-sgd.lr)


class SameInputs:
    """Whether a step is given the very (x, t) of its last call, unmodified since: what was derived from them (a
    NumPy view, a copy in a CUDA graph's static buffer) can then be reused. Unmodified means the same tensor
    objects with the same tensor._version, which counts every in-place change made through torch (a view shares
    its base's counter), at the same storage address (`x.data = y` swaps the storage without counting: a NumPy
    view or a copy made from the old one would hold the old values). Not seen: a write that bypasses torch (a NumPy
    alias, x.data) and an x.data swapped for a view at the same address (x.data = x.data[:k])."""

    def __init__(self) -> None:
        self._last: tuple = (None, -1, None, -1, 0, 0)

    def unchanged(self, x: Tensor, t: Tensor) -> bool:
        """True when x and t are the last remembered tensors, neither changed in place nor given new storage since."""
        lx, vx, lt, vt, px, pt = self._last
        same = x is lx and t is lt and x._version == vx and t._version == vt
        return same and x.data_ptr() == px and t.data_ptr() == pt  # +0.2 us a call (the version check: 0.2 us)

    def remember(self, x: Tensor, t: Tensor) -> None:
        """Record x and t (their versions and storage addresses) as what the derived state now holds."""
        self._last = (x, x._version, t, t._version, x.data_ptr(), t.data_ptr())

    def forget(self) -> None:
        self._last = (None, -1, None, -1, 0, 0)
