"""UMONS Machine Learning II: manual layers vs torch.nn on MNIST, from the same weights and batch order.

784-30-10, sigmoid hidden, softmax cross-entropy, SGD lr 0.5, batch 64, 10 epochs, inputs scaled to [0, 1]
then normalised with mean 0.1307 / std 0.3081. Manual = the registered `batched` step (hand-written backward),
torch.nn = the registered `module` step (nn.Linear, F.cross_entropy, torch.optim.SGD). Initial weights:
nn.Linear's default distribution (impls.spec.init_params). Reference: about 95% test accuracy on full MNIST
for this architecture (Nielsen, Neural Networks and Deep Learning, ch. 1).
"""

from __future__ import annotations

import pandas as pd
import torch

import impls
from impls.base import SGD
from impls.spec import NetSpec, init_params
from reports.reproduced import Plot, check
from verification.compare import tolerance, trajectory_tolerance
from verification.reproduce.common import Comparison, Options, Result, Timer, digits, write_csv
from verification.reproduce.mnist_common import accuracy, epoch_batches, normalised

NAME = "umons"
TITLE = "UMONS ML II: manual layers vs torch.nn, 784-30-10 on MNIST"
SOURCE = "UMONS Machine Learning II lab; reference accuracy from Nielsen's book"
USES_MNIST = True
DEVICES = ("cpu",)

SPEC = NetSpec(784, 30, 10, "sigmoid", "identity", "cross_entropy")
PLOTS = [
    Plot(
        "curves",
        "curves.csv",
        "curves.png",
        "UMONS: manual (batched) vs torch.nn (module)",
        x="epoch",
        panels=(("train_loss", "training loss (CE)"), ("test_accuracy", "test accuracy")),
    )
]
LR, BATCH, EPOCHS = 0.5, 64, 10


def run(opts: Options) -> Result:
    """Both implementations, same initial weights and batch order; curves and the max parameter difference."""
    from tqdm import tqdm

    timer = Timer()
    d = digits(opts)
    xtr, ytr, xte, yte = normalised(d)
    epochs = 2 if opts.quick else EPOCHS
    p0 = init_params(SPEC, seed=opts.seed)
    nets = {name: impls.get(name)(SPEC, p0, SGD(lr=LR)) for name in ("batched", "module")}
    g = torch.Generator().manual_seed(opts.seed)
    rows, worst, steps = [], 0.0, 0
    for epoch in tqdm(range(1, epochs + 1), desc="umons", unit="epoch", disable=None if opts.progress else True):
        losses = {name: 0.0 for name in nets}
        batches = epoch_batches(len(xtr), BATCH, g)
        for idx in batches:
            for name, net in nets.items():
                losses[name] += float(net.step(xtr[idx], ytr[idx])[0]) * len(idx)
            steps += 1
        pb, pm = nets["batched"].params(), nets["module"].params()
        worst = max(float((pb[k] - pm[k]).abs().max()) / float(pb[k].abs().max()) for k in pb)
        for name, net in nets.items():
            rows.append(
                {
                    "series": name,
                    "epoch": epoch,
                    "train_loss": losses[name] / len(xtr),
                    "test_accuracy": accuracy(SPEC, net.params(), xte, yte),
                    "max_rel_param_diff": worst,
                }
            )
    curves = pd.DataFrame(rows)
    write_csv(opts.out / NAME, "curves.csv", curves)
    # kappa = 1: the bound per step for well-conditioned sums; the measured difference is far below it
    bound = trajectory_tolerance(torch.float32, tolerance(torch.float32, 784, 30, 10, BATCH, 1.0), steps)
    last = curves[curves["epoch"] == epochs].set_index("series")
    return Result(
        NAME,
        [
            Comparison(
                NAME,
                f"test accuracy after {epochs} epochs, manual (batched)",
                "about 95% (full MNIST)",
                f"{last.loc['batched', 'test_accuracy']:.2%}",
                f"{len(xtr)} training digits",
            ),
            Comparison(
                NAME,
                f"test accuracy after {epochs} epochs, torch.nn (module)",
                "the same as manual",
                f"{last.loc['module', 'test_accuracy']:.2%}",
                "",
            ),
            Comparison(
                NAME,
                f"manual vs torch.nn: max |dw| / max |w| after {steps} steps",
                "coincide",
                f"{worst:.2g}",
                f"bound K(tol + 2u) = {bound:.2g} (derived, kappa 1)",
                status=check(worst <= bound),
            ),
        ],
        timer.seconds,
    )


def data_label(opts: Options) -> str:
    """What the experiment trained on."""
    return digits(opts).source
