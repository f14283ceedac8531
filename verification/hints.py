"""What a wrong gradient's numbers say in words: sign flipped, scaled by a constant (which), transposed, not summed
over the batch, the L2 term missing, halved or doubled, a hidden activation's derivative missing.

A hint stands beside the error and the tolerance, never instead of them; it is given only when the numbers fit the
explanation to within the quantity's own tolerance (a hint is a measurement too) -- else none.
"""

from __future__ import annotations

import numpy as np
import torch

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


def large_logits_hint(quantity: str, got: object = None) -> str:
    """At a logit of ~800: a gradient of inf/NaN is a softmax without the max shift (exp overflows); the loss wrong
    is the classic -log(softmax[y]), whose probability underflows to 0 (an infinite loss) or keeps too few digits
    there, while the gradient (softmax - onehot) is fine."""
    if quantity != "loss":
        finite = got is None or bool(torch.isfinite(got).all()) if isinstance(got, torch.Tensor) else True
        return (
            ""
            if finite
            else (
                "exp(z) overflows at a logit of ~800 (inf / inf = NaN): a softmax without the max shift; "
                "subtract each row's max logit before exp"
            )
        )
    return (
        "-log(softmax[y]) at a logit of ~800: the probability underflows to 0 (inf) or loses its digits; "
        "take the loss as log-sum-exp: log(sum(exp(z - max))) - (z[y] - max)"
    )
