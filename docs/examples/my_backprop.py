"""A backprop written for one configuration (sigmoid hidden, identity output, sum of squares), in the `linear`
layout: fn(params, x, t, spec) -> (loss, grads), weights shaped like nn.Linear's: W1 (H, D), W2 (C, H)."""

import torch


def backprop(params, x, t, spec):
    if (spec.hidden, spec.output, spec.loss) != ("sigmoid", "identity", "sse"):
        raise NotImplementedError("only sigmoid / identity / sse")  # reported as unsupported, not failed
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    h = torch.sigmoid(x @ W1.T + b1)  # (N, H)
    y = h @ W2.T + b2  # (N, C)
    loss = ((y - t) ** 2).sum() + spec.l2 * ((W1**2).sum() + (W2**2).sum())
    dy = 2 * (y - t)  # (N, C)
    da = (dy @ W2) * h * (1 - h)  # (N, H)
    grads = {
        "W1": da.T @ x + 2 * spec.l2 * W1,
        "b1": da.sum(0),
        "W2": dy.T @ h + 2 * spec.l2 * W2,
        "b2": dy.sum(0),
    }
    return loss, grads
