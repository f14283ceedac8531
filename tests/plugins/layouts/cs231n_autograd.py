"""A torch student's cs231n net whose gradients come from autograd -- kept apart from cs231n_net.py, whose NumPy
classes are the honest submissions of the grading tests (graded with --forbid autograd)."""

from __future__ import annotations

import torch


class AutogradLogEps:
    """A torch student's: the loss -log(softmax[y] + 1e-8), its gradients by autograd through the guard."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, std: float = 1e-4) -> None:
        g = torch.Generator().manual_seed(0)
        shapes = {"W1": (input_size, hidden_size), "b1": (hidden_size,), "W2": (hidden_size, output_size),
                  "b2": (output_size,)}  # fmt: skip
        self.params = {k: std * torch.randn(*s, generator=g, dtype=torch.float64) for k, s in shapes.items()}

    def loss(self, X, y=None, reg: float = 0.0):
        p = {k: v.detach().clone().requires_grad_(True) for k, v in self.params.items()}
        scores = torch.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        if y is None:
            return scores
        probs = torch.softmax(scores, dim=1)
        loss = -torch.log(probs[torch.arange(X.shape[0]), y] + 1e-8).mean()
        loss = loss + reg * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
        loss.backward()
        return loss.detach(), {k: v.grad for k, v in p.items()}
