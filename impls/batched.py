"""Hand-written backprop on the whole batch: two matmuls forward, three backward, biases fused with addmm."""

from __future__ import annotations

import torch
from torch import Tensor

from impls import register
from impls.base import Grads, ManualSGD
from impls.functional import activation_grad, forward, l2_terms, loss_and_delta
from impls.precision import TORCH_PRECISIONS
from impls.spec import NetSpec


def batched_loss_and_grads(
    spec: NetSpec, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor, x: Tensor, t: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Loss and (dW1, db1, dW2, db2) for the batch; pure function, also the body that `compiled` compiles."""
    a1, h, z, y = forward(spec, W1, b1, W2, b2, x)  # (N, H), (N, H), (N, C), (N, C)
    loss, dz = loss_and_delta(spec, z, y, t, x.shape[0])  # dz (N, C)
    dW2 = dz.t() @ h  # (C, H)
    db2 = dz.sum(0)  # (C,)
    dh = dz @ W2  # (N, H)
    dact = activation_grad(spec.hidden, a1, h)
    da1 = dh if dact is None else dh * dact  # (N, H)
    dW1 = da1.t() @ x  # (H, D)
    db1 = da1.sum(0)  # (H,)
    penalty, g1, g2 = l2_terms(spec, W1, W2)
    if spec.l2:
        dW1 = dW1 + g1
        dW2 = dW2 + g2
        loss = loss + penalty
    return loss, dW1, db1, dW2, db2


@register("batched")
class Batched(ManualSGD):
    """Whole-batch matrix products with a hand-derived backward pass."""

    summary = "hand-written backward with whole-batch matrix products"
    rank = 40
    precisions = TORCH_PRECISIONS
    gives_per_sample_grads = True

    def per_sample_grads(self, x: Tensor, t: Tensor) -> Grads:
        """The backward pass without the sum over the batch: outer products per sample, no Python loop. The (N, H, D)
        and (N, C, H) results are written into buffers kept between calls (overwritten by the next call: copy
        to keep): a fresh 157 MB tensor per call at N = 1000 on epfl costs page faults, 166 ms vs 27 ms measured."""
        p, spec, n = self._p, self.spec, x.shape[0]
        a1, h, z, y = forward(spec, p["W1"], p["b1"], p["W2"], p["b2"], x)  # (N, H), (N, H), (N, C), (N, C)
        _, dz = loss_and_delta(spec, z, y, t, n)  # (N, C)
        dact = activation_grad(spec.hidden, a1, h)
        da1 = dz @ p["W2"] if dact is None else (dz @ p["W2"]) * dact  # (N, H)
        key = (n, x.dtype, x.device)
        if getattr(self, "_ps_key", None) != key:
            self._ps_key = key
            self._ps_W1 = x.new_empty((n, spec.H, spec.D))
            self._ps_W2 = x.new_empty((n, spec.C, spec.H))
        return {
            "W1": torch.mul(da1.unsqueeze(2), x.unsqueeze(1), out=self._ps_W1),  # (N,H,1)*(N,1,D): da1[n] (x) x[n]
            "b1": da1,  # (N, H)
            "W2": torch.mul(dz.unsqueeze(2), h.unsqueeze(1), out=self._ps_W2),  # (N, C, 1) * (N, 1, H) -> (N, C, H)
            "b2": dz,  # (N, C)
        }

    def loss_and_grads(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        loss, dW1, db1, dW2, db2 = batched_loss_and_grads(self.spec, p["W1"], p["b1"], p["W2"], p["b2"], x, t)
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
