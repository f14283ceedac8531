"""layers (UMONS Machine Learning II, assignment IV): layer objects Linear(in_features, out_features) with weight
(in, out) or (out, in) and bias, forward(x) caching, backward(dupstream) -> dx setting weight_grad/bias_grad;
activation objects ReLU(), Sigmoid(), Tanh(); a Net(layers) where there is one. The checker builds
[Linear(D, H), act, Linear(H, C)] with its parameters, feeds dLoss/dy as dupstream and reads the gradients."""

from __future__ import annotations

import inspect
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
    attribute,
    register,
)
from verification.sources import Defined

ACTIVATION_CLASSES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": None}
_GRAD_NAMES = {  # attribute() also matches these with the case and underscores aside (dWeights, d_w)
    "weight": ("weight_grad", "grad_weight", "grad_weights", "dweights", "dW", "dw", "grad_W", "W_grad"),
    "bias": ("bias_grad", "grad_bias", "grad_biases", "dbiases", "db", "grad_b", "b_grad"),
}
_PARAM_NAMES = {"weight": ("weight", "weights", "W", "w"), "bias": ("bias", "biases", "b")}
_ARRAY_ARGS = ({"w", "weight", "weights"}, {"b", "bias", "biases"})  # Affine(W, b): built from its arrays


def _supports(spec: NetSpec) -> str | None:
    return "the layers form has no L2 term (l2 = 0 only)" if spec.l2 else None


def _attr(obj: object, names: tuple[str, ...]) -> str | None:
    return attribute(obj, *names)


def _from_arrays(cls: object) -> bool:
    """The constructor takes the layer's arrays (Affine(W, b), "Deep Learning from Scratch"), not its sizes."""
    try:
        names = [p.lower() for p in inspect.signature(cls).parameters][:2]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return len(names) == 2 and names[0] in _ARRAY_ARGS[0] and names[1] in _ARRAY_ARGS[1]


def _make_linear(cls: object, n_in: int, n_out: int) -> object:
    """Linear(n_in, n_out), or Affine(zeros (n_in, n_out), zeros (n_out,)) for a constructor of arrays."""
    if _from_arrays(cls):
        return cls(np.zeros((n_in, n_out)), np.zeros(n_out))  # type: ignore[operator]
    return cls(n_in, n_out)  # type: ignore[operator]


def layers(bound: Bound, options: Options) -> UserFn:
    """[Linear(D, H), act, Linear(H, C)] (+ the output activation's object), through Net(layers) where there is
    one; our parameters in the layers, dLoss/dy fed to backward, weight_grad/bias_grad read back. Layers of torch
    tensors get torch tensors, layers of NumPy arrays NumPy arrays (what Linear(2, 3)'s weight is tells which)."""
    linear_cls = bound.get("Linear")
    probe = _make_linear(linear_cls, 2, 3)
    w = getattr(probe, _attr(probe, _PARAM_NAMES["weight"]) or "weight", None)
    shape = tuple(np.shape(w))
    if shape not in ((2, 3), (3, 2)):
        raise ValueError(f"Linear(2, 3)'s weight is {shape}: expected (2, 3) (in, out) or (3, 2) (out, in)")
    flip, numpy = shape == (2, 3), isinstance(w, np.ndarray)
    bound.sources.append(
        f"{getattr(linear_cls, '__name__', 'Linear')}: weight "
        + ("(in, out), x @ W" if flip else "(out, in), nn.Linear's")
        + (", NumPy arrays" if numpy else ", torch tensors")
    )

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        def mine(a: Tensor) -> object:
            return a.detach().cpu().numpy().copy() if numpy else a.detach().clone()

        acts = []
        for which in (spec.hidden, spec.output):
            name = ACTIVATION_CLASSES[which]
            if name is not None:
                if not bound.has(name):
                    raise UnsupportedConfig(f"no {name} class: the {which} cases need one")
                acts.append(bound.get(name)())  # type: ignore[operator]
            else:
                acts.append(None)
        first, second = _make_linear(linear_cls, spec.D, spec.H), _make_linear(linear_cls, spec.H, spec.C)
        stack = [first, acts[0], second] + ([acts[1]] if acts[1] is not None else [])
        net = bound.get("Net")(stack) if bound.has("Net") else None  # type: ignore[operator]
        for layer, w, b in ((first, "W1", "b1"), (second, "W2", "b2")):  # after Net(), whose init may re-draw them
            weight = mine(params[w].T.contiguous() if flip else params[w])
            setattr(layer, _attr(layer, _PARAM_NAMES["weight"]) or "weight", weight)
            bname = _attr(layer, _PARAM_NAMES["bias"]) or "bias"
            old = getattr(layer, bname, None)
            bias = mine(params[b])
            setattr(layer, bname, bias.reshape(np.shape(old)) if np.size(old) == spec_size(params[b]) else bias)
        xi = mine(x)
        y = net.forward(xi) if net is not None else _chain_forward(stack, xi)
        y = as_tensor(y, params["W1"])
        if not isinstance(y, Tensor) or y.numel() != x.shape[0] * spec.C:
            raise LayoutMismatch(f"the net's forward returned {type(y).__name__} "
                                 f"{tuple(y.shape) if isinstance(y, Tensor) else ''}, expected (N, C)")  # fmt: skip
        y = y.reshape(x.shape[0], spec.C)
        loss, dup = _loss_and_upstream(y, t, spec)
        returned = net.backward(mine(dup)) if net is not None else _chain_backward(stack, mine(dup))
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


def spec_size(a: Tensor) -> int:
    return int(a.numel())


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


def _usual_for(defined: Defined) -> dict[str, str]:
    """The hidden activations the file defines classes for (a Tanh beside ReLU and Sigmoid is checked too)."""
    classes = {c.lower() for c in defined.classes}
    found = [name for name in ("sigmoid", "relu", "tanh") if name in classes]
    return {"hidden": ",".join(found)} if found else {}


def _recognise(defined: Defined) -> str | None:
    """a class `Linear` (`Dense`, `Affine`) built with arguments (its sizes, or W and b) and one of `ReLU`,
    `Sigmoid`, `Tanh`, the case aside"""
    classes = {c.lower(): c for c in defined.classes}
    linear = next((classes[n] for n in ("linear", "dense", "affine") if n in classes), None)
    if linear and not defined.classes[linear].init_args:  # a Linear of no arguments is an activation (x -> x)
        linear = None
    acts = [classes[n] for n in ("relu", "sigmoid", "tanh") if n in classes]
    return f"defines classes {linear} and {', '.join(acts)}" if linear and acts else None


FORM = register(
    Form(
        "layers",
        "`Linear(in, out)` (or `Dense`, `Affine(W, b)`), `ReLU()`, `Sigmoid()` (`Tanh()`) objects of torch tensors or "
        "NumPy arrays with `forward(x)` and `backward(dupstream)` setting `weight_grad` / `bias_grad` (or `dW`, a "
        "grads dict), weight (in, out) or (out, in), with or without `Net(layers)`",
        layers,
        (Role("Linear", also=("Dense", "Affine")), Role("ReLU", optional=True), Role("Sigmoid", optional=True),
         Role("Tanh", optional=True),
         Role("Net", optional=True)),
        _supports,
        (("hidden", "sigmoid,relu"), ("output", "identity"), ("loss", "cross_entropy"), ("l2", "0")),
        recognise=_recognise,
        usual_for=_usual_for,
        course="UMONS Machine Learning II",
    )
)  # fmt: skip
