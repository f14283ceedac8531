"""The numba implementation: one compilation per (spec, dtype), exact momentum, inputs re-read when they change."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import impls
from impls.base import SGD
from impls.spec import InputError, NetSpec, init_params, make_batch
from verification import oracle

SPEC = NetSpec(5, 4, 3, "tanh", "sigmoid", "sse", l2=0.01)


def _oracle_grads(p: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor) -> dict[str, np.ndarray]:
    _, grads = oracle.loss_and_grads({k: v.double().numpy() for k, v in p.items()}, x.double().numpy(),
                                     t.double().numpy(), SPEC)  # fmt: skip
    return grads


def test_compiles_once_per_spec_and_dtype() -> None:
    """A second object with the same spec and dtype reuses the compiled kernel; float64 compiles once more."""
    p = init_params(SPEC)
    x, t = make_batch(SPEC, 6)
    first = impls.get("numba")(SPEC, p)
    first.step(x, t)
    first.step(x, t)
    again = impls.get("numba")(SPEC, init_params(SPEC, seed=3))
    again.step(*make_batch(SPEC, 11))  # another batch size: same kernel
    assert again.compilations == 0 and first.compilations <= 1
    wide = impls.get("numba")(SPEC, init_params(SPEC, dtype=torch.float64))
    wide.step(*make_batch(SPEC, 6, dtype=torch.float64))
    assert wide.compilations == 1


def test_momentum_update_is_rumelhart_eq9() -> None:
    p = init_params(SPEC, dtype=torch.float64)
    x, t = make_batch(SPEC, 9, dtype=torch.float64)
    impl = impls.get("numba")(SPEC, p, SGD(lr=0.2, momentum=0.9))
    g0 = {k: v.clone() for k, v in impl.step(x, t)[1].items()}
    g1 = impl.step(x, t)[1]
    for k in p:
        expected = p[k] - 0.2 * g0[k] + 0.9 * (-0.2 * g0[k]) - 0.2 * g1[k]
        torch.testing.assert_close(impl.params()[k], expected, rtol=1e-12, atol=1e-12)


def test_inputs_changed_in_place_or_strided_are_read_again() -> None:
    """The NumPy views of x and t are remembered between calls; an in-place change to x must be seen, and a
    non-contiguous x must give the same gradients as its contiguous copy."""
    p = init_params(SPEC, dtype=torch.float64)
    x, t = make_batch(SPEC, 7, dtype=torch.float64)
    impl = impls.get("numba")(SPEC, p, SGD(lr=0.0))  # lr 0: the parameters stay p
    impl.step(x, t)
    x.mul_(-2.0)
    grads = impl.step(x, t)[1]
    for k, ref in _oracle_grads(p, x, t).items():
        np.testing.assert_allclose(grads[k].numpy(), ref, rtol=1e-10, atol=1e-12)
    strided = torch.cat([x, x], dim=1)[:, ::2]
    assert not strided.is_contiguous()
    grads = impl.step(strided, t)[1]
    for k, ref in _oracle_grads(p, strided.contiguous(), t).items():
        np.testing.assert_allclose(grads[k].numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "x", "t", "message"),
    [
        (NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy"), torch.zeros(2, 5), torch.tensor([0, 3]),
         r"class labels must lie in \[0, 3\), got range \[0, 3\]"),
        (NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy"), torch.zeros(2, 5), torch.tensor([-1, 0]),
         r"class labels must lie in \[0, 3\), got range \[-1, 0\]"),
        (SPEC, torch.zeros(2, 5, dtype=torch.float64), torch.zeros(2, 3),
         "W1 is torch.float32 but x is torch.float64; use one dtype"),
        (SPEC, torch.zeros(2, 5), torch.zeros(2, 2), r"targets must have shape \(N=2, C=3\), got \(2, 2\)"),
    ],
)  # fmt: skip
def test_inputs_the_kernel_would_misread_are_refused(spec: NetSpec, x, t, message: str) -> None:
    """The kernel indexes without bounds checks: a label outside [0, C) would read or write outside its arrays."""
    with pytest.raises(InputError, match=message):
        impls.get("numba")(spec, init_params(spec)).step(x, t)


def test_relu_of_minus_infinity_is_zero_as_in_torch() -> None:
    spec = NetSpec(2, 3, 2, "relu", "identity", "sse")
    p = init_params(spec, dtype=torch.float64)
    p["b1"][0] = -float("inf")
    x, t = make_batch(spec, 4, dtype=torch.float64)
    loss = float(impls.get("numba")(spec, p, SGD(lr=0.0)).step(x, t)[0])
    assert loss == pytest.approx(float(impls.get("batched")(spec, p, SGD(lr=0.0)).step(x, t)[0]), rel=1e-12)


def test_train_runs_k_steps_in_one_call_exactly_as_k_steps() -> None:
    """numba's train() loops over the same compiled step inside one compiled call: bit-identical to K step()s."""
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
    p = init_params(spec, dtype=torch.float64)
    x, t = make_batch(spec, 64, dtype=torch.float64)
    one, many = impls.get("numba")(spec, p, SGD(0.5, 0.9)), impls.get("numba")(spec, p, SGD(0.5, 0.9))
    singles = torch.stack([one.step(x, t)[0].clone() for _ in range(7)])
    assert torch.equal(many.train(x, t, 7), singles)
    assert all(torch.equal(many.params()[k], one.params()[k]) for k in p)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        many.train(x, t, 0)
