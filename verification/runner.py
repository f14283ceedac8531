"""Run implementations against the float64 oracle over a matrix of configurations; one row per compared quantity.

Each case's data is built here, deterministically from the seed, and chosen to reach the corners where real
backprop bugs hide (measured with single-bug plug-ins in tests/plugins/):
- the trajectory takes one step per batch of a *sequence* of batches; for cross-entropy one batch lacks the
  last class and one lacks class 0 (a one-hot built without the class count, or a bincount without minlength,
  changes shape there), at every batch size and shape;
- variant ``large-logits`` (cross-entropy, binary cross-entropy): the output layer is scaled so the largest logit
  is +LARGE_LOGIT, where exp() overflows in float32 and float64 (a softmax without the max shift returns inf/NaN)
  and a sigmoid rounds to 1 (log(1 - y) is -inf where that output's label is 0, as it is made here);
- variant ``exact-zeros`` (ReLU hidden): inputs and first-layer weights on a dyadic grid, so pre-activations are
  computed exactly and some are exactly 0, where torch's convention relu'(0) = 0 separates > from >=.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from impls.base import SGD, CompileError, Implementation, UnsupportedConfig
from impls.functional import activate
from impls.precision import build, precision_of
from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, NetSpec, all_specs, init_params, make_batch
from reports.record import CASE_KEY, Status
from verification import oracle
from verification.compare import Check, Returned, compare, tolerance, trajectory_tolerance
from verification.hints import case_hint, large_logits_cause, shape_hint, value_hint
from verification.mutants import explain

DTYPES = {"float32": torch.float32, "float64": torch.float64}
QUANTITIES = ("loss", "W1", "b1", "W2", "b2")
VARIANTS = ("normal", "large-logits", "exact-zeros")
LARGE_LOGIT = 800.0  # > log(max float64) = 709.8 > log(max float32) = 88.7: an unshifted exp() overflows
#: the one rule for fragile numerics (settle_fragile): code right on every ordinary input (the normal and exact-zeros
#: data, every dtype) whose values are non-finite or lose their digits only at the logit-800 data -- a max-shifted
#: softmax then -log(p[y]) (p[y] underflows once the target's logit is ~104 (float32) or ~745 (float64) below the
#: largest), a softmax without the max shift, a backward that divides by p, log(1 - A2) of a saturated sigmoid -- is
#: correct but numerically fragile; a pass unless strict (reports.record.Status), its cause in words (hints.CAUSES)
FRAGILE_WORDS = "fragile: right on every ordinary input, breaks only at a logit of 800"
#: an exact-zeros case whose every number matches the oracle with relu'(0) = 1 (the mask a >= 0 instead of a > 0)
RELU_ZERO_WORDS = "relu'(0) = 1 (the mask a >= 0): a subgradient at an exact zero as good as torch's 0, accepted"
#: a cross-entropy whose logs are of p + eps (a guard against log(0) textbooks write: Deep Learning from Scratch's
#: log(y + 1e-7)), its every number matching the oracle's loss with that eps: eps is estimated from the loss (to one
#: significant digit, at most MAX_LOG_EPS) and the whole case judged again against it, the gradients either the exact
#: loss's (a hand-written backward) or the guarded one's (autograd through it)
LOG_EPS_WORDS = "log(p + {eps}) in the loss, a guard against log(0): accepted, the gradients the {which} loss's"
MAX_LOG_EPS = 1e-4  #: a larger eps is no guard: it moves the loss by more than a part in 10^4 at p ~ 1
ACCEPTED = (RELU_ZERO_WORDS, LOG_EPS_WORDS.split("{")[0])  #: how the rows a convention accepted begin (run()'s notes)
CAUSE = "_cause"  #: a large-logits row's key for why it broke there (hints.CAUSES), read and dropped by settle_fragile
#: a loss finite but too small at the logit-800 data, as a clip of p at more than a guard allows (-log(max(p, 1e-2)),
#: np.clip(A2, 0.01, 0.99)): not fragile -- it changes the loss wherever p < eps, which the ordinary data (p > 0.05)
#: never reaches; eps estimated as _log_eps does, against the oracle's guarded loss at that data
CAP_WORDS = (
    "the loss at a logit of 800 is {got:.4g} where the exact one is {exact:.4g}: capped, as if p were clipped at "
    "{eps} (-log(max(p, {eps})) or np.clip), more than a guard against log(0) allows (at most {most:g}): it changes "
    "the loss wherever p < {eps}"
)
CAPPED = "_capped"  #: a large-logits row's key: its failure is a cap (CAP_WORDS), never fragile (settle_fragile)
STATEFUL_HINT = (
    "the first step matches but later steps do not: state persists between calls (gradients accumulated "
    "across batches without zeroing, a cache or global from the previous batch, parameters kept by the object)"
)


class CaseError(RuntimeError):
    """A case that cannot be checked, for a reason its one-line message states whole (an error row without a code
    location: e.g. a layout mismatch)."""


@dataclass(frozen=True)
class Case:
    """One implementation x configuration x batch size x dtype x device x data variant."""

    impl: str
    spec: NetSpec
    n: int
    dtype: str
    device: str
    variant: str = "normal"
    precision: str = "fp32"  # impls.precision.PRECISIONS: a reduced one runs the float32 case in its context
    check: str = "batch"  # batch: loss, gradients and trajectory; per_sample: the (N, ...) per-sample gradients

    @property
    def label(self) -> str:
        """How messages name the case (case_label)."""
        return case_label(case_row(self, 0))


def variants_for(spec: NetSpec, precision: str = "fp32") -> tuple[str, ...]:
    """The data variants that exercise this spec's corners (large logits need softmax, exact zeros need ReLU).
    Not large-logits in bf16/fp16: a logit of 800 carries an absolute error of 800 u (3.1 in bf16, 0.4 in fp16),
    so its softmax has no accuracy to check (the derived tolerance exceeds 1); the same in tf32."""
    return (
        "normal",
        *(("large-logits",) if not spec.loss_fn.squared and not precision_of(precision).reduced else ()),
        *(("exact-zeros",) if spec.hidden == "relu" else ()),
    )


@dataclass
class Matrix:
    """What to check; the defaults are the full configuration matrix on small, all-distinct sizes."""

    hidden: tuple[str, ...] = HIDDEN_ACTIVATIONS
    output: tuple[str, ...] = OUTPUT_ACTIVATIONS
    loss: tuple[str, ...] = LOSSES
    l2: tuple[float, ...] = (0.0, 0.1)
    # (D, H, C): all different, so a misshapen gradient is named by its shape; and all equal, so a transposed
    # product still runs (instead of crashing inside the user's code) and is named by its wrong values.
    sizes: tuple[tuple[int, int, int], ...] = ((5, 4, 3), (4, 4, 4))
    batches: tuple[int, ...] = (1, 7, 64)
    dtypes: tuple[str, ...] = ("float32", "float64")
    devices: tuple[str, ...] = ("cpu",)
    steps: int = 4
    sgd: SGD = field(default_factory=lambda: SGD(lr=0.1, momentum=0.9))
    seed: int = 0
    full: bool = False  # False: implementations that compile get a covering subset (compiles cost seconds)
    variants: tuple[str, ...] = VARIANTS
    per_sample: bool = False  # check per-sample gradients (N, ...) instead of loss, batch gradients and trajectory
    precision: str = "fp32"  # a name of impls.precision.PRECISIONS; a reduced one runs float32 cases only
    allow_emulated: bool = False  # run a low precision the hardware lacks (software emulation) to check the arithmetic

    def specs(self, sizes: tuple[tuple[int, int, int], ...] | None = None) -> list[NetSpec]:
        """Every sensible combination of the chosen activations, losses and L2 values, for each size."""
        return [
            s
            for D, H, C in (sizes or self.sizes)
            for s in all_specs(D, H, C, self.l2)
            if s.hidden in self.hidden and s.output in self.output and s.loss in self.loss
        ]

    def cases(self, impl: str, compiles: bool = False) -> Iterator[Case]:
        """The cases for one implementation; compiling ones get every output/loss pair once unless full."""
        specs = self.specs()
        batches = self.batches
        if compiles and not self.full:
            specs = covering_subset(self.specs(self.sizes[:1]))
            batches = tuple(sorted(set(batches)))[:2]
        reduced = precision_of(self.precision).reduced
        dtypes = tuple(d for d in self.dtypes if d == "float32") if reduced else self.dtypes
        for spec, n, dtype, device in itertools.product(specs, batches, dtypes, self.devices):
            for variant in variants_for(spec, self.precision):
                if variant in self.variants:
                    check = "per_sample" if self.per_sample else "batch"
                    yield Case(impl, spec, n, dtype, device, variant, self.precision, check)


def covering_subset(specs: list[NetSpec]) -> list[NetSpec]:
    """One spec per (output, loss) pair; the hidden activation rotates and L2 alternates, so every option appears."""
    groups: dict[tuple[str, str], list[NetSpec]] = {}
    for s in specs:
        groups.setdefault((s.output, s.loss), []).append(s)
    chosen = []
    for i, group in enumerate(groups.values()):
        hiddens = sorted({s.hidden for s in group}, key=HIDDEN_ACTIVATIONS.index)
        l2s = sorted({s.l2 for s in group})
        want = (hiddens[i % len(hiddens)], l2s[i % len(l2s)])
        chosen.append(next(s for s in group if (s.hidden, s.l2) == want))
    return chosen


@dataclass
class CaseData:
    """Float64 parameters and one (x, t) batch per trajectory step; the gradient check uses the first batch."""

    params: dict[str, Tensor]
    batches: list[tuple[Tensor, Tensor]]
    curvature: float = 1.0  # how much the data scale the loss's curvature; the trajectory's lr is divided by it


def case_data(case: Case, matrix: Matrix) -> CaseData:
    """The case's data in float64 on the CPU, reproducible from the matrix's seed (see the module docstring)."""
    spec, n, seed = case.spec, case.n, matrix.seed
    p = init_params(spec, seed=seed, dtype=torch.float64)
    batches = [make_batch(spec, n, seed=seed + 1 + k, dtype=torch.float64) for k in range(matrix.steps)]
    if spec.loss_fn.labels:  # class labels (C = 2 too: one batch all class 0, one all class 1)
        # step 2 lacks the last class, step 3 lacks class 0 (a one-hot/bincount without the class count breaks)
        for k, shift in ((1, 0), (2, 1)):
            if k < len(batches):
                x, t = batches[k]
                batches[k] = (x, shift + t % (spec.C - 1))
    curvature = 1.0
    if case.variant == "large-logits":
        x, t = batches[0]
        z = activate(spec.hidden, x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]  # (N, C)
        extreme = z.flatten()[z.abs().argmax()]
        scale = LARGE_LOGIT / float(extreme)  # signed: the extreme logit becomes +LARGE_LOGIT
        p["W2"], p["b2"] = p["W2"] * scale, p["b2"] * scale
        t = t.clone()
        if spec.loss_fn.labels:
            t[0] = (int((z[0] * scale).argmax()) + 1) % spec.C  # a wrong argmax: the gradient is not ~0 everywhere
        else:  # binary: the output at +800 (sigmoid = 1) labelled 0, where log(1 - y) of a saturated y is -inf
            t.view(-1)[int(z.abs().argmax())] = 0.0
        batches[0] = (x, t)
        curvature = scale * scale  # the loss's Hessian in W1 grows with |W2|^2
    elif case.variant == "exact-zeros":
        g = torch.Generator().manual_seed(seed + 100)
        p["W1"] = torch.randint(-4, 5, p["W1"].shape, generator=g).double() / 4  # multiples of 1/4 in [-1, 1]
        p["b1"] = torch.randint(-4, 5, p["b1"].shape, generator=g).double() / 4
        batches = [(torch.randint(-1, 2, x.shape, generator=g).double(), t) for x, t in batches]  # x in {-1, 0, 1}
        # sums of multiples of 1/4 are exact in any order, so a1[0, 0] is exactly 0.0 in every implementation
        p["b1"][0] = -(batches[0][0][0] @ p["W1"][0])
    return CaseData(p, batches, curvature)


def case_row(case: Case, threads: int, **fields: object) -> dict:
    """A row of the case (reports.record.VerificationRecord's fields but the run's provenance); `fields` fill the
    quantity, status and errors."""
    s = case.spec
    base = {
        "impl": case.impl,
        "check": case.check,
        "hidden": s.hidden,
        "output": s.output,
        "loss": s.loss,
        "l2": s.l2,
        "D": s.D,
        "H": s.H,
        "C": s.C,
        "N": case.n,
        "dtype": case.dtype,
        "precision": case.precision,
        "device": case.device,
        "variant": case.variant,
        "threads": threads,
    }
    return {**base, **fields}


def error_row(case: Case, problem: str, status: Status = Status.ERROR) -> dict:
    """One row standing for the whole case: an error (crash, timeout, dead process) or 'unsupported'."""
    return case_row(case, torch.get_num_threads(), quantity="-", status=status, problem=problem)


def case_label(row: dict | object) -> str:
    """'sigmoid/identity sse l2=0 5-4-3 N=7 float32 cpu' (+ the precision and variant when not the default) of a
    row (a dict or a pandas row with the case's fields): the one way a case is named in every message."""
    r = row if isinstance(row, dict) else dict(row)
    dtype = f"{r['dtype']}/{r['precision']}" if precision_of(r["precision"]).reduced else r["dtype"]
    text = f"{r['hidden']}/{r['output']} {r['loss']} l2={r['l2']:g} {r['D']}-{r['H']}-{r['C']} N={r['N']} {dtype}"
    text += f" {r['device']}"
    return text if r["variant"] == "normal" else f"{text} {r['variant']}"


@dataclass
class Outputs:
    """What an implementation returned for a case, in a form that crosses a process boundary: its first step's
    loss and gradients, its parameters after the whole trajectory, and what train(x, t, K) on the first batch
    returned (the K losses) and left (the parameters) from the same start (tensors on the CPU, anything else as a
    description). The verdict is made from these by judge(), in the checker's process."""

    threads: int
    loss: object = None
    grads: dict[str, object] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    train_loss: object = None  # None: train() is the inherited loop over step(), which the trajectory checks
    train: dict[str, object] = field(default_factory=dict)
    update_skipped: str = ""
    hints: dict[str, str] = field(default_factory=dict)  # quantity -> what the layout's adapter saw (a plug-in's)
    status: Status = Status.OK  # OK, UNSUPPORTED or ERROR: FAIL is judge()'s to give
    problem: str = ""


def _portable(value: object) -> object:
    """A CPU copy of a tensor (outputs may be overwritten by the next step), else a Returned description."""
    if isinstance(value, Tensor):
        return value.detach().to("cpu", copy=True)
    return None if value is None else Returned(value)


def case_tensors(case: Case, matrix: Matrix) -> tuple[dict[str, Tensor], list[tuple[Tensor, Tensor]], SGD]:
    """The case's parameters and batches in its dtype and on its device, and the trajectory's SGD."""
    data = case_data(case, matrix)
    dtype = DTYPES[case.dtype]
    p = {k: v.to(dtype=dtype, device=case.device) for k, v in data.params.items()}
    batches = [
        (x.to(dtype=dtype, device=case.device), t.to(case.device, dtype if t.is_floating_point() else t.dtype))
        for x, t in data.batches
    ]
    return p, batches, trajectory_sgd(matrix.sgd, case.spec, case.n, data.curvature)


def execute(case: Case, cls: type[Implementation], matrix: Matrix) -> Outputs:
    """Run the implementation on the case: one step (loss, gradients), then the rest of the trajectory."""
    out = Outputs(threads=torch.get_num_threads())
    p, batches, sgd = case_tensors(case, matrix)
    try:
        impl = build(cls, case.spec, p, sgd, case.precision, matrix.allow_emulated)
        if matrix.per_sample:
            grads = impl.per_sample_grads(*batches[0])
            out.grads = {k: _portable(grads.get(k)) for k in QUANTITIES[1:]}
            return out
        loss, grads = impl.step(*batches[0])
        if not isinstance(grads, dict):
            raise TypeError(f"step must return (loss, dict of gradients), got {type(grads).__name__} for the grads")
        out.loss, out.grads = _portable(loss), {k: _portable(grads.get(k)) for k in QUANTITIES[1:]}
        out.update_skipped = getattr(impl, "update_skipped", "")
        out.hints = dict(getattr(impl, "hints", {}))
        if not out.update_skipped:
            for x, t in batches[1:]:
                impl.step(x, t)
            out.params = {k: _portable(v) for k, v in impl.params().items()}
            if cls.train is not Implementation.train:  # its own K-step path: checked from the same start
                fresh = build(cls, case.spec, case_tensors(case, matrix)[0], sgd, case.precision, matrix.allow_emulated)
                out.train_loss = _portable(fresh.train(*batches[0], len(batches)))  # K steps on the first batch
                out.train = {k: _portable(v) for k, v in fresh.params().items()}
    except (UnsupportedConfig, NotImplementedError) as exc:
        out.status, out.problem = Status.UNSUPPORTED, _line(exc)
    except (CompileError, CaseError) as exc:
        out.status, out.problem = Status.ERROR, _line(exc)
    except Exception as exc:  # noqa: BLE001 - a crash in the implementation is a failed check, reported in one line
        out.status, out.problem = Status.ERROR, crash_line(exc)
    return out


def judge(case: Case, matrix: Matrix, out: Outputs) -> list[dict]:
    """Compare an implementation's outputs with the float64 oracle: a row per quantity, plus the trajectory."""
    if out.status != Status.OK:
        return [case_row(case, out.threads, quantity="-", status=out.status, problem=out.problem)]
    if matrix.per_sample:
        return judge_per_sample(case, matrix, out)
    rows = _judge(case, matrix, out)
    if case.variant == "exact-zeros" and case.spec.hidden == "relu" and any(r["status"] != Status.OK for r in rows):
        other = _judge(case, matrix, out, {"relu_zero": 1.0})  # relu'(0) = 1: a >= 0, a subgradient as good as 0
        if all(r["status"] == Status.OK for r in other):
            return [{**r, "problem": RELU_ZERO_WORDS} for r in other]
    bad_loss = any(r["quantity"] == "loss" and r["status"] != Status.OK for r in rows)
    if bad_loss and case.variant == "large-logits" and (words := _capped(case, matrix, out)):
        for r in rows:
            if r["quantity"] == "loss" and r["status"] == Status.FAIL:
                r["problem"] = f"{r['problem'].split('; hint:')[0]}; hint: {words}"
                r[CAPPED] = True
                r.pop(CAUSE, None)
    if bad_loss and case.variant != "large-logits" and (eps := _log_eps(case, matrix, out)):
        said = f"{eps:g}".replace("e-0", "e-")  # 1e-7, as code writes it
        tried = {}
        for eps_grads, which in ((False, "exact"), (True, "guarded")):
            other = _judge(case, matrix, out, {"log_eps": eps, "eps_grads": eps_grads})
            tried[which] = other
            if all(r["status"] == Status.OK for r in other):
                return [{**r, "problem": LOG_EPS_WORDS.format(eps=said, which=which)} for r in other]
        if any(r["quantity"] == "loss" and r["status"] == Status.OK for r in tried["exact"]):
            # the exact loss's gradients are judged as before: the loss alone was the guard, the rest is a bug
            words = LOG_EPS_WORDS.format(eps=said, which="exact")
            return [{**r, "problem": words} if r["quantity"] == "loss" else r for r in tried["exact"]]
    return rows


def _loss_and_guarded(case: Case, matrix: Matrix, out: Outputs) -> tuple[float, Callable[[float], float]] | None:
    """The loss the code returned and the oracle's on the case's first batch as a function of a guard eps inside the
    log (-log(p + eps); 0: the exact loss), which _log_eps and _capped compare; None where the loss is no
    cross-entropy or not one number."""
    if case.spec.loss_fn.kind == "squared" or not isinstance(out.loss, Tensor) or out.loss.numel() != 1:
        return None
    data = case_data(case, matrix)
    p64 = {k: v.numpy() for k, v in data.params.items()}
    x, t = (v.numpy() for v in data.batches[0])

    def guarded(eps: float) -> float:
        return oracle.loss_and_grads(p64, x, t, case.spec, log_eps=eps)[0]

    return float(out.loss), guarded


def _log_eps(case: Case, matrix: Matrix, out: Outputs) -> float:
    """The eps of a loss written -log(p + eps) (LOG_EPS_WORDS), estimated from how far the returned loss is from the
    oracle's and how the oracle's moves with eps (linear while eps << p), to one significant digit; 0 where the
    loss is no cross-entropy, not a finite number, or no such eps in (0, MAX_LOG_EPS] explains it."""
    if (found := _loss_and_guarded(case, matrix, out)) is None:
        return 0.0
    got, guarded = found
    probe = 1e-6
    exact = guarded(0.0)
    slope = (guarded(probe) - exact) / probe
    if not np.isfinite(got) or not slope:
        return 0.0
    eps = (got - exact) / slope
    if not 0 < eps <= MAX_LOG_EPS:
        return 0.0
    return float(f"{eps:.0e}")


def _capped(case: Case, matrix: Matrix, out: Outputs) -> str:
    """CAP_WORDS where the loss at the logit-800 data is finite and below the exact one by more than a guard of
    MAX_LOG_EPS explains (eps by bisection on log10 eps: the oracle's guarded loss falls as eps grows), else ""."""
    if (found := _loss_and_guarded(case, matrix, out)) is None:
        return ""
    got, guarded = found
    lo, hi = np.log10(MAX_LOG_EPS), 0.0  # log10 eps: guarded(10^lo) > got; past eps = 1 the cap is called 1
    if not np.isfinite(got) or not got < guarded(10.0**lo):
        return ""
    if guarded(10.0**hi) <= got:
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if guarded(10.0**mid) > got else (lo, mid)
    said = f"{10.0**hi:.0e}".replace("e-0", "e-").replace("e+00", "")
    return CAP_WORDS.format(got=got, exact=guarded(0.0), eps=said, most=MAX_LOG_EPS)


def _judge(case: Case, matrix: Matrix, out: Outputs, conv: dict | None = None) -> list[dict]:
    """judge() against the oracle under a convention (`conv`: oracle.loss_and_grads' relu_zero, log_eps,
    eps_grads; none by default)."""
    conv = conv or {}
    spec, dtype = case.spec, DTYPES[case.dtype]
    data = case_data(case, matrix)
    p64 = {k: v.numpy() for k, v in data.params.items()}
    b64 = [(x.numpy(), t.numpy()) for x, t in data.batches]
    kappa: dict[str, float] = {}
    ref_loss, ref_grads = oracle.loss_and_grads(p64, *b64[0], spec, kappa=kappa, **conv)
    ref = {"loss": ref_loss, **ref_grads}
    ref32 = None
    if dtype == torch.float32 and not precision_of(case.precision).reduced:
        l32, g32 = oracle.loss_and_grads(p64, *b64[0], spec, dtype=np.float32)
        ref32 = {"loss": l32, **g32}
    got = {"loss": out.loss, **out.grads}
    rows, tols, checks = [], [], []
    for q in QUANTITIES:
        tol = tolerance(dtype, spec.D, spec.H, spec.C, case.n, kappa[q], case.precision)
        tols.append(tol)
        checks.append(with_hint(compare(q, got.get(q), ref[q], tol, dtype=dtype), got.get(q), ref[q], case, p64))
    failed = {c.quantity for c in checks if not c.ok}
    arrays = {q: got[q].detach().to("cpu", torch.float64).numpy() if isinstance(got.get(q), Tensor) else None
              for q in QUANTITIES}  # fmt: skip
    fitted = dict(zip(QUANTITIES, tols, strict=True))
    if case.variant == "large-logits" and not np.isfinite(arrays["loss"] if arrays["loss"] is not None else 0).all():
        fitted.pop("loss")  # -log(p[y]) underflowing there is its own verdict (fragile); the gradients still tell
    slip = explain(arrays, fitted, failed & set(fitted), p64, *b64[0], spec)
    cause = ""
    if case.variant == "large-logits" and failed and not out.hints and not slip:
        cause = large_logits_cause(spec.loss_fn.kind == "binary", arrays, failed)
    for c in checks:
        misshapen = c.problem.startswith("shape ")  # a shape says nothing about the activation's derivative
        if not c.ok and out.hints.get(c.quantity):  # what the adapter saw happen beats what the numbers suggest
            c.problem = f"{c.problem.split('; hint:')[0]}; hint: {out.hints[c.quantity]}"
        elif not c.ok and slip:  # the numbers equal a named slip: that says more than any single quantity's hint
            c.problem = f"{c.problem.split('; hint:')[0]}; hint: {slip}"
        elif (
            not c.ok and c.quantity in ("W1", "b1") and "hint:" not in c.problem and not misshapen and case_hint(failed)
        ):
            c.problem += f"; hint: {case_hint(failed)}"
        ref32_err = compare(c.quantity, ref32[c.quantity], ref[c.quantity], c.tol).max_rel_err if ref32 else None
        rows.append(_row(case, out.threads, c, ref32_err=ref32_err))
        if cause and not c.ok:  # words for settle_fragile, which alone knows whether every ordinary case is right
            rows[-1][CAUSE] = cause
    tol = trajectory_tolerance(dtype, max(tols), len(b64))
    if out.update_skipped:
        traj = Check("trajectory", float("nan"), float("nan"), tol, False, out.update_skipped)
    else:
        sgd = trajectory_sgd(matrix.sgd, spec, case.n, data.curvature)
        _, ref_p = oracle.sgd_trajectory(p64, b64, spec, sgd.lr, sgd.momentum, **conv)
        checks = [compare(k, out.params.get(k), ref_p[k], tol, dtype=dtype) for k in oracle.NAMES]
        worst = max(checks, key=lambda c: (not c.ok, c.max_rel_err if np.isfinite(c.max_rel_err) else np.inf))
        problem = "" if worst.ok else f"{worst.quantity} after {len(b64)} steps: {worst.problem}"
        if not worst.ok and not failed:
            problem += f"; hint: {STATEFUL_HINT}"
        traj = Check("trajectory", worst.max_abs_err, worst.max_rel_err, tol, worst.ok, problem)
    rows.append(_row(case, out.threads, traj, None))
    if cause and not traj.ok:
        rows[-1][CAUSE] = cause
    if out.train_loss is not None or out.train:
        rows.append(_row(case, out.threads, judge_train(spec, dtype, matrix, data, out, tol, conv), None))
    return rows


def with_hint(check: Check, got: object, ref: np.ndarray, case: Case, p64: dict[str, np.ndarray]) -> Check:
    """The check, its problem followed by what the numbers say in words where they say it (verification.hints)."""
    if check.ok:
        return check
    if got is None:
        check.problem += "; hint: no gradient came back (a tensor detached from the graph?)"
        return check
    if not isinstance(got, Tensor):
        return check
    g = got.detach().to("cpu", torch.float64).numpy()
    r = np.asarray(ref, dtype=np.float64)
    words = shape_hint(g.shape, r.shape, case.n) if g.shape != r.shape else ""
    words = words or value_hint(check.quantity, g, r, check.tol, case.n, case.spec.l2, p64.get(check.quantity))
    if words:
        check.problem += f"; hint: {words}"
    return check


def judge_train(
    spec: NetSpec,
    dtype: torch.dtype,
    matrix: Matrix,
    data: CaseData,
    out: Outputs,
    tol: float,
    conv: dict | None = None,
) -> Check:
    """train(x, t, K) on the first batch: its K losses and final parameters against the oracle's K steps on that
    batch, at the trajectory's tolerance (the K-th loss comes after K - 1 updates)."""
    k = len(data.batches)
    if out.update_skipped:
        return Check("train", float("nan"), float("nan"), tol, False, out.update_skipped)
    x, t = data.batches[0]
    sgd = trajectory_sgd(matrix.sgd, spec, x.shape[0], data.curvature)
    p64 = {name: v.numpy() for name, v in data.params.items()}
    ref_losses, ref_p = oracle.sgd_trajectory(
        p64, [(x.numpy(), t.numpy())] * k, spec, sgd.lr, sgd.momentum, **(conv or {})
    )
    checks = [compare("losses", out.train_loss, np.asarray(ref_losses), tol, dtype=dtype)]
    checks += [compare(name, out.train.get(name), ref_p[name], tol, dtype=dtype) for name in oracle.NAMES]
    worst = max(checks, key=lambda c: (not c.ok, c.max_rel_err if np.isfinite(c.max_rel_err) else np.inf))
    problem = "" if worst.ok else f"{worst.quantity} of train(x, t, {k}): {worst.problem}"
    return Check("train", worst.max_abs_err, worst.max_rel_err, tol, worst.ok, problem)


def judge_per_sample(case: Case, matrix: Matrix, out: Outputs) -> list[dict]:
    """Each sample's gradient against the oracle's, normwise per sample (a small gradient of one sample is not
    hidden by a large one of another). The tolerance is the derived bound without the batch sum (n = 1), with
    the worst condition number over the samples."""
    spec, dtype = case.spec, DTYPES[case.dtype]
    data = case_data(case, matrix)
    x, t = data.batches[0]
    kappa: dict[str, float] = {}
    ref = oracle.per_sample_grads({k: v.numpy() for k, v in data.params.items()}, x.numpy(), t.numpy(), spec, kappa)
    rows = []
    for q in QUANTITIES[1:]:
        tol = tolerance(dtype, spec.D, spec.H, spec.C, 1, kappa[q])
        rows.append(_row(case, out.threads, compare_per_sample(q, out.grads.get(q), ref[q], tol, dtype), None))
    return rows


def compare_per_sample(q: str, got: object, ref: np.ndarray, tol: float, dtype: torch.dtype) -> Check:
    """compare() for the whole (N, ...) array's type, dtype and shape, then per sample; the worst sample's."""
    whole = compare(q, got, ref, np.inf, dtype=dtype)
    if not whole.ok:
        return Check(q, whole.max_abs_err, whole.max_rel_err, tol, False, whole.problem)
    checks = [compare(q, got[i], ref[i], tol, dtype=dtype) for i in range(ref.shape[0])]
    i = max(range(len(checks)), key=lambda j: checks[j].max_rel_err)
    worst = checks[i]
    return Check(
        q, worst.max_abs_err, worst.max_rel_err, tol, worst.ok, "" if worst.ok else f"sample {i}: {worst.problem}"
    )


def run_case(case: Case, cls: type[Implementation], matrix: Matrix) -> list[dict]:
    """Run one case in this process and judge it against the oracle."""
    return judge(case, matrix, execute(case, cls, matrix))


#: where a frame is not the user's: an installed library, the standard library, the checker's own packages
_OWN = Path(__file__).resolve().parents[1]
_NOT_USERS = tuple(
    {str(Path(p).resolve()) + "/" for p in (sys.prefix, sys.base_prefix, _OWN / "impls", _OWN / "verification",
                                             _OWN / "reports")}
)  # fmt: skip


def crash_line(exc: BaseException) -> str:
    """'TypeError: message (at file.py:12)': the exception and where, in the user's code, it was raised -- the
    innermost frame of the user's, and the library's frame it reached when the error rose inside a library
    ('(at fromnumeric.py:88, from hw.py:42)')."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return f"{type(exc).__name__}: {_line(exc)}"
    users = [f for f in tb if not str(Path(f.filename).resolve()).startswith(_NOT_USERS) and f.filename[:1] != "<"]
    at = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}"
    if users and users[-1] is not tb[-1]:
        at += f", from {Path(users[-1].filename).name}:{users[-1].lineno}"
    return f"{type(exc).__name__}: {_line(exc)} (at {at})"


def trajectory_sgd(sgd: SGD, spec: NetSpec, n: int, curvature: float = 1.0) -> SGD:
    """Summed losses (sse, half_sse) grow with N, so their step size is lr/N: every trajectory then takes steps
    of the same size and stays in the stable regime where the first-order error bound holds (lr 0.1, momentum
    0.9 on a 64-sample sse batch diverges, and a diverging trajectory amplifies any rounding difference).
    Data that scale the loss's curvature (large logits) divide the step size by that factor for the same reason."""
    lr = sgd.lr if spec.loss_fn.over_n else sgd.lr / n
    return SGD(lr / curvature, sgd.momentum)


def _row(case: Case, threads: int, c: Check, ref32_err: float | None) -> dict:
    return case_row(
        case,
        threads,
        quantity=c.quantity,
        status=Status.OK if c.ok else Status.FAIL,
        max_abs_err=c.max_abs_err,
        max_rel_err=c.max_rel_err,
        tol=c.tol,
        ref32_rel_err=ref32_err,
        problem=c.problem,
    )


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class InProcess:
    """Runs a registered (trusted) implementation's cases in this process."""

    def __init__(
        self, cls: type[Implementation], layout: str = "", options: object = None, rebuild: object = None
    ) -> None:
        self.cls = cls
        self.compiles = cls.compiles
        self.layout, self.options, self._rebuild = layout, options, rebuild  # a user's code: its form and options

    def with_options(self, options: object) -> InProcess:
        """The same code under other options (a convention: verification.conventions)."""
        return InProcess(self._rebuild(options), self.layout, options, self._rebuild)  # type: ignore[operator]

    def run(self, case: Case, matrix: Matrix) -> list[dict]:
        return run_case(case, self.cls, matrix)

    def close(self) -> None:
        """Nothing to release."""


Executor = InProcess  # or verification.isolate.Isolated: .compiles, .run(case, matrix) -> rows, .close()


def run(
    executors: dict[str, Executor], matrix: Matrix, progress: bool = True, notes: list[str] | None = None
) -> tuple[list[dict], list[Case]]:
    """Every planned case of every implementation, with a progress bar on a terminal; returns rows and the plan, the
    conventions (verification.conventions) and fragile numerics (settle_fragile) settled; what a convention changed
    is appended to `notes`."""
    from tqdm import tqdm

    plan = [(c, ex) for name, ex in executors.items() for c in matrix.cases(name, ex.compiles)]
    rows: list[dict] = []
    with tqdm(plan, desc="verifying", unit="case", disable=None if progress else True) as bar:
        for case, ex in bar:
            bar.set_postfix_str(f"{case.impl} {case.spec.hidden}/{case.spec.output} {case.spec.loss}", refresh=False)
            rows.extend(ex.run(case, matrix))
    from verification.conventions import settle_l2

    cases = [c for c, _ in plan]
    rows, said = settle_l2(rows, cases, executors, matrix)
    if notes is not None:
        notes.extend(said)
        notes.extend(accepted(rows))
    return settle_fragile(rows), cases


def accepted(rows: list[dict]) -> list[str]:
    """One note per implementation and convention a case was accepted under (ACCEPTED): 'impl: in N cases, ...'."""
    counts: dict[tuple[str, str], set] = {}
    for r in rows:
        if Status(r["status"]) == Status.OK and str(r["problem"]).startswith(ACCEPTED):
            counts.setdefault((r["impl"], str(r["problem"])), set()).add(tuple(r[k] for k in CASE_KEY))
    return [f"{impl}: in {len(cases)} cases, {words}" for (impl, words), cases in counts.items()]


def settle_fragile(rows: list[dict]) -> list[dict]:
    """The one rule for fragile numerics (FRAGILE_WORDS): per implementation, when every ordinary case (not
    large-logits) that was checked is right and one was, the failed checks of its large-logits cases are FRAGILE,
    their cause in the hint; otherwise they stay failures. Errors (a crash) are never fragile."""
    out = [dict(r) for r in rows]
    causes = [r.pop(CAUSE, "") for r in out]
    capped = [r.pop(CAPPED, False) for r in out]
    for impl in dict.fromkeys(r["impl"] for r in out):
        mine = [(r, c, k) for r, c, k in zip(out, causes, capped, strict=True) if r["impl"] == impl]
        ordinary = [r for r, *_ in mine if r["variant"] != "large-logits"]
        right = any(Status(r["status"]).checked for r in ordinary) and not any(
            Status(r["status"]).bad for r in ordinary
        )
        if not right:
            continue
        for r, cause, cap in mine:
            if r["variant"] == "large-logits" and Status(r["status"]) == Status.FAIL and not cap:
                problem = f"{r['problem'].split('; hint:')[0]}; hint: {cause}" if cause else r["problem"]
                r["status"], r["problem"] = Status.FRAGILE, f"{FRAGILE_WORDS}: {problem}"
    return out


def missing_cases(rows: list[dict], plan: list[Case]) -> list[Case]:
    """Planned cases with no row: a verdict needs every one of them to have reported back."""
    seen = {tuple(r[k] for k in CASE_KEY) for r in rows}
    return [c for c in plan if tuple(error_row(c, "")[k] for k in CASE_KEY) not in seen]


def parse_list(text: str, allowed: Iterable[str] | None = None, what: str = "value") -> tuple[str, ...]:
    """Split 'a,b' and check each item against `allowed` (ValueError names the bad one and the choices)."""
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    if not items:
        raise ValueError(f"empty {what} list")
    if allowed is not None:
        allowed = tuple(allowed)
        for it in items:
            if it not in allowed:
                raise ValueError(f"unknown {what} {it!r}; choose from {', '.join(allowed)}")
    return items
