"""The derived tolerance: independent float32 evaluations fall inside it, and real bugs fall far outside it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impls.spec import NetSpec, all_specs, init_params, make_batch
from verification import oracle
from verification.compare import UNIT_ROUNDOFF, compare, gamma, tolerance, trajectory_tolerance


def test_gamma_and_unit_roundoff() -> None:
    assert UNIT_ROUNDOFF[torch.float32] == 2.0**-24 and UNIT_ROUNDOFF[torch.float64] == 2.0**-53
    assert gamma(10, 2.0**-24) == pytest.approx(10 * 2.0**-24, rel=1e-6)
    # 784-50-10 at N=1000, kappa 1: float32 bound ~2.2e-4, float64 ~4e-13
    assert tolerance(torch.float32, 784, 50, 10, 1000, 1.0) == pytest.approx(2 * 1852 * 2.0**-24, rel=1e-3)
    assert trajectory_tolerance(torch.float64, 1e-13, 4) == pytest.approx(4 * (1e-13 + 2 * 2.0**-53))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(5, 4, 3, 7), (784, 50, 10, 100), (6, 2, 1, 64), (784, 30, 10, 256)])
def test_float32_oracle_falls_inside_the_bound(shape: tuple[int, int, int, int], seed: int) -> None:
    """The same formulas evaluated in float32 (NumPy/BLAS, another summation order than torch) must stay within
    the float32 bound of the float64 result: if the bound were too tight, this independent computation would
    break it. Measured: the worst err/tol over every spec, seed and shape here is 0.049 (20x slack)."""
    D, H, C, n = shape
    for spec in all_specs(D, H, C, l2_values=(0.0, 0.1))[seed::3]:
        p = {k: v.numpy() for k, v in init_params(spec, seed=seed, dtype=torch.float64).items()}
        x, t = (a.numpy() for a in make_batch(spec, n, seed=seed + 10, dtype=torch.float64))
        kappa: dict[str, float] = {}
        l64, g64 = oracle.loss_and_grads(p, x, t, spec, kappa=kappa)
        l32, g32 = oracle.loss_and_grads(p, x, t, spec, dtype=np.float32)
        for q, got, ref in [("loss", l32, l64), *((k, g32[k], g64[k]) for k in oracle.NAMES)]:
            check = compare(q, got, ref, tolerance(torch.float32, D, H, C, n, kappa[q]))
            assert check.ok, f"{spec.label} N={n} {q}: {check.max_rel_err:.3g} > {check.tol:.3g}"


def test_common_bugs_exceed_the_bound_by_orders_of_magnitude() -> None:
    """A factor-of-2 L2 gradient error or a mean-vs-sum slip is >1000x the float32 tolerance."""
    spec = NetSpec(5, 4, 3, "tanh", "identity", "mse", l2=0.1)
    p = {k: v.numpy() for k, v in init_params(spec, dtype=torch.float64).items()}
    x, t = (a.numpy() for a in make_batch(spec, 7, dtype=torch.float64))
    kappa: dict[str, float] = {}
    _, g = oracle.loss_and_grads(p, x, t, spec, kappa=kappa)
    tol = tolerance(torch.float32, 5, 4, 3, 7, kappa["W1"])
    l2_half = g["W1"] - 0.1 * p["W1"]
    assert compare("W1", l2_half, g["W1"], tol).max_rel_err > 1000 * tol
    assert compare("W1", g["W1"] / 7, g["W1"], tol).max_rel_err > 1000 * tol


def test_compare_reports_shape_missing_and_nan() -> None:
    ref = np.ones((3, 4))
    assert "shape (4, 3), expected (3, 4)" in compare("W2", np.ones((4, 3)), ref, 1e-6).problem
    assert compare("W2", None, ref, 1e-6).problem == "missing (expected a Tensor (3, 4))"
    assert compare("W2", np.full((3, 4), np.nan), ref, 1e-6).problem == "contains NaN or inf"
    assert compare("W2", ref + 1e-9, ref, 1e-6).ok
