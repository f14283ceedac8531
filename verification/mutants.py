"""The backprop slips students make, each computed exactly in float64: a wrong gradient that equals one of them (to
its own tolerance) is named by it. A hint is a measurement: the numbers must fit the slip, not just look wrong.

Each Mutant changes one step of the textbook backward pass (verification.oracle is written apart from this on
purpose; this module reads impls.spec's loss table). The slips, and where they come from:
- half_l2, l2_biases, half_l2_biases: the L2 term written 0.5 * reg * sum W^2 (older cs231n), or over the biases
  too: conventions, which verification.conventions checks again under (the hint says how to declare them);
- *_deriv_of_output: an activation's derivative evaluated at its output, dsigma(x1) for dsigma(s1) (EPFL's own
  correction; UMONS's Sigmoid.backward applying sigmoid to a cache that already holds the output);
- *_deriv_of_input: the other way round, s(1 - s) or 1 - s^2 of the pre-activation (a cache of the input fed to
  the formula in terms of the output);
- skip_output_deriv: the hidden layer's gradient from dl/dx2 instead of dl/ds2 (EPFL);
- dx_missing_weight: a Linear layer's dx = dupstream, the weight left out (UMONS);
- cached_output: a Linear layer that caches its output, so weight_grad = dupstream^T . output (UMONS);
- first_sample / last_sample: the gradient of one sample only (an accumulator overwritten, or zeroed per sample);
- one_sided_cost, tanh_output (binary cross-entropy, deeplearning.ai's planar classifier): the cost without its
  (1 - Y) log(1 - A2) term; tanh where the output's sigmoid belongs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from impls.spec import NetSpec

SQUASHING = ("sigmoid", "tanh")


def _act(name: str, a: np.ndarray) -> np.ndarray:
    return {"sigmoid": expit, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0)}.get(name, lambda v: v)(a)


def _dact_from_output(name: str, y: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The derivative written in terms of the activation's output y (pre-activation a for ReLU)."""
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y**2
    if name == "relu":
        return (a > 0).astype(a.dtype)
    return np.ones_like(a)


@dataclass(frozen=True)
class Slip:
    """Switches of the mutated backward pass (all off: the right gradient)."""

    l2_factor: float = 1.0
    l2_biases: bool = False  # the L2 term covers the biases too (l2_factor * l2 * sum b^2)
    hidden_at: str = ""  # "output": dsigma at the activation's output; "input": the output formula fed the input
    output_at: str = ""
    skip_output_deriv: bool = False
    dx_missing_weight: bool = False
    cached_output: bool = False
    sample: int | None = None  # only this sample's gradient (-1: the last)
    output_act: str = ""  # binary cross-entropy: the forward's output activation (tanh where sigmoid belongs)
    one_sided_cost: bool = False  # binary cross-entropy: the cost without its (1 - t) log(1 - y) term


def _deriv(name: str, a: np.ndarray, y: np.ndarray, at: str) -> np.ndarray:
    if at == "output":  # the derivative as a function of the pre-activation, evaluated at the output
        return _dact_from_output(name, _act(name, y), y)
    if at == "input":  # the formula in terms of the output, fed the pre-activation
        return _dact_from_output(name, a, a)
    return _dact_from_output(name, y, a)


def mutated(p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray, spec: NetSpec, s: Slip) -> dict[str, np.ndarray]:
    """Loss ("loss", 0-dim) and gradients of the spec's objective with the slip `s`, in float64."""
    W1, b1, W2, b2 = (np.asarray(p[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    a1 = x @ W1.T + b1
    h = _act(spec.hidden, a1)
    z = h @ W2.T + b2
    scale = spec.loss_fn.scale(n, spec.C)
    if spec.loss_fn.squared:
        y = _act(spec.output, z)
        r = y - np.asarray(t, dtype=np.float64)
        loss = scale / 2 * (r**2).sum()
        dy = scale * r
        dz = dy * _deriv(spec.output, z, y, s.output_at)
    elif spec.loss_fn.kind == "binary":  # the textbook cost of y = sigmoid(z); dLoss/dz = scale (y - t)
        tt = np.asarray(t, dtype=np.float64)
        y = _act(s.output_act or "sigmoid", z)
        with np.errstate(all="ignore"):  # log of a non-positive y (tanh at the output) is NaN, as the slip's is
            negative = 0.0 if s.one_sided_cost else ((1 - tt) * np.log(1 - y)).sum()
            loss = -scale * ((tt * np.log(y)).sum() + negative)
        if not s.output_act and not s.one_sided_cost:  # the right cost, exact where y rounds to 0 or 1
            loss = scale * (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - tt * z).sum()
        dy = dz = scale * (y - tt)
    else:
        labels = np.asarray(t, dtype=np.int64)
        zs = z - z.max(axis=1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        loss = -scale * logp[np.arange(n), labels].sum()
        dz = np.exp(logp)
        dz[np.arange(n), labels] -= 1
        dy = dz = scale * dz
    upstream = dy if s.skip_output_deriv else dz
    dh = upstream if s.dx_missing_weight else upstream @ W2
    da1 = dh * _deriv(spec.hidden, a1, h, s.hidden_at)
    inputs1, inputs2 = (a1, z) if s.cached_output else (x, h)
    if s.sample is not None:
        keep = np.zeros((n, 1))
        keep[s.sample] = 1.0
        da1, dz = da1 * keep, dz * keep
    g = {"W1": da1.T @ inputs1, "b1": da1.sum(axis=0), "W2": dz.T @ inputs2, "b2": dz.sum(axis=0)}
    if spec.l2:
        loss = loss + s.l2_factor * spec.l2 * ((W1**2).sum() + (W2**2).sum())
        g["W1"], g["W2"] = g["W1"] + 2 * s.l2_factor * spec.l2 * W1, g["W2"] + 2 * s.l2_factor * spec.l2 * W2
        if s.l2_biases:
            loss = loss + s.l2_factor * spec.l2 * ((b1**2).sum() + (b2**2).sum())
            g["b1"], g["b2"] = g["b1"] + 2 * s.l2_factor * spec.l2 * b1, g["b2"] + 2 * s.l2_factor * spec.l2 * b2
    return {"loss": np.asarray(loss), **g}


@dataclass(frozen=True)
class Mutant:
    """A named slip: when it applies to a case, and what the hint says."""

    name: str
    slip: Slip
    words: str
    applies: Callable[[NetSpec, int], bool]


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "half_l2",
        Slip(l2_factor=0.5),
        "matches exactly the L2 term 0.5 * l2 * sum W^2 (the older cs231n convention, gradient l2 * W): if that "
        "is your convention, say so (l2_convention='half', --l2-convention half)",
        lambda s, n: s.l2 > 0,
    ),
    Mutant(
        "l2_biases",
        Slip(l2_biases=True),
        "matches exactly an L2 term over the biases too, l2 * sum(W^2 + b^2) (its gradient 2 l2 b in db): if that is "
        "your convention, say so (l2_convention='full+biases', --l2-convention full+biases)",
        lambda s, n: s.l2 > 0,
    ),
    Mutant(
        "half_l2_biases",
        Slip(l2_factor=0.5, l2_biases=True),
        "matches exactly an L2 term 0.5 * l2 * sum(W^2 + b^2), over the biases too: if that is your convention, say so "
        "(l2_convention='half+biases', --l2-convention half+biases)",
        lambda s, n: s.l2 > 0,
    ),
    Mutant(
        "hidden_deriv_of_output",
        Slip(hidden_at="output"),
        "the hidden activation's derivative is taken at its output (dsigma(x1)) instead of its input (dsigma(s1)): "
        "a cache holding the output, or the derivative fed the activation",
        lambda s, n: s.hidden in SQUASHING,
    ),
    Mutant(
        "hidden_deriv_of_input",
        Slip(hidden_at="input"),
        "the hidden activation's derivative uses the formula in its output (s(1 - s), 1 - s^2) on the "
        "pre-activation: the backward needs the activation's output there",
        lambda s, n: s.hidden in SQUASHING,
    ),
    Mutant(
        "output_deriv_of_output",
        Slip(output_at="output"),
        "the output activation's derivative is taken at its output (dsigma(x2)) instead of its input (dsigma(s2))",
        lambda s, n: s.loss_fn.squared and s.output in SQUASHING,
    ),
    Mutant(
        "output_deriv_of_input",
        Slip(output_at="input"),
        "the output activation's derivative uses the formula in its output on the pre-activation (s2)",
        lambda s, n: s.loss_fn.squared and s.output in SQUASHING,
    ),
    Mutant(
        "skip_output_deriv",
        Slip(skip_output_deriv=True),
        "the hidden layer's gradient is taken from dl/dx2 instead of dl/ds2: the output activation's derivative "
        "is skipped on the way back (dl_dx1 = w2^T dl_dx2)",
        lambda s, n: s.loss_fn.squared and s.output != "identity",
    ),
    Mutant(
        "dx_missing_weight",
        Slip(dx_missing_weight=True),
        "the gradient passed back to the hidden layer is missing the weight (dx = dupstream instead of dupstream @ W)",
        lambda s, n: s.H == s.C,
    ),
    Mutant(
        "cached_output",
        Slip(cached_output=True),
        "a linear layer's weight gradient uses its output where it needs its input (a Linear that caches its "
        "output instead of its input)",
        lambda s, n: s.D == s.H == s.C,
    ),
    Mutant(
        "one_sided_cost",
        Slip(one_sided_cost=True),
        "the cost is -mean(Y log A2) alone: its (1 - Y) log(1 - A2) term is missing (the gradients, A2 - Y, are right)",
        lambda s, n: s.loss_fn.kind == "binary",
    ),
    Mutant(
        "tanh_output",
        Slip(output_act="tanh"),
        "the output activation is tanh where the binary cross-entropy needs a sigmoid (A2 = np.tanh(Z2)): A2 leaves "
        "(0, 1), so the cost's log is NaN and dZ2 = A2 - Y is the wrong derivative",
        lambda s, n: s.loss_fn.kind == "binary",
    ),
    Mutant(
        "first_sample",
        Slip(sample=0),
        "the gradient of the first sample only: the other samples' terms are not accumulated",
        lambda s, n: n > 1,
    ),
    Mutant(
        "last_sample",
        Slip(sample=-1),
        "the gradient of the last sample only: the accumulator is overwritten (or zeroed) for each sample",
        lambda s, n: n > 1,
    ),
)


def explain(
    got: dict[str, np.ndarray | None],
    tols: dict[str, float],
    failed: set[str],
    p: dict[str, np.ndarray],
    x: np.ndarray,
    t: np.ndarray,
    spec: NetSpec,
) -> str:
    """The words of the first slip that every quantity equals (each to its own tolerance, normwise: the passing ones
    too, so a slip that would also change them is ruled out), and that differs from the right answer on at least
    one failing quantity; "" when none fits."""
    if not failed:
        return ""
    right = mutated(p, x, t, spec, Slip())
    for m in MUTANTS:
        if not m.applies(spec, x.shape[0]):
            continue
        want = mutated(p, x, t, spec, m.slip)
        if all(_fits(got.get(q), want[q], tols[q]) for q in tols) and any(
            not _fits(want[q], right[q], tols[q]) for q in failed
        ):
            return m.words
    return ""


def _fits(got: np.ndarray | None, want: np.ndarray, tol: float) -> bool:
    """got equals want to the tolerance, normwise; a slip whose value is NaN/inf somewhere (the log of a tanh output)
    fits where got is non-finite at exactly those places and equal elsewhere."""
    if got is None or np.shape(got) != np.shape(want):
        return False
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    finite = np.isfinite(want)
    if not np.array_equal(np.isfinite(got), finite):
        return False
    if not finite.any():
        return True
    scale = float(np.abs(want[finite]).max())
    return bool(scale) and float(np.abs(got[finite] - want[finite]).max()) <= tol * scale
