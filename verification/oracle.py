"""Float64 NumPy reference: forward, loss, hand-derived gradients and SGD, written apart from impls/ on purpose.

Its own gradients are checked against central finite differences and torch.autograd.gradcheck in tests/.
It can also run in float32 to measure how far a float32 computation of the *same* formulas drifts.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

NAMES = ("W1", "b1", "W2", "b2")


def _act(name: str, a: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0)
    return a


def _dact(name: str, a: np.ndarray, y: np.ndarray, relu_zero: float = 0.0) -> np.ndarray:
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "tanh":
        return 1.0 - y**2
    if name == "relu":  # relu'(0) = relu_zero: 0 (torch's, the default), 1 (a >= 0): a subgradient either way
        return np.where(a == 0, relu_zero, (a > 0).astype(a.dtype)).astype(a.dtype)
    return np.ones_like(a)


def loss_and_grads(
    p: dict[str, np.ndarray],
    x: np.ndarray,
    t: np.ndarray,
    spec,
    dtype: type = np.float64,
    kappa: dict | None = None,
    relu_zero: float = 0.0,
    log_eps: float = 0.0,
    eps_grads: bool = False,
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and gradients of the spec's objective, computed in `dtype` (float64 unless measuring float32 drift).

    `relu_zero` is the ReLU's derivative at an exact 0 (0, torch's; 1 for code that writes a >= 0).
    `log_eps` > 0: the cross-entropy's logs taken of p + log_eps, a guard against log(0) that textbooks write
    (log(y + 1e-7), Deep Learning from Scratch); the gradients stay the exact loss's unless `eps_grads` (autograd
    through the guarded log).
    If `kappa` is a dict it receives each quantity's condition number of its final summation,
    kappa = max(sum of |terms|) / max|result| (>= 1): how much cancellation magnifies rounding errors.
    """
    W1, b1, W2, b2 = (np.asarray(p[k], dtype=dtype) for k in NAMES)
    x = np.asarray(x, dtype=dtype)
    n = x.shape[0]
    a1 = x @ W1.T + b1
    h = _act(spec.hidden, a1)
    z = h @ W2.T + b2
    if spec.loss == "cross_entropy":
        labels = np.asarray(t, dtype=np.int64)
        zs = z - z.max(axis=1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(n), labels].sum() / n
        lse = np.log(np.exp(zs).sum(axis=1)) + z.max(axis=1)
        loss_mag = (np.abs(lse) + np.abs(z[np.arange(n), labels])).sum() / n
        dz = np.exp(logp)
        onehot = np.zeros_like(dz)
        onehot[np.arange(n), labels] = 1.0
        dz_mag = (dz + onehot) / n  # softmax - onehot cancels: its rounding is relative to p + onehot, not |dz|
        dz = (dz - onehot) / n
        if log_eps:
            py = np.exp(logp[np.arange(n), labels])
            loss = -np.log(py + log_eps).sum() / n
            if eps_grads:  # d(-log(p_y + eps))/dz = p_y / (p_y + eps) * (softmax - onehot)
                dz = dz * (py / (py + log_eps))[:, None]
    elif spec.loss == "bce":  # binary cross-entropy of sigmoid outputs, the mean over the N x C outputs
        tt = np.asarray(t, dtype=dtype)
        # -(t log y + (1 - t) log(1 - y)) = softplus(z) - t z = max(z, 0) + log1p(exp(-|z|)) - t z: exact where
        # y = sigmoid(z) rounds to 0 or 1 (the logit-800 data)
        terms = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - tt * z
        loss = terms.sum() / tt.size
        loss_mag = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) + np.abs(tt * z)).sum() / tt.size
        y = expit(z)  # scipy's sigmoid: exact in both tails, without exp's overflow warning at z = -800
        dz_mag = (y + np.abs(tt)) / tt.size  # y - t cancels: its rounding is relative to y + t
        dz = (y - tt) / tt.size
        if log_eps:
            loss = -(tt * np.log(y + log_eps) + (1 - tt) * np.log(1 - y + log_eps)).sum() / tt.size
            if eps_grads:
                dz = y * (1 - y) * ((1 - tt) / (1 - y + log_eps) - tt / (y + log_eps)) / tt.size
    else:
        y = _act(spec.output, z)
        r = y - np.asarray(t, dtype=dtype)
        scale = {"sse": 2.0, "half_sse": 1.0, "mse": 2.0 / r.size}.get(spec.loss)
        if scale is None:
            raise ValueError(f"oracle: unknown loss {spec.loss!r}")
        loss, dy = (r**2).sum() * scale / 2, scale * r
        dact_out = _dact(spec.output, z, y)
        dz = dy * dact_out
        # y - t cancels: its rounding is relative to |y| + |t| (and y carries the forward chain's error)
        dz_mag = scale * (np.abs(y) + np.abs(np.asarray(t, dtype=dtype))) * np.abs(dact_out)
        # rounding of r = y - t is u(|y| + |t|); to first order the loss moves by its share sum |r| (|y| + |t|)
        shares = np.abs(r) * (np.abs(y) + np.abs(np.asarray(t, dtype=dtype)))
        loss_mag = shares.sum() * (loss / max((r**2).sum(), 1e-300))
    dact_h = _dact(spec.hidden, a1, h, relu_zero)
    da1 = (dz @ W2) * dact_h
    grads = {"W1": da1.T @ x, "b1": da1.sum(axis=0), "W2": dz.T @ h, "b2": dz.sum(axis=0)}
    # the magnitudes every rounding error is relative to: |terms| of each sum, starting from dz's pre-cancellation
    # magnitude (a gradient that is itself a cancellation, e.g. one sample predicted almost exactly, is only
    # known to that absolute accuracy)
    da1_mag = (dz_mag @ np.abs(W2)) * np.abs(dact_h)
    mags = {
        "W1": da1_mag.T @ np.abs(x),
        "b1": da1_mag.sum(axis=0),
        "W2": dz_mag.T @ np.abs(h),
        "b2": dz_mag.sum(axis=0),
    }
    if spec.l2:
        penalty = spec.l2 * ((W1**2).sum() + (W2**2).sum())
        loss_mag = loss_mag + penalty
        for k, W in (("W1", W1), ("W2", W2)):
            mags[k] = mags[k] + 2.0 * spec.l2 * np.abs(W)
        loss = loss + penalty
        grads["W1"] = grads["W1"] + 2.0 * spec.l2 * W1
        grads["W2"] = grads["W2"] + 2.0 * spec.l2 * W2
    if kappa is not None:
        kappa["loss"] = max(1.0, float(loss_mag) / abs(float(loss))) if loss else 1.0
        # softmax = exp(z - lse) (a sigmoid: 1 / (1 + exp(-z))): the argument carries an absolute rounding error
        # of ~u max|z|, which exp turns into a relative error of max|z| ulps (800 in the large-logits data): folded
        # into kappa as the factor (1 + max|z| / k), k = D + H + C + N + 8 the chain length of the tolerance
        # (compare.tolerance)
        k_chain = x.shape[1] + W1.shape[0] + W2.shape[0] + n + 8
        softmax = 1.0 + float(np.abs(z).max()) / k_chain if spec.loss in ("cross_entropy", "bce") else 1.0
        for k in NAMES:
            top = float(np.abs(grads[k]).max())
            kappa[k] = softmax * (max(1.0, float(mags[k].max()) / top) if top else 1.0)
    return float(loss), grads


def loss_only(p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray, spec) -> float:
    """The objective alone, for finite differences."""
    return loss_and_grads(p, x, t, spec)[0]


def sgd_trajectory(
    p: dict[str, np.ndarray],
    batches: list[tuple[np.ndarray, np.ndarray]],
    spec,
    lr: float,
    momentum: float,
    dtype: type = np.float64,
    **convention: float,
) -> tuple[list[float], dict[str, np.ndarray]]:
    """Losses of one SGD-with-momentum step (Rumelhart eq. 9) per (x, t) batch, in order, and the final parameters
    (`convention`: loss_and_grads' relu_zero, log_eps, eps_grads)."""
    p = {k: np.array(v, dtype=dtype) for k, v in p.items()}
    v = {k: np.zeros_like(p[k]) for k in NAMES}
    losses = []
    for x, t in batches:
        loss, g = loss_and_grads(p, x, t, spec, dtype=dtype, **convention)
        losses.append(loss)
        for k in NAMES:
            v[k] = (momentum * v[k] - lr * g[k]).astype(dtype)
            p[k] = p[k] + v[k]
    return losses, p


def finite_difference_grads(
    p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray, spec, h: float = 1e-6
) -> dict[str, np.ndarray]:
    """Central differences (E(w+h) - E(w-h)) / 2h for every parameter entry (error O(h^2) + O(eps/h))."""
    out = {}
    for k in NAMES:
        g = np.zeros_like(p[k], dtype=np.float64)
        for idx in np.ndindex(p[k].shape):
            q = {kk: np.array(vv, dtype=np.float64) for kk, vv in p.items()}
            q[k][idx] += h
            up = loss_only(q, x, t, spec)
            q[k][idx] -= 2 * h
            g[idx] = (up - loss_only(q, x, t, spec)) / (2 * h)
        out[k] = g
    return out


def per_sample_grads(
    p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray, spec, kappa: dict | None = None
) -> dict[str, np.ndarray]:
    """Per-sample gradients (N, *shape) of each sample's share of the data loss (means over the batch divide by
    N, as in the batch loss; no L2 term), by the same formulas on one sample at a time. If `kappa` is a dict it
    receives, per quantity, the largest condition number over the samples."""
    from dataclasses import replace

    n = x.shape[0]
    one = replace(spec, l2=0.0)
    share = 1.0 if spec.loss in ("sse", "half_sse") else 1.0 / n  # a mean over 1 sample, as a share of N
    out = {k: np.zeros((n, *np.shape(p[k]))) for k in NAMES}
    worst = dict.fromkeys(NAMES, 1.0)
    for i in range(n):
        k_i: dict = {}
        _, g = loss_and_grads(p, x[i : i + 1], t[i : i + 1], one, kappa=k_i)
        for k in NAMES:
            out[k][i] = g[k] * share
            worst[k] = max(worst[k], k_i[k])
    if kappa is not None:
        kappa.update(worst)
    return out
