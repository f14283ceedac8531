"""The registry: discovery, lookup errors, and the one interface every implementation shares."""

from __future__ import annotations

import pytest
import torch

import impls
from impls.base import SGD, Implementation, ManualSGD
from impls.spec import NetSpec, init_params, make_batch

CORE = {"loop", "batched", "autograd", "module", "compiled"}


def test_core_implementations_are_registered() -> None:
    assert CORE <= set(impls.names())


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(impls.UnknownImplementation) as info:
        impls.get("backprop_v2")
    text = str(info.value)
    assert "unknown implementation 'backprop_v2'" in text
    for name in CORE:
        assert name in text


def test_register_adds_a_row_everywhere_and_refuses_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impls, "_REGISTRY", dict(impls._REGISTRY))

    @impls.register("double_batched")
    class DoubleBatched(ManualSGD):
        def loss_and_grads(self, p, x, t):
            return impls.get("batched")(self.spec, p).loss_and_grads(p, x, t)

    assert "double_batched" in impls.names() and impls.get("double_batched") is DoubleBatched
    with pytest.raises(ValueError, match="registered twice"):
        impls.register("double_batched")(type("Other", (ManualSGD,), {}))


@pytest.mark.parametrize("name", sorted(CORE))
def test_step_returns_loss_and_grads_before_the_update(name: str) -> None:
    spec = NetSpec(5, 4, 3, "tanh", "identity", "mse")
    p = init_params(spec)
    x, t = make_batch(spec, 7)
    impl = impls.get(name)(spec, p, SGD(lr=0.5))
    assert isinstance(impl, Implementation)
    loss, grads = impl.step(x, t)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert {k: tuple(v.shape) for k, v in grads.items()} == spec.param_shapes()
    # the update is w - lr * g, applied to a copy: the caller's params are untouched
    for k in p:
        torch.testing.assert_close(impl.params()[k], p[k] - 0.5 * grads[k], rtol=1e-6, atol=1e-6)
    assert torch.equal(p["W1"], init_params(spec)["W1"])


def test_unsupported_device_is_reported_not_crashed() -> None:
    class CudaOnly(ManualSGD):
        name = "cuda_only"
        devices = ("cuda",)

        def loss_and_grads(self, p, x, t):  # pragma: no cover - never reached
            raise AssertionError

    spec = NetSpec(2, 2, 2)
    with pytest.raises(impls.UnsupportedConfig, match="runs on cuda only, not cpu"):
        CudaOnly(spec, init_params(spec))


def test_collection_check_names_a_test_that_pairs_an_implementation_with_what_it_declares_unsupported() -> None:
    """The GPU run's 20 failures were numba (CPU only) paired with cuda: the collection check (conftest) now turns
    any such pairing into a usage error on CI's CPU. Fake items stand for what a slipped parametrization collects."""
    from types import SimpleNamespace

    from conftest import impl_params, pairing_problems

    def item(**params: object) -> SimpleNamespace:
        return SimpleNamespace(
            nodeid=f"t[{'-'.join(map(str, params.values()))}]", callspec=SimpleNamespace(params=params)
        )

    bad = [
        item(name="numba", device="cuda", dtype="float32"),
        item(name="cudagraph", device="cpu"),
        item(name="numpy_flat", precision="bf16"),
    ]
    good = [item(name="numba", device="cpu"), item(name="batched", precision="bf16"), item(name="x_not_registered")]
    problems = pairing_problems(bad + good)
    assert problems == [
        "t[numba-cuda-float32]: numba runs on cpu only, not cuda",
        "t[cudagraph-cpu]: cudagraph runs on cuda only, not cpu",
        "t[numpy_flat-bf16]: numpy_flat runs in fp32 only, not bf16",
    ]
    generated = impl_params(("device", "dtype", "precision"), precisions=("fp32", "bf16", "fp16"))
    assert not pairing_problems([item(**dict(zip(("name", *AXES), p.values, strict=True))) for p in generated])
    assert ("numba", "cuda") not in {p.values[:2] for p in generated} and ("cudagraph", "cuda") in {
        p.values[:2] for p in generated
    }


AXES = ("device", "dtype", "precision")


def test_same_inputs_sees_a_new_tensor_and_an_in_place_change() -> None:
    """What cudagraph (skip the 188 MB copy into its static buffer) and numba (reuse NumPy views) rely on; the
    CUDA side runs where a GPU is lent (test_cudagraph_copies_only_a_changed_batch)."""
    from impls.base import SameInputs

    x, t = torch.randn(4, 3), torch.randn(4, 2)
    seen = SameInputs()
    assert not seen.unchanged(x, t)
    seen.remember(x, t)
    assert seen.unchanged(x, t)
    x[0, 0] += 1  # in place: the buffers would hold stale values
    assert not seen.unchanged(x, t)
    seen.remember(x, t)
    x[1:].mul_(2)  # through a view
    assert not seen.unchanged(x, t)
    seen.remember(x, t)
    assert not seen.unchanged(x.clone(), t)  # equal values, another tensor: copied (cannot know it is equal)
    t.zero_()
    assert not seen.unchanged(x, t)
    seen.remember(x, t)
    x.data = torch.randn(4, 3)  # new storage under the same object: its version does not count this
    assert x._version == seen._last[1] and not seen.unchanged(x, t)


def test_ranks_are_distinct_and_one_baseline_is_declared() -> None:
    """What the reports order and compare by travels in the records: every implementation's place on the ladder
    is its own, and exactly one is the baseline (the per-sample loop)."""
    classes = [impls.get(n) for n in impls.names()]
    assert len({c.rank for c in classes}) == len(classes)
    assert [c.name for c in classes if c.baseline] == ["loop"]
