"""nnfs ("Neural Networks from Scratch in Python", Kinsley & Kukiela): layer objects of NumPy arrays --
Layer_Dense(n_inputs, n_neurons[, weight_regularizer_l2=...]) with `weights` (in, out) and `biases` (1, n),
forward(inputs[, training]) that returns nothing and sets `.output`, backward(dvalues) setting `dweights`, `dbiases`,
`dinputs`; Activation_ReLU / Activation_Sigmoid / Activation_Linear; and the loss either as the book's combined
Activation_Softmax_Loss_CategoricalCrossentropy (backward(dvalues, y_true)) or as separate Activation_Softmax and
Loss_CategoricalCrossentropy (Loss_BinaryCrossentropy, Loss_MeanSquaredError), whose calculate(output, y) is the
mean of the per-sample losses. The combined class is checked where the code has it (it is what the book trains);
else the separate ones, whose backward divides by the probabilities (-y/p).

Readers of the book rename as they go: the classes are found by the book's names, the short ones readers use
(Dense_Layer, Act_ReLU, CCE_Loss, Act_Softmax_CCE_Loss) and either case (Activation_ReLu,
Loss_CategoricalCrossEntropy); the attributes by the book's and their singular or camel-case spellings (weight,
outputs, dWeights, d_biases)."""

from __future__ import annotations

import inspect

import numpy as np
from torch import Tensor

from impls.base import UnsupportedConfig
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
    attribute,
    call_with,
    crash,
    left_unchanged,
    register,
    spelling,
)
from verification.sources import Defined

COMBINED = "Activation_Softmax_Loss_CategoricalCrossentropy"
#: role -> the other names readers give it (the case aside)
NAMES = {
    "Layer_Dense": ("Dense_Layer", "DenseLayer", "Layer_Dense_"),
    "Activation_ReLU": ("Act_ReLU", "ReLU_Activation"),  # every name also with the case and underscores aside
    "Activation_Sigmoid": ("Act_Sigmoid", "Sigmoid_Activation"),
    "Activation_Tanh": ("Act_Tanh",),
    "Activation_Linear": ("Act_Linear",),
    "Activation_Softmax": ("Act_Softmax", "Softmax_Activation"),
    COMBINED: ("Act_Softmax_CCE_Loss", "Activation_Softmax_Loss_CCE", "Softmax_CCE_Loss"),
    "Loss_CategoricalCrossentropy": (
        "CCE_Loss",
        "Loss_CCE",
        "Categorical_Crossentropy_Loss",
        "CategoricalCrossentropy",
    ),
    "Loss_BinaryCrossentropy": ("BCE_Loss", "Loss_BCE"),
    "Loss_MeanSquaredError": ("MSE_Loss", "Loss_MSE"),
}
ACTIVATIONS = {"relu": "Activation_ReLU", "sigmoid": "Activation_Sigmoid", "tanh": "Activation_Tanh"}
OUTPUTS = {"identity": "Activation_Linear", "sigmoid": "Activation_Sigmoid"}
LOSSES = {"cross_entropy": "Loss_CategoricalCrossentropy", "bce": "Loss_BinaryCrossentropy",
          "mse": "Loss_MeanSquaredError"}  # fmt: skip
ATTRS = {  # the book's attribute, then its other spellings (attribute() also matches case and underscores aside)
    "weights": ("weights", "weight", "W"),
    "biases": ("biases", "bias", "b"),
    "output": ("output", "outputs", "out"),
    "dweights": ("dweights", "dweight", "dW", "grad_weights"),
    "dbiases": ("dbiases", "dbias", "db", "grad_biases"),
    "dinputs": ("dinputs", "dinput", "dX", "dx", "grad_inputs"),
}


def _supports(spec: NetSpec) -> str | None:
    if spec.loss not in LOSSES:
        return f"the nnfs form's losses are the book's means ({', '.join(LOSSES)}), not {spec.loss}"
    return None


def _get(obj: object, what: str) -> object:
    """The object's attribute `what` by any of its spellings (ATTRS); LayoutMismatch naming what it has instead."""
    name = attribute(obj, *ATTRS[what])
    if name is None:
        have = ", ".join(sorted(a for a in getattr(obj, "__dict__", {}) if not a.startswith("_"))) or "none"
        raise LayoutMismatch(f"{type(obj).__name__} has no {what} (nor {', '.join(ATTRS[what][1:])}); it has: {have}")
    return getattr(obj, name)


def _set(obj: object, what: str, value: object) -> None:
    setattr(obj, attribute(obj, *ATTRS[what]) or ATTRS[what][0], value)


def _make(bound: Bound, role: str, why: str) -> object:
    if not bound.has(role):
        raise UnsupportedConfig(f"no {role} class: {why}")
    return bound.get(role)()  # type: ignore[operator]


def _forward(layer: object, inputs: np.ndarray) -> np.ndarray:
    """layer.forward(inputs[, training=True]) and the .output it sets (the book's forward returns nothing)."""
    returned = call_with(layer.forward, inputs, training=True)  # type: ignore[attr-defined]
    try:
        return _get(layer, "output")  # type: ignore[return-value]
    except LayoutMismatch:
        if returned is not None:  # a reader's forward that returns its output instead
            return returned  # type: ignore[return-value]
        raise


def _backward(layer: object, dvalues: np.ndarray, *y: np.ndarray) -> np.ndarray:
    """layer.backward(dvalues[, y]) and the .dinputs it sets."""
    returned = layer.backward(dvalues, *y)  # type: ignore[attr-defined]
    try:
        return _get(layer, "dinputs")  # type: ignore[return-value]
    except LayoutMismatch:
        if returned is not None:
            return returned  # type: ignore[return-value]
        raise


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
    new_pass() starts; its calculate may return (data, regularization)). A loss class with no calculate (a reader's
    own base class) is taken as the book defines calculate: the mean of what forward(output, y) returns or sets."""
    if hasattr(loss, "new_pass"):
        loss.new_pass()  # type: ignore[attr-defined]
    if not hasattr(loss, "calculate") and hasattr(loss, "forward"):
        samples = call_with(loss.forward, output, y)  # type: ignore[attr-defined]
        samples = _get(loss, "output") if samples is None else samples
        return np.mean(samples)
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
    loop runs them: forward through .output, backward from the loss through .dinputs; dweights/dbiases read back.
    A loss that raises is that quantity's failure (its hint the exception); the gradients are still checked."""
    dense_cls = bound.get("Layer_Dense")
    shape = tuple(np.shape(_get(dense_cls(2, 3), "weights")))  # type: ignore[operator]
    if shape not in ((2, 3), (3, 2)):
        raise ValueError(f"Layer_Dense(2, 3)'s weights are {shape}: expected (2, 3) (in, out), the book's, or (3, 2)")
    flip = shape == (2, 3)
    bound.sources.append(
        "Layer_Dense: weights " + ("(in, out), the book's orientation" if flip else "(out, in), nn.Linear's")
    )

    kept = Kept()

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        like = params["W1"]
        hidden = kept.get(
            ("hidden", spec.hidden), lambda: _make(bound, ACTIVATIONS[spec.hidden], f"the {spec.hidden} cases need one")
        )
        first = kept.get(("first", spec.D, spec.H, spec.l2), lambda: _dense(dense_cls, spec.D, spec.H, spec.l2))
        second = kept.get(("second", spec.H, spec.C, spec.l2), lambda: _dense(dense_cls, spec.H, spec.C, spec.l2))
        for layer, w, b in ((first, "W1", "b1"), (second, "W2", "b2")):
            weight = params[w].detach().cpu().numpy()
            _set(layer, "weights", (weight.T if flip else weight).copy())
            old = np.shape(_get(layer, "biases"))
            bias = params[b].detach().cpu().numpy().copy()
            _set(layer, "biases", bias.reshape(old) if int(np.prod(old)) == bias.size else bias.reshape(1, -1))
        X, y = x.detach().cpu().numpy().copy(), t.detach().cpu().numpy().copy()
        z = _forward(second, _forward(hidden, _forward(first, X)))  # (N, C) logits
        loss, dz, loss_obj, hints = _loss_and_dz(bound, spec, z, y)
        if spec.l2 and loss is not None:
            reg = loss_obj or _make(bound, LOSSES["cross_entropy"], "the L2 penalty is the loss class's")
            loss = loss + _regularization(reg, [first, second])
        dh = _backward(second, dz)
        _backward(first, _backward(hidden, dh))
        given = {f"{w}'s weights": params[w].detach().cpu().numpy() for w in ("W1", "W2")}
        now = {f"{w}'s weights": _get(layer, "weights") for w, layer in (("W1", first), ("W2", second))}
        if flip:
            now = {k: v.T if isinstance(v, np.ndarray) else v for k, v in now.items()}
        left_unchanged("the forward or backward pass", {**given, "the inputs": x}, {**now, "the inputs": X})
        grads: dict[str, object] = {}
        for layer, w, b, n in ((first, "W1", "b1", spec.H), (second, "W2", "b2", spec.C)):
            gw = as_tensor(_get(layer, "dweights"), like)
            if isinstance(gw, Tensor) and gw.dim() == 2 and flip:
                gw = gw.T
            grads[w], grads[b] = gw, as_vector(_get(layer, "dbiases"), n, like)
        if loss is not None and not isinstance(loss, float | int | np.generic | np.ndarray | Tensor):
            raise LayoutMismatch(f"the loss came back {type(loss).__name__}, expected a number")
        return as_loss(loss, like), {**grads, HINTS: hints}

    return fn


def _loss_and_dz(
    bound: Bound, spec: NetSpec, z: np.ndarray, y: np.ndarray
) -> tuple[object, np.ndarray, object, dict[str, str]]:
    """(the loss, dLoss/dz, the loss object, hints) as the code's own classes compute them; a loss whose forward
    raises is None with the exception as its hint (its backward, which needs no loss value, still runs)."""
    hints: dict[str, str] = {}
    loss_obj, loss = None, None
    if spec.loss == "cross_entropy":
        both = bound.get(COMBINED)() if bound.has(COMBINED) else None  # type: ignore[operator]
        softmax, probs = None, None
        if both is not None and hasattr(both, "forward"):  # the book's chapter 10 class: forward and backward
            try:
                loss = call_with(both.forward, z, y)
                probs = _get(both, "output")
            except Exception as exc:  # noqa: BLE001 - the loss's failure is the loss row's, with its reason
                hints["loss"] = f"the loss raised {crash(exc)}"
            loss_obj = getattr(both, "loss", None)
        if probs is None:  # the later combined class (backward only), no combined class, or its forward raised
            softmax = _make(bound, "Activation_Softmax", "the cross-entropy cases need one")
            probs = _forward(softmax, z)
        if loss is None and not hints:
            loss_obj = _make(bound, LOSSES["cross_entropy"], "the cross-entropy cases need one")
            try:
                loss = _loss_value(loss_obj, probs, y)
            except Exception as exc:  # noqa: BLE001 - as above
                hints["loss"] = f"the loss raised {crash(exc)}"
        if both is not None:
            return loss, _backward(both, probs, y), loss_obj, hints
        loss_obj = loss_obj or _make(bound, LOSSES["cross_entropy"], "the cross-entropy cases need one")
        _backward(loss_obj, probs, y)
        return loss, _backward(softmax, _get(loss_obj, "dinputs")), loss_obj, hints
    out_name = OUTPUTS.get(spec.output)
    if out_name is None:
        raise UnsupportedConfig(f"the nnfs form has no {spec.output} output activation class")
    output = None if spec.output == "identity" and not bound.has(out_name) else _make(bound, out_name, "")
    y_hat = z if output is None else _forward(output, z)
    loss_obj = _make(bound, LOSSES[spec.loss], f"the {spec.loss} cases need one")
    try:
        loss = _loss_value(loss_obj, y_hat, y)
    except Exception as exc:  # noqa: BLE001 - the loss's failure is the loss row's, with its reason
        hints["loss"] = f"the loss raised {crash(exc)}"
    dz = _backward(loss_obj, y_hat, y)
    return loss, (dz if output is None else _backward(output, dz)), loss_obj, hints


def _usual_for(defined: Defined) -> dict[str, str]:
    """The book's later Layer_Dense takes weight_regularizer_l2: then its L2 is checked too."""
    names = {spelling(n) for n in ("Layer_Dense", *NAMES["Layer_Dense"])}
    dense = next((c for n, c in defined.classes.items() if spelling(n) in names), None)
    return {"l2": "0,0.1"} if dense is not None and "weight_regularizer_l2" in dense.init_args else {}


def _recognise(defined: Defined) -> str | None:
    """a class `Layer_Dense` (or `Dense_Layer`; the case and underscores aside)"""
    names = {spelling(n) for n in ("Layer_Dense", *NAMES["Layer_Dense"])}
    found = next((c for c in defined.classes if spelling(c) in names), None)
    return f"defines class {found}" if found else None


FORM = register(
    Form(
        "nnfs",
        "`Layer_Dense(n_inputs, n_neurons)` (weights (in, out), biases (1, n)), `Activation_ReLU`, and "
        f"`{COMBINED}` or `Activation_Softmax` + `Loss_CategoricalCrossentropy`: forward sets `.output`, backward "
        "sets `dweights`, `dbiases`, `dinputs` (readers' renamings too: `Dense_Layer`, `Act_ReLU`, `CCE_Loss`)",
        nnfs,
        tuple(Role(name, also=also, optional=name != "Layer_Dense") for name, also in NAMES.items()),
        _supports,
        (("hidden", "relu"), ("output", "identity"), ("loss", "cross_entropy"), ("l2", "0")),
        recognise=_recognise,
        usual_for=_usual_for,
        course='"Neural Networks from Scratch" (nnfs)',
    )
)
