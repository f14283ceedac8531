"""Run implementations against the float64 oracle over a matrix of configurations; one row per compared quantity."""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from impls.base import SGD, CompileError, Implementation, UnsupportedConfig
from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, NetSpec, all_specs, init_params, make_batch
from verification import oracle
from verification.compare import Check, compare, tolerance, trajectory_tolerance

DTYPES = {"float32": torch.float32, "float64": torch.float64}
QUANTITIES = ("loss", "W1", "b1", "W2", "b2")
COLUMNS = (
    "impl",
    "hidden",
    "output",
    "loss_fn",
    "l2",
    "D",
    "H",
    "C",
    "N",
    "dtype",
    "device",
    "quantity",
    "status",
    "max_abs_err",
    "max_rel_err",
    "tol",
    "ref32_rel_err",
    "problem",
)


@dataclass(frozen=True)
class Case:
    """One implementation x configuration x batch size x dtype x device."""

    impl: str
    spec: NetSpec
    n: int
    dtype: str
    device: str


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

    def specs(self, sizes: tuple[tuple[int, int, int], ...] | None = None) -> list[NetSpec]:
        """Every sensible combination of the chosen activations, losses and L2 values, for each size."""
        return [
            s
            for D, H, C in (sizes or self.sizes)
            for s in all_specs(D, H, C, self.l2)
            if s.hidden in self.hidden and s.output in self.output and s.loss in self.loss
        ]

    def cases(self, impl: str, cls: type[Implementation]) -> Iterator[Case]:
        """The cases for one implementation; compiling ones get every output/loss pair once unless full."""
        specs = self.specs()
        batches = self.batches
        if cls.compiles and not self.full:
            specs = covering_subset(self.specs(self.sizes[:1]))
            batches = tuple(sorted(set(batches)))[:2]
        for spec, n, dtype, device in itertools.product(specs, batches, self.dtypes, self.devices):
            yield Case(impl, spec, n, dtype, device)


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


def run_case(case: Case, cls: type[Implementation], matrix: Matrix) -> list[dict]:
    """Compare one case's loss, gradients and K-step trajectory with the oracle; rows for the table/CSV."""
    spec, dtype = case.spec, DTYPES[case.dtype]
    base = {
        "impl": case.impl,
        "hidden": spec.hidden,
        "output": spec.output,
        "loss_fn": spec.loss,
        "l2": spec.l2,
        "D": spec.D,
        "H": spec.H,
        "C": spec.C,
        "N": case.n,
        "dtype": case.dtype,
        "device": case.device,
    }
    p = init_params(spec, seed=matrix.seed, dtype=dtype, device=case.device)
    x, t = make_batch(spec, case.n, seed=matrix.seed + 1, dtype=dtype, device=case.device)
    p64 = {k: v.detach().cpu().double().numpy() for k, v in p.items()}
    x64, t64 = x.cpu().double().numpy(), (t.cpu().numpy() if spec.loss == "cross_entropy" else t.cpu().double().numpy())
    kappa: dict[str, float] = {}
    ref_loss, ref_grads = oracle.loss_and_grads(p64, x64, t64, spec, kappa=kappa)
    ref = {"loss": ref_loss, **ref_grads}
    ref32 = None
    if dtype == torch.float32:
        l32, g32 = oracle.loss_and_grads(p64, x64, t64, spec, dtype=np.float32)
        ref32 = {"loss": l32, **g32}
    sgd = trajectory_sgd(matrix.sgd, spec, case.n)
    try:
        impl = cls(spec, p, sgd)
        loss, grads = impl.step(x, t)
        got = {"loss": loss, **{k: grads.get(k) for k in QUANTITIES[1:]}}
        rows, tols = [], []
        for q in QUANTITIES:
            tol = tolerance(dtype, spec.D, spec.H, spec.C, case.n, kappa[q])
            tols.append(tol)
            check = compare(q, got[q], ref[q], tol)
            ref32_err = compare(q, ref32[q], ref[q], tol).max_rel_err if ref32 else None
            rows.append(_row(base, check, ref32_err=ref32_err))
        rows.append(_row(base, _trajectory(impl, x, t, case, matrix, sgd, p64, x64, t64, max(tols)), None))
        return rows
    except (UnsupportedConfig, NotImplementedError) as exc:
        return [{**base, "quantity": "-", "status": "unsupported", "problem": _line(exc)}]
    except CompileError as exc:
        return [{**base, "quantity": "-", "status": "error", "problem": _line(exc)}]
    except Exception as exc:  # noqa: BLE001 - a crash in the implementation is a failed check, reported in one line
        where = traceback.extract_tb(exc.__traceback__)[-1]
        at = f" (at {Path(where.filename).name}:{where.lineno})"
        return [{**base, "quantity": "-", "status": "error", "problem": f"{type(exc).__name__}: {_line(exc)}{at}"}]


def trajectory_sgd(sgd: SGD, spec: NetSpec, n: int) -> SGD:
    """Summed losses (sse, half_sse) grow with N, so their step size is lr/N: every trajectory then takes steps
    of the same size and stays in the stable regime where the first-order error bound holds (lr 0.1, momentum
    0.9 on a 64-sample sse batch diverges, and a diverging trajectory amplifies any rounding difference)."""
    return SGD(sgd.lr / n, sgd.momentum) if spec.loss in ("sse", "half_sse") else sgd


def _trajectory(impl, x, t, case: Case, matrix: Matrix, sgd: SGD, p64, x64, t64, step_tol: float) -> Check:
    """Take steps 2..K and compare the final parameters with the oracle's K-step trajectory."""
    tol = trajectory_tolerance(DTYPES[case.dtype], step_tol, matrix.steps)
    if getattr(impl, "update_skipped", ""):
        return Check("trajectory", float("nan"), float("nan"), tol, False, impl.update_skipped)
    for _ in range(matrix.steps - 1):
        impl.step(x, t)
    _, ref_p = oracle.sgd_trajectory(p64, x64, t64, case.spec, sgd.lr, sgd.momentum, matrix.steps)
    got = impl.params()
    checks = [compare(k, got.get(k), ref_p[k], tol) for k in oracle.NAMES]
    worst = max(checks, key=lambda c: (not c.ok, c.max_rel_err if np.isfinite(c.max_rel_err) else np.inf))
    problem = "" if worst.ok else f"{worst.quantity} after {matrix.steps} steps: {worst.problem}"
    return Check("trajectory", worst.max_abs_err, worst.max_rel_err, tol, worst.ok, problem)


def _row(base: dict, c: Check, ref32_err: float | None) -> dict:
    return {
        **base,
        "quantity": c.quantity,
        "status": "ok" if c.ok else "FAIL",
        "max_abs_err": c.max_abs_err,
        "max_rel_err": c.max_rel_err,
        "tol": c.tol,
        "ref32_rel_err": ref32_err,
        "problem": c.problem,
    }


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run(impls: dict[str, type[Implementation]], matrix: Matrix, progress: bool = True) -> list[dict]:
    """Every case of every implementation, with a progress bar on a terminal."""
    from tqdm import tqdm

    cases = [(c, cls) for name, cls in impls.items() for c in matrix.cases(name, cls)]
    rows: list[dict] = []
    with tqdm(cases, desc="verifying", unit="case", disable=None if progress else True) as bar:
        for case, cls in bar:
            bar.set_postfix_str(f"{case.impl} {case.spec.hidden}/{case.spec.output} {case.spec.loss}", refresh=False)
            rows.extend(run_case(case, cls, matrix))
    return rows


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
