"""nn.Module built from nn.Linear, losses from torch.nn.functional, updated by torch.optim.SGD."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from impls import register
from impls.base import SGD, Grads, Implementation
from impls.precision import TORCH_PRECISIONS
from impls.spec import NetSpec

_ACT: dict[str, nn.Module] = {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "relu": nn.ReLU(), "identity": nn.Identity()}


class TwoLayerNet(nn.Module):
    """fc1 -> hidden activation -> fc2 -> output activation."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.fc1 = nn.Linear(spec.D, spec.H)
        self.fc2 = nn.Linear(spec.H, spec.C)
        self.act1 = _ACT[spec.hidden]

    def forward(self, x: Tensor) -> Tensor:
        """Output logits (before the output activation, which belongs to the loss here)."""
        return self.fc2(self.act1(self.fc1(x)))


def module_loss(spec: NetSpec, net: TwoLayerNet, z: Tensor, t: Tensor) -> Tensor:
    """The spec's objective with torch.nn.functional losses; L2 on the weights only."""
    rule = spec.loss_fn
    if rule.labels:
        loss = F.cross_entropy(z, t, reduction="mean" if rule.over_n else "sum") * rule.factor
    elif rule.kind == "binary":  # the mean over N*C, as the table's scale (factor 1, over_n and over_c)
        loss = F.binary_cross_entropy_with_logits(z, t, reduction="sum") * rule.scale(z.shape[0], spec.C)
    else:  # F.mse_loss: sum (y - t)^2, or its mean over N*C; the table's loss is scale/2 times the sum
        mean = rule.over_n and rule.over_c
        loss = F.mse_loss(_ACT[spec.output](z), t, reduction="mean" if mean else "sum")
        factor = rule.factor / 2 if mean else rule.scale(z.shape[0], spec.C) / 2
        if factor != 1.0:
            loss = factor * loss
    if spec.l2:
        loss = loss + spec.l2 * (net.fc1.weight.square().sum() + net.fc2.weight.square().sum())
    return loss


@register("module")
class Module(Implementation):
    """The idiomatic PyTorch way: model, loss, optimizer.zero_grad / backward / step."""

    summary = "nn.Module of nn.Linear layers + torch.optim.SGD"
    rank = 20
    precisions = TORCH_PRECISIONS

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        W1 = params["W1"]
        self.net = TwoLayerNet(spec).to(device=W1.device, dtype=W1.dtype)
        with torch.no_grad():
            for name, p in self._named().items():
                p.copy_(params[name])
        self.opt = torch.optim.SGD(self.net.parameters(), lr=sgd.lr, momentum=sgd.momentum)

    def _named(self) -> dict[str, nn.Parameter]:
        n = self.net
        return {"W1": n.fc1.weight, "b1": n.fc1.bias, "W2": n.fc2.weight, "b2": n.fc2.bias}

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        self.opt.zero_grad(set_to_none=True)
        loss = module_loss(self.spec, self.net, self.net(x), t)
        loss.backward()
        self.opt.step()
        return loss.detach(), {k: p.grad for k, p in self._named().items()}

    def params(self) -> dict[str, Tensor]:
        return {k: p.detach() for k, p in self._named().items()}

    def set_lr(self, lr: float) -> None:
        """Through the optimizer's param groups, as torch.optim.lr_scheduler does."""
        super().set_lr(lr)
        for group in self.opt.param_groups:
            group["lr"] = lr
