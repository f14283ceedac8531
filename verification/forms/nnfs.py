"""nnfs ("Neural Networks from Scratch in Python", Kinsley & Kukiela): layer objects of NumPy arrays --
Layer_Dense(n_inputs, n_neurons[, weight_regularizer_l2=...]) with `weights` (in, out) and `biases` (1, n),
forward(inputs[, training]) that returns nothing and sets `.output`, backward(dvalues) setting `dweights`, `dbiases`,
`dinputs`; Activation_ReLU / Activation_Sigmoid / Activation_Linear; and the loss either as the book's combined
Activation_Softmax_Loss_CategoricalCrossentropy (backward(dvalues, y_true)) or as separate Activation_Softmax and
Loss_CategoricalCrossentropy (Loss_BinaryCrossentropy, Loss_MeanSquaredError), whose calculate(output, y) is the
mean of the per-sample losses. The combined class is checked where the code has it (it is what the book trains);
else the separate ones, whose backward divides by the probabilities (-y/p)."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import Tensor

from impls.base import UnsupportedConfig
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
    call_with,
    defines_class,
    register,
)
from verification.sources import Defined

ACTIVATIONS = {"relu": "Activation_ReLU", "sigmoid": "Activation_Sigmoid", "tanh": "Activation_Tanh"}
OUTPUTS = {"identity": "Activation_Linear", "sigmoid": "Activation_Sigmoid"}
LOSSES = {"cross_entropy": "Loss_CategoricalCrossentropy", "bce": "Loss_BinaryCrossentropy",
          "mse": "Loss_MeanSquaredError"}  # fmt: skip
COMBINED = "Activation_Softmax_Loss_CategoricalCrossentropy"
ROLES = ("Layer_Dense", *ACTIVATIONS.values(), "Activation_Linear", "Activation_Softmax", COMBINED, *LOSSES.values())


def _supports(spec: NetSpec) -> str | None:
    if spec.loss not in LOSSES:
        return f"the nnfs form's losses are the book's means ({', '.join(LOSSES)}), not {spec.loss}"
    return None


def _make(bound: Bound, role: str, why: str) -> object:
    if not bound.has(role):
        raise UnsupportedConfig(f"no {role} class: {why}")
    return bound.get(role)()  # type: ignore[operator]


def _forward(layer: object, inputs: np.ndarray) -> np.ndarray:
    """layer.forward(inputs[, training=True]) and the .output it sets (the book's forward returns nothing)."""
    call_with(layer.forward, inputs, training=True)  # type: ignore[attr-defined]
    return layer.output  # type: ignore[attr-defined]


def _dense(cls: object, n_in: int, n_out: int, l2: float) -> object:
    """Layer_Dense(n_in, n_out), with weight_regularizer_l2=l2 when l2 > 0 (UnsupportedConfig if it takes none)."""
    if not l2:
        return cls(n_in, n_out)  # type: ignore[operator]
    try:
        params = inspect.signature(cls).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        params = {}
    if "weight_regularizer_l2" not in params:
        raise UnsupportedConfig("this Layer_Dense takes no weight_regularizer_l2: the L2 cases are not its")
    return cls(n_in, n_out, weight_regularizer_l2=l2)  # type: ignore[operator]


def _loss_value(loss: object, output: np.ndarray, y: np.ndarray) -> object:
    """loss.calculate(output, y): the mean of the per-sample losses (the book's later Loss keeps running sums that
    new_pass() starts; its calculate may return (data, regularization))."""
    if hasattr(loss, "new_pass"):
        loss.new_pass()  # type: ignore[attr-defined]
    value = loss.calculate(output, y)  # type: ignore[attr-defined]
    return value[0] if isinstance(value, tuple) else value


def _regularization(loss: object, layers: list[object]) -> float:
    """The book's L2 penalty, loss.regularization_loss(layer) summed (or, later, over remembered layers)."""
    fn = getattr(loss, "regularization_loss", None)
    if fn is None:
        raise UnsupportedConfig("the loss class has no regularization_loss: the L2 cases are not this code's")
    if len(inspect.signature(fn).parameters) == 0:
        loss.remember_trainable_layers(layers)  # type: ignore[attr-defined]
        return float(fn())
    return float(sum(fn(layer) for layer in layers))


def nnfs(bound: Bound, options: Options) -> UserFn:
    """Layer_Dense(D, H), the hidden activation, Layer_Dense(H, C), the output and its loss, as the book's training
    loop runs them: forward through .output, backward from the loss through .dinputs; dweights/dbiases read back."""
    dense_cls = bound.get("Layer_Dense")
    probe = dense_cls(2, 3)  # type: ignore[operator]
    shape = tuple(np.shape(getattr(probe, "weights", None)))
    if shape not in ((2, 3), (3, 2)):
        raise ValueError(f"Layer_Dense(2, 3).weights is {shape}: expected (2, 3) (in, out), the book's, or (3, 2)")
    flip = shape == (2, 3)
    bound.sources.append(
        "Layer_Dense: weights " + ("(in, out), the book's orientation" if flip else "(out, in), nn.Linear's")
    )
    combined = bound.has(COMBINED)

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        like = params["W1"]
        hidden = _make(bound, ACTIVATIONS[spec.hidden], f"the {spec.hidden} cases need one")
        first, second = _dense(dense_cls, spec.D, spec.H, spec.l2), _dense(dense_cls, spec.H, spec.C, spec.l2)
        for layer, w, b in ((first, "W1", "b1"), (second, "W2", "b2")):
            weight = params[w].detach().cpu().numpy()
            layer.weights = (weight.T if flip else weight).copy()  # type: ignore[attr-defined]
            old = np.shape(getattr(layer, "biases", ()))
            bias = params[b].detach().cpu().numpy().copy()
            layer.biases = bias.reshape(old) if int(np.prod(old)) == bias.size else bias.reshape(1, -1)  # type: ignore[attr-defined]
        X, y = x.detach().cpu().numpy().copy(), t.detach().cpu().numpy().copy()
        z = _forward(second, _forward(hidden, _forward(first, X)))  # (N, C) logits
        loss_obj = None
        if spec.loss == "cross_entropy":
            both = bound.get(COMBINED)() if combined else None  # type: ignore[operator]
            softmax = None
            if both is not None and hasattr(both, "forward"):  # the book's chapter 10 class: forward and backward
                loss, probs = call_with(both.forward, z, y), both.output
                loss_obj = getattr(both, "loss", None)
            else:  # its later form (backward only), or no combined class: Activation_Softmax + the loss class
                softmax = _make(bound, "Activation_Softmax", "the cross-entropy cases need one")
                probs = _forward(softmax, z)
                loss_obj = _make(bound, LOSSES["cross_entropy"], "the cross-entropy cases need one")
                loss = _loss_value(loss_obj, probs, y)
            if both is not None:
                both.backward(probs, y)
                dz = both.dinputs
            else:
                loss_obj.backward(probs, y)  # type: ignore[union-attr]
                softmax.backward(loss_obj.dinputs)  # type: ignore[union-attr]
                dz = softmax.dinputs  # type: ignore[union-attr]
        else:
            out_name = OUTPUTS.get(spec.output)
            if out_name is None:
                raise UnsupportedConfig(f"the nnfs form has no {spec.output} output activation class")
            output = None if spec.output == "identity" and not bound.has(out_name) else _make(bound, out_name, "")
            y_hat = z if output is None else _forward(output, z)
            loss_obj = _make(bound, LOSSES[spec.loss], f"the {spec.loss} cases need one")
            loss = _loss_value(loss_obj, y_hat, y)
            loss_obj.backward(y_hat, y)  # type: ignore[attr-defined]
            dz = loss_obj.dinputs  # type: ignore[attr-defined]
            if output is not None:
                output.backward(dz)  # type: ignore[attr-defined]
                dz = output.dinputs  # type: ignore[attr-defined]
        if spec.l2:
            reg = loss_obj or _make(bound, LOSSES["cross_entropy"], "the L2 penalty is the loss class's")
            loss = loss + _regularization(reg, [first, second])
        second.backward(dz)  # type: ignore[attr-defined]
        hidden.backward(second.dinputs)  # type: ignore[attr-defined]
        first.backward(hidden.dinputs)  # type: ignore[attr-defined]
        grads: dict[str, object] = {}
        for layer, w, b, n in ((first, "W1", "b1", spec.H), (second, "W2", "b2", spec.C)):
            gw = as_tensor(getattr(layer, "dweights", None), like)
            if isinstance(gw, Tensor) and gw.dim() == 2 and flip:
                gw = gw.T
            grads[w], grads[b] = gw, as_vector(getattr(layer, "dbiases", None), n, like)
        if not isinstance(loss, float | int | np.generic | np.ndarray | Tensor):
            raise LayoutMismatch(f"the loss came back {type(loss).__name__}, expected a number")
        return as_loss(loss, like), grads

    return fn


def _recognise(defined: Defined) -> str | None:
    """a class `Layer_Dense`"""
    return defines_class(defined, "Layer_Dense")


FORM = register(
    Form(
        "nnfs",
        "`Layer_Dense(n_inputs, n_neurons)` (weights (in, out), biases (1, n)), `Activation_ReLU`, and "
        f"`{COMBINED}` or `Activation_Softmax` + `Loss_CategoricalCrossentropy`: forward sets `.output`, backward "
        "sets `dweights`, `dbiases`, `dinputs`",
        nnfs,
        tuple(Role(name, optional=name != "Layer_Dense") for name in ROLES),
        _supports,
        (("hidden", "relu"), ("output", "identity"), ("loss", "cross_entropy"), ("l2", "0")),
        recognise=_recognise,
        course='"Neural Networks from Scratch" (nnfs)',
    )
)
