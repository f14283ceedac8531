"""A correct user backprop and the bugs people really make, for `python -m verification --impl FILE:fn`."""

from __future__ import annotations

import functools

import torch

ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}


def _dact(name, a, y, bug_wrong_tensor=False):
    if bug_wrong_tensor:  # derivative evaluated on the pre-activation instead of the output
        y = a
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y * y
    if name == "relu":
        return (a > 0).to(a.dtype)
    return torch.ones_like(a)


def _backprop(params, x, t, spec, bug=""):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = x.shape[0]
    a1 = x @ W1.T + b1
    h = ACT[spec.hidden](a1)
    z = h @ W2.T + b2
    if spec.loss == "cross_entropy":
        logp = torch.log_softmax(z, dim=1)
        loss = -logp[torch.arange(n), t].mean()
        dz = logp.exp()
        dz[torch.arange(n), t] -= 1
        dz /= n
    elif spec.loss == "bce":  # sigmoid outputs, the binary cross-entropy averaged over N x C
        y = torch.sigmoid(z)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, t)
        dz = (y - t) / t.numel()
    else:
        y = ACT[spec.output](z)
        r = y - t
        scale = {"sse": 2.0, "half_sse": 1.0, "mse": 2.0 / r.numel()}[spec.loss]
        loss = (r * r).sum() * scale / 2
        dy = scale * r
        if bug == "mean_vs_sum":
            dy = dy / n
        dz = dy if bug == "missing_output_derivative" else dy * _dact(spec.output, z, y)
    dW2 = dz.T @ h
    da1 = (dz @ W2) * _dact(spec.hidden, a1, h, bug_wrong_tensor=bug == "wrong_tensor")
    grads = {
        "W1": x.T @ da1 if bug == "transposed" else da1.T @ x,
        "b1": da1 if bug == "bias_not_summed" else da1.sum(0),
        "W2": dW2,
        "b2": dz.sum(0),
    }
    if bug == "sign_flipped":
        grads = {k: -v for k, v in grads.items()}
    factor = {"l2_half": 1.0, "l2_doubled": 4.0, "l2_missing": 0.0}.get(bug, 2.0)
    loss = loss + spec.l2 * ((W1 * W1).sum() + (W2 * W2).sum())
    grads["W1"] = grads["W1"] + factor * spec.l2 * W1
    grads["W2"] = grads["W2"] + factor * spec.l2 * W2
    return loss, grads


def correct(params, x, t, spec):
    """Right for every configuration."""
    return _backprop(params, x, t, spec)


def sigmoid_sse_only(params, x, t, spec):
    """Right, but supports one configuration; the rest are reported as unsupported."""
    if (spec.hidden, spec.output, spec.loss) != ("sigmoid", "sigmoid", "sse"):
        raise NotImplementedError("only sigmoid/sigmoid sse")
    return _backprop(params, x, t, spec)


# each bug as its own plug-in function (file.py:name on the command line)
wrong_tensor = functools.partial(_backprop, bug="wrong_tensor")
bias_not_summed = functools.partial(_backprop, bug="bias_not_summed")
mean_vs_sum = functools.partial(_backprop, bug="mean_vs_sum")
missing_output_derivative = functools.partial(_backprop, bug="missing_output_derivative")
transposed = functools.partial(_backprop, bug="transposed")
l2_half = functools.partial(_backprop, bug="l2_half")
l2_doubled = functools.partial(_backprop, bug="l2_doubled")
l2_missing = functools.partial(_backprop, bug="l2_missing")
sign_flipped = functools.partial(_backprop, bug="sign_flipped")


def crashes(params, x, t, spec):
    raise RuntimeError("boom")


def not_a_function_value():
    return None


NOT_CALLABLE = 3


def fp32_despite_autocast(params, x, t, spec):
    """Right, but switches autocast off: asked for bf16, it computes in float32 (must not pass as bf16)."""
    with torch.autocast(x.device.type, enabled=False):
        return _backprop(params, x, t, spec)
