"""The float64 oracle is itself checked: central finite differences and torch.autograd (gradcheck) agree with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impls.autograd import autograd_loss
from impls.spec import LOSS_TABLE, NetSpec, all_specs, init_params, make_batch
from verification import oracle


def _np(spec: NetSpec, n: int = 6, seed: int = 0):
    p = {k: v.numpy() for k, v in init_params(spec, seed=seed, dtype=torch.float64).items()}
    x, t = make_batch(spec, n, seed=seed + 1, dtype=torch.float64)
    return p, x.numpy(), t.numpy()


@pytest.mark.parametrize("spec", all_specs(4, 3, 3), ids=lambda s: s.label)
def test_oracle_matches_central_differences(spec: NetSpec) -> None:
    """Central differences with h=1e-6 err by O(h^2 |E'''|) + O(eps |E| / h) ~ 1e-10 here; we allow 1e-7 relative
    to the largest gradient entry. ReLU kinks are not crossed: no pre-activation lies within h of 0 for this data."""
    p, x, t = _np(spec)
    a1 = x @ p["W1"].T + p["b1"]
    assert np.abs(a1).min() > 1e-4
    _, g = oracle.loss_and_grads(p, x, t, spec)
    fd = oracle.finite_difference_grads(p, x, t, spec)
    for k in oracle.NAMES:
        scale = max(np.abs(g[k]).max(), 1e-12)
        assert np.abs(g[k] - fd[k]).max() / scale < 1e-7, k


@pytest.mark.parametrize("spec", all_specs(3, 2, 2, l2_values=(0.1,)), ids=lambda s: s.label)
def test_oracle_matches_torch_autograd_and_gradcheck(spec: NetSpec) -> None:
    """An independent differentiation (torch.autograd, itself confirmed by gradcheck) gives the same gradients."""
    p, x, t = _np(spec, n=5, seed=2)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx, tt = torch.tensor(x), torch.tensor(t)

    def f(W1, b1, W2, b2):
        return autograd_loss(spec, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, tx, tt)

    args = tuple(tp[k] for k in oracle.NAMES)
    assert torch.autograd.gradcheck(f, args)
    loss = f(*args)
    grads = torch.autograd.grad(loss, args)
    ref_loss, ref = oracle.loss_and_grads(p, x, t, spec)
    assert abs(loss.item() - ref_loss) <= 1e-12 * max(1.0, abs(ref_loss))
    for k, g in zip(oracle.NAMES, grads, strict=True):
        np.testing.assert_allclose(g.numpy(), ref[k], rtol=1e-10, atol=1e-12)


def test_loss_definitions_exactly() -> None:
    """sse, half_sse, mse and cross_entropy by their definitions in the issue, plus the L2 term without a half."""
    spec = NetSpec(2, 2, 2, "relu", "identity", "sse", l2=0.5)
    p = {"W1": np.eye(2), "b1": np.zeros(2), "W2": np.eye(2), "b2": np.zeros(2)}
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    t = np.zeros((2, 2))
    y = np.maximum(x, 0)
    l2 = 0.5 * (2 + 2)
    assert oracle.loss_and_grads(p, x, t, spec)[0] == pytest.approx((y**2).sum() + l2)
    half = NetSpec(2, 2, 2, "relu", "identity", "half_sse")
    assert oracle.loss_and_grads(p, x, t, half)[0] == pytest.approx(0.5 * (y**2).sum())
    mse = NetSpec(2, 2, 2, "relu", "identity", "mse")
    assert oracle.loss_and_grads(p, x, t, mse)[0] == pytest.approx((y**2).mean())
    ce = NetSpec(2, 2, 2, "relu", "identity", "cross_entropy")
    labels = np.array([0, 1])
    logp = y - np.log(np.exp(y).sum(1, keepdims=True))
    assert oracle.loss_and_grads(p, x, labels, ce)[0] == pytest.approx(-(logp[0, 0] + logp[1, 1]) / 2)


def test_sgd_trajectory_is_rumelhart_eq9() -> None:
    """dw(t) = -lr dE/dw(t) + momentum dw(t-1), two steps by hand."""
    spec = NetSpec(3, 2, 2, "sigmoid", "sigmoid", "half_sse")
    p, x, t = _np(spec)
    _, g0 = oracle.loss_and_grads(p, x, t, spec)
    p1 = {k: p[k] - 0.3 * g0[k] for k in p}
    _, g1 = oracle.loss_and_grads(p1, x, t, spec)
    p2 = {k: p1[k] + 0.9 * (-0.3 * g0[k]) - 0.3 * g1[k] for k in p}
    _, got = oracle.sgd_trajectory(p, [(x, t), (x, t)], spec, lr=0.3, momentum=0.9)
    for k in p:
        np.testing.assert_allclose(got[k], p2[k], rtol=1e-14)


@pytest.mark.parametrize("loss", sorted(LOSS_TABLE))
def test_the_oracles_own_loss_formulas_agree_with_the_loss_table(loss: str) -> None:
    """The oracle keeps its own formulas on purpose (a table error must not pass silently through both); they agree
    with impls.spec.LOSS_TABLE, which every implementation reads: loss = scale/2 sum (y-t)^2, scale sum -log p_t or
    the mean binary cross-entropy, and the output gradient scale (y - t), scale (softmax - onehot) or scale (y - t) of
    the sigmoid, with scale = Loss.scale(n, C)."""
    rule = LOSS_TABLE[loss]
    output = rule.output or "sigmoid"
    spec = NetSpec(4, 3, 3, "tanh", output, loss)
    p = {k: v.numpy() for k, v in init_params(spec, dtype=torch.float64).items()}
    x, t = (v.numpy() for v in make_batch(spec, 5, dtype=torch.float64))
    got, grads = oracle.loss_and_grads(p, x, t, spec)
    z = np.tanh(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
    scale = rule.scale(5, 3)
    if rule.squared:
        y = 1 / (1 + np.exp(-z))
        want, dz = scale / 2 * ((y - t) ** 2).sum(), scale * (y - t) * y * (1 - y)
    elif rule.kind == "binary":  # the textbook (deeplearning.ai's) cost: -(t log y + (1 - t) log(1 - y)), averaged
        y = 1 / (1 + np.exp(-z))
        assert set(np.unique(t)) <= {0.0, 1.0}
        want = -(t * np.log(y) + (1 - t) * np.log(1 - y)).sum() / t.size
        dz = (y - t) / t.size
        assert scale == pytest.approx(1 / t.size)
    else:
        zs = z - z.max(1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(1, keepdims=True))
        onehot = np.eye(3)[t]
        want, dz = -scale * logp[np.arange(5), t].sum(), scale * (np.exp(logp) - onehot)
    assert got == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grads["b2"], dz.sum(0), rtol=1e-12, atol=1e-15)
    assert rule.over_n == (rule.scale(10, 3) != rule.scale(5, 3)) and (rule.output is None) == rule.squared
    assert rule.canonical == (not rule.squared) and rule.labels == (t.dtype == np.int64)


@pytest.mark.parametrize("loss", ["cross_entropy", "bce"])
def test_the_guarded_log_convention_is_its_loss_and_its_derivative(loss: str) -> None:
    """log_eps: the loss is -log(p + eps) (against an independent formula); eps_grads: the gradients are that loss's
    (central differences of it, to 1e-7 of the largest entry as above); without eps_grads, the exact loss's."""
    spec = next(s for s in all_specs(4, 3, 3 if loss == "cross_entropy" else 1) if s.loss == loss and not s.l2)
    p, x, t = _np(spec)
    eps = 1e-2  # large, so that the guard moves every number far past the tolerances
    got, g = oracle.loss_and_grads(p, x, t, spec, log_eps=eps, eps_grads=True)
    a = x @ p["W1"].T + p["b1"]
    h = {"relu": np.maximum(a, 0), "tanh": np.tanh(a), "sigmoid": 1 / (1 + np.exp(-a))}[spec.hidden]
    logits = h @ p["W2"].T + p["b2"]
    if loss == "cross_entropy":
        prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        want = -np.log(prob[np.arange(len(t)), t.astype(int)] + eps).mean()
    else:
        y = 1 / (1 + np.exp(-logits))
        want = -(t * np.log(y + eps) + (1 - t) * np.log(1 - y + eps)).mean()
    assert got == pytest.approx(want, rel=1e-12)

    def guarded(q, xx, tt, s):
        return oracle.loss_and_grads(q, xx, tt, s, log_eps=eps)[0]

    fd = {}
    for k in oracle.NAMES:
        fd[k] = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            up, down = ({kk: vv.copy() for kk, vv in p.items()} for _ in range(2))
            up[k][idx] += 1e-6
            down[k][idx] -= 1e-6
            fd[k][idx] = (guarded(up, x, t, spec) - guarded(down, x, t, spec)) / 2e-6
    exact = oracle.loss_and_grads(p, x, t, spec)[1]
    plain = oracle.loss_and_grads(p, x, t, spec, log_eps=eps)[1]
    for k in oracle.NAMES:
        scale = np.abs(g[k]).max()
        # central differences' rounding: u |E| / h = 2.2e-16 * ~1 / 1e-6 ~ 2e-10 absolute: a floor of 5x that
        assert np.abs(g[k] - fd[k]).max() < 1e-7 * scale + 1e-9, k
        assert np.array_equal(plain[k], exact[k]) and np.abs(exact[k] - g[k]).max() / scale > 1e-4, k
