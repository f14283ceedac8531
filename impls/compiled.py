"""torch.compile of the whole manual step (forward, hand-written backward and momentum update) as one graph."""

from __future__ import annotations

import functools
import re
import traceback

import torch
import torch._dynamo
from torch import Tensor

from impls import register
from impls.base import SGD, CompileError, Grads, Implementation
from impls.batched import batched_loss_and_grads
from impls.precision import TORCH_PRECISIONS
from impls.spec import PARAM_NAMES, NetSpec


def _raise_dynamo_limits() -> None:
    """Every (spec, dtype, batch-shape class) is its own graph of the same Python function. Dynamo's default of
    8 graphs per function would silently fall back to eager after that; raise the limit and make a hit an error.
    The process-wide accumulated limit (256 by default) is hit by a full verification run (~500 graphs).
    Done when the first Compiled is built, not at import: importing impls leaves torch's settings alone. (A
    scoped torch._dynamo.config.patch around each step would cost ~60 us per call, measured.)"""
    cfg = torch._dynamo.config
    cfg.recompile_limit = max(cfg.recompile_limit, 4096)
    cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 65536)
    cfg.fail_on_recompile_limit_hit = True


class _Compiled:
    """One torch.compile'd step for a (spec, lr, momentum, mode), shared by every instance with that key, and a
    count of the graphs inductor built for it (a recompilation during timing shows up as a change)."""

    def __init__(self, spec: NetSpec, lr: float, momentum: float, mode: str | None) -> None:
        self.graphs = 0
        self.fn = torch.compile(functional_step(spec, lr, momentum), backend=self._backend, mode=mode)

    def _backend(self, gm: torch.fx.GraphModule, example_inputs: list[Tensor]):
        self.graphs += 1
        return torch._dynamo.lookup_backend("inductor")(gm, example_inputs)


_CACHE: dict[tuple, _Compiled] = {}


def functional_step(spec: NetSpec, lr: float, momentum: float) -> functools.partial:
    """The step `compiled` compiles, uncompiled: fn(p, v, x, t) -> (loss, grads, new p, new v) (for analysis, e.g.
    torch._dynamo.explain)."""
    return functools.partial(_step, spec, lr, momentum)


def compiled_step(spec: NetSpec, lr: float, momentum: float, mode: str | None = None) -> _Compiled:
    """The one compiled functional step fn(p, v, x, t) -> (loss, grads, new p, new v) for these hyper-parameters
    (constants of the graph), shared by every instance that asks (compiled, graphed): a new instance with seen
    shapes and dtypes costs no compilation. Raises dynamo's limits on first use."""
    _raise_dynamo_limits()
    key = (spec, float(lr), float(momentum), mode)
    if key not in _CACHE:
        _CACHE[key] = _Compiled(spec, float(lr), float(momentum), mode)
    return _CACHE[key]


#: where a compiler failure is raised: dynamo/inductor themselves, or the code inductor generated (its cache folder
#: is torchinductor_<user>); an error raised in our own step's Python is not the compiler's
COMPILER_FILES = re.compile(r"[/\\]torch[/\\]_(dynamo|inductor)[/\\]|torchinductor_")


def from_compiler(exc: BaseException) -> bool:
    """True when the exception comes from torch.compile's machinery or from the code it generated: its type lives
    in torch._dynamo / torch._inductor, or its innermost Python frame is in their files (e.g. a dtype mismatch
    inside an inductor-generated `extern_kernels.mm(...)`, seen with torch 2.11 under CPU autocast)."""
    if type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and bool(COMPILER_FILES.search(frames[-1].filename))


def compile_failure(exc: BaseException, label: str, device: str, what: str = "torch.compile") -> str:
    """One line: what failed to compile or capture, for which spec and device, with which torch, and the cause's
    first line (every compiling implementation reports its failures so)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{what} failed for {label} on {device} (torch {torch.__version__}): {type(exc).__name__}: {first}"


def _step(
    spec: NetSpec, lr: float, momentum: float, p: list[Tensor], v: list[Tensor], x: Tensor, t: Tensor
) -> tuple[Tensor, list[Tensor], list[Tensor], list[Tensor]]:
    """Functional step: returns loss, grads, new params and new momentum buffers."""
    loss, *grads = batched_loss_and_grads(spec, *p, x, t)
    if momentum:
        v = [momentum * vi - lr * gi for vi, gi in zip(v, grads, strict=True)]
        p = [pi + vi for pi, vi in zip(p, v, strict=True)]
    else:
        p = [pi - lr * gi for pi, gi in zip(p, grads, strict=True)]
    return loss, grads, p, v


@register("compiled")
class Compiled(Implementation):
    """torch.compile (inductor) of the batched manual step; a failed compile raises CompileError, never runs eager."""

    summary = "torch.compile (inductor) of the manual batched step + update"
    rank = 50
    precisions = TORCH_PRECISIONS
    compiles = True

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD(), mode: str | None = None) -> None:
        super().__init__(spec, params, sgd)
        self._p = [params[k].detach().clone() for k in PARAM_NAMES]
        self._v = [torch.zeros_like(p) for p in self._p]
        _raise_dynamo_limits()
        self._mode = mode
        self._use(sgd)

    def _use(self, sgd: SGD) -> None:
        """The compiled step for these hyper-parameters (they are constants of the graph)."""
        self._compiled = compiled_step(self.spec, sgd.lr, sgd.momentum, self._mode)
        self._fn = self._compiled.fn

    def set_lr(self, lr: float) -> None:
        """A new learning rate is a new graph constant: this compiles once per distinct value."""
        super().set_lr(lr)
        self._use(self.sgd)

    @property
    def compilations(self) -> int:
        """Graphs compiled so far for this instance's (spec, lr, momentum, mode), by any instance."""
        return self._compiled.graphs

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        try:
            loss, grads, self._p, self._v = self._fn(self._p, self._v, x, t)
        except Exception as exc:
            if from_compiler(exc):
                raise CompileError(compile_failure(exc, self.spec.label, x.device.type)) from exc
            raise
        return loss, dict(zip(PARAM_NAMES, grads, strict=True))

    def params(self) -> dict[str, Tensor]:
        return dict(zip(PARAM_NAMES, self._p, strict=True))
