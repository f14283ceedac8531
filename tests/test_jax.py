"""The "jax" implementation (an optional extra): verified against the float64 oracle like every row, its batch
converted once per distinct batch, K steps in one jitted scan equal to K single steps, and a reasoned absence where
jax is not installed."""

from __future__ import annotations

import pytest
import torch

import impls
from impls import jax_step
from impls.base import SGD
from impls.spec import NetSpec, init_params, make_batch
from reports.record import Status
from verification.runner import Case, Matrix, run_case

CLS = impls.get("jax")
needs_jax = pytest.mark.skipif(bool(jax_step.IMPORT_ERROR), reason=jax_step.IMPORT_ERROR or "jax is installed")


@needs_jax
@pytest.mark.parametrize(
    ("spec", "dtype"),
    [
        (NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse", l2=0.0), "float64"),  # x64 mode
        (NetSpec(20, 7, 4, "relu", "identity", "cross_entropy", l2=0.01), "float32"),
        (NetSpec(9, 5, 3, "tanh", "tanh", "mse", l2=0.1), "float32"),
    ],
    ids=lambda v: v.label if isinstance(v, NetSpec) else v,
)
def test_gradients_trajectory_and_train_match_the_oracle(spec: NetSpec, dtype: str) -> None:
    rows = run_case(Case("jax", spec, 13, dtype, "cpu"), CLS, Matrix())
    bad = [(r["quantity"], r["problem"]) for r in rows if r["status"] != Status.OK]
    assert not bad, bad
    assert {r["quantity"] for r in rows} >= {"loss", "W1", "b1", "W2", "b2", "trajectory", "train"}


@needs_jax
def test_float32_stays_float32_under_x64_and_comes_back_as_torch_tensors() -> None:
    spec = NetSpec(8, 4, 3, "tanh", "identity", "cross_entropy")
    loss, grads = CLS(spec, init_params(spec), SGD(0.1)).step(*make_batch(spec, 5))
    assert isinstance(loss, torch.Tensor) and loss.dtype == torch.float32 and loss.shape == ()
    assert {k: (g.dtype, tuple(g.shape)) for k, g in grads.items()} == {
        "W1": (torch.float32, (4, 8)),
        "b1": (torch.float32, (4,)),
        "W2": (torch.float32, (3, 4)),
        "b2": (torch.float32, (3,)),
    }


@needs_jax
def test_the_batch_is_converted_once_and_again_when_it_changes() -> None:
    """A timed step is JAX's step, not the conversion; an in-place change to the batch is seen, never a stale copy."""
    spec = NetSpec(5, 3, 2, "sigmoid", "sigmoid", "sse")
    p = init_params(spec)
    x, t = make_batch(spec, 6)
    net = CLS(spec, p, SGD(0.0))  # lr 0: parameters stay, so gradients depend on the batch alone
    for _ in range(3):
        net.step(x, t)
    assert net.input_conversions == 1
    x.mul_(2.0)
    _, grads = net.step(x, t)
    assert net.input_conversions == 2
    _, fresh = CLS(spec, p, SGD(0.0)).step(x, t)
    for k in grads:
        torch.testing.assert_close(grads[k], fresh[k])


@needs_jax
def test_k_steps_in_one_scan_equal_k_single_steps() -> None:
    spec = NetSpec(7, 4, 3, "relu", "identity", "cross_entropy", l2=0.01)
    p = init_params(spec)
    x, t = make_batch(spec, 11)
    one, many = CLS(spec, p, SGD(0.2, 0.9)), CLS(spec, p, SGD(0.2, 0.9))
    singles = torch.stack([one.step(x, t)[0].clone() for _ in range(5)])
    losses = many.train(x, t, 5)
    assert losses.shape == (5,)
    torch.testing.assert_close(losses, singles, rtol=1e-6, atol=1e-7)
    for k, v in many.params().items():
        torch.testing.assert_close(v, one.params()[k], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        many.train(x, t, 0)


def test_without_jax_the_row_is_unsupported_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs where jax is missing too: the row is skipped with the install line, never an ImportError."""
    reason = "jax is not installed; pip install -e '.[jax]'"
    monkeypatch.setattr(jax_step, "IMPORT_ERROR", reason)
    spec = NetSpec(5, 3, 2, "sigmoid", "sigmoid", "sse")
    assert CLS.unsupported_reason(spec, "cpu", torch.float32) == reason
    rows = run_case(Case("jax", spec, 4, "float32", "cpu"), CLS, Matrix())
    assert {r["status"] for r in rows} == {Status.UNSUPPORTED} and all(reason in r["problem"] for r in rows)
