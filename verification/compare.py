"""Derived tolerances and the per-quantity comparison of an implementation against the float64 oracle.

Why the bound holds (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., sec. 3.1):
every number we compare ends a chain of inner products of lengths D (x.W1), H (h.W2), C (dz.W2) and
N (the sums over the batch that form dW1, db1, dW2, db2 and the loss). A length-k inner product in unit
roundoff u has error <= gamma_k * sum|a_i b_i|, gamma_k = k u / (1 - k u); to first order the errors of
successive stages add, and the elementwise functions (exp/tanh/sigmoid, ~1-2 ulp each, derivatives <= 1)
add a few u more, which we bound by 8 u. So for a quantity Q with condition number
kappa_Q = max(sum |terms|) / max|Q| (computed by the oracle from the same data; >= 1):

    max|Q_impl - Q_ref| / max|Q_ref|  <=  2 * gamma_k * kappa_Q,   k = D + H + C + N + 8,

the factor 2 covering both sides when the reference runs in the same precision (float64 vs float64).
For float32 that is ~1.2e-7 * k * kappa; for float64 ~2.2e-16 * k * kappa. A K-step SGD trajectory
accumulates at most K such gradient errors plus one rounding of each update per step, so the final
parameters get  K * (max_Q tol_Q + 2u)  relative to max|W_ref|. tests/test_tolerance.py checks the bound
against a float32 evaluation of the oracle itself, which must fall inside it.

Reduced precision (impls.precision.PRECISIONS: each Precision carries its unit roundoff u_l and how many times
the longest chain rounds to it): under torch.autocast (bf16 u_l = 2^-8, fp16 u_l = 2^-11) every matrix product
rounds its inputs to the low format and its result back to it, but accumulates in fp32 (oneDNN/MKL/cuBLAS), and
every elementwise op rounds its result to the low format; under TF32 (u_l = 2^-11) only the inputs of the
products are rounded. So the k-dependent part keeps the fp32 gamma_k, and each rounding adds u_l relative to the
magnitudes flowing through it (derivatives <= 1). Counting the roundings on the longest chain, x -> a1 -> h -> z ->
y -> dz -> dh -> da1 -> dW1 (4 products, 4 elementwise ops), gives 16 under autocast and 8 under TF32:

    tol = 2 * (roundings * u_l + gamma_k(u_fp32)) * kappa_Q     (bf16: ~0.125 kappa; fp16 ~0.016; tf32 ~0.008)

The update stays in fp32 (master weights), so the trajectory bound is K * (tol + 2 u_fp32). What such a
check can see: a bug whose effect on a quantity exceeds tol_low relative to its largest entry -- a transposed
product, a wrong derivative, a missing term, a factor of 2 -- and not one below it (in bf16 an error of a few
percent, e.g. an L2 coefficient off by 5%, or one wrong sample's term among 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from impls.precision import precision_of

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}
ELEMENTWISE_ULPS = 8


def gamma(k: int, u: float) -> float:
    """Higham's gamma_k = k u / (1 - k u)."""
    return k * u / (1 - k * u)


def tolerance(dtype: torch.dtype, D: int, H: int, C: int, n: int, kappa: float, precision: str = "fp32") -> float:
    """Normwise relative error bound for one quantity computed in `dtype`, in `precision` (a name of
    impls.precision.PRECISIONS: its roundings to its format add to the dtype's own; see the module docstring)."""
    p = precision_of(precision)
    k_part = gamma(D + H + C + n + ELEMENTWISE_ULPS, UNIT_ROUNDOFF[dtype])
    return 2.0 * (p.roundings * p.unit_roundoff + k_part) * kappa


def trajectory_tolerance(dtype: torch.dtype, step_tol: float, steps: int) -> float:
    """Bound on the final parameters after `steps` updates, each adding at most one step's error."""
    return steps * (step_tol + 2 * UNIT_ROUNDOFF[dtype])


@dataclass
class Check:
    """One compared quantity: normwise errors and the derived tolerance."""

    quantity: str
    max_abs_err: float
    max_rel_err: float
    tol: float
    ok: bool
    problem: str = ""


class Returned:
    """Stands for a returned value that is not a tensor, across a process boundary (failure messages show it)."""

    def __init__(self, value: object) -> None:
        self.text = describe(value)

    def __repr__(self) -> str:
        return self.text


def describe(value: object) -> str:
    """What a returned value is, for a failure message: 'numpy.ndarray (4, 5) float64', 'list of 3', 'float'."""
    if isinstance(value, Returned):
        return value.text
    if isinstance(value, torch.Tensor):
        return f"Tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, np.ndarray):
        return f"numpy.ndarray {value.shape} {value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def compare(quantity: str, got: object, ref: np.ndarray | float, tol: float, dtype: torch.dtype | None = None) -> Check:
    """Compare `got` with the reference. With `dtype` (checking an implementation), `got` must be a torch.Tensor of
    that dtype and the reference's shape (a 0-dim tensor for the loss); without it (checking a reference computed
    another way) arrays and floats are accepted. Wrong type, dtype, shape or non-finite values fail with a reason
    that says what was returned and what was expected."""
    ref = np.asarray(ref, dtype=np.float64)

    def fail(problem: str, err: float = float("nan")) -> Check:
        return Check(quantity, err, err, tol, False, problem)

    expected = f"a Tensor {ref.shape}" + (f" {str(dtype).removeprefix('torch.')}" if dtype is not None else "")
    if got is None:
        return fail(f"missing (expected {expected})")
    if isinstance(got, torch.Tensor):
        if dtype is not None and got.dtype != dtype:
            return fail(f"returned {describe(got)}, expected {expected}")
        got_np = got.detach().to("cpu", torch.float64).numpy()
    elif dtype is not None:
        return fail(f"returned {describe(got)}, expected {expected}")
    else:
        try:
            got_np = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            return fail(f"not a tensor: {type(got).__name__}")
    if got_np.shape != ref.shape:
        return fail(f"shape {got_np.shape}, expected {ref.shape}")
    if not np.isfinite(got_np).all():
        return fail("contains NaN or inf", float("inf"))
    abs_err = float(np.abs(got_np - ref).max()) if ref.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    rel_err = abs_err / scale if scale else abs_err
    ok = rel_err <= tol
    return Check(quantity, abs_err, rel_err, tol, ok, "" if ok else "exceeds tolerance")
