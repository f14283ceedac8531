"""Per-sample loop with hand-written backprop through small layer objects (forward / backward with a cache)."""

from __future__ import annotations

import torch
from torch import Tensor

from impls import register
from impls.base import Grads, ManualSGD
from impls.functional import activate, activation_grad, l2_terms, loss_and_delta
from impls.precision import TF32_ONLY


class Linear:
    """y = W x + b for one sample; backward accumulates dW, db into the given buffers and returns dx."""

    def __init__(self, W: Tensor, b: Tensor, dW: Tensor, db: Tensor) -> None:
        self.W, self.b, self.dW, self.db = W, b, dW, db
        self.x: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        self.x = x  # (in,)
        return self.W @ x + self.b  # (out, in) @ (in,) -> (out,)

    def backward(self, dy: Tensor) -> Tensor:
        self.dW += torch.outer(dy, self.x)  # (out,) x (in,) -> (out, in)
        self.db += dy  # (out,)
        return self.W.t() @ dy  # (in, out) @ (out,) -> (in,)


class Activation:
    """Elementwise activation; caches input and output for the derivative."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.a: Tensor | None = None
        self.y: Tensor | None = None

    def forward(self, a: Tensor) -> Tensor:
        self.a, self.y = a, activate(self.kind, a)
        return self.y

    def backward(self, dy: Tensor) -> Tensor:
        d = activation_grad(self.kind, self.a, self.y)
        return dy if d is None else dy * d


@register("loop")
class Loop(ManualSGD):
    """The classic teaching version: one sample at a time, gradients accumulated over the batch."""

    precisions = TF32_ONLY  # torch matmuls: TF32 applies on CUDA

    summary = "per-sample Python loop, layer objects with hand-written backward"
    rank = 0
    baseline = True  # the textbook version the reports measure the others against
    per_sample = True
    gives_per_sample_grads = True

    def per_sample_grads(self, x: Tensor, t: Tensor) -> Grads:
        """The same layers, one sample at a time, each into its own slot of (N, ...) buffers."""
        spec, n, p = self.spec, x.shape[0], self._p
        out = {k: torch.zeros((n, *v.shape), dtype=v.dtype, device=v.device) for k, v in p.items()}
        act1 = Activation(spec.hidden)
        for i in range(n):
            fc1 = Linear(p["W1"], p["b1"], out["W1"][i], out["b1"][i])  # writes into sample i's slot
            fc2 = Linear(p["W2"], p["b2"], out["W2"][i], out["b2"][i])
            z = fc2.forward(act1.forward(fc1.forward(x[i])))  # (C,)
            _, dz = loss_and_delta(spec, z, activate(spec.output, z), t[i], n)  # (C,)
            fc1.backward(act1.backward(fc2.backward(dz)))
        return out

    def loss_and_grads(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        spec, n = self.spec, x.shape[0]
        grads = {k: torch.zeros_like(v) for k, v in p.items()}
        fc1 = Linear(p["W1"], p["b1"], grads["W1"], grads["b1"])
        fc2 = Linear(p["W2"], p["b2"], grads["W2"], grads["b2"])
        act1 = Activation(spec.hidden)
        loss = torch.zeros((), dtype=x.dtype, device=x.device)
        for i in range(n):
            z = fc2.forward(act1.forward(fc1.forward(x[i])))  # (D,) -> (H,) -> (H,) -> (C,)
            y = activate(spec.output, z)  # (C,)
            loss_i, dz = loss_and_delta(spec, z, y, t[i], n)  # (), (C,)
            loss += loss_i
            fc1.backward(act1.backward(fc2.backward(dz)))  # (C,) -> (H,) -> (H,) -> (D,)
        penalty, g1, g2 = l2_terms(spec, p["W1"], p["W2"])
        grads["W1"] += g1
        grads["W2"] += g2
        return loss + penalty, grads
