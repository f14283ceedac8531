"""What a wrong gradient's numbers say in words: sign flipped, scaled by a constant (which), transposed, not summed
over the batch, the L2 term missing, halved or doubled, a hidden activation's derivative missing.

A hint stands beside the error and the tolerance, never instead of them; it is given only when the numbers fit the
explanation to within the quantity's own tolerance (a hint is a measurement too) -- else none.
"""

from __future__ import annotations

import numpy as np

#: a factor that names a common slip, when the gradient is that multiple of the right one
FACTORS = {-1.0: "sign flipped", 2.0: "twice the right value", 0.5: "half the right value"}


def _fits(got: np.ndarray, want: np.ndarray, tol: float) -> bool:
    """got equals want to the tolerance, normwise (as compare() measures)."""
    scale = float(np.abs(want).max()) if want.size else 0.0
    return bool(scale) and float(np.abs(got - want).max()) <= tol * scale


def shape_hint(got_shape: tuple[int, ...], want_shape: tuple[int, ...], n: int) -> str:
    """A misshapen gradient: transposed, or one value per sample (not summed over the batch)."""
    if got_shape == tuple(reversed(want_shape)) and got_shape != want_shape:
        return "transposed"
    if got_shape == (n, *want_shape):
        extra = " (an extra leading axis of size N = 1)" if n == 1 else ""
        return f"one per sample: not summed over the batch{extra}"
    return ""


def value_hint(
    quantity: str, got: np.ndarray, want: np.ndarray, tol: float, n: int, l2: float, weight: np.ndarray | None
) -> str:
    """Why a gradient of the right shape is wrong, when the numbers say so: a constant factor (which, and whether
    it is the batch size), a transposed square matrix, or an L2 term off (missing, halved, doubled)."""
    if got.shape != want.shape or not np.isfinite(got).all():
        return ""
    ref = np.abs(want).max()
    if not ref:
        return ""
    for factor, words in FACTORS.items():
        if _fits(got, factor * want, tol):
            return words
    c = float(np.vdot(got, want) / np.vdot(want, want))
    if c and abs(c - 1) > 1e-3 and _fits(got, c * want, tol):
        if n > 1 and np.isclose(c, 1 / n, rtol=1e-3):
            return f"scaled by 1/N = 1/{n}: averaged where the loss sums over the batch"
        if n > 1 and np.isclose(c, n, rtol=1e-3):
            return f"scaled by N = {n}: summed where the loss averages over the batch"
        return f"scaled by {c:.4g}"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and _fits(got, want.T, tol):
        return "transposed"
    if l2 and weight is not None and quantity in ("W1", "W2"):
        for factor, words in ((-2.0, "L2 term missing"), (-1.0, "L2 gradient halved"), (2.0, "L2 gradient doubled")):
            if _fits(got, want + factor * l2 * weight, tol):
                return words
    return ""


def case_hint(failed: set[str]) -> str:
    """What the set of failing quantities of one case suggests: the first layer alone wrong points at the hidden
    activation's derivative (or the product that forms dW1), the output layer's gradients being right."""
    if failed and failed <= {"W1", "b1"} and "loss" not in failed:
        return "only the first layer is wrong: the hidden activation's derivative, or the product forming dW1?"
    return ""


#: why code that is right on every ordinary input breaks at the logit-800 data, in words (large_logits_cause); the
#: text before the first colon is the cause's name, which the verdict line repeats
CAUSES = {
    "no_max_shift": "no max shift in the softmax: exp(z) overflows at a logit of 800 (inf / inf = NaN); subtract each "
    "row's max logit before exp",
    "divides_by_p": "the backward divides by p: softmax[y] underflows to 0 at a logit of 800 (-y / p = -inf, then "
    "NaN); take dL/dz as softmax - onehot directly",
    "log_of_underflow": "the log of an underflowed probability: -log(softmax[y]) with softmax[y] rounded to 0 (or "
    "clipped) at a logit of 800; take the loss as log-sum-exp: log(sum(exp(z - max))) - (z[y] - max)",
    "saturated_sigmoid": "log(1 - A2) of a saturated sigmoid: A2 rounds to 1 at a logit of 800 and log(0) = -inf; take "
    "the cost from the logits: logaddexp(0, Z2) - Y * Z2",
    "divides_by_sigmoid": "the backward divides by A2 (1 - A2): it is 0 for a saturated sigmoid at a logit of 800; "
    "take dL/dZ2 as A2 - Y directly",
    "digits": "digits lost at a logit of 800",
}


def large_logits_cause(binary: bool, got: dict[str, np.ndarray | None], failed: set[str]) -> str:
    """The cause, in words (CAUSES), of what fails at the logit-800 data, from which quantities failed and where their
    values are finite. Softmax: a NaN loss, or a bias gradient that is NaN in some classes only (the overflowed
    logit's), is a softmax without the max shift (exp overflows: inf / inf, in that sample's row alone); a bias
    gradient NaN in every class is a backward that divides by p (-y / p = -inf spreads NaN through the Jacobian's
    whole row); the loss alone wrong, the log of an underflowed probability. Sigmoid and binary cross-entropy: the
    loss alone, log(1 - A2) of a saturated A2; the gradients, a backward that divides by A2 (1 - A2)."""

    def finite(q: str) -> bool:
        v = got.get(q)
        return v is not None and bool(np.isfinite(v).all())

    grads_bad = failed & {"W1", "b1", "W2", "b2"}
    nonfinite = [q for q in grads_bad if not finite(q)]
    if binary:
        if nonfinite:
            return CAUSES["divides_by_sigmoid"]
        return CAUSES["saturated_sigmoid"] if "loss" in failed and not grads_bad else CAUSES["digits"]
    loss, b2 = got.get("loss"), got.get("b2")
    if nonfinite:
        partly = b2 is not None and np.size(b2) > 1 and bool(np.isfinite(b2).any())
        nan_loss = loss is not None and bool(np.isnan(loss).any())
        return CAUSES["no_max_shift" if partly or nan_loss else "divides_by_p"]
    return CAUSES["log_of_underflow"] if "loss" in failed and not grads_bad else CAUSES["digits"]
