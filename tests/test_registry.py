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
