"""nielsen (Nielsen's "Neural Networks and Deep Learning", chapter 2, network.py): a class Network(sizes) with
`biases` [(H, 1), (C, 1)] and `weights` [(H, D), (C, H)] NumPy arrays, backprop(x, y) -> (nabla_b, nabla_w) for one
sample as column vectors, and feedforward(a); sigmoid, the quadratic cost 1/2 |a - y|^2 per sample; the batch
gradient is the sum over samples (half_sse here)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from impls.spec import NetSpec
from verification.forms.core import (
    Bound,
    Form,
    LayoutMismatch,
    Options,
    Role,
    UserFn,
    as_loss,
    as_tensor,
    as_vector,
    attribute,
    defines_class,
    register,
)
from verification.sources import Defined

#: the forward pass the loss is computed from: the book's name, then readers' others
FORWARD = ("feedforward", "output", "forward", "predict")


def _supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss, spec.l2) != ("sigmoid", "sigmoid", "half_sse", 0.0):
        return "the nielsen form is sigmoid -> sigmoid with the quadratic cost 1/2 |a - y|^2 (half_sse), no L2"
    return None


def nielsen(bound: Bound, options: Options) -> UserFn:
    """Network([D, H, C]) with our parameters as its column-vector lists; backprop per sample, summed (its
    (nabla_b, nabla_w) or, told by the shapes, (nabla_w, nabla_b)); the loss from feedforward (or output, ...)."""
    network_class = bound.get("Network")

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        net = network_class([spec.D, spec.H, spec.C])

        def col(a: Tensor) -> np.ndarray:
            return a.detach().cpu().numpy().reshape(-1, 1).copy()

        net.biases = [col(params["b1"]), col(params["b2"])]
        net.weights = [params["W1"].detach().cpu().numpy().copy(), params["W2"].detach().cpu().numpy().copy()]
        xs, ts = x.detach().cpu().numpy(), t.detach().cpu().numpy()
        forward = attribute(net, *FORWARD)
        if forward is None:
            raise LayoutMismatch(f"Network has none of {', '.join(f'{n}(a)' for n in FORWARD)}: the loss needs one")
        loss, sums = 0.0, None
        for xi, ti in zip(xs, ts, strict=True):
            a = np.asarray(getattr(net, forward)(xi.reshape(-1, 1)))
            loss += 0.5 * float(((a - ti.reshape(-1, 1)) ** 2).sum())
            nb, nw = net.backprop(xi.reshape(-1, 1), ti.reshape(-1, 1))
            if np.shape(nb[0]) == tuple(params["W1"].shape) != np.shape(nw[0]):  # (nabla_w, nabla_b): by the shapes
                nb, nw = nw, nb
            part = [np.asarray(v) for v in (*nb, *nw)]
            sums = part if sums is None else [s + p for s, p in zip(sums, part, strict=True)]
        b1, b2, w1, w2 = sums
        for name, got, want in (("b1", b1, params["b1"]), ("b2", b2, params["b2"])):
            if got.shape not in ((want.numel(), 1), (want.numel(),)):
                raise LayoutMismatch(f"nabla_b for {name} came back {got.shape}, expected a column ({want.numel()}, 1)")
        like = params["W1"]
        grads = {"W1": as_tensor(w1, like), "b1": as_vector(b1, spec.H, like), "W2": as_tensor(w2, like)}
        grads["b2"] = as_vector(b2, spec.C, like)
        return as_loss(loss, like), grads

    return fn


def _recognise(defined: Defined) -> str | None:
    """a class `Network` with `backprop()`"""
    return defines_class(defined, "Network", "backprop")


FORM = register(
    Form(
        "nielsen",
        "`Network([D, H, C])` with per-sample `backprop(x, y)` on column vectors",
        nielsen,
        (Role("Network"),),
        _supports,
        (("hidden", "sigmoid"), ("output", "sigmoid"), ("loss", "half_sse"), ("l2", "0")),
        recognise=_recognise,
        course="Nielsen's book, chapter 2",
    )
)
