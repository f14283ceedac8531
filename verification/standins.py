"""What stands in for a course helper module that cannot be imported here, when the checked code calls it: the few
functions the course's own helper defines and its students' backprop uses (verification.sources binds these where
an import fails; every other name of such a module raises if the checked code uses it).

Each entry is the course's definition, written out: deeplearning.ai's planar_utils.sigmoid and dnn_utils'
activations (which return (A, cache)), the `future` package's Python 2 names (cs231n's `from past.builtins import
xrange`), nnfs's init() (which only seeds NumPy and sets float32 defaults for the book's plots), and the four
functions EPFL's practical 3 has its students write (sigma = tanh, dsigma, loss = sum (v - t)^2, dloss), which some
import from their copy of the course's prologue module.
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
}
