"""Plug-ins that are right but written differently, and the subtle bugs that the corner-case data must catch.

Each correct variant must pass every case verification plans (normal, large-logits, exact-zeros, batches that
lack a class); each bug must fail. Written independently of impls/ on purpose: they stand in for user code.
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F

ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}


def _dact(name, a, y, relu_ge=False):
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y * y
    if name == "relu":
        return ((a >= 0) if relu_ge else (a > 0)).to(a.dtype)
    return torch.ones_like(a)


def _bce_delta(z, t):
    """Binary cross-entropy of sigmoid outputs averaged over N x C, and its dL/dz = (sigmoid(z) - t) / (N C)."""
    return F.binary_cross_entropy_with_logits(z, t), (torch.sigmoid(z) - t) / t.numel()


def _ce_delta(z, t, bug=""):
    """Loss and dLoss/dz of mean softmax cross-entropy, (N, C) logits, in the ways people write it."""
    n, c = z.shape
    if bug == "unshifted_softmax":
        e = torch.exp(z)
        p = e / e.sum(1, keepdim=True)
        loss = -torch.log(p[torch.arange(n), t]).mean()
    else:
        logp = z - torch.logsumexp(z, 1, keepdim=True)
        p = logp.exp()
        loss = -logp[torch.arange(n), t].mean()
    if bug == "one_hot_without_num_classes":
        onehot = F.one_hot(t).to(z.dtype)
    else:
        onehot = F.one_hot(t, c).to(z.dtype)
    if bug == "bincount_without_minlength":  # db2 from class counts: sum_n p - counts
        return loss, (p - onehot) / n, (p.sum(0) - torch.bincount(t).to(z.dtype)) / n
    return loss, (p - onehot) / n, None


def _backprop(params, x, t, spec, bug=""):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    if bug == "in_place_update":
        W1 -= 1e-3  # the caller's tensor changes
    a1 = x @ W1.T + b1  # (N, H)
    h = ACT[spec.hidden](a1)
    z = h @ W2.T + b2  # (N, C)
    db2 = None
    if spec.loss == "cross_entropy":
        loss, dz, db2 = _ce_delta(z, t, bug)
    elif spec.loss == "bce":
        loss, dz = _bce_delta(z, t)
    else:
        y = ACT[spec.output](z)
        r = y - t
        scale = {"sse": 2.0, "half_sse": 1.0, "mse": 2.0 / r.numel()}[spec.loss]
        loss = (r * r).sum() * scale / 2
        dz = scale * r * _dact(spec.output, z, y)
    da1 = (dz @ W2) * _dact(spec.hidden, a1, h, relu_ge=bug == "relu_ge")
    grads = {"W1": da1.T @ x, "b1": da1.sum(0), "W2": dz.T @ h, "b2": dz.sum(0) if db2 is None else db2}
    loss = loss + spec.l2 * ((W1 * W1).sum() + (W2 * W2).sum())
    grads["W1"] = grads["W1"] + 2 * spec.l2 * W1
    grads["W2"] = grads["W2"] + 2 * spec.l2 * W2
    return loss, grads


# ---- correct, written differently -------------------------------------------------------------------------


def einsum(params, x, t, spec):
    """Every product as an einsum."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    a1 = torch.einsum("nd,hd->nh", x, W1) + b1
    h = ACT[spec.hidden](a1)
    z = torch.einsum("nh,ch->nc", h, W2) + b2
    if spec.loss == "cross_entropy":
        loss, dz, _ = _ce_delta(z, t)
    elif spec.loss == "bce":
        loss, dz = _bce_delta(z, t)
    else:
        y = ACT[spec.output](z)
        r = y - t
        scale = {"sse": 2.0, "half_sse": 1.0, "mse": 2.0 / r.numel()}[spec.loss]
        loss = torch.einsum("nc,nc->", r, r) * scale / 2
        dz = scale * r * _dact(spec.output, z, y)
    da1 = torch.einsum("nc,ch->nh", dz, W2) * _dact(spec.hidden, a1, h)
    loss = loss + spec.l2 * (torch.einsum("hd,hd->", W1, W1) + torch.einsum("ch,ch->", W2, W2))
    return loss, {
        "W1": torch.einsum("nh,nd->hd", da1, x) + 2 * spec.l2 * W1,
        "b1": torch.einsum("nh->h", da1),
        "W2": torch.einsum("nc,nh->ch", dz, h) + 2 * spec.l2 * W2,
        "b2": torch.einsum("nc->c", dz),
    }


def float64_inside(params, x, t, spec):
    """Computes in float64, returns the caller's dtype."""
    dtype = x.dtype
    p64 = {k: v.double() for k, v in params.items()}
    loss, grads = _backprop(p64, x.double(), t.double() if t.is_floating_point() else t, spec)
    return loss.to(dtype), {k: v.to(dtype) for k, v in grads.items()}


def autograd_inside(params, x, t, spec):
    """torch.autograd on copies, F.cross_entropy / F.mse_loss."""
    p = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    z = ACT[spec.hidden](F.linear(x, p["W1"], p["b1"]))
    z = F.linear(z, p["W2"], p["b2"])
    if spec.loss == "cross_entropy":
        loss = F.cross_entropy(z, t)
    elif spec.loss == "bce":
        loss = F.binary_cross_entropy_with_logits(z, t)
    else:
        loss = F.mse_loss(ACT[spec.output](z), t, reduction="mean" if spec.loss == "mse" else "sum")
        loss = loss * (0.5 if spec.loss == "half_sse" else 1.0)
    loss = loss + spec.l2 * (p["W1"].pow(2).sum() + p["W2"].pow(2).sum())
    grads = torch.autograd.grad(loss, [p[k] for k in ("W1", "b1", "W2", "b2")])
    return loss.detach(), dict(zip(("W1", "b1", "W2", "b2"), grads, strict=True))


def logsumexp_ce(params, x, t, spec):
    """Cross-entropy as logsumexp minus the picked logit, softmax for the delta."""
    if spec.loss != "cross_entropy":
        return _backprop(params, x, t, spec)
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    a1 = x @ W1.T + b1
    h = ACT[spec.hidden](a1)
    z = h @ W2.T + b2
    n = x.shape[0]
    loss = (torch.logsumexp(z, 1) - z.gather(1, t[:, None]).squeeze(1)).sum() / n
    dz = torch.softmax(z, 1)
    dz[torch.arange(n), t] -= 1
    dz = dz / n
    da1 = (dz @ W2) * _dact(spec.hidden, a1, h)
    loss = loss + spec.l2 * ((W1 * W1).sum() + (W2 * W2).sum())
    return loss, {
        "W1": da1.T @ x + 2 * spec.l2 * W1,
        "b1": da1.sum(0),
        "W2": dz.T @ h + 2 * spec.l2 * W2,
        "b2": dz.sum(0),
    }


def non_contiguous(params, x, t, spec):
    """Returns transposed views (non-contiguous tensors of the right shape)."""
    loss, g = _backprop(params, x, t, spec)
    return loss, {"W1": g["W1"].T.contiguous().T, "b1": g["b1"], "W2": g["W2"].T.contiguous().T, "b2": g["b2"]}


def per_sample_loop(params, x, t, spec):
    """One sample at a time, gradients summed; the means divide by the batch size."""
    n = x.shape[0]
    total = None
    loss = torch.zeros((), dtype=x.dtype)
    no_l2 = type(spec)(spec.D, spec.H, spec.C, spec.hidden, spec.output, spec.loss, 0.0)
    for i in range(n):
        li, gi = _backprop(params, x[i : i + 1], t[i : i + 1], no_l2)
        weight = 1.0 if spec.loss in ("sse", "half_sse") else 1.0 / n  # a mean over 1 sample -> over n
        loss = loss + li * weight
        gi = {k: v * weight for k, v in gi.items()}
        total = gi if total is None else {k: total[k] + gi[k] for k in gi}
    W1, W2 = params["W1"], params["W2"]
    loss = loss + spec.l2 * ((W1 * W1).sum() + (W2 * W2).sum())
    total["W1"] = total["W1"] + 2 * spec.l2 * W1
    total["W2"] = total["W2"] + 2 * spec.l2 * W2
    return loss, total


# ---- bugs that only the corner-case data can see -----------------------------------------------------------


def unshifted_softmax(params, x, t, spec):
    """exp(z) / sum exp(z) without subtracting the max: inf/NaN once a logit passes log(max float)."""
    return _backprop(params, x, t, spec, bug="unshifted_softmax")


def in_place_update(params, x, t, spec):
    """Changes the caller's W1."""
    return _backprop(params, x, t, spec, bug="in_place_update")


def relu_ge(params, x, t, spec):
    """relu'(a) = 1 for a >= 0: differs from torch's convention only where a is exactly 0."""
    return _backprop(params, x, t, spec, bug="relu_ge")


def one_hot_without_num_classes(params, x, t, spec):
    """F.one_hot(t): its width is max(t) + 1, too narrow for a batch without the last class."""
    return _backprop(params, x, t, spec, bug="one_hot_without_num_classes")


def bincount_without_minlength(params, x, t, spec):
    """torch.bincount(t) is too short for a batch without the last class."""
    return _backprop(params, x, t, spec, bug="bincount_without_minlength")


# ---- plug-ins that misbehave rather than compute wrongly ---------------------------------------------------


def exits_zero(params, x, t, spec):
    sys.exit(0)


def hard_exit(params, x, t, spec):
    os._exit(0)


def hangs(params, x, t, spec):
    time.sleep(3600)


def numpy_grads(params, x, t, spec):
    """Right values, returned as NumPy arrays."""
    loss, g = _backprop(params, x, t, spec)
    return loss, {k: v.numpy() for k, v in g.items()}


def float64_grads(params, x, t, spec):
    """Right values, returned in float64 whatever the parameters' dtype."""
    loss, g = _backprop(params, x, t, spec)
    return loss, {k: v.double() for k, v in g.items()}


def python_float_loss(params, x, t, spec):
    """The loss as a Python float instead of a 0-dim tensor."""
    loss, g = _backprop(params, x, t, spec)
    return float(loss), g
