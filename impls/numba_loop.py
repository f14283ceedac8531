"""The per-sample loop compiled to machine code with numba (@njit): what a compiled loop costs next to BLAS.

The `loop` implementation is slow because every scalar operation goes through the Python interpreter and a torch
dispatch, not because it is a loop. Here the whole step -- per-sample forward, backward into the gradient
accumulators, the L2 term and the momentum update -- is one @njit function over one flat parameter vector, so a
step is one call into machine code. The spec's sizes, activations and loss are compiled in as constants, so numba
compiles once per (spec, dtype) on the first call (0.5-2.5 s); benchmarks report that first call apart, like
torch.compile's. The returned loss and gradients are buffers the next step overwrites (as numpy_flat's): copy
them to keep them.

The loops run over contiguous rows (W1[j, :] . x[n, :]) so LLVM vectorises the inner products; nothing is
allocated per step (the hidden/output scratch vectors live in the object). For wide nets this is a naive
triple loop against a tuned BLAS kernel: far behind on epfl and mnist-60000, by design of the lesson.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from numba import njit
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, Implementation, SameInputs
from impls.spec import ACTIVATION_CODE, PARAM_NAMES, NetSpec, check_inputs

# reassoc lets LLVM vectorise the inner-product reductions (any summation order obeys the same Higham bound);
# contract allows FMA (one rounding fewer). No nnan/ninf: the large-logits data needs exact inf handling.
FASTMATH = {"reassoc", "contract"}


@njit(inline="always", fastmath=FASTMATH)
def _act(code: int, a: float, one: float) -> float:  # pragma: no cover - compiled
    if code == 1:  # 1/(1+exp(-a)) needs no branch: exp overflows to inf for a << 0 and 1/inf = 0 exactly
        return one / (one + math.exp(-a))
    if code == 2:
        return math.tanh(a)
    if code == 3:
        return a if (a > 0 or a != a) else 0.0  # relu(-inf) = 0, relu(nan) = nan, as torch
    return a


@njit(inline="always", fastmath=FASTMATH)
def _dact(code: int, a: float, y: float, one: float) -> float:  # pragma: no cover - compiled
    if code == 1:
        return y * (one - y)
    if code == 2:
        return one - y * y
    if code == 3:
        return 1.0 if a > 0 else 0.0  # relu'(0) = 0, torch's convention
    return 1.0


@functools.lru_cache(maxsize=64)
def kernel(spec: NetSpec) -> Callable[..., float]:
    """The step for one spec as an @njit function. The sizes, activations and loss are closure constants, which
    numba compiles in as literals: the short loops of a tiny net unroll and the untaken branches vanish
    (rumelhart's kernel measured 5.7 us with them as run-time arguments, 3.2 us as constants). Costs one
    compilation per (spec, dtype), ~0.5-2.5 s, on the first call."""
    D, H, C, l2 = spec.D, spec.H, spec.C, spec.l2
    hidden, output, labels = ACTIVATION_CODE[spec.hidden], ACTIVATION_CODE[spec.output], spec.loss_fn.labels
    binary = spec.loss_fn.kind == "binary"
    numerator, over_n = spec.loss_fn.scale_parts(C)  # scale = numerator / n when over_n (impls.spec.LOSS_TABLE)
    oW1, ob1, oW2, ob2 = 0, H * D, H * D + H, H * D + H + C * H  # offsets in the flat parameter vector

    @njit(cache=False, fastmath=FASTMATH, boundscheck=False)
    def step(
        p: np.ndarray,  # (P,) flat parameters [W1 (H*D) | b1 (H) | W2 (C*H) | b2 (C)], updated in place
        g: np.ndarray,  # (P,) gradients at the old p, same layout (overwritten)
        v: np.ndarray,  # (P,) momentum buffer
        x: np.ndarray,  # (N, D)
        targets: np.ndarray,  # (N, C) float targets, or (N,) int64 class labels for cross-entropy
        a1: np.ndarray,  # (N, H) scratch: hidden pre-activations
        h: np.ndarray,  # (N, H) scratch: hidden activations
        dz: np.ndarray,  # (N, C) scratch: dLoss/dz
        lr: float,
        momentum: float,
    ) -> float:  # pragma: no cover - compiled
        n_total = x.shape[0]
        # constants and hyper-parameters in the data's dtype: a float literal (1.0) is float64 to numba and would
        # promote float32 arithmetic to float64 and back on every activation (measured: 2.43 -> 2.23 us per step)
        one, lr, momentum = p.dtype.type(1.0), p.dtype.type(lr), p.dtype.type(momentum)
        scale = numerator / n_total if over_n else numerator
        loss = 0.0
        # Forward and dLoss/dz one sample at a time. A separate pass from the backward one: its iterations do
        # not depend on each other, so the CPU overlaps one sample's exp latency with the next (4.4 -> 3.2 us).
        for n in range(n_total):
            for j in range(H):  # a1 = W1 x + b1 (H,), h = act(a1) (H,)
                s = p[ob1 + j]
                for d in range(D):
                    s += p[oW1 + j * D + d] * x[n, d]
                a1[n, j] = s
                h[n, j] = _act(hidden, s, one)
            if labels:  # softmax cross-entropy on the logits z (C,), shifted by their max
                zmax = -np.inf
                for c in range(C):
                    s = p[ob2 + c]
                    for j in range(H):
                        s += p[oW2 + c * H + j] * h[n, j]
                    dz[n, c] = s
                    zmax = max(zmax, s)
                total = 0.0
                for c in range(C):
                    dz[n, c] = math.exp(dz[n, c] - zmax)
                    total += dz[n, c]
                label = targets[n]
                # -log softmax[label] = log sum exp(z - zmax) - (z[label] - zmax): finite where softmax underflows
                picked = p[ob2 + label]
                for j in range(H):
                    picked += p[oW2 + label * H + j] * h[n, j]
                loss += (math.log(total) - (picked - zmax)) * scale
                for c in range(C):
                    dz[n, c] = dz[n, c] / total * scale
                dz[n, label] -= scale
            else:
                for c in range(C):
                    s = p[ob2 + c]
                    for j in range(H):
                        s += p[oW2 + c * H + j] * h[n, j]
                    y = _act(output, s, one)
                    diff = y - targets[n, c]
                    if binary:  # softplus(z) - t z = max(z, 0) + log1p(exp(-|z|)) - t z; dLoss/dz = scale (y - t)
                        loss += (max(s, 0.0) + math.log1p(math.exp(-abs(s))) - targets[n, c] * s) * scale
                        dz[n, c] = diff * scale
                    else:
                        loss += diff * diff * (scale / 2)
                        dz[n, c] = diff * scale * _dact(output, s, y, one)
        for i in range(g.shape[0]):
            g[i] = 0.0
        for n in range(n_total):  # backward, one sample at a time, accumulating into g
            for c in range(C):  # dW2 += dz h^T (C, H), db2 += dz (C,)
                for j in range(H):
                    g[oW2 + c * H + j] += dz[n, c] * h[n, j]
                g[ob2 + c] += dz[n, c]
            for j in range(H):  # da1 = (W2^T dz) * act'(a1) (H,); dW1 += da1 x^T (H, D), db1 += da1 (H,)
                s = one - one
                for c in range(C):
                    s += p[oW2 + c * H + j] * dz[n, c]
                da = s * _dact(hidden, a1[n, j], h[n, j], one)
                for d in range(D):
                    g[oW1 + j * D + d] += da * x[n, d]
                g[ob1 + j] += da
        if l2:
            for i in range(oW1, ob1):
                loss += l2 * p[i] * p[i]
                g[i] += 2.0 * l2 * p[i]
            for i in range(oW2, ob2):
                loss += l2 * p[i] * p[i]
                g[i] += 2.0 * l2 * p[i]
        for i in range(p.shape[0]):  # Rumelhart eq. 9
            if momentum:
                v[i] = momentum * v[i] - lr * g[i]
                p[i] += v[i]
            else:
                p[i] -= lr * g[i]
        return loss

    @njit(cache=False, fastmath=FASTMATH, boundscheck=False)
    def train(
        p: np.ndarray,
        g: np.ndarray,
        v: np.ndarray,
        x: np.ndarray,
        targets: np.ndarray,
        a1: np.ndarray,
        h: np.ndarray,
        dz: np.ndarray,
        lr: float,
        momentum: float,
        losses: np.ndarray,  # (K,) the loss before each of the K steps (written)
    ) -> None:  # pragma: no cover - compiled
        for s in range(losses.shape[0]):  # K steps in one call: Python's entry cost (~0.85 us) paid once
            losses[s] = step(p, g, v, x, targets, a1, h, dz, lr, momentum)

    return step, train


@register("numba")
class Numba(Implementation):
    """The per-sample loop and the whole step in one numba-compiled function (CPU, float32/float64)."""

    summary = "per-sample loop and update compiled by numba @njit (CPU)"
    allocates = "numpy"  # NumPy arrays (numba's @njit allocates none: every buffer is passed in)
    rank = 70
    devices = ("cpu",)
    compiles = True

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        dtype = params["W1"].detach().numpy().dtype
        self._p = np.concatenate([params[k].detach().numpy().ravel() for k in PARAM_NAMES]).astype(dtype)
        self._g, self._v = np.zeros_like(self._p), np.zeros_like(self._p)
        shapes, self._tp, self._tg, start = spec.param_shapes(), {}, {}, 0
        for k in PARAM_NAMES:  # torch aliases of the flat vectors' slices, made once
            size = math.prod(shapes[k])
            self._tp[k] = torch.from_numpy(self._p[start : start + size].reshape(shapes[k]))
            self._tg[k] = torch.from_numpy(self._g[start : start + size].reshape(shapes[k]))
            start += size
        self._kernel, self._train_kernel = kernel(spec)
        self._scratch_n = -1
        self._loss = np.zeros((), dtype)
        self._tloss = torch.from_numpy(self._loss)  # alias: the step writes the loss without a torch call
        self._seen = SameInputs()  # the last x, t, unmodified: self._xn, self._tn are their NumPy views
        self._xn = self._tn = None
        self.compilations = 0  # numba compilations this object's calls triggered (benchmarks assert none in timing)

    def _arrays(self, x: Tensor, t: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """NumPy views of x and t, checked by impls.spec.check_inputs and remembered while the same
        contiguous tensors come back unmodified (tensor._version counts in-place changes; a view shares their
        memory, so even a change that bypasses the counter is seen): Tensor.numpy() costs ~1 us, a third of the
        tiny step. A non-contiguous input is copied, so it is converted again at every step."""
        if self._seen.unchanged(x, t):
            return self._xn, self._tn
        check_inputs(self.spec, self._tp, x, t, finite=False)  # the kernel indexes without bounds checks
        xn, tn = np.ascontiguousarray(x.numpy()), np.ascontiguousarray(t.numpy())
        if x.is_contiguous() and t.is_contiguous():
            self._seen.remember(x, t)
            self._xn, self._tn = xn, tn
        else:
            self._seen.forget()
        return xn, tn

    def _scratch(self, n: int) -> None:
        """Per-sample scratch for a batch of n (reallocated only when n changes)."""
        if n != self._scratch_n:
            dt, H, C = self._p.dtype, self.spec.H, self.spec.C
            self._a1, self._h, self._dz = np.empty((n, H), dt), np.empty((n, H), dt), np.empty((n, C), dt)
            self._scratch_n = n

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        xn, tn = self._arrays(x, t)
        self._scratch(xn.shape[0])
        before = len(self._kernel.overloads)
        self._loss[()] = self._kernel(
            self._p, self._g, self._v, xn, tn, self._a1, self._h, self._dz, self.sgd.lr, self.sgd.momentum
        )
        self.compilations += len(self._kernel.overloads) - before
        return self._tloss, self._tg

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """K steps in one compiled call (the losses before each step): no per-step entry from Python."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        xn, tn = self._arrays(x, t)
        self._scratch(xn.shape[0])
        losses = np.empty(steps, self._p.dtype)
        before = len(self._train_kernel.overloads)
        self._train_kernel(
            self._p, self._g, self._v, xn, tn, self._a1, self._h, self._dz, self.sgd.lr, self.sgd.momentum, losses
        )
        self.compilations += len(self._train_kernel.overloads) - before
        return torch.from_numpy(losses)

    def params(self) -> dict[str, Tensor]:
        return self._tp
