"""coursera (deeplearning.ai, Neural Networks and Deep Learning, week 3: "Planar data classification with one hidden
layer"): forward_propagation(X, parameters) -> (A2, cache), compute_cost(A2, Y[, parameters]) -> cost and
backward_propagation(parameters, cache, X, Y) -> grads {dW1, db1, dW2, db2}, NumPy, column-major: X (n_x, m),
W1 (n_h, n_x), b1 (n_h, 1), W2 (n_y, n_h), b2 (n_y, 1), Y (n_y, m); tanh hidden units, one sigmoid output, the
binary cross-entropy averaged over the m examples (bce with C = 1). The student's forward, cost and backward are all
checked: the loss compared is what their compute_cost returns for what their forward_propagation returned."""

from __future__ import annotations

import inspect

import numpy as np
from torch import Tensor

from impls.spec import NetSpec
from verification.forms.core import (
    HINTS,
    Bound,
    Form,
    LayoutMismatch,
    Options,
    Role,
    UserFn,
    as_loss,
    as_tensor,
    as_vector,
    register,
    unfilled,
)
from verification.sources import Defined

FORWARD = ("X", "parameters")
BACKWARD = ("parameters", "cache", "X", "Y")
GRADS = {"W1": "dW1", "b1": "db1", "W2": "dW2", "b2": "db2"}


def _supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss, spec.l2) != ("tanh", "sigmoid", "bce", 0.0):
        return "the coursera form is tanh -> one sigmoid output with the binary cross-entropy (bce), no L2"
    return None


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape a - b has under NumPy's broadcasting, or None where they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _takes(fn: object) -> int:
    try:
        return len(inspect.signature(fn).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 2


def coursera(bound: Bound, options: Options) -> UserFn:
    """The course's three graded functions on NumPy copies of our parameters, transposed to its column-major data;
    its cost of its own forward's A2 is the loss, its grads dict the gradients."""
    forward = bound.call("forward_propagation", FORWARD)
    backward = bound.call("backward_propagation", BACKWARD)
    cost = bound.get("compute_cost") if bound.has("compute_cost") else None

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        like = params["W1"]
        parameters = {
            "W1": params["W1"].detach().cpu().numpy().copy(),  # (n_h, n_x)
            "b1": params["b1"].detach().cpu().numpy().reshape(-1, 1).copy(),  # (n_h, 1)
            "W2": params["W2"].detach().cpu().numpy().copy(),  # (n_y, n_h)
            "b2": params["b2"].detach().cpu().numpy().reshape(-1, 1).copy(),  # (n_y, 1)
        }
        X = np.ascontiguousarray(x.detach().cpu().numpy().T)  # (n_x, m)
        Y = np.ascontiguousarray(t.detach().cpu().numpy().T)  # (n_y, m)
        out = forward(X, parameters)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            if out is None:
                return None, {HINTS: {"loss": unfilled("forward_propagation(X, parameters)", out)}}
            raise LayoutMismatch(f"forward_propagation returned {type(out).__name__}, expected (A2, cache)")
        A2, cache = out
        if np.shape(A2) != Y.shape:
            raise LayoutMismatch(f"forward_propagation's A2 is {np.shape(A2)}, expected (n_y, m) = {Y.shape}")
        hints: dict[str, str] = {}
        if cost is None:  # no compute_cost: the forward is still checked through the course's cost of its A2
            with np.errstate(divide="ignore", invalid="ignore"):
                loss = -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / Y.shape[1]
        else:
            loss = cost(A2, Y, parameters) if _takes(cost) >= 3 else cost(A2, Y)  # type: ignore[operator]
            if loss is None:
                hints["loss"] = unfilled("compute_cost", loss)
        grads = backward(parameters, cache, X, Y)
        if not grads:
            hints.update({k: unfilled("backward_propagation's grads", grads) for k in GRADS})
            grads = {}
        if not isinstance(grads, dict):
            raise LayoutMismatch(f"backward_propagation returned {type(grads).__name__}, expected a dict of dW1, ...")
        got = {
            "W1": as_tensor(grads.get("dW1"), like), "b1": as_vector(grads.get("db1"), spec.H, like),
            "W2": as_tensor(grads.get("dW2"), like), "b2": as_vector(grads.get("db2"), spec.C, like),
        }  # fmt: skip
        for k, name in GRADS.items():  # the course's update_parameters: parameter - learning_rate * gradient
            g, shape = grads.get(name), parameters[k].shape
            if isinstance(g, np.ndarray | np.generic) and _broadcast(shape, np.shape(g)) != shape:
                got[k] = as_tensor(np.broadcast_to(np.asarray(g), _broadcast(shape, np.shape(g)) or shape), like)
                hints[k] = (
                    f"{name} is {np.shape(g)} where {k} is {shape}: {k} - learning_rate * {name} is "
                    f"{_broadcast(shape, np.shape(g))}, so update_parameters breaks it (np.sum without keepdims=True?)"
                )
        return as_loss(loss, like), {**got, HINTS: hints}

    return fn


def _recognise(defined: Defined) -> str | None:
    """functions `forward_propagation(X, parameters)` and `backward_propagation(parameters, cache, X, Y)`"""
    f, b = defined.functions.get("forward_propagation"), defined.functions.get("backward_propagation")
    if f is not None and b is not None and len(f) == len(FORWARD) and len(b) == len(BACKWARD):
        return "defines forward_propagation(X, parameters) and backward_propagation(parameters, cache, X, Y)"
    return None


FORM = register(
    Form(
        "coursera",
        "`forward_propagation(X, parameters) -> (A2, cache)`, `compute_cost(A2, Y[, parameters])`, "
        "`backward_propagation(parameters, cache, X, Y) -> {dW1, db1, dW2, db2}`; NumPy, X (n_x, m), W1 (n_h, n_x), "
        "b1 (n_h, 1)",
        coursera,
        (Role("forward_propagation", args=FORWARD), Role("compute_cost", optional=True),
         Role("backward_propagation", args=BACKWARD)),
        _supports,
        (("hidden", "tanh"), ("output", "sigmoid"), ("loss", "bce"), ("l2", "0"), ("sizes", "5-4-1,4-4-1")),
        recognise=_recognise,
        course="deeplearning.ai, course 1 week 3 (planar data)",
    )
)  # fmt: skip
