"""NumPy on the CPU with every buffer preallocated and the parameters in one flat array: the overhead-bound floor.

For a tiny net (6-2-1, 64 samples) a step is ~40 array operations of a few hundred flops each, so its time is
the per-operation dispatch cost, not arithmetic: about 0.5-1 us per NumPy ufunc call versus 2-4 us per eager
torch op. Parameters, gradients and momentum live in single flat arrays so the update is three ufunc calls.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, Implementation
from impls.spec import PARAM_NAMES, NetSpec


def _views(flat: np.ndarray, spec: NetSpec) -> dict[str, np.ndarray]:
    """W1, b1, W2, b2 as views into one flat buffer."""
    out, start = {}, 0
    for name, shape in spec.param_shapes().items():
        size = int(np.prod(shape))
        out[name] = flat[start : start + size].reshape(shape)
        start += size
    return out


@register("numpy_flat")
class NumpyFlat(Implementation):
    """Hand-written batched backprop in NumPy with out= buffers; CPU only, float32/float64."""

    summary = "NumPy, preallocated out= buffers, flat parameter vector (CPU)"
    devices = ("cpu",)

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        dtype = params["W1"].detach().numpy().dtype
        size = sum(int(np.prod(s)) for s in spec.param_shapes().values())
        self._flat_p = np.concatenate([params[k].detach().numpy().ravel() for k in PARAM_NAMES]).astype(dtype)
        self._flat_g = np.zeros(size, dtype)
        self._flat_v = np.zeros(size, dtype)
        self._tmp = np.zeros(size, dtype)
        self._p, self._g = _views(self._flat_p, spec), _views(self._flat_g, spec)
        self._loss = np.zeros((), dtype)
        # torch views sharing memory with the NumPy buffers: returned every step without new allocations
        self._tp = {k: torch.from_numpy(v) for k, v in self._p.items()}
        self._tg = {k: torch.from_numpy(v) for k, v in self._g.items()}
        self._tloss = torch.from_numpy(self._loss)
        self._buf_n = -1

    def _buffers(self, n: int) -> None:
        """(Re)allocate the per-batch activations when the batch size changes."""
        H, C, dt = self.spec.H, self.spec.C, self._flat_p.dtype
        self._a1, self._h, self._da1, self._dh1 = (np.empty((n, H), dt) for _ in range(4))
        self._z, self._y, self._dz, self._dz2 = (np.empty((n, C), dt) for _ in range(4))
        self._onehot = np.zeros((n, C), dt)
        self._rows = np.arange(n)
        self._buf_n = n

    def _act(self, kind: str, a: np.ndarray, out: np.ndarray) -> None:
        if kind == "sigmoid":
            np.negative(a, out=out)
            np.exp(out, out=out)
            out += 1
            np.reciprocal(out, out=out)
        elif kind == "tanh":
            np.tanh(a, out=out)
        elif kind == "relu":
            np.maximum(a, 0, out=out)
        else:
            out[...] = a

    def _times_dact(self, kind: str, a: np.ndarray, y: np.ndarray, d: np.ndarray, tmp: np.ndarray) -> None:
        """d *= activation'(a), computed from the output y in place (tmp is scratch)."""
        if kind == "sigmoid":
            np.subtract(1, y, out=tmp)
            tmp *= y
            d *= tmp
        elif kind == "tanh":
            np.multiply(y, y, out=tmp)
            np.subtract(1, tmp, out=tmp)
            d *= tmp
        elif kind == "relu":
            d[a <= 0] = 0

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        spec, p, g = self.spec, self._p, self._g
        xn, tn = x.numpy(), t.numpy()
        n = xn.shape[0]
        if n != self._buf_n:
            self._buffers(n)
        np.matmul(xn, p["W1"].T, out=self._a1)
        self._a1 += p["b1"]
        self._act(spec.hidden, self._a1, self._h)
        np.matmul(self._h, p["W2"].T, out=self._z)
        self._z += p["b2"]
        dz = self._dz
        if spec.loss == "cross_entropy":
            z = self._z
            np.subtract(z, z.max(axis=1, keepdims=True), out=dz)
            np.exp(dz, out=dz)
            dz /= dz.sum(axis=1, keepdims=True)  # softmax
            loss = -np.log(dz[self._rows, tn]).sum() / n
            dz[self._rows, tn] -= 1
            dz /= n
        else:
            self._act(spec.output, self._z, self._y)
            np.subtract(self._y, tn, out=dz)
            scale = {"sse": 2.0, "half_sse": 1.0, "mse": 2.0 / (n * spec.C)}[spec.loss]
            loss = np.vdot(dz, dz) * (scale / 2)
            dz *= scale
            self._times_dact(spec.output, self._z, self._y, dz, self._dz2)
        np.matmul(dz.T, self._h, out=g["W2"])
        dz.sum(axis=0, out=g["b2"])
        np.matmul(dz, p["W2"], out=self._da1)
        self._times_dact(spec.hidden, self._a1, self._h, self._da1, self._dh1)
        np.matmul(self._da1.T, xn, out=g["W1"])
        self._da1.sum(axis=0, out=g["b1"])
        if spec.l2:
            loss += spec.l2 * (np.vdot(p["W1"], p["W1"]) + np.vdot(p["W2"], p["W2"]))
            g["W1"] += (2 * spec.l2) * p["W1"]
            g["W2"] += (2 * spec.l2) * p["W2"]
        self._loss[()] = loss
        self._update()
        return self._tloss, self._tg

    def _update(self) -> None:
        """Rumelhart eq. 9 on the flat vectors: v <- momentum v - lr g; p <- p + v."""
        sgd = self.sgd
        if sgd.momentum:
            self._flat_v *= sgd.momentum
            np.multiply(self._flat_g, sgd.lr, out=self._tmp)
            self._flat_v -= self._tmp
            self._flat_p += self._flat_v
        else:
            np.multiply(self._flat_g, sgd.lr, out=self._tmp)
            self._flat_p -= self._tmp

    def params(self) -> dict[str, Tensor]:
        return self._tp
