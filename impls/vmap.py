"""Per-sample gradients with torch.func (vmap of grad), summed to the batch gradient: what DP-SGD and
per-example diagnostics need, and what it costs compared with one batched backward."""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.func import grad_and_value, vmap

from impls import register
from impls.base import Grads, ManualSGD
from impls.functional import activate, binary_cross_entropy
from impls.precision import TF32_ONLY
from impls.spec import PARAM_NAMES, NetSpec


def sample_loss(spec: NetSpec, n: int, p: dict[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
    """One sample's share of the batch's data loss (means divide by the batch size n); no L2 term."""
    z = p["W2"] @ activate(spec.hidden, p["W1"] @ x + p["b1"]) + p["b2"]  # (C, H) @ (H,) -> (C,); x is (D,)
    scale = spec.loss_fn.scale(n, spec.C)
    if spec.loss_fn.labels:
        return (torch.logsumexp(z, 0) - z.gather(0, t.unsqueeze(0)).squeeze(0)) * scale
    if spec.loss_fn.kind == "binary":
        return binary_cross_entropy(z, t).sum() * scale
    return (activate(spec.output, z) - t).pow(2).sum() * (scale / 2)


@register("vmap")
class Vmap(ManualSGD):
    """vmap(grad(sample_loss)) gives an (N, ...) gradient per parameter; the batch gradient is its sum."""

    precisions = TF32_ONLY  # torch matmuls: TF32 applies on CUDA

    summary = "torch.func.vmap of per-sample grad, summed"
    rank = 10
    per_sample = True  # materialises N gradients (N*H*D floats): benchmarks cap its batch like the loop's
    gives_per_sample_grads = True

    def _per_sample(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Grads, Tensor]:
        f = vmap(grad_and_value(functools.partial(sample_loss, self.spec, x.shape[0])), in_dims=(None, 0, 0))
        return f(p, x, t)  # per_sample[k]: (N, *shape of k), e.g. W1 (N, H, D); losses (N,)

    def per_sample_grads(self, x: Tensor, t: Tensor) -> Grads:
        return self._per_sample(self._p, x, t)[0]

    def loss_and_grads(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        per_sample, losses = self._per_sample(p, x, t)
        grads = {k: per_sample[k].sum(0) for k in PARAM_NAMES}  # (N, ...) -> (...)
        loss = losses.sum()
        if self.spec.l2:
            loss = loss + self.spec.l2 * (p["W1"].pow(2).sum() + p["W2"].pow(2).sum())
            grads["W1"] = grads["W1"] + 2 * self.spec.l2 * p["W1"]
            grads["W2"] = grads["W2"] + 2 * self.spec.l2 * p["W2"]
        return loss, grads
