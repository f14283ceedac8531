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
        elif self.bug == "log_eps":  # a guard against log(0), as Deep Learning from Scratch writes it
            data = -np.log(probs[np.arange(n), y] + 1e-7).sum() / n
        elif self.bug in ("clip_1e-2", "clip_1e-7"):  # nnfs clips at 1e-7; at 1e-2 the clip changes ordinary losses
            data = -np.log(np.maximum(probs[np.arange(n), y], float(self.bug[5:]))).sum() / n
        elif self.bug == "over_n_plus_1":  # a loss-only slip: the mean over N + 1 samples
            data = (np.log(total[:, 0]) - shifted[np.arange(n), y]).sum() / (n + 1)
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


class LogEps(TwoLayerNet):
    bug = "log_eps"


class OverNPlus1(TwoLayerNet):
    bug = "over_n_plus_1"


class Clip1e7(TwoLayerNet):
    bug = "clip_1e-7"


class Clip1e2(TwoLayerNet):
    bug = "clip_1e-2"


class MomentumKept(TwoLayerNet):
    """Returns a velocity it keeps between calls (an optimiser's state left in the net) instead of the gradients."""

    def loss(self, X: np.ndarray, y: np.ndarray | None = None, reg: float = 0.0):
        out = super().loss(X, y, reg)
        if y is None:
            return out
        loss, grads = out
        self.velocity = {k: 0.9 * getattr(self, "velocity", {}).get(k, 0.0) + g for k, g in grads.items()}
        return loss, dict(self.velocity)


class StepInsideLoss(TwoLayerNet):
    """Takes a training step inside loss(): its gradients are right, the caller's W1 is not left as it was."""

    def loss(self, X: np.ndarray, y: np.ndarray | None = None, reg: float = 0.0):
        out = super().loss(X, y, reg)
        if y is not None:
            self.params["W1"] -= 0.1 * out[1]["W1"]
        return out


class AttributeAliases(TwoLayerNet):
    """Reads its weights from attributes bound to the params arrays, right where cs231n's train() updates those arrays
    in place (params['W1'] -= lr * dW1)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4) -> None:
        super().__init__(input_size, hidden_size, output_size, std)
        self.W1, self.b1, self.W2, self.b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))

    def loss(self, X: np.ndarray, y: np.ndarray | None = None, reg: float = 0.0):
        held, self.params = self.params, {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}
        try:
            return super().loss(X, y, reg)
        finally:
            self.params = held


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


class NoMaxShift(TwoLayerNet):
    """softmax as exp(scores) / sum: overflows once a logit passes ~89 (float32), which real training reaches."""

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        n = X.shape[0]
        h = np.maximum(X @ W1 + b1, 0)
        scores = h @ W2 + b2
        with np.errstate(over="ignore", invalid="ignore"):
            probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
            loss = -np.log(probs[np.arange(n), y]).mean() + reg * ((W1 * W1).sum() + (W2 * W2).sum())
        d = probs.copy()
        d[np.arange(n), y] -= 1
        d /= n
        da1 = (d @ W2.T) * (h > 0)
        return loss, {"W1": X.T @ da1 + 2 * reg * W1, "b1": da1.sum(0), "W2": h.T @ d + 2 * reg * W2, "b2": d.sum(0)}


class HalfConvention(TwoLayerNet):
    """The 2016-2017 assignment: loss + 0.5 * reg * sum W^2, gradient + reg * W (right under l2_convention='half')."""

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        N = X.shape[0]
        hidden = np.maximum(0, X.dot(W1) + b1)
        scores = hidden.dot(W2) + b2
        scores -= np.max(scores, axis=1, keepdims=True)
        exp = np.exp(scores)
        probs = exp / np.sum(exp, axis=1, keepdims=True)
        loss = -np.sum(np.log(probs[range(N), y])) / N + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        dscores = probs
        dscores[range(N), y] -= 1
        dscores /= N
        grads = {"W2": hidden.T.dot(dscores) + reg * W2, "b2": np.sum(dscores, axis=0)}
        dhidden = dscores.dot(W2.T)
        dhidden[hidden <= 0] = 0
        grads["W1"] = X.T.dot(dhidden) + reg * W1
        grads["b1"] = np.sum(dhidden, axis=0)
        return loss, grads


class Float64Accumulators(TwoLayerNet):
    """Gradients accumulated in np.zeros (float64) whatever the inputs' dtype: NumPy's promotion, not a bug."""

    def loss(self, X, y=None, reg=0.0):
        loss, grads = super().loss(X, y, reg)
        out = {k: np.zeros(v.shape) for k, v in grads.items()}
        for k in out:
            out[k] += grads[k]
        return loss, out


class EECS498Net:
    """EECS 498's TwoLayerNet: dtype and device in the constructor, device='cuda' by default, torch params, and a
    loss that calls the module-level nn_forward_backward."""

    def __init__(self, input_size, hidden_size, output_size, dtype=None, device="cuda", std=1e-4):
        import torch

        dtype = dtype or torch.float32
        self.params = {
            "W1": std * torch.randn(input_size, hidden_size, dtype=dtype, device=device),
            "b1": torch.zeros(hidden_size, dtype=dtype, device=device),
            "W2": std * torch.randn(hidden_size, output_size, dtype=dtype, device=device),
            "b2": torch.zeros(output_size, dtype=dtype, device=device),
        }

    def loss(self, X, y=None, reg=0.0):
        return nn_forward_backward(self.params, X, y, reg)


def nn_forward_pass(params, X):
    hidden = (X.mm(params["W1"]) + params["b1"]).clamp(min=0)
    return hidden.mm(params["W2"]) + params["b2"], hidden


def nn_forward_backward(params, X, y=None, reg=0.0):
    """EECS 498 / LIS 640's function: max-shifted softmax, -log of the probabilities (fragile at huge logits)."""
    import torch

    W1, W2 = params["W1"], params["W2"]
    scores, h1 = nn_forward_pass(params, X)
    if y is None:
        return scores
    N = X.shape[0]
    scores = scores - scores.max(dim=1, keepdim=True).values
    probs = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
    loss = -torch.log(probs[torch.arange(N), y]).sum() / N + reg * (torch.sum(W1 * W1) + torch.sum(W2 * W2))
    dscores = probs.clone()
    dscores[torch.arange(N), y] -= 1
    dscores /= N
    grads = {"W2": h1.t().mm(dscores) + 2 * reg * W2, "b2": dscores.sum(dim=0)}
    dh1 = dscores.mm(W2.t())
    dh1[h1 <= 0] = 0
    grads["W1"] = X.t().mm(dh1) + 2 * reg * W1
    grads["b1"] = dh1.sum(dim=0)
    return loss, grads
