"""layers (UMONS Machine Learning II, assignment IV): layer objects Linear(in_features, out_features) with weight
(in, out) or (out, in) and bias, forward(x) caching, backward(dupstream) -> dx setting weight_grad/bias_grad;
activation objects ReLU(), Sigmoid(), Tanh(); a Net(layers) where there is one. The checker builds
[Linear(D, H), act, Linear(H, C)] with its parameters, feeds dLoss/dy as dupstream and reads the gradients."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from impls.base import UnsupportedConfig
from impls.spec import NetSpec
from verification.forms.core import (
    HINTS,
    Bound,
    Form,
    LayoutMismatch,
    Options,
    Role,
    UserFn,
    as_tensor,
    as_vector,
    register,
)
from verification.sources import Defined

ACTIVATION_CLASSES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": None}
_GRAD_NAMES = {
    "weight": ("weight_grad", "grad_weight", "dW", "dw", "grad_W", "W_grad"),
    "bias": ("bias_grad", "grad_bias", "db", "grad_b", "b_grad"),
}
_PARAM_NAMES = {"weight": ("weight", "W", "w"), "bias": ("bias", "b")}


def _supports(spec: NetSpec) -> str | None:
    return "the layers form has no L2 term (l2 = 0 only)" if spec.l2 else None


def _attr(obj: object, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if hasattr(obj, n)), None)


def layers(bound: Bound, options: Options) -> UserFn:
    """[Linear(D, H), act, Linear(H, C)] (+ the output activation's object), through Net(layers) where there is
    one; our parameters in the layers, dLoss/dy fed to backward, weight_grad/bias_grad read back."""
    linear_cls = bound.get("Linear")
    orientation: list[str] = []  # "in_out" (x @ W, the course's) or "out_in" (nn.Linear's), found once

    def oriented() -> str:
        if not orientation:
            probe = linear_cls(2, 3)  # type: ignore[operator]
            w = getattr(probe, _attr(probe, _PARAM_NAMES["weight"]) or "weight", None)
            shape = tuple(np.shape(w))
            if shape not in ((2, 3), (3, 2)):
                raise LayoutMismatch(f"Linear(2, 3)'s weight is {shape}: expected (2, 3) (in, out) or (3, 2) (out, in)")
            orientation.append("in_out" if shape == (2, 3) else "out_in")
        return orientation[0]

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        flip = oriented() == "in_out"
        acts = []
        for which in (spec.hidden, spec.output):
            name = ACTIVATION_CLASSES[which]
            if name is not None:
                if not bound.has(name):
                    raise UnsupportedConfig(f"no {name} class: the {which} cases need one")
                acts.append(bound.get(name)())  # type: ignore[operator]
            else:
                acts.append(None)
        first, second = linear_cls(spec.D, spec.H), linear_cls(spec.H, spec.C)  # type: ignore[operator]
        stack = [first, acts[0], second] + ([acts[1]] if acts[1] is not None else [])
        net = bound.get("Net")(stack) if bound.has("Net") else None  # type: ignore[operator]
        for layer, w, b in ((first, "W1", "b1"), (second, "W2", "b2")):  # after Net(), whose init may re-draw them
            weight = params[w].detach().clone()
            setattr(layer, _attr(layer, _PARAM_NAMES["weight"]) or "weight", weight.T.contiguous() if flip else weight)
            bname = _attr(layer, _PARAM_NAMES["bias"]) or "bias"
            old = getattr(layer, bname, None)
            bias = params[b].detach().clone()
            setattr(
                layer,
                bname,
                bias.reshape(old.shape) if isinstance(old, Tensor) and old.numel() == bias.numel() else bias,
            )
        xi = x.detach().clone()
        y = net.forward(xi) if net is not None else _chain_forward(stack, xi)
        if not isinstance(y, Tensor) or y.numel() != x.shape[0] * spec.C:
            raise LayoutMismatch(f"the net's forward returned {type(y).__name__} "
                                 f"{tuple(y.shape) if isinstance(y, Tensor) else ''}, expected (N, C)")  # fmt: skip
        y = y.reshape(x.shape[0], spec.C)
        loss, dup = _loss_and_upstream(y, t, spec)
        returned = net.backward(dup) if net is not None else _chain_backward(stack, dup)
        grads: dict[str, object] = {}
        hints = {}
        for layer, w, b, n in ((first, "W1", "b1", spec.H), (second, "W2", "b2", spec.C)):
            gw, gb = _layer_grads(layer, returned if layer is first and net is None else None)
            gw = as_tensor(gw, params[w])
            if isinstance(gw, Tensor) and tuple(gw.shape) == (n, n) != tuple(params[w].shape):
                hints[w] = f"weight_grad is ({n}, {n}), (out, out): the layer cached its output instead of its input"
            if isinstance(gw, Tensor) and gw.dim() == 2 and flip:
                gw = gw.T
            grads[w], grads[b] = gw, as_vector(gb, n, params[w])
        return loss, {**grads, HINTS: hints}

    return fn


def _chain_forward(stack: list[object], x: Tensor) -> object:
    for layer in stack:
        x = layer.forward(x)  # type: ignore[attr-defined]
    return x


def _chain_backward(stack: list[object], dup: Tensor) -> object:
    for layer in reversed(stack):
        dup = layer.backward(dup)  # type: ignore[attr-defined]
    return dup


def _layer_grads(layer: object, returned: object) -> tuple[object, object]:
    """A layer's (weight, bias) gradients: from its attributes (weight_grad, dW, a grads dict, weight.grad), or
    from a backward that returns (dx, [dW, db])."""
    w = _attr(layer, _GRAD_NAMES["weight"])
    b = _attr(layer, _GRAD_NAMES["bias"])
    if w and b and getattr(layer, w) is not None:
        return getattr(layer, w), getattr(layer, b)
    grads = getattr(layer, "grads", None)
    if isinstance(grads, Mapping):
        gw = next((grads[k] for k in ("weight", "W", "w", "dW") if k in grads), None)
        gb = next((grads[k] for k in ("bias", "b", "db") if k in grads), None)
        if gw is not None:
            return gw, gb
    weight = getattr(layer, _attr(layer, _PARAM_NAMES["weight"]) or "weight", None)
    if isinstance(weight, Tensor) and weight.grad is not None:
        bias = getattr(layer, _attr(layer, _PARAM_NAMES["bias"]) or "bias", None)
        return weight.grad, getattr(bias, "grad", None)
    if isinstance(returned, tuple | list) and len(returned) == 2 and isinstance(returned[1], tuple | list):
        return tuple(returned[1][:2])  # type: ignore[return-value]
    return None, None


def _loss_and_upstream(y: Tensor, t: Tensor, spec: NetSpec) -> tuple[Tensor, Tensor]:
    """The spec's loss of the net's output and its gradient dLoss/dy (the dupstream fed to backward), in torch."""
    scale = spec.loss_fn.scale(y.shape[0], spec.C)
    yd = y.detach()
    if spec.loss_fn.squared:
        r = yd - t
        return scale / 2 * (r**2).sum(), scale * r
    if spec.loss_fn.kind == "binary":  # y is the Sigmoid object's output: dLoss/dy = scale (y - t) / (y (1 - y))
        loss = -scale * (t * torch.log(yd) + (1 - t) * torch.log1p(-yd)).sum()
        return loss, scale * (yd - t) / (yd * (1 - yd))
    logp = torch.log_softmax(yd, dim=1)
    loss = -scale * logp[torch.arange(y.shape[0]), t].sum()
    dz = logp.exp()
    dz[torch.arange(y.shape[0]), t] -= 1
    return loss, scale * dz


def _recognise(defined: Defined) -> str | None:
    """a class `Linear` and one of `ReLU`, `Sigmoid`, `Tanh`"""
    acts = [name for name in ("ReLU", "Sigmoid", "Tanh") if name in defined.classes]
    if "Linear" in defined.classes and acts:
        return f"defines classes Linear and {', '.join(acts)}"
    return None


FORM = register(
    Form(
        "layers",
        "`Linear(in, out)`, `ReLU()`, `Sigmoid()` (`Tanh()`) objects with `forward(x)` and `backward(dupstream)` "
        "setting `weight_grad` / `bias_grad` (or `dW`, a grads dict), weight (in, out) or (out, in), with or without "
        "`Net(layers)`",
        layers,
        (Role("Linear"), Role("ReLU", optional=True), Role("Sigmoid", optional=True), Role("Tanh", optional=True),
         Role("Net", optional=True)),
        _supports,
        (("hidden", "sigmoid,relu"), ("output", "identity"), ("loss", "cross_entropy"), ("l2", "0")),
        recognise=_recognise,
        course="UMONS Machine Learning II",
    )
)  # fmt: skip
