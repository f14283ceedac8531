"""A two-layer net as the cs231n assignment writes it (NumPy, W1 (D, H), loss(X, y, reg) -> (loss, grads)), and the
same net with the usual slips -- examples for verification's cs231n layout, written for the tests."""

from __future__ import annotations

import numpy as np


class TwoLayerNet:
    """input - fully connected - ReLU - fully connected - softmax; L2 reg * (|W1|^2 + |W2|^2)."""

    bug = ""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4) -> None:
        rng = np.random.default_rng(0)
        self.params = {
            "W1": std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }

    def loss(self, X: np.ndarray, y: np.ndarray | None = None, reg: float = 0.0):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        n = X.shape[0]
        a1 = X @ W1 + b1
        h = np.maximum(a1, 0)
        scores = h @ W2 + b2
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        total = probs.sum(axis=1, keepdims=True)
        probs /= total
        if self.bug == "log_of_softmax":  # the classic: -log(p) is inf where p underflows to 0 (large logits)
            data = -np.log(probs[np.arange(n), y]).sum() / n
        else:  # log-sum-exp: finite at any logit
            data = (np.log(total[:, 0]) - shifted[np.arange(n), y]).sum() / n
        loss = data + reg * ((W1 * W1).sum() + (W2 * W2).sum())
        dscores = probs.copy()
        dscores[np.arange(n), y] -= 1
        dscores /= n
        if self.bug == "sign":
            dscores = -dscores
        grads = {"W2": h.T @ dscores + 2 * reg * W2, "b2": dscores.sum(axis=0)}
        dh = dscores @ W2.T
        da1 = dh if self.bug == "no_relu_mask" else dh * (a1 > 0)
        grads["W1"] = X.T @ da1 + (reg if self.bug == "half_reg" else 2 * reg) * W1
        grads["b1"] = da1.sum(axis=0)
        if self.bug == "transposed":  # shaped like nn.Linear's weights: another layout
            grads["W1"], grads["W2"] = grads["W1"].T, grads["W2"].T
        return loss, grads


class NoReluMask(TwoLayerNet):
    bug = "no_relu_mask"


class HalfReg(TwoLayerNet):
    bug = "half_reg"


class SignFlipped(TwoLayerNet):
    bug = "sign"


class LinearShaped(TwoLayerNet):
    bug = "transposed"


class LogOfSoftmax(TwoLayerNet):
    bug = "log_of_softmax"


class TorchTwoLayerNet:
    """The same net in torch, as EECS 498/598's version of the assignment writes it (params are tensors)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4) -> None:
        import torch

        g = torch.Generator().manual_seed(0)
        self.params = {
            "W1": std * torch.randn(input_size, hidden_size, generator=g, dtype=torch.float64),
            "b1": torch.zeros(hidden_size, dtype=torch.float64),
            "W2": std * torch.randn(hidden_size, output_size, generator=g, dtype=torch.float64),
            "b2": torch.zeros(output_size, dtype=torch.float64),
        }

    def loss(self, X, y=None, reg: float = 0.0):
        import torch

        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        n = X.shape[0]
        a1 = X @ W1 + b1
        h = a1.clamp(min=0)
        scores = h @ W2 + b2
        if y is None:
            return scores
        logp = torch.log_softmax(scores, dim=1)
        loss = -logp[torch.arange(n), y].sum() / n + reg * ((W1 * W1).sum() + (W2 * W2).sum())
        dscores = logp.exp()
        dscores[torch.arange(n), y] -= 1
        dscores /= n
        grads = {"W2": h.T @ dscores + 2 * reg * W2, "b2": dscores.sum(0)}
        da1 = (dscores @ W2.T) * (a1 > 0)
        grads["W1"] = X.T @ da1 + 2 * reg * W1
        grads["b1"] = da1.sum(0)
        return loss, grads
