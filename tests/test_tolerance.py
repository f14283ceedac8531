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


class _TF32Products(torch.overrides.TorchFunctionMode):
    """Emulates TF32 on the CPU: the float32 inputs of every matrix product rounded to 10 significand bits (round to
    nearest even on the 13 dropped bits), the product accumulated in fp32 -- what cuBLAS does with allow_tf32."""

    PRODUCTS = frozenset(
        {torch.mm, torch.addmm, torch.matmul, torch.Tensor.__matmul__, torch.Tensor.matmul, torch.Tensor.mm}
    )

    @staticmethod
    def rounded(a: object) -> object:
        if not (isinstance(a, torch.Tensor) and a.dtype == torch.float32):
            return a
        bits = a.contiguous().view(torch.int32)
        keep = bits + 0x0FFF + ((bits >> 13) & 1)  # ties to even on bit 13
        return (keep & ~0x1FFF).view(torch.float32).reshape(a.shape)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.PRODUCTS:
            first = 1 if func is torch.addmm else 0  # addmm(bias, a, b): the bias is added in fp32
            args = tuple(self.rounded(a) if i >= first else a for i, a in enumerate(args))
        return func(*args, **kwargs)


@pytest.mark.parametrize("shape", [(5, 4, 3, 7), (784, 30, 10, 256), (6, 2, 1, 64)])
def test_emulated_tf32_falls_inside_the_derived_tf32_bound_and_outside_the_fp32_one(shape) -> None:
    """impls.precision's tf32 record (8 roundings to 2^-11 on the longest chain) gives the bound; the batched step
    with every product's inputs rounded as TF32 rounds them must stay inside it, and (so the emulation is real)
    exceed the float32 bound somewhere. No GPU needed. Smooth activations only: with relu, a pre-activation within
    rounding distance of 0 can flip its derivative, a jump no error bound covers (784-30-10 relu, N = 256: dW1 off
    by 0.178 against a bound of 0.064, measured) -- the exact-zeros data checks relu' exactly in fp32 instead."""
    import impls
    from impls.base import SGD

    D, H, C, n = shape
    worst, beyond_fp32 = 0.0, False
    for spec in [s for s in all_specs(D, H, C, l2_values=(0.0, 0.1)) if s.hidden != "relu"][::2]:
        p = init_params(spec, seed=3)
        x, t = make_batch(spec, n, seed=4)
        with _TF32Products():
            loss, grads = impls.get("batched")(spec, p, SGD(0.0)).step(x, t)
        p64 = {k: v.double().numpy() for k, v in p.items()}
        kappa: dict[str, float] = {}
        l64, g64 = oracle.loss_and_grads(
            p64, x.double().numpy(), t.numpy() if t.dtype == torch.int64 else t.double().numpy(), spec, kappa=kappa
        )
        for q, got, ref in [("loss", loss, l64), *((k, grads[k], g64[k]) for k in oracle.NAMES)]:
            tol = tolerance(torch.float32, D, H, C, n, kappa[q], "tf32")
            check = compare(q, got, ref, tol)
            assert check.ok, f"{spec.label} N={n} {q}: {check.max_rel_err:.3g} > {check.tol:.3g}"
            worst = max(worst, check.max_rel_err / tol)
            beyond_fp32 |= check.max_rel_err > tolerance(torch.float32, D, H, C, n, kappa[q])
    assert beyond_fp32, "the emulation changed nothing: products were not rounded"
    assert worst < 1.0
