"""The batched manual step captured once in a CUDA graph and replayed: one launch instead of ~30 per step.

For a tiny net every kernel is a few hundred flops, so an eager step's time is kernel-launch overhead; a graph
replay submits the whole step at once. Inputs are copied into static buffers the graph reads (unless the caller
passes the same tensors as last time, unmodified: impls.base.SameInputs); the returned
loss and gradients are the graph's static outputs, overwritten by the next step. A new batch shape or dtype
re-captures. CUDA only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from impls import register
from impls.base import SGD, CompileError, Grads, Implementation, SameInputs, apply_sgd
from impls.batched import batched_loss_and_grads
from impls.compiled import compile_failure
from impls.precision import TF32_ONLY
from impls.spec import PARAM_NAMES, NetSpec


@register("cudagraph")
class CudaGraph(Implementation):
    """torch.cuda.CUDAGraph around batched_loss_and_grads + the in-place momentum update."""

    precisions = TF32_ONLY  # torch matmuls: TF32 applies on CUDA

    summary = "batched manual step + update captured in one CUDA graph (CUDA only)"
    rank = 90
    devices = ("cuda",)

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        self._p = [params[k].detach().clone() for k in PARAM_NAMES]
        self._v = [torch.zeros_like(p) for p in self._p]
        self._graph: torch.cuda.CUDAGraph | None = None
        self._x: Tensor | None = None
        self._t: Tensor | None = None
        self._out: tuple[Tensor, ...] = ()
        self._seen = SameInputs()  # the caller's x, t whose values the static buffers hold
        self.captures = 0
        self.input_copies = 0  # steps that copied x and t into the static buffers

    def _body(self) -> tuple[Tensor, ...]:
        loss, *grads = batched_loss_and_grads(self.spec, *self._p, self._x, self._t)
        apply_sgd(self._p, grads, self._v if self.sgd.momentum else [], self.sgd)
        return (loss, *grads)

    def _capture(self, x: Tensor, t: Tensor) -> None:
        """Warm up on a side stream (cuBLAS handles, workspaces), restore the state, then capture one step."""
        self._x, self._t = x.clone(), t.clone()
        saved = [p.clone() for p in self._p + self._v]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        for dst, src in zip(self._p + self._v, saved, strict=True):
            dst.copy_(src)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._out = self._body()
        except RuntimeError as exc:
            raise CompileError(compile_failure(exc, self.spec.label, "cuda", "CUDA graph capture")) from exc
        self._graph = graph
        self.captures += 1

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        if self._graph is None or x.shape != self._x.shape or x.dtype != self._x.dtype:
            self._capture(x, t)  # capture records the step without running it; the replay below runs it
        elif not self._seen.unchanged(x, t):  # the same unmodified batch again: the buffers hold it already
            self._x.copy_(x, non_blocking=True)  # (188 MB at N = 60000: 476 vs 407 us for batched, on an H200)
            self._t.copy_(t, non_blocking=True)
            self.input_copies += 1
        self._seen.remember(x, t)
        self._graph.replay()
        loss, *grads = self._out
        return loss, dict(zip(PARAM_NAMES, grads, strict=True))

    def set_lr(self, lr: float) -> None:
        """The learning rate is recorded in the graph: the next step re-captures it."""
        super().set_lr(lr)
        self._graph = None

    def params(self) -> dict[str, Tensor]:
        return dict(zip(PARAM_NAMES, self._p, strict=True))
