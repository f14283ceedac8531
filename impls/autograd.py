"""Raw tensors with requires_grad: the forward pass written by hand, gradients from loss.backward()."""

from __future__ import annotations

import torch
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, ManualSGD
from impls.functional import activate, binary_cross_entropy, wide_sum
from impls.precision import TORCH_PRECISIONS
from impls.spec import NetSpec


def autograd_loss(spec: NetSpec, p: dict[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
    """The objective written directly as tensor expressions (autograd differentiates it)."""
    z = activate(spec.hidden, x @ p["W1"].t() + p["b1"]) @ p["W2"].t() + p["b2"]
    scale = spec.loss_fn.scale(x.shape[0], spec.C)
    if spec.loss_fn.labels:
        loss = wide_sum(torch.logsumexp(z, dim=1) - z.gather(1, t[:, None]).squeeze(1)) * scale
    elif spec.loss_fn.kind == "binary":
        loss = wide_sum(binary_cross_entropy(z, t)) * scale
    else:
        loss = wide_sum((activate(spec.output, z) - t).pow(2)) * (scale / 2)
    if spec.l2:
        loss = loss + spec.l2 * (wide_sum(p["W1"].pow(2)) + wide_sum(p["W2"].pow(2)))
    return loss


@register("autograd")
class Autograd(ManualSGD):
    """torch.autograd on leaf tensors; the update is the shared manual momentum step."""

    summary = "raw tensors with requires_grad, loss.backward()"
    rank = 30
    precisions = TORCH_PRECISIONS

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        for v in self._p.values():
            v.requires_grad_(True)

    def loss_and_grads(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        for v in p.values():
            v.grad = None
        loss = autograd_loss(self.spec, p, x, t)
        loss.backward()
        return loss.detach(), {k: v.grad for k, v in p.items()}

    def params(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self._p.items()}
