"""Hand-written pieces shared by the manual-backprop implementations: activations, their derivatives, loss deltas."""

from __future__ import annotations

import torch
from torch import Tensor

from impls.spec import NetSpec


def activate(name: str, a: Tensor) -> Tensor:
    """Apply the named activation (identity, sigmoid, tanh, relu)."""
    if name == "sigmoid":
        return torch.sigmoid(a)
    if name == "tanh":
        return torch.tanh(a)
    if name == "relu":
        return torch.relu(a)
    return a


def activation_grad(name: str, a: Tensor, y: Tensor) -> Tensor | None:
    """d y / d a from the pre-activation a and output y; None for identity. ReLU'(0) = 0 as in torch."""
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y * y
    if name == "relu":
        return (a > 0).to(a.dtype)
    return None


LOW_FLOATS = (torch.float16, torch.bfloat16)


def wide_sum(x: Tensor, dims: tuple[int, ...] | int | None = None) -> Tensor:
    """x summed over dims (all when None), accumulated and returned in fp32 when x is bf16/fp16: a loss summed
    over a large batch exceeds fp16's largest value (65504) long before the mean is taken (CUDA's autocast sums in
    fp32 by itself, CPU's does not), and bf16 keeps 8 bits of a running sum. Other dtypes sum as they are."""
    dtype = torch.float32 if x.dtype in LOW_FLOATS else None
    return x.sum(dim=dims, dtype=dtype) if dims is not None else x.sum(dtype=dtype)


def loss_and_delta(
    spec: NetSpec, z: Tensor, y: Tensor, t: Tensor, n_total: int, sum_dims: tuple[int, ...] | None = None
) -> tuple[Tensor, Tensor]:
    """Data loss of output pre-activations z / outputs y, and dLoss/dz; n_total is the batch size for the means.

    Works for a batch (N, C) and for one sample (C,) alike, so the per-sample loop and the batched code share it,
    and for K nets at once (N, K, C), where sum_dims=(0, 2) gives one loss per net. Class labels t have z's
    shape without its last axis.
    """
    rule = spec.loss_fn
    scale = rule.scale(n_total, spec.C)
    if rule.labels:
        logp = torch.log_softmax(z, dim=-1)
        # scatter, not F.one_hot: one_hot validates the labels with a device->host sync (breaks CUDA graph capture)
        onehot = torch.zeros_like(z).scatter_(-1, t.unsqueeze(-1), 1.0)
        loss = -wide_sum(logp * onehot, sum_dims) * scale
        return loss, (logp.exp() - onehot) * scale
    if rule.kind == "binary":  # -(t log y + (1 - t) log(1 - y)) = softplus(z) - t z: finite where y saturates
        loss = wide_sum(binary_cross_entropy(z, t), sum_dims) * scale
        return loss, (y - t) * scale
    diff = y - t
    loss = wide_sum(diff * diff, sum_dims) * (scale / 2)
    dy = diff * scale
    dact = activation_grad(spec.output, z, y)
    return loss, dy if dact is None else dy * dact


def binary_cross_entropy(z: Tensor, t: Tensor) -> Tensor:
    """Elementwise -(t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))) from the logits: torch's log-sum-exp form, exact
    where sigmoid(z) rounds to 0 or 1 (whose log the textbook formula takes), and differentiated as sigmoid(z) - t
    exactly (F.softplus is not: it returns z itself past its threshold of 20, off by log1p(exp(-20)) = 2e-9)."""
    return torch.nn.functional.binary_cross_entropy_with_logits(z, t.expand_as(z), reduction="none")


def l2_terms(spec: NetSpec, W1: Tensor, W2: Tensor) -> tuple[Tensor | float, Tensor | float, Tensor | float]:
    """The L2 penalty l2*(|W1|^2 + |W2|^2) and its gradients 2*l2*W1, 2*l2*W2 (zeros elided when l2 = 0)."""
    if not spec.l2:
        return 0.0, 0.0, 0.0
    return spec.l2 * (wide_sum(W1 * W1) + wide_sum(W2 * W2)), 2 * spec.l2 * W1, 2 * spec.l2 * W2


def forward(spec: NetSpec, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor, x: Tensor) -> tuple[Tensor, ...]:
    """The forward pass on a batch x (N, D): pre-activations and activations (a1, h, z, y)."""
    a1 = torch.addmm(b1, x, W1.t())  # (N, H)
    h = activate(spec.hidden, a1)  # (N, H)
    z = torch.addmm(b2, h, W2.t())  # (N, C)
    return a1, h, z, activate(spec.output, z)  # y (N, C)


def predict(spec: NetSpec, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """The net's outputs y (N, C) for x (N, D) at `params` (logits for cross-entropy), without gradients."""
    with torch.no_grad():
        return forward(spec, params["W1"], params["b1"], params["W2"], params["b2"], x)[3]
