"""EPFL deep learning practical 3 as its students write it (torch, one sample at a time, w1 (H, D), backward_pass
accumulating into the four tensors it is given), and the same with the slips the course's own corrections name --
examples for verification's epfl layout, written for the tests."""

import torch


def sigma(x):
    return torch.tanh(x)


def dsigma(x):
    return 4 * (x.exp() + x.mul(-1).exp()).pow(-2)


def loss(v, t):
    return (v - t).pow(2).sum()


def dloss(v, t):
    return 2 * (v - t)


def forward_pass(w1, b1, w2, b2, x):
    x0 = x
    s1 = w1.mv(x0) + b1
    x1 = sigma(s1)
    s2 = w2.mv(x1) + b2
    x2 = sigma(s2)
    return x0, s1, x1, s2, x2


def backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    x0 = x
    dl_dx2 = dloss(x2, t)
    dl_ds2 = dsigma(s2) * dl_dx2
    dl_dx1 = w2.t().mv(dl_ds2)
    dl_ds1 = dsigma(s1) * dl_dx1

    dl_dw2.add_(dl_ds2.view(-1, 1).mm(x1.view(1, -1)))
    dl_db2.add_(dl_ds2)
    dl_dw1.add_(dl_ds1.view(-1, 1).mm(x0.view(1, -1)))
    dl_db1.add_(dl_ds1)

    return dl_dw1, dl_db1, dl_dw2, dl_db2


def forward_column(w1, b1, w2, b2, x):
    """x as a column (D, 1), biases (H, 1): w1.mm(x)."""
    s1 = w1.mm(x) + b1
    x1 = torch.tanh(s1)
    s2 = w2.mm(x1) + b2
    return x, s1, x1, s2, torch.tanh(s2)


def backward_column(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    dl_ds2 = 2 * (x2 - t) * (1 - torch.tanh(s2) ** 2)
    dl_ds1 = w2.t().mm(dl_ds2) * (1 - torch.tanh(s1) ** 2)
    dl_dw2 += dl_ds2 @ x1.t()
    dl_db2 += dl_ds2
    dl_dw1 += dl_ds1 @ x.t()
    dl_db1 += dl_ds1
    return dl_dw1, dl_db1, dl_dw2, dl_db2


def backward_rebound(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    """dl_dw1 = dl_dw1 + ...: a new tensor, the caller's stays zero."""
    dl_ds2 = dsigma(s2) * dloss(x2, t)
    dl_ds1 = dsigma(s1) * w2.t().mv(dl_ds2)
    dl_dw2.add_(torch.outer(dl_ds2, x1))
    dl_db2.add_(dl_ds2)
    dl_dw1 = dl_dw1 + torch.outer(dl_ds1, x)
    dl_db1.add_(dl_ds1)
    return dl_dw1, dl_db1, dl_dw2, dl_db2


def backward_dsigma_of_x1(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    """dsigma applied to the activation x1 instead of the pre-activation s1 (the course's correction)."""
    dl_ds2 = dsigma(s2) * dloss(x2, t)
    dl_ds1 = dsigma(x1) * w2.t().mv(dl_ds2)
    dl_dw2.add_(torch.outer(dl_ds2, x1))
    dl_db2.add_(dl_ds2)
    dl_dw1.add_(torch.outer(dl_ds1, x))
    dl_db1.add_(dl_ds1)


def backward_from_dx2(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    """dl_dx1 from dl_dx2 instead of dl_ds2 (the output's derivative skipped on the way back)."""
    dl_dx2 = dloss(x2, t)
    dl_ds2 = dsigma(s2) * dl_dx2
    dl_ds1 = dsigma(s1) * w2.t().mv(dl_dx2)
    dl_dw2.add_(torch.outer(dl_ds2, x1))
    dl_db2.add_(dl_ds2)
    dl_dw1.add_(torch.outer(dl_ds1, x))
    dl_db1.add_(dl_ds1)


def backward_overwrites(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    """copy_ where add_ was meant: each sample overwrites the last, the gradient of one sample only."""
    dl_ds2 = dsigma(s2) * dloss(x2, t)
    dl_ds1 = dsigma(s1) * w2.t().mv(dl_ds2)
    dl_dw2.copy_(torch.outer(dl_ds2, x1))
    dl_db2.copy_(dl_ds2)
    dl_dw1.copy_(torch.outer(dl_ds1, x))
    dl_db1.copy_(dl_ds1)


_running = {}


def backward_never_zeroed(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    """Sums kept in module-level tensors that are never zeroed between batches (the caller's are only copied to)."""
    dl_ds2 = dsigma(s2) * dloss(x2, t)
    dl_ds1 = dsigma(s1) * w2.t().mv(dl_ds2)
    terms = (torch.outer(dl_ds1, x), dl_ds1, torch.outer(dl_ds2, x1), dl_ds2)
    for i, (acc, g) in enumerate(zip((dl_dw1, dl_db1, dl_dw2, dl_db2), terms)):
        _running[i] = _running.get(i, torch.zeros_like(g)) + g
        acc.copy_(_running[i])
    return dl_dw1, dl_db1, dl_dw2, dl_db2


def back_ward_pass(x, s1, x1, s2, x2, t, w1, w2, b1, b2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    """Renamed, and its arguments in another order (but the same names)."""
    return backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2)


def fwd(x, W1, W2, B1, B2):
    """Another order and other names: needs bind 'forward_pass=fwd(x, w1, w2, b1, b2)'."""
    return forward_pass(W1, B1, W2, B2, x)
