"""dlfs (Saito, "Deep Learning from Scratch", chapters 4 and 5; ゼロから作るDeep Learning): a class
TwoLayerNet(input_size, hidden_size, output_size[, weight_init_std]) with `params` W1 (D, H), b1 (H,), W2 (H, C),
b2 (C,) NumPy arrays, loss(x, t) -> the cross-entropy of the softmax and gradient(x, t) -> the grads dict, t one-hot.
Chapter 4's net is sigmoid with the gradient written out; chapter 5's holds Affine / Relu / SoftmaxWithLoss layers
built over the params' arrays (so the parameters are written into those arrays in place). The book's
cross_entropy_error takes log(y + 1e-7): the guarded-log convention (verification.runner.LOG_EPS_WORDS)."""

from __future__ import annotations

import inspect

import numpy as np
from torch import Tensor

from impls.spec import NetSpec
from verification.forms.core import (
    Bound,
    Form,
    Kept,
    LayoutMismatch,
    Options,
    Role,
    UserFn,
    as_loss,
    as_tensor,
    as_vector,
    left_unchanged,
    register,
)
from verification.forms.cs231n import construct
from verification.sources import Defined

CLASS = "TwoLayerNet"


def _supports(spec: NetSpec) -> str | None:
    if spec.hidden not in ("sigmoid", "relu") or (spec.output, spec.loss, spec.l2) != ("identity", "cross_entropy", 0):
        return "the dlfs form is sigmoid or ReLU -> softmax cross-entropy (TwoLayerNet.loss, .gradient), no L2"
    return None


def dlfs(bound: Bound, options: Options) -> UserFn:
    """TwoLayerNet(D, H, C) with our parameters written into its params arrays (W transposed), loss(x, t) and
    gradient(x, t) called with one-hot targets."""
    target = bound.get(CLASS)
    kept = Kept()

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        like = params["W1"]
        key = ("net", spec.D, spec.H, spec.C)
        net = (
            kept.get(key, lambda: construct(target, like, spec.D, spec.H, spec.C))
            if inspect.isclass(target)
            else target
        )
        held = getattr(net, "params", None)
        if not isinstance(held, dict):
            raise LayoutMismatch(f"{CLASS} has no params dict (W1, b1, W2, b2): not the dlfs form")
        ours = {"W1": params["W1"].T, "b1": params["b1"], "W2": params["W2"].T, "b2": params["b2"]}
        for k, v in ours.items():
            mine = held.get(k)
            value = v.detach().cpu().numpy()
            if not isinstance(mine, np.ndarray) or mine.shape != value.shape:
                shape = getattr(mine, "shape", type(mine).__name__)
                raise LayoutMismatch(f"params['{k}'] is {shape}, the book's is {value.shape} (W1 (D, H), b1 (H,))")
            mine[...] = value  # in place: chapter 5's Affine layers hold these very arrays
        xs = x.detach().cpu().numpy().copy()
        onehot = np.eye(spec.C)[t.detach().cpu().numpy()]  # the book trains on one-hot labels (one_hot_label=True)
        loss = net.loss(xs, onehot.copy())
        grads = net.gradient(xs, onehot.copy())
        given = {f"params['{k}']": v for k, v in ours.items()}
        left_unchanged(
            "loss(x, t) or gradient(x, t)",
            {**given, "x": x},
            {**{f"params['{k}']": held.get(k) for k in ours}, "x": xs},
        )
        if not isinstance(grads, dict):
            raise LayoutMismatch(f"gradient(x, t) returned {type(grads).__name__}, expected the grads dict")
        out = {k: as_tensor(v, like) for k, v in grads.items()}
        for k in ("W1", "W2"):
            if isinstance(out.get(k), Tensor) and out[k].dim() == 2:
                out[k] = out[k].T
        for k, n in (("b1", spec.H), ("b2", spec.C)):
            out[k] = as_vector(out.get(k), n, like)
        return as_loss(loss, like), out

    return fn


def _recognise(defined: Defined) -> str | None:
    """a class `TwoLayerNet` with `loss()` and `gradient()`"""
    cls = defined.classes.get(CLASS)
    if cls and {"loss", "gradient"} <= set(cls.methods):
        return f"defines class {CLASS} with loss() and gradient()"
    return None


def _usual_for(defined: Defined) -> dict[str, str]:
    """Chapter 5's net uses the Relu layer; chapter 4's, sigmoid."""
    cls = defined.classes.get(CLASS)
    return {"hidden": "relu"} if cls and {"Relu", "relu"} & cls.uses else {}


FORM = register(
    Form(
        "dlfs",
        "`TwoLayerNet(D, H, C)` with `params` W1 (D, H), `loss(x, t)` and `gradient(x, t) -> grads`, t one-hot "
        "(NumPy; chapter 5's Affine / Relu / SoftmaxWithLoss layers too)",
        dlfs,
        (Role(CLASS),),
        _supports,
        (("hidden", "sigmoid"), ("output", "identity"), ("loss", "cross_entropy"), ("l2", "0")),
        recognise=_recognise,
        usual_for=_usual_for,
        course="Deep Learning from Scratch (Saito), ch. 4-5",
    )
)
