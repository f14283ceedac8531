"""Every registered implementation agrees with the float64 oracle (loss, gradients, K-step trajectory)."""

from __future__ import annotations

import pytest
import torch
from conftest import impl_params

import impls
from impls.base import SGD
from impls.spec import NetSpec, all_specs, init_params, make_batch
from verification.runner import Case, Matrix, covering_subset, run_case

MATRIX = Matrix()


def eager(cls: type[impls.Implementation]) -> bool:
    return not cls.compiles


def compiling(cls: type[impls.Implementation]) -> bool:
    return cls.compiles


def _declared(name: str, spec: NetSpec) -> None:
    """Skip, with the implementation's own reason, a loss it declares it does not compute (Implementation.losses)."""
    cls = impls.get(name)
    if spec.loss not in cls.losses:
        pytest.skip(f"{name} declares it does not compute {spec.loss}: {cls.unsupported_losses}")


def _assert_rows_ok(rows: list[dict]) -> None:
    bad = [r for r in rows if r["status"] != "ok"]
    assert not bad, "\n".join(f"{r['impl']} {r['quantity']}: {r['status']} {r.get('problem')}" for r in bad)
    quantities = {r["quantity"] for r in rows}
    assert quantities - {"train"} == {"loss", "W1", "b1", "W2", "b2", "trajectory"}
    overrides = impls.get(rows[0]["impl"]).train is not impls.Implementation.train
    assert ("train" in quantities) == overrides, "train() is checked where an implementation has its own"


@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("spec", all_specs(5, 4, 3), ids=lambda s: s.label)
@pytest.mark.parametrize(("name", "device", "dtype"), impl_params(("device", "dtype"), eager))
def test_eager_matches_oracle(name: str, spec: NetSpec, n: int, dtype: str, device: str) -> None:
    _declared(name, spec)
    _assert_rows_ok(run_case(Case(name, spec, n, dtype, device), impls.get(name), MATRIX))


@pytest.mark.slow
@pytest.mark.parametrize("spec", covering_subset(all_specs(5, 4, 3)), ids=lambda s: s.label)
@pytest.mark.parametrize(("name", "device", "dtype"), impl_params(("device", "dtype"), compiling))
def test_compiled_matches_oracle(name: str, spec: NetSpec, dtype: str, device: str) -> None:
    """A covering subset: every (output, loss) pair, every hidden activation, L2 on and off (compiles cost ~1.5 s)."""
    _declared(name, spec)
    _assert_rows_ok(run_case(Case(name, spec, 7, dtype, device), impls.get(name), MATRIX))


@pytest.mark.parametrize(("name", "device", "dtype"), impl_params(("device", "dtype"), dtypes=("float32",)))
def test_relu_derivative_at_exactly_zero_is_zero(name: str, device: str, dtype: str) -> None:
    """x = 0 and b1 = 0 put every hidden pre-activation at exactly 0: torch's convention relu'(0) = 0
    makes dW1 and db1 exactly zero (a derivative of 1 at 0 would make db1 = W2^T dz != 0)."""
    spec = NetSpec(3, 4, 2, "relu", "identity", "sse")
    p = init_params(spec, device=device)
    p["b1"] = torch.zeros_like(p["b1"])
    x = torch.zeros(5, 3, device=device)
    t = torch.ones(5, 2, device=device)
    _, grads = impls.get(name)(spec, p).step(x, t)
    assert torch.count_nonzero(grads["W1"]) == 0 and torch.count_nonzero(grads["b1"]) == 0
    assert torch.count_nonzero(grads["b2"]) > 0


@pytest.mark.parametrize(("name", "device", "dtype"), impl_params(("device", "dtype"), eager, dtypes=("float64",)))
def test_momentum_update_is_rumelhart_eq9(name: str, device: str, dtype: str) -> None:
    """Two steps with momentum 0.9 equal w - lr g0 then w + 0.9 (-lr g0) - lr g1, from the returned gradients."""
    spec = NetSpec(5, 4, 3, "sigmoid", "sigmoid", "half_sse", l2=0.01)
    p = init_params(spec, dtype=torch.float64, device=device)
    x, t = make_batch(spec, 9, dtype=torch.float64, device=device)
    impl = impls.get(name)(spec, p, SGD(lr=0.2, momentum=0.9))
    _, g0 = impl.step(x, t)
    g0 = {k: v.clone() for k, v in g0.items()}
    _, g1 = impl.step(x, t)
    for k in p:
        expected = p[k] - 0.2 * g0[k] + 0.9 * (-0.2 * g0[k]) - 0.2 * g1[k]
        torch.testing.assert_close(impl.params()[k], expected, rtol=1e-12, atol=1e-12)


def test_numpy_flat_chunks_large_batches_exactly() -> None:
    """N=2500 runs as chunks of 1024, 1024 and 452 rows: gradients accumulate to the whole-batch ones."""
    from impls.numpy_flat import CHUNK

    assert 2 * CHUNK < 2500 < 3 * CHUNK
    for spec in (NetSpec(7, 5, 3, "relu", "identity", "cross_entropy", 0.1), NetSpec(7, 5, 3, "tanh", "tanh", "mse")):
        for dtype in ("float32", "float64"):
            _assert_rows_ok(run_case(Case("numpy_flat", spec, 2500, dtype, "cpu"), impls.get("numpy_flat"), MATRIX))


def test_numpy_flat_pads_hidden_units_exactly() -> None:
    """H=30 runs as 32 SIMD-friendly units; the 2 padded units must not change loss, gradients or trajectory."""
    from impls.numpy_flat import padded_hidden

    assert (padded_hidden(30), padded_hidden(50), padded_hidden(2), padded_hidden(17), padded_hidden(64)) == (
        32,
        50,
        2,
        17,
        64,
    )
    for spec in (
        NetSpec(7, 30, 3, "sigmoid", "identity", "cross_entropy", 0.1),
        NetSpec(7, 30, 3, "tanh", "sigmoid", "sse"),
    ):
        _assert_rows_ok(run_case(Case("numpy_flat", spec, 9, "float64", "cpu"), impls.get("numpy_flat"), MATRIX))
        impl = impls.get("numpy_flat")(spec, init_params(spec))
        impl.step(*make_batch(spec, 9))
        padded = impl.padded()
        assert padded["W1"].shape == (32, 7) and not padded["W1"][30:].any() and not padded["W2"][:, 30:].any()


# ---- per-sample gradients ----------------------------------------------------------------------------------------

PER_SAMPLE = [p.values[0] for p in impl_params((), lambda cls: cls.gives_per_sample_grads)]


def test_per_sample_implementations_are_the_documented_ones() -> None:
    assert set(PER_SAMPLE) == {"vmap", "loop", "batched"}


@pytest.mark.parametrize("spec", all_specs(5, 4, 3)[::4], ids=lambda s: s.label)
@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_grads_match_the_oracle_and_sum_to_the_batch_gradient(name: str, spec: NetSpec) -> None:
    matrix = Matrix(per_sample=True)
    rows = run_case(Case(name, spec, 7, "float32", "cpu"), impls.get(name), matrix)
    assert all(r["status"] == "ok" for r in rows) and {r["quantity"] for r in rows} == {"W1", "b1", "W2", "b2"}
    p = init_params(spec, dtype=torch.float64)
    x, t = make_batch(spec, 7, dtype=torch.float64)
    impl = impls.get(name)(spec, p)
    per = impl.per_sample_grads(x, t)
    _, batch = impls.get(name)(spec, p).step(x, t)
    for k in per:
        l2 = 2 * spec.l2 * p[k] if k in ("W1", "W2") else 0.0
        torch.testing.assert_close(per[k].sum(0) + l2, batch[k], rtol=1e-12, atol=1e-12)
    assert impl.params()["W1"].equal(p["W1"]), "per_sample_grads must not update"


def test_a_per_sample_bug_is_caught_and_named_by_sample() -> None:
    """Sample 3's gradient off by 1e-3 relative: the batch sum would hide it among 7 samples, the check does not."""

    class OffByOneSample(impls.get("batched")):
        def per_sample_grads(self, x, t):
            g = super().per_sample_grads(x, t)
            g["W1"] = g["W1"].clone()
            g["W1"][3] *= 1.001
            return g

    spec = NetSpec(5, 4, 3, "tanh", "identity", "mse")
    rows = run_case(Case("bug", spec, 7, "float64", "cpu"), OffByOneSample, Matrix(per_sample=True))
    bad = [r for r in rows if r["status"] == "FAIL"]
    assert [r["quantity"] for r in bad] == ["W1"] and "sample 3" in bad[0]["problem"]


def test_per_sample_is_unsupported_where_not_given() -> None:
    spec = NetSpec(5, 4, 3)
    rows = run_case(Case("module", spec, 7, "float32", "cpu"), impls.get("module"), Matrix(per_sample=True))
    assert rows[0]["status"] == "unsupported" and "gives no per-sample gradients" in rows[0]["problem"]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: torch.cuda.is_available() is False")
def test_cudagraph_copies_only_a_changed_batch() -> None:
    """The same unmodified batch replays without copying; a batch changed in place is copied (its gradients are
    the new batch's), and so is another tensor."""
    spec = NetSpec(5, 4, 3, "tanh", "identity", "mse")
    p = init_params(spec, device="cuda")
    x, t = make_batch(spec, 9, device="cuda")
    impl = impls.get("cudagraph")(spec, p, SGD(lr=0.0))
    impl.step(x, t)
    impl.step(x, t)
    assert impl.input_copies == 0
    x.mul_(2)
    _, g = impl.step(x, t)
    assert impl.input_copies == 1
    _, want = impls.get("batched")(spec, p, SGD(lr=0.0)).step(x, t)
    torch.testing.assert_close(g["W1"], want["W1"])
    impl.step(x.clone(), t)
    assert impl.input_copies == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: torch.cuda.is_available() is False")
def test_graphed_train_replays_k_steps_and_recaptures_for_a_new_shape() -> None:
    """train(x, t, K) is one replay of a K-step graph: the same losses and parameters as K step() calls, returned
    as a copy (a later replay does not change them); a new batch shape is captured anew, not run on stale buffers."""
    spec = NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy", l2=0.01)
    p = init_params(spec, device="cuda")
    x, t = make_batch(spec, 9, device="cuda")
    one, many = impls.get("graphed")(spec, p, SGD(0.1, 0.9)), impls.get("graphed")(spec, p, SGD(0.1, 0.9))
    singles = torch.stack([one.step(x, t)[0].clone() for _ in range(5)])
    losses = many.train(x, t, 5)
    torch.testing.assert_close(losses, singles, rtol=1e-5, atol=1e-6)
    kept = losses.clone()
    many.train(x, t, 5)
    assert torch.equal(losses, kept), "train() must return a copy, not the graph's output buffer"
    x2, t2 = make_batch(spec, 17, seed=3, device="cuda")
    before = {k: v.clone() for k, v in one.params().items()}
    _, g = one.step(x2, t2)  # gradients at `before`, on the new batch
    _, want = impls.get("batched")(spec, before, SGD(0.0)).step(x2, t2)
    torch.testing.assert_close(g["W1"], want["W1"], rtol=1e-5, atol=1e-6)
    assert one.captures == 2
