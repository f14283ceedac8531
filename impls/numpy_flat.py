"""NumPy on the CPU with every buffer preallocated and the parameters in one flat array: the overhead-bound floor.

For a tiny net (6-2-1, 64 samples) a step is ~30 array operations of a few hundred flops each, so its time is
the per-call dispatch cost, not arithmetic: about 0.5-1 us per NumPy ufunc call versus 2-4 us per eager torch
op. Parameters, gradients and momentum live in single flat arrays so the update is three ufunc calls, and every
view (W1.T, the gradient slices, their torch aliases) is made once, not per step.

For wide nets the time is the two skinny GEMMs (N x D by D x H, and H x N by N x D). BLAS kernels work in SIMD
widths, so H is padded with zero hidden units up to a multiple of 16 when that adds at most 1/8 more units:
measured on a 2-core AVX-512 EPYC, OpenBLAS, N=60000, D=784, the forward GEMM ran at 92 GFLOP/s for H=30 and
113 for H=32, dW1 at 101 and 121, and the whole 784-30-10 step went from 74 to 64 ms. The padding is exact:
padded rows of W1 and b1 stay zero (their gradients are zero), padded columns of W2 stay zero (their gradient
is zeroed), so padded units never reach the output.

Large batches are processed in chunks of CHUNK rows, forward and backward together, accumulating the
gradients: X is read from memory once per step (dW1 finds the chunk still in cache) and the activations stay
cache-sized. Per-sample losses make this exact; means divide by the whole batch size.
Measured (same machine, 784-30-10):
N=60000 74 ms unchunked -> 58 ms with 1024-row chunks (512: 60 ms, 2048: 68 ms); N=4096 4.9 -> 4.0 ms.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.special import expit
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, Implementation
from impls.spec import PARAM_NAMES, NetSpec

PAD_TO = 16
CHUNK = 1024  # rows per forward+backward pass: the chunk of X is still in cache when dW1 reads it again
MAX_PAD_FRACTION = 0.125


def padded_hidden(H: int) -> int:
    """H rounded up to a multiple of PAD_TO when that adds at most MAX_PAD_FRACTION * H units, else H."""
    Hp = -(-H // PAD_TO) * PAD_TO
    return Hp if Hp - H <= MAX_PAD_FRACTION * H else H


def _views(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """W1, b1, W2, b2 as views into one flat buffer."""
    out, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = flat[start : start + size].reshape(shape)
        start += size
    return out


EXPIT_MAX_SIZE = 512


def _sigmoid(a: np.ndarray, out: np.ndarray) -> None:
    """Overflow-free sigmoid, by size: scipy's expit is one call but a scalar loop; (1 + tanh(a/2)) / 2 is four
    SIMD calls. Measured (float32): 64x2 expit 1.2 us vs 3.3 us; 64x30 7.2 vs 3.3; 1024x32 123 vs 20 us."""
    if a.size <= EXPIT_MAX_SIZE:
        expit(a, out=out)
        return
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5


def _tanh(a: np.ndarray, out: np.ndarray) -> None:
    np.tanh(a, out=out)


def _relu(a: np.ndarray, out: np.ndarray) -> None:
    np.maximum(a, 0, out=out)


def _identity(a: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, a)


def _dsigmoid(a: np.ndarray, y: np.ndarray, d: np.ndarray, tmp: np.ndarray) -> None:
    np.subtract(1, y, out=tmp)
    tmp *= y
    d *= tmp


def _dtanh(a: np.ndarray, y: np.ndarray, d: np.ndarray, tmp: np.ndarray) -> None:
    np.multiply(y, y, out=tmp)
    np.subtract(1, tmp, out=tmp)
    d *= tmp


def _drelu(a: np.ndarray, y: np.ndarray, d: np.ndarray, tmp: np.ndarray) -> None:
    np.greater(a, 0, out=tmp)  # relu'(0) = 0
    d *= tmp


def _didentity(a: np.ndarray, y: np.ndarray, d: np.ndarray, tmp: np.ndarray) -> None:
    return None


ACT: dict[str, Callable[[np.ndarray, np.ndarray], None]] = {
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "relu": _relu,
    "identity": _identity,
}
DACT: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]] = {
    "sigmoid": _dsigmoid,
    "tanh": _dtanh,
    "relu": _drelu,
    "identity": _didentity,
}


def _weight_and_bias_grads(
    delta: np.ndarray, inputs: np.ndarray, gW: np.ndarray, gb: np.ndarray, scratch: np.ndarray, first: bool
) -> None:
    """gW = delta^T inputs and gb = sum of delta over rows: written by the first chunk, added by later ones."""
    if first:
        np.matmul(delta.T, inputs, out=gW)
        delta.sum(axis=0, out=gb)
    else:
        gW += np.matmul(delta.T, inputs, out=scratch)
        gb += delta.sum(axis=0)


@register("numpy_flat")
class NumpyFlat(Implementation):
    """Hand-written batched backprop in NumPy with out= buffers; CPU only, float32/float64."""

    summary = "NumPy, preallocated out= buffers, flat parameter vector (CPU)"
    allocates = "numpy"  # NumPy arrays: tracemalloc sees them
    rank = 80
    devices = ("cpu",)

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        dtype = params["W1"].detach().numpy().dtype
        H, C, D = spec.H, spec.C, spec.D
        self._Hp = Hp = padded_hidden(H)
        shapes = {"W1": (Hp, D), "b1": (Hp,), "W2": (C, Hp), "b2": (C,)}
        self._flat_p = np.zeros(sum(int(np.prod(s)) for s in shapes.values()), dtype)
        self._flat_g = np.zeros_like(self._flat_p)
        self._flat_v = np.zeros_like(self._flat_p)
        self._tmp = np.zeros_like(self._flat_p)
        p, g = _views(self._flat_p, shapes), _views(self._flat_g, shapes)
        real = {"W1": np.s_[:H], "b1": np.s_[:H], "W2": np.s_[:, :H], "b2": np.s_[:]}
        self._real_p = {k: p[k][real[k]] for k in PARAM_NAMES}  # views of the real (unpadded) units
        self._real_g = {k: g[k][real[k]] for k in PARAM_NAMES}
        for k in PARAM_NAMES:
            self._real_p[k][...] = params[k].detach().numpy()
        self._W1, self._b1, self._W2, self._b2 = p["W1"], p["b1"], p["W2"], p["b2"]
        self._gW1, self._gb1, self._gW2, self._gb2 = g["W1"], g["b1"], g["W2"], g["b2"]
        self._W1T, self._W2T = self._W1.T, self._W2.T
        self._act_h, self._dact_h = ACT[spec.hidden], DACT[spec.hidden]
        self._act_y, self._dact_y = ACT[spec.output], DACT[spec.output]
        self._loss = np.zeros((), dtype)
        # torch aliases of the real (unpadded) parts, returned every step without new allocations
        self._tp = {k: torch.from_numpy(v) for k, v in self._real_p.items()}
        self._tg = {k: torch.from_numpy(v) for k, v in self._real_g.items()}
        self._tloss = torch.from_numpy(self._loss)
        self._buf_n = -1

    def _buffers(self, n: int) -> None:
        """(Re)allocate the per-chunk activations and scale when the batch size changes."""
        m, H, C, dt = min(n, CHUNK), self._Hp, self.spec.C, self._flat_p.dtype
        self._a1, self._h, self._da1, self._scratch_h = (np.empty((m, H), dt) for _ in range(4))
        self._z, self._y, self._dz, self._scratch_c = (np.empty((m, C), dt) for _ in range(4))
        self._accW1, self._accW2 = np.empty_like(self._gW1), np.empty_like(self._gW2)
        self._rows = np.arange(m)
        self._scale = self.spec.loss_fn.scale(n, C)
        self._buf_n = n

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        xn, tn = x.numpy(), t.numpy()
        n = xn.shape[0]
        if n != self._buf_n:
            self._buffers(n)
        if n <= CHUNK:  # one chunk: no slicing (a tiny net's step is ~25 calls; each view costs ~0.3 us)
            loss = self._chunk(xn, tn, n, True)
        else:
            loss = sum(self._chunk(xn[i : i + CHUNK], tn[i : i + CHUNK], n, i == 0) for i in range(0, n, CHUNK))
        if self._Hp != self.spec.H:
            self._gW2[:, self.spec.H :] = 0  # padded units (h = act(0)) must not grow weights
        l2 = self.spec.l2
        if l2:
            loss += l2 * (np.vdot(self._W1, self._W1) + np.vdot(self._W2, self._W2))
            self._gW1 += (2 * l2) * self._W1
            self._gW2 += (2 * l2) * self._W2
        self._loss[()] = loss
        self._update()
        return self._tloss, self._tg

    def _chunk(self, xn: np.ndarray, tn: np.ndarray, n: int, first: bool) -> float:
        """Forward and backward of up to CHUNK rows; gradients are written (first chunk) or accumulated."""
        a1, h, z, dz, da1 = self._a1, self._h, self._z, self._dz, self._da1
        sh, sc, rows = self._scratch_h, self._scratch_c, self._rows
        m = xn.shape[0]
        if m != a1.shape[0]:  # the last, shorter chunk
            a1, h, z, dz, da1, sh, sc, rows = a1[:m], h[:m], z[:m], dz[:m], da1[:m], sh[:m], sc[:m], rows[:m]
        np.matmul(xn, self._W1T, out=a1)  # (m, D) @ (D, Hp) -> (m, Hp)
        a1 += self._b1
        self._act_h(a1, h)  # (m, Hp)
        np.matmul(h, self._W2T, out=z)  # (m, Hp) @ (Hp, C) -> (m, C)
        z += self._b2
        kind = self.spec.loss_fn.kind
        if kind == "softmax":
            np.subtract(z, z.max(axis=1, keepdims=True), out=dz)  # (m, C) shifted logits zs
            picked = dz[rows, tn].sum()  # sum of zs at the labels
            np.exp(dz, out=dz)
            total = dz.sum(axis=1, keepdims=True)  # (m, 1)
            dz /= total  # softmax
            # -log softmax = log sum exp(zs) - zs[label]: exact at large logits, where softmax[label] underflows to 0
            loss = (np.log(total).sum() - picked) * self._scale
            dz[rows, tn] -= 1
            dz *= self._scale
        elif kind == "binary":  # softplus(z) - t z, finite where sigmoid(z) saturates; dLoss/dz = scale (y - t)
            y = self._y if m == self._y.shape[0] else self._y[:m]
            self._act_y(z, y)
            loss = (np.logaddexp(0, z).sum() - np.vdot(tn, z)) * self._scale
            np.subtract(y, tn, out=dz)
            dz *= self._scale
        else:
            y = self._y if m == self._y.shape[0] else self._y[:m]
            self._act_y(z, y)
            np.subtract(y, tn, out=dz)
            loss = np.vdot(dz, dz) * (self._scale / 2)
            if self._scale != 1.0:
                dz *= self._scale
            self._dact_y(z, y, dz, sc)
        _weight_and_bias_grads(dz, h, self._gW2, self._gb2, self._accW2, first)  # dW2 (C, Hp) = dz.T @ h
        np.matmul(dz, self._W2, out=da1)  # (m, C) @ (C, Hp) -> (m, Hp)
        self._dact_h(a1, h, da1, sh)  # da1 *= act'(a1)
        _weight_and_bias_grads(da1, xn, self._gW1, self._gb1, self._accW1, first)  # dW1 (Hp, D) = da1.T @ x
        return float(loss)

    def _update(self) -> None:
        """Rumelhart eq. 9 on the flat vectors: v <- momentum v - lr g; p <- p + v."""
        sgd = self.sgd
        np.multiply(self._flat_g, sgd.lr, out=self._tmp)
        if sgd.momentum:
            self._flat_v *= sgd.momentum
            self._flat_v -= self._tmp
            self._flat_p += self._flat_v
        else:
            self._flat_p -= self._tmp

    def padded(self) -> dict[str, np.ndarray]:
        """The parameters as the step computes with them, hidden units padded to a SIMD multiple (read-only views):
        the padded units' weights must stay 0."""
        out = {}
        for k, v in {"W1": self._W1, "b1": self._b1, "W2": self._W2, "b2": self._b2}.items():
            out[k] = v.view()
            out[k].flags.writeable = False
        return out

    def params(self) -> dict[str, Tensor]:
        return self._tp
