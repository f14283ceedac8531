"""EPFL deep-learning course, practical 3: backprop by hand, per-sample gradients summed over the batch.

784-50-10, tanh on both layers, loss sum (v - t)^2 (sse), one-hot targets as +-1 then x zeta = 0.9, weights and
biases N(0, epsilon) with epsilon = 1e-6, inputs normalised with the training set's scalar mean and std,
1000 train / 1000 test, 1000 full-batch steps with eta = 0.1 / N_train, each step the sum of per-sample
gradients. The source's code wrote math.exp(-6) = 0.00248 for epsilon; both are run. float32, as the source.
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
from verification import oracle
from verification.compare import tolerance, trajectory_tolerance
from verification.reproduce.common import Comparison, Options, Result, Timer, digits, write_csv

NAME = "epfl"
TITLE = "EPFL practical 3: per-sample backprop, 784-50-10 tanh"
SOURCE = "EPFL EE-559 deep learning, practical 3 (dlc_practical_3)"
USES_MNIST = True
DEVICES = ("cpu",)

SPEC = NetSpec(784, 50, 10, "tanh", "tanh", "sse")
PLOTS = [
    Plot(
        "curves",
        "curves.csv",
        "curves.png",
        "EPFL practical 3: 784-50-10 tanh, per-sample sums",
        x="step",
        panels=(
            ("train_loss", "training loss Σ(v−t)²"),
            ("train_error", "training error"),
            ("test_error", "test error"),
        ),
    )
]
ZETA, EPSILON, STEPS, N_TRAIN = 0.9, 1e-6, 1000, 1000
LOOP_PREFIX = 30  # steps of the per-sample loop checked by default (~75 ms each); --full-loop runs all 1000


def data(opts: Options) -> tuple[torch.Tensor, ...]:
    """1000 train / 1000 test digits (embedded: 100 per class of the train split), normalised with the training
    set's scalar mean and std; targets -zeta everywhere, +zeta at the class."""
    d = digits(opts)
    if opts.mnist is None:
        rows = np.concatenate([np.flatnonzero(d.y_train == c)[: N_TRAIN // 10] for c in range(10)])
        xtr, ytr = d.x_train[rows], d.y_train[rows]
    else:
        xtr, ytr = d.x_train[:N_TRAIN], d.y_train[:N_TRAIN]
    xte, yte = d.x_test[:1000], d.y_test[:1000]
    xtr, xte = torch.tensor(xtr, dtype=torch.float32), torch.tensor(xte, dtype=torch.float32)
    mu, std = xtr.mean(), xtr.std()
    xtr, xte = (xtr - mu) / std, (xte - mu) / std

    def targets(y: np.ndarray) -> torch.Tensor:
        t = torch.full((len(y), 10), -ZETA)
        t[torch.arange(len(y)), torch.tensor(y)] = ZETA
        return t

    return xtr, targets(ytr), torch.tensor(ytr), xte, targets(yte), torch.tensor(yte)


def normal_params(epsilon: float, seed: int) -> dict[str, torch.Tensor]:
    """Weights and biases N(0, epsilon^2) (std epsilon), as the practical's normal_(0, epsilon)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * epsilon for k, s in SPEC.param_shapes().items()}


def train(impl: str, params: dict, steps: int, d: tuple, series: str, progress: bool) -> tuple[pd.DataFrame, object]:
    """Full-batch steps of a registered implementation; per step the training loss (at the weights the step
    started from), training and test error (after the step)."""
    from tqdm import tqdm

    xtr, ttr, ytr, xte, _, yte = d
    net = impls.get(impl)(SPEC, params, SGD(lr=0.1 / len(xtr)))
    rows = []
    for s in tqdm(range(steps), desc=f"epfl {series}", unit="step", disable=None if progress else True, mininterval=1):
        loss, _ = net.step(xtr, ttr)
        p = net.params()
        err_tr = float((predict(SPEC, p, xtr).argmax(1) != ytr).float().mean())
        err_te = float((predict(SPEC, p, xte).argmax(1) != yte).float().mean())
        rows.append(
            {"series": series, "step": s + 1, "train_loss": float(loss), "train_error": err_tr, "test_error": err_te}
        )
    return pd.DataFrame(rows), net


def run(opts: Options) -> Result:
    """Batched 1000 steps (epsilon 1e-6 and e^-6), the per-sample loop on the same trajectory, the check."""
    timer = Timer()
    d = data(opts)
    steps = 100 if opts.quick else STEPS
    loop_steps = steps if opts.extra.get("full_loop") else min(LOOP_PREFIX if not opts.quick else 5, steps)
    p0 = normal_params(EPSILON, opts.seed)
    batched, _ = train("batched", p0, steps, d, "batched, eps 1e-6", opts.progress)
    exp6, _ = train("batched", normal_params(math.exp(-6), opts.seed), steps, d, "batched, eps e^-6", opts.progress)
    loop, net_l = train("loop", p0, loop_steps, d, "per-sample loop, eps 1e-6", opts.progress)
    write_csv(opts.out / NAME, "curves.csv", pd.concat([batched, exp6, loop]))

    # the loop and the batched step follow one trajectory: bound from the derived per-step tolerance
    kappa: dict[str, float] = {}
    p64 = {k: v.double().numpy() for k, v in p0.items()}
    oracle.loss_and_grads(p64, d[0].double().numpy(), d[1].double().numpy(), SPEC, kappa=kappa)
    step_tol = max(tolerance(torch.float32, 784, 50, 10, N_TRAIN, kappa[q]) for q in kappa)
    bound = trajectory_tolerance(torch.float32, step_tol, loop_steps)
    _, ref = train("batched", p0, loop_steps, d, "batched (reference)", False)
    ref_params = ref.params()
    rel = max(float((net_l.params()[k] - ref_params[k]).abs().max()) for k in p0) / max(
        float(ref_params[k].abs().max()) for k in p0
    )
    last, e6 = batched.iloc[-1], exp6.iloc[-1]
    rows = [
        Comparison(
            NAME,
            f"training loss after {steps} steps (eps 1e-6)",
            "decreasing from 1000 x 10 x 0.81 = 8100",
            f"{batched['train_loss'].iloc[0]:.0f} -> {last['train_loss']:.1f}",
            "sum over samples and outputs",
        ),
        Comparison(NAME, f"training error after {steps} steps (eps 1e-6)", "–", f"{last['train_error']:.1%}", ""),
        Comparison(
            NAME,
            f"test error after {steps} steps (eps 1e-6)",
            "–",
            f"{last['test_error']:.1%}",
            "argmax of the 10 outputs",
        ),
        Comparison(
            NAME,
            f"with eps = math.exp(-6) = {math.exp(-6):.5f} (the source's code)",
            "–",
            f"train {e6['train_error']:.1%}, test {e6['test_error']:.1%} error",
            "after the same steps",
        ),
        Comparison(
            NAME,
            f"per-sample loop vs batched, {loop_steps} steps, float32",
            "the same trajectory",
            f"max |dw| / max |w| = {rel:.2g}",
            f"bound K(tol + 2u) = {bound:.2g} (derived)",
            status=check(rel <= bound),
        ),
    ]
    return Result(NAME, rows, timer.seconds)


def data_label(opts: Options) -> str:
    """What the experiment trained on."""
    src = "embedded MNIST 5k: 100 per class of its train split" if opts.mnist is None else f"{opts.mnist}: first 1000"
    return f"{src}, 1000 test digits"
