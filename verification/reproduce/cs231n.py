"""cs231n-style two-layer net (LIS 640 assignment): the toy problem's loss and numeric gradient check, toy
training, and MNIST.

ReLU hidden, softmax cross-entropy (mean over N) + reg * (|W1|^2 + |W2|^2). The assignment stores weights D x H
and H x C (x @ W1); ours are nn.Linear's H x D and C x H, so W1_ours = W1_assignment.T, W2_ours = W2_assignment.T
(biases are the same vectors). Toy: N=5, D=4, H=10, C=3, torch.manual_seed(0), then W1 = 1e-4 randn(D, H),
W2 = 1e-4 randn(H, C), zero biases, X = 10 randn(N, D), y = [0, 1, 2, 2, 1], drawn in that order.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

import impls
from impls.base import SGD
from impls.functional import predict
from impls.spec import NetSpec
from reports.reproduced import Plot, check
from verification.reproduce.common import Comparison, Options, Result, Timer, digits, write_csv
from verification.reproduce.mnist_common import accuracy

NAME = "cs231n"
TITLE = "cs231n-style two-layer net: toy loss, numeric gradient check, training"
SOURCE = "LIS 640 assignment (cs231n assignment 1, two_layer_net)"
USES_MNIST = True
DEVICES = ("cpu", "cuda")  # the toy data is drawn on --device, as the seed drew it (on cuda)

REFERENCE_LOSS = 1.0986121892929077  # the assignment's loss of the toy problem at reg = 0.05 (a float32 value)
#: the assignment's scores of the toy net (printed to 5 significant digits), from data drawn on CUDA: its
#: get_toy_data defaults to device="cuda", whose generator differs from the CPU's; it expects sum |diff| < 1e-10
REFERENCE_SCORES = (
    (9.7003e-08, -1.1143e-07, -3.9961e-08),
    (-7.4297e-08, 1.1502e-07, 1.5685e-07),
    (-2.5860e-07, 2.2765e-07, 3.2453e-07),
    (-4.7257e-07, 9.0935e-07, 4.0368e-07),
    (-1.8395e-07, 7.9303e-08, 6.0360e-07),
)
TOY = dict(N=5, D=4, H=10, C=3)
#: MNIST settings from the assignment: hidden 36, 500 iterations, batch 1000, lr 0.1 decayed x0.95 per epoch;
#: what it leaves open is cs231n's TwoLayerNet default: std 1e-4 init, reg 5e-6, minibatches drawn with
#: replacement; inputs x / 255 minus the training set's mean image
MNIST_H, ITERS, BATCH, LR, DECAY, REG, STD = 36, 500, 1000, 0.1, 0.95, 5e-6, 1e-4
ULP32 = 2.0**-23  # float32 spacing in [1, 2), where the toy loss (~ln 3) lies


def toy(
    reg: float, device: str = "cpu", dtype: torch.dtype = torch.float64
) -> tuple[NetSpec, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The assignment's toy net and data, drawn in float32 on `device` in the assignment's order (so on cuda they
    are the assignment's own numbers), mapped to our layout and returned on that device in `dtype`."""
    torch.manual_seed(0)  # seeds the CPU and every CUDA generator, as the assignment's reset_seed(0)
    n, d, h, c = TOY["N"], TOY["D"], TOY["H"], TOY["C"]
    W1 = 1e-4 * torch.randn(d, h, device=device)  # assignment layout (D, H)
    W2 = 1e-4 * torch.randn(h, c, device=device)  # (H, C)
    X = 10 * torch.randn(n, d, device=device)
    y = torch.tensor([0, 1, 2, 2, 1], device=device)
    spec = NetSpec(d, h, c, "relu", "identity", "cross_entropy", reg)
    params = {
        "W1": W1.T.to(dtype),
        "b1": torch.zeros(h, dtype=dtype, device=device),
        "W2": W2.T.to(dtype),
        "b2": torch.zeros(c, dtype=dtype, device=device),
    }
    return spec, params, X.to(dtype), y


def seed_check(device: str) -> tuple[float, float]:
    """What the assignment checks, as it checks it: float32 scores of the toy net against its correct_scores
    (sum of |diff|) and the float32 loss at reg 0.05, on `device`'s draws (our `batched` step computes the loss)."""
    spec, p, x, y = toy(0.05, device, torch.float32)
    scores = predict(spec, p, x)  # (N, C) logits, float32
    ref = torch.tensor(REFERENCE_SCORES, dtype=torch.float32, device=device)
    diff = float((scores - ref).abs().sum())
    loss = float(impls.get("batched")(spec, p, SGD(lr=0.0)).step(x, y)[0])
    return diff, loss


def loss_at(spec: NetSpec, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """The registered `batched` step's loss at params (a step with lr 0 changes nothing)."""
    return float(impls.get("batched")(spec, params, SGD(lr=0.0)).step(x, y)[0])


def kink_safe_step(params: dict, x: torch.Tensor) -> float:
    """A difference step that cannot move a ReLU pre-activation across 0: a W1 entry moved by h moves a1 by at
    most h max|x|, so h = 0.1 min|a1| / max|x| keeps a 10x margin (cs231n's h = 1e-5 does not here: with
    1e-4 weights and |x| up to 12.8, min|a1| = 1.2e-4, and W1's rel_error was 1.3e-3 with it)."""
    a1 = x @ params["W1"].T + params["b1"]
    return min(1e-5, 0.1 * float(a1.abs().min()) / float(x.abs().max()))


def numeric_check(spec: NetSpec, params: dict, x: torch.Tensor, y: torch.Tensor, h: float) -> dict[str, float]:
    """cs231n's rel_error = max|a - b| / max(|a| + |b|) between `batched`'s gradients and central differences of
    its own loss, float64, per parameter."""
    _, grads = impls.get("batched")(spec, params, SGD(lr=0.0)).step(x, y)
    out = {}
    for k, v in params.items():
        num = torch.zeros_like(v)
        for idx in np.ndindex(*v.shape):
            plus = {kk: vv.clone() for kk, vv in params.items()}
            minus = {kk: vv.clone() for kk, vv in params.items()}
            plus[k][idx] += h
            minus[k][idx] -= h
            num[idx] = (loss_at(spec, plus, x, y) - loss_at(spec, minus, x, y)) / (2 * h)
        a, b = grads[k], num
        out[k] = float((a - b).abs().max() / (a.abs() + b.abs()).max().clamp_min(1e-300))
    return out


PLOTS = [
    Plot(
        "curves",
        "curves.csv",
        "curves.png",
        "cs231n two-layer net: toy and MNIST",
        x="iteration",
        panels=(("loss", "loss (CE + reg)"), ("val_accuracy", "validation accuracy")),
    )
]


def judge_toy(opts: Options, scores_diff: float, loss32: float, loss: float) -> list[Comparison]:
    """The assignment's two toy checks as it makes them (float32 scores and loss), and the float64 loss."""
    near_ln3 = max(abs(loss - math.log(3)), abs(REFERENCE_LOSS - math.log(3)))
    return [
        Comparison(
            NAME,
            f"toy scores (float32, drawn on {opts.device}) vs the assignment's: sum |diff|",
            "< 1e-10 (drawn on cuda)",
            f"{scores_diff:.2g}",
            "the assignment drew on cuda, whose generator differs from the CPU's"
            if opts.device == "cpu"
            else "the assignment's own draws; its correct_scores are printed to 5 significant digits",
        ),
        Comparison(
            NAME,
            f"toy loss at reg 0.05, float32 on {opts.device} (as the assignment computes it)",
            f"{REFERENCE_LOSS!r}",
            f"{loss32!r}",
            f"|diff| = {abs(loss32 - REFERENCE_LOSS):.2g} = {abs(loss32 - REFERENCE_LOSS) / ULP32:.0f} float32 ulp",
        ),
        Comparison(
            NAME,
            f"toy loss at reg 0.05 (drawn on {opts.device}, float64)",
            f"{REFERENCE_LOSS!r}",
            f"{loss!r}",
            f"|diff| = {abs(loss - REFERENCE_LOSS):.2g} < 1e-4. Both are ln 3 = {math.log(3):.8f} (a uniform "
            f"softmax over 3 classes) within {near_ln3:.1g}: 1e-4 weights make every logit ~0; the rest depends on "
            "the exact draw and dtype",
            status=check(abs(loss - REFERENCE_LOSS) < 1e-4),
        ),
    ]


def measure_mnist(opts: Options, iters: int) -> tuple[list[dict], dict[str, tuple[float, int, float]]]:
    """MNIST with the assignment's settings, decayed per epoch of this set and per 60000 samples: curve rows and,
    per schedule, (final validation accuracy, iterations per decay, final lr)."""
    from tqdm import tqdm

    d = digits(opts)
    xtr = torch.tensor(d.x_train, dtype=torch.float32) / 255
    mean_image = xtr.mean(0)
    xtr, xte = xtr - mean_image, torch.tensor(d.x_test, dtype=torch.float32) / 255 - mean_image
    ytr, yte = torch.tensor(d.y_train), torch.tensor(d.y_test)
    mspec = NetSpec(784, MNIST_H, 10, "relu", "identity", "cross_entropy", REG)
    rows, accs = [], {}
    # cs231n decays once per epoch of the training set it is given: every 4 iterations on 4000 digits, which
    # leaves lr = 0.1 x 0.95^125 = 0.0016 after 500; full MNIST decays every 60. Both are run.
    for label, per_epoch in (
        ("decay per epoch of this set", max(len(xtr) // BATCH, 1)),
        ("decay per 60000 samples", 60000 // BATCH),
    ):
        g = torch.Generator().manual_seed(opts.seed)
        params = {
            "W1": STD * torch.randn(MNIST_H, 784, generator=g),
            "b1": torch.zeros(MNIST_H),
            "W2": STD * torch.randn(10, MNIST_H, generator=g),
            "b2": torch.zeros(10),
        }
        net, lr = impls.get("batched")(mspec, params, SGD(lr=LR)), LR
        bar = tqdm(range(iters), desc=f"cs231n mnist, {label}", unit="iter", disable=None if opts.progress else True)
        for it in bar:
            idx = torch.randint(len(xtr), (BATCH,), generator=g)  # with replacement, as cs231n's np.random.choice
            step_loss = float(net.step(xtr[idx], ytr[idx])[0])
            val = np.nan
            if (it + 1) % per_epoch == 0:
                lr *= DECAY
                net.set_lr(lr)
            if (it + 1) % 20 == 0:
                val = accuracy(mspec, net.params(), xte, yte)
            rows.append({"series": f"MNIST, {label}", "iteration": it + 1, "loss": step_loss, "val_accuracy": val})
        accs[label] = (accuracy(mspec, net.params(), xte, yte), per_epoch, lr)
    return rows, accs


def run(opts: Options) -> Result:
    """Toy loss, gradient check, toy training; MNIST with decay."""
    timer = Timer()
    scores_diff, loss32 = seed_check(opts.device)
    spec, p, x, y = (v.cpu() if isinstance(v, torch.Tensor) else v for v in toy(0.05, opts.device))
    p = {k: v.cpu() for k, v in p.items()}
    loss = loss_at(spec, p, x, y)
    h = kink_safe_step(p, x)
    rel = numeric_check(spec, p, x, y, h)
    tspec, tp, tx, ty = toy(1e-6)
    net = impls.get("batched")(tspec, tp, SGD(lr=0.1))
    toy_curve = [float(net.step(tx, ty)[0]) for _ in range(200)]
    rows = [
        {"series": "toy (N=5)", "iteration": i + 1, "loss": v, "val_accuracy": np.nan} for i, v in enumerate(toy_curve)
    ]
    iters = 100 if opts.quick else ITERS
    mnist_rows, accs = measure_mnist(opts, iters)
    write_csv(opts.out / NAME, "curves.csv", pd.DataFrame(rows + mnist_rows))
    table = judge_toy(opts, scores_diff, loss32, loss)
    table += [
        Comparison(
            NAME,
            f"numeric gradient check rel_error, {k}",
            "< 1e-4",
            f"{v:.2g}",
            f"central differences, h = {h:.2g} (kink-safe), float64",
            status=check(v < 1e-4),
        )
        for k, v in rel.items()
    ]
    table.append(
        Comparison(
            NAME,
            "toy training: loss after 200 iterations (lr 0.1, reg 1e-6)",
            "< 1.0",
            f"{toy_curve[-1]:.4g}",
            f"from {toy_curve[0]:.4f}",
            status=check(toy_curve[-1] < 1.0),
        )
    )
    table += [
        Comparison(
            NAME,
            f"MNIST validation accuracy after {iters} iterations, {label}",
            "–",
            f"{acc:.2%}",
            f"decay every {pe} iterations, final lr {lr:.2g}; hidden {MNIST_H}, batch {BATCH}, reg {REG}, std {STD}",
        )
        for label, (acc, pe, lr) in accs.items()
    ]
    return Result(NAME, table, timer.seconds)


def data_label(opts: Options) -> str:
    """What the experiment trained on."""
    return f"toy: N=5 random points; MNIST: {digits(opts).source}"
