"""What stands in for a course helper module that cannot be imported here, when the checked code calls it: the few
functions the course's own helper defines and its students' backprop uses (verification.sources binds these where
an import fails; every other name of such a module raises if the checked code uses it).

Each entry is the course's definition, written out: deeplearning.ai's planar_utils.sigmoid and dnn_utils'
activations (which return (A, cache)), the `future` package's Python 2 names (cs231n's `from past.builtins import
xrange`), nnfs's init() (which only seeds NumPy and sets float32 defaults for the book's plots), and the four
functions EPFL's practical 3 has its students write (sigma = tanh, dsigma, loss = sum (v - t)^2, dloss), which some
import from their copy of the course's prologue module, and Deep Learning from Scratch's common.functions and
common.layers (its students' TwoLayerNet star-imports them; chapter 5's net is assembled from those layers).
"""

from __future__ import annotations

import functools

import numpy as np


def _sigmoid(z: object) -> object:
    """planar_utils.sigmoid: 1 / (1 + exp(-z)), as the course writes it."""
    return 1 / (1 + np.exp(-z))


def _dnn_sigmoid(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dnn_utils.sigmoid: (A, cache) with cache = Z."""
    return 1 / (1 + np.exp(-Z)), Z


def _dnn_relu(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dnn_utils.relu: (A, cache) with cache = Z."""
    return np.maximum(0, Z), Z


def _dnn_sigmoid_backward(dA: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dnn_utils.sigmoid_backward: dA * s (1 - s), s = sigmoid(cache)."""
    s = 1 / (1 + np.exp(-cache))
    return dA * s * (1 - s)


def _dnn_relu_backward(dA: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dnn_utils.relu_backward: dA where cache > 0, else 0."""
    dZ = np.array(dA, copy=True)
    dZ[cache <= 0] = 0
    return dZ


_DNN = {
    "sigmoid": _dnn_sigmoid,
    "relu": _dnn_relu,
    "sigmoid_backward": _dnn_sigmoid_backward,
    "relu_backward": _dnn_relu_backward,
}
_PAST = {
    "xrange": range,
    "basestring": str,
    "unicode": str,
    "long": int,
    "unichr": chr,
    "raw_input": input,
    "reduce": functools.reduce,
}


def _epfl_sigma(x: object) -> object:
    """EPFL practical 3's sigma: tanh."""
    return x.tanh()  # type: ignore[attr-defined]


def _epfl_dsigma(x: object) -> object:
    """EPFL practical 3's dsigma: 1 - tanh(x)^2 (the correction's 4 / (e^x + e^-x)^2)."""
    return 1 - x.tanh().pow(2)  # type: ignore[attr-defined]


def _epfl_loss(v: object, t: object) -> object:
    """EPFL practical 3's loss: sum (v - t)^2."""
    return (v - t).pow(2).sum()  # type: ignore[operator]


def _epfl_dloss(v: object, t: object) -> object:
    """EPFL practical 3's dloss: 2 (v - t)."""
    return 2 * (v - t)  # type: ignore[operator]


def _dlfs_softmax(x: np.ndarray) -> np.ndarray:
    """Deep Learning from Scratch's common.functions.softmax: max-shifted, over the last axis."""
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def _dlfs_cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """common.functions.cross_entropy_error: labels or one-hot, the mean of -log(y[t] + 1e-7) over the batch."""
    if y.ndim == 1:
        t, y = t.reshape(1, t.size), y.reshape(1, y.size)
    if t.size == y.size:
        t = t.argmax(axis=1)
    return -np.sum(np.log(y[np.arange(y.shape[0]), t] + 1e-7)) / y.shape[0]


class _DlfsRelu:
    """common.layers.Relu: the mask x <= 0 kept for backward."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout[self.mask] = 0
        return dout


class _DlfsSigmoid:
    """common.layers.Sigmoid: out kept for backward."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1.0 - self.out) * self.out


class _DlfsAffine:
    """common.layers.Affine(W, b): x @ W + b, dW and db set by backward (W and b held by reference)."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.W, self.b, self.dW, self.db = W, b, None, None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.dot(dout, self.W.T)
        self.dW, self.db = np.dot(self.x.T, dout), np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class _DlfsSoftmaxWithLoss:
    """common.layers.SoftmaxWithLoss: the softmax and cross_entropy_error; backward (y - t) / N (one-hot or labels)."""

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        self.t, self.y = t, _dlfs_softmax(x)
        self.loss = _dlfs_cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout: float = 1) -> np.ndarray:
        n = self.t.shape[0]
        if self.t.size == self.y.size:
            return (self.y - self.t) / n
        dx = self.y.copy()
        dx[np.arange(n), self.t] -= 1
        return dx / n


_DLFS_FUNCTIONS = {
    "identity_function": lambda x: x,
    "sigmoid": _sigmoid,
    "sigmoid_grad": lambda x: (1.0 - _sigmoid(x)) * _sigmoid(x),
    "relu": lambda x: np.maximum(0, x),
    "softmax": _dlfs_softmax,
    "cross_entropy_error": _dlfs_cross_entropy_error,
    "sum_squared_error": lambda y, t: 0.5 * np.sum((y - t) ** 2),
}
_DLFS_LAYERS = {
    **_DLFS_FUNCTIONS,
    "Relu": _DlfsRelu,
    "Sigmoid": _DlfsSigmoid,
    "Affine": _DlfsAffine,
    "SoftmaxWithLoss": _DlfsSoftmaxWithLoss,
}

#: module -> {name: the course's definition}
KNOWN: dict[str, dict[str, object]] = {
    "planar_utils": {"sigmoid": _sigmoid},
    "dnn_utils": _DNN,
    "dnn_utils_v2": _DNN,
    "past.builtins": _PAST,
    "past": {"builtins": type("builtins", (), _PAST)},
    "nnfs": {"init": lambda *args, **kwargs: None},
    # the practical asks students to write these; some keep them in their copy of the prologue module
    "dlc_practical_prologue": {"sigma": _epfl_sigma, "dsigma": _epfl_dsigma, "loss": _epfl_loss, "dloss": _epfl_dloss},
    # Deep Learning from Scratch's common/ package (the book's repository ships it beside each chapter's folder)
    "common.functions": _DLFS_FUNCTIONS,
    "common.layers": _DLFS_LAYERS,  # the book's layers.py star-imports functions.py
    # the same files copied flat beside a reader's two_layer_net.py (`from layers import *`), when they are not there
    "functions": _DLFS_FUNCTIONS,
    "layers": _DLFS_LAYERS,
}
