"""The compiled step (torch.compile, inductor) captured in a CUDA graph: one replay per step, and one replay for K
steps in train(). CUDA only.

Why both: a compiled step is ~5 fused kernels instead of ~30 eager ones, but still pays a Python call, dynamo's
guards and one launch per kernel (the compiled tiny step: 192 us on an H200); a graph replays all of them in one
submission (the compiled step captured by hand: 9.8 us there, 10 steps per graph 8.9 us per step, measured by an
independent script). torch.compile(mode="reduce-overhead") would capture graphs itself, but inductor turns them off
for a step that updates its inputs in place (177 us measured), so the capture here is explicit: the compiled
functional step's new parameters and momentum are copied into the graph's static buffers inside the graph.
"""

from __future__ import annotations

import torch
from torch import Tensor

from impls import register
from impls.base import SGD, CompileError, Grads, Implementation, SameInputs
from impls.compiled import compile_failure, compiled_step, from_compiler
from impls.precision import TF32_ONLY
from impls.spec import PARAM_NAMES, NetSpec


@register("graphed")
class Graphed(Implementation):
    """impls.compiled's step, captured with torch.cuda.graph: a graph per (batch shape, dtype, steps per replay)."""

    precisions = TF32_ONLY  # torch matmuls: TF32 applies on CUDA

    summary = "torch.compile'd step captured in a CUDA graph; K steps per replay in train() (CUDA only)"
    rank = 95
    devices = ("cuda",)
    compiles = True

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        self._p = [params[k].detach().clone() for k in PARAM_NAMES]
        self._v = [torch.zeros_like(p) for p in self._p]
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, tuple[Tensor, ...]]] = {}
        self._x: Tensor | None = None
        self._t: Tensor | None = None
        self._seen = SameInputs()  # the caller's x, t whose values the static buffers hold
        self.captures = 0

    @property
    def compilations(self) -> int:
        """Graphs inductor compiled for this (spec, lr, momentum), by any instance (benchmarks check none in timing)."""
        return compiled_step(self.spec, self.sgd.lr, self.sgd.momentum).graphs

    def _run(self, steps: int) -> tuple[Tensor, ...]:
        """`steps` compiled steps on the static buffers, updating them in place; the losses (steps,) and the first
        step's gradients (what step() returns)."""
        fn = compiled_step(self.spec, self.sgd.lr, self.sgd.momentum).fn
        losses, first = [], None
        for _ in range(steps):
            loss, grads, p, v = fn(self._p, self._v, self._x, self._t)
            for dst, src in zip(self._p + self._v, p + v, strict=True):
                dst.copy_(src)
            losses.append(loss)
            first = first if first is not None else grads
        return (torch.stack(losses), *first)

    def _graph(self, x: Tensor, t: Tensor, steps: int) -> tuple[torch.cuda.CUDAGraph, tuple[Tensor, ...]]:
        """The graph of `steps` steps for this batch shape, captured on first use: warm-up (the compilation) on a
        side stream, the state restored, then the capture. Capturing records without running."""
        key = (tuple(x.shape), x.dtype, tuple(t.shape), t.dtype, steps)
        if key in self._graphs:
            return self._graphs[key]
        if self._x is None or self._x.shape != x.shape or self._x.dtype != x.dtype:
            self._x, self._t = x.clone(), t.clone()
            self._graphs = {k: v for k, v in self._graphs.items() if k[:4] == key[:4]}
        saved = [p.clone() for p in self._p + self._v]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._run(1)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # records without running: the parameters are restored below
                out = self._run(steps)
        except Exception as exc:
            capture = isinstance(exc, RuntimeError) and "captur" in str(exc).lower()  # an op not allowed in a graph
            if from_compiler(exc) or capture:
                raise CompileError(
                    compile_failure(exc, self.spec.label, "cuda", "torch.compile + graph capture")
                ) from exc
            raise  # out of memory, a bug of ours: not called a compile failure
        finally:  # the warm-up steps (and a failed attempt) must not advance the state
            torch.cuda.current_stream().wait_stream(side)
            for dst, src in zip(self._p + self._v, saved, strict=True):
                dst.copy_(src)
        self._graphs[key] = (graph, out)
        self.captures += 1
        return graph, out

    def _replay(self, x: Tensor, t: Tensor, steps: int) -> tuple[Tensor, ...]:
        graph, out = self._graph(x, t, steps)
        if not self._seen.unchanged(x, t):  # the same unmodified batch again: the buffers hold it already
            self._x.copy_(x, non_blocking=True)
            self._t.copy_(t, non_blocking=True)
            self._seen.remember(x, t)
        graph.replay()
        return out

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        losses, *grads = self._replay(x, t, 1)
        return losses[0], dict(zip(PARAM_NAMES, grads, strict=True))

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """`steps` steps in one graph replay (one graph per distinct `steps`); the losses are a copy (the graph's
        output buffer is overwritten by its next replay)."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return self._replay(x, t, steps)[0].clone()

    def set_lr(self, lr: float) -> None:
        """The learning rate is a constant of the compiled step and of every graph: they are rebuilt."""
        super().set_lr(lr)
        self._graphs = {}

    def params(self) -> dict[str, Tensor]:
        return dict(zip(PARAM_NAMES, self._p, strict=True))
