"""cs231n: a class TwoLayerNet(input_size, hidden_size, output_size[, dtype=, device=, std=]) with `params` W1 (D, H),
b1 (H,), W2 (H, C), b2 (C,) -- NumPy or torch -- and loss(X, y, reg) -> (loss, grads dict); or EECS 498's function
nn_forward_backward(params, X, y, reg) (torch). ReLU, softmax cross-entropy, L2 reg * sum W^2 (l2_convention
"full", the project's) or 0.5 * reg * sum W^2 ("half", the older assignments), either one over the biases too
("full+biases", "half+biases"); "auto" finds which from the numbers (verification.conventions)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
from torch import Tensor

from impls.spec import NetSpec
from verification.forms.core import (
    HINTS,
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
    defines,
    defines_class,
    left_unchanged,
    register,
    unfilled,
    write_into,
)
from verification.sources import Defined


def _supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss) != ("relu", "identity", "cross_entropy"):
        return "the cs231n form is ReLU -> softmax cross-entropy (TwoLayerNet.loss) only"
    return None


def construct(cls: Callable[..., object], like: Tensor, *args: object) -> object:
    """cls(*args), given the case's device and dtype where its constructor takes them (EECS 498's TwoLayerNet
    defaults to device='cuda'; a dtype default tells NumPy from torch)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, object] = {}
    if "device" in params:
        kwargs["device"] = like.device.type if like.device.index is None else str(like.device)
    if "dtype" in params:
        default = params["dtype"].default
        numpy = isinstance(default, np.dtype) or (isinstance(default, type) and issubclass(default, np.generic))
        kwargs["dtype"] = np.dtype(str(like.dtype).removeprefix("torch.")) if numpy else like.dtype
    return cls(*args, **kwargs)


def cs231n(bound: Bound, options: Options) -> UserFn:
    """TwoLayerNet(D, H, C) with our parameters in its params dict (W transposed), loss(X, y, reg) called; or
    nn_forward_backward(params, X, y, reg) on torch tensors."""
    target = bound.get("TwoLayerNet")
    factor = options.l2_factor
    kept = Kept()

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        like = params["W1"]
        if inspect.isclass(target):
            key = ("net", spec.D, spec.H, spec.C, str(like.dtype), str(like.device))
            net = kept.get(key, lambda: construct(target, like, spec.D, spec.H, spec.C))
            held = getattr(net, "params", None)
            numpy = not isinstance(held.get("W1") if isinstance(held, dict) else None, Tensor)  # its W1's library
        else:
            net, numpy = None, False

        def conv(a: Tensor) -> object:
            return a.detach().cpu().numpy().copy() if numpy else a.detach().clone()

        mine = {"W1": conv(params["W1"].T), "b1": conv(params["b1"]), "W2": conv(params["W2"].T)}
        mine["b2"] = conv(params["b2"])
        xs = conv(x)
        if net is None:
            given = {k: conv(v) for k, v in mine.items()}
            result = target(given, xs, conv(t), spec.l2 * factor)  # type: ignore[operator]
            now = {f"params['{k}']": given.get(k) for k in mine}
            call = "nn_forward_backward(params, X, y, reg)"
        else:
            if not isinstance(getattr(net, "params", None), dict):
                net.params = {}
            write_into(net.params, mine)  # as its train() leaves them: in the arrays it holds
            result = net.loss(xs, y=conv(t), reg=spec.l2 * factor)
            held = getattr(net, "params", None)
            now = {f"params['{k}']": held.get(k) if isinstance(held, dict) else None for k in mine}
            call = "loss(X, y, reg)"
        left_unchanged(call, {**{f"params['{k}']": v for k, v in mine.items()}, "X": x}, {**now, "X": xs})
        if not (isinstance(result, tuple | list) and len(result) == 2):
            if numpy and (result is None or isinstance(result, np.ndarray)):  # the template returns scores unfilled
                return None, {HINTS: {"loss": unfilled("loss(X, y, reg)", result)}}
            raise LayoutMismatch(f"loss(X, y, reg) returned {type(result).__name__}, expected (loss, grads)")
        loss, grads = result
        hints = {}
        if numpy and loss is None:
            hints["loss"] = unfilled("the loss", loss)
        if numpy and not grads:
            hints.update({k: unfilled("grads", grads) for k in ("W1", "b1", "W2", "b2")})
        out = {k: as_tensor(v, like) for k, v in dict(grads or {}).items()}
        for k in ("W1", "W2"):
            g = out.get(k)
            if isinstance(g, Tensor) and g.shape == params[k].shape and g.shape != params[k].T.shape:
                raise LayoutMismatch(
                    f"{k} came back {tuple(g.shape)}, the nn.Linear layout's shape; the cs231n form's is "
                    f"{tuple(params[k].T.shape)} (use layout='linear' for nn.Linear-shaped code)"
                )
            if isinstance(g, Tensor):
                out[k] = g.T if g.dim() == 2 else g
        for k, n in (("b1", spec.H), ("b2", spec.C)):
            out[k] = as_vector(out.get(k), n, like)
        loss = as_loss(loss, like)
        if options.l2_biases and spec.l2:  # its penalty covers the biases: l2 sum b^2 out of the loss, 2 l2 b out of db
            for k in ("b1", "b2"):
                b = params[k].detach().to(like.dtype)
                if isinstance(out[k], Tensor) and out[k].shape == b.shape:
                    out[k] = out[k] - 2 * spec.l2 * b
                if isinstance(loss, Tensor):
                    loss = loss - spec.l2 * (b * b).sum()
        return loss, {**out, HINTS: hints}

    return fn


def _recognise(defined: Defined) -> str | None:
    """a class `TwoLayerNet` with `loss()` (and no `gradient()`: Deep Learning from Scratch's), or a function
    `nn_forward_backward`"""
    cls = defined.classes.get("TwoLayerNet")
    if cls and "gradient" in cls.methods:
        return defines(defined, "nn_forward_backward")
    return defines_class(defined, "TwoLayerNet", "loss") or defines(defined, "nn_forward_backward")


FORM = register(
    Form(
        "cs231n",
        "`TwoLayerNet(D, H, C)` with `params` W1 (D, H) and `loss(X, y, reg) -> (loss, grads)`, NumPy or torch; or "
        "EECS 498's `nn_forward_backward(params, X, y, reg)`",
        cs231n,
        (Role("TwoLayerNet", also=("nn_forward_backward",)),),
        _supports,
        (("hidden", "relu"), ("output", "identity"), ("loss", "cross_entropy")),
        recognise=_recognise,
        course="cs231n, LIS 640, EECS 498",
    )
)
