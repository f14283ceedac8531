"""Lab 2, autograd and optimizers: gradients accumulate unless zeroed; momentum SGD with an exponential schedule.

The source gives no numeric settings beyond the method; ours: the UMONS net (784-30-10, sigmoid, softmax
cross-entropy, inputs normalised 0.1307 / 0.3081), batch 64, 10 epochs, torch.optim.SGD(lr 0.1, momentum 0.9)
with torch.optim.lr_scheduler.ExponentialLR(gamma 0.8) stepped once per epoch, through the registered `module`
implementation (its optimizer is the one the scheduler drives); beside it the same run at a constant lr.
"""

from __future__ import annotations

import pandas as pd
import torch

import impls
from impls.autograd import autograd_loss
from impls.base import SGD
from impls.spec import NetSpec, init_params, make_batch
from reports.reproduced import Plot, check
from verification.reproduce.common import Comparison, Options, Result, Timer, digits, write_csv
from verification.reproduce.mnist_common import accuracy, epoch_batches, normalised

NAME = "lab2"
TITLE = "Lab 2: autograd accumulation; module + SGD momentum + ExponentialLR"
SOURCE = "Lab 2 (autograd and optimizers)"
USES_MNIST = True
DEVICES = ("cpu",)

SPEC = NetSpec(784, 30, 10, "sigmoid", "identity", "cross_entropy")
PLOTS = [
    Plot(
        "curves",
        "curves.csv",
        "curves.png",
        "Lab 2: module + SGD momentum + ExponentialLR",
        x="epoch",
        panels=(("train_loss", "training loss (CE)"), ("test_accuracy", "test accuracy"), ("lr", "learning rate")),
    )
]
LR, MOMENTUM, GAMMA, BATCH, EPOCHS = 0.1, 0.9, 0.8, 64, 10


def accumulation_error(seed: int = 0) -> float:
    """Two backward() calls on raw leaf tensors without zeroing .grad leave the sum of both in .grad, i.e. twice
    one call's gradient (the registered `autograd` step sets .grad = None before each backward for this reason).
    Returns max |grad - 2 * once| / max |2 * once| over the parameters: 0 when they accumulate exactly."""
    spec = NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy")
    p = {k: v.requires_grad_(True) for k, v in init_params(spec, seed=seed, dtype=torch.float64).items()}
    x, t = make_batch(spec, 7, dtype=torch.float64)
    autograd_loss(spec, p, x, t).backward()
    once = {k: v.grad.clone() for k, v in p.items()}
    autograd_loss(spec, p, x, t).backward()
    return max(float((p[k].grad - 2 * once[k]).abs().max() / (2 * once[k]).abs().max()) for k in p)


def run(opts: Options) -> Result:
    """The accumulation check and the two training runs."""
    from tqdm import tqdm

    timer = Timer()
    err = accumulation_error(opts.seed)
    xtr, ytr, xte, yte = normalised(digits(opts))
    epochs = 2 if opts.quick else EPOCHS
    rows, final = [], {}
    for series, gamma in (("ExponentialLR(gamma 0.8)", GAMMA), ("constant lr", 1.0)):
        net = impls.get("module")(SPEC, init_params(SPEC, seed=opts.seed), SGD(lr=LR, momentum=MOMENTUM))
        scheduler = torch.optim.lr_scheduler.ExponentialLR(net.opt, gamma=gamma)
        g = torch.Generator().manual_seed(opts.seed)
        for epoch in tqdm(range(1, epochs + 1), desc=f"lab2 {series}", disable=None if opts.progress else True):
            lr = net.opt.param_groups[0]["lr"]
            total = 0.0
            for idx in epoch_batches(len(xtr), BATCH, g):
                total += float(net.step(xtr[idx], ytr[idx])[0]) * len(idx)
            scheduler.step()
            acc = accuracy(SPEC, net.params(), xte, yte)
            rows.append(
                {"series": series, "epoch": epoch, "lr": lr, "train_loss": total / len(xtr), "test_accuracy": acc}
            )
        final[series] = (rows[-1]["train_loss"], rows[-1]["test_accuracy"])
    write_csv(opts.out / NAME, "curves.csv", pd.DataFrame(rows))
    return Result(
        NAME,
        [
            Comparison(
                NAME,
                "grad after two backward() calls without zeroing",
                "twice one call's (accumulated)",
                f"2 x one call's, relative error {err:.2g}",
                "raw leaf tensors, float64; the autograd step sets .grad = None before each backward",
                status=check(err <= 1e-15),
            ),
            *(
                Comparison(
                    NAME,
                    f"after {epochs} epochs, {series}",
                    "–",
                    f"train loss {loss:.4f}, test accuracy {acc:.2%}",
                    f"SGD lr {LR}, momentum {MOMENTUM}, batch {BATCH}",
                )
                for series, (loss, acc) in final.items()
            ),
        ],
        timer.seconds,
    )


def data_label(opts: Options) -> str:
    """What the experiment trained on."""
    return digits(opts).source
