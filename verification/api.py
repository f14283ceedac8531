"""check_backprop(): the verifier as a Python call, for a user's own test suite.

    from verification import check_backprop
    check_backprop(TwoLayerNet, layout="cs231n")     # raises AssertionError naming what is wrong

It runs the same matrix as `python -m verification` (narrowed by the keyword arguments), compares with the same
float64 oracle at the same derived tolerances, and returns a typed Report; when anything fails, errs or does not
report back it raises an AssertionError whose message is the per-parameter table -- error, tolerance, and a hint in
words where the numbers allow one. In this process by default (it is the caller's own code); isolated=True runs it
in a child process like the command line does (a function importable by module and name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
from reports.record import BAD, VERIFICATION_COLUMNS, Status, VerificationRecord, status_is
from verification.layouts import LAYOUTS
from verification.plugin import function_class
from verification.report import concentration, verdict
from verification.runner import VARIANTS, InProcess, Matrix, case_label, missing_cases, run


@dataclass(frozen=True)
class Report:
    """What check_backprop found: a row per compared quantity of every case, the verdict line, and whether it holds."""

    rows: pd.DataFrame  # reports.record.VerificationRecord columns
    verdict: str
    ok: bool

    def failures(self, limit: int = 20) -> str:
        """The per-parameter table of what failed: case, quantity, error, tolerance, problem (with its hint)."""
        bad = self.rows[status_is(self.rows["status"], Status.FAIL, Status.ERROR)]
        lines = [f"{'case':<58} {'quantity':<10} {'rel. error':>10} {'tolerance':>10}  problem"]
        for _, r in bad.head(limit).iterrows():
            err = "-" if pd.isna(r["max_rel_err"]) else f"{r['max_rel_err']:.3g}"
            tol = "-" if pd.isna(r["tol"]) else f"{r['tol']:.3g}"
            lines.append(f"{case_label(r):<58} {r['quantity']:<10} {err:>10} {tol:>10}  {r['problem']}")
        if len(bad) > limit:
            lines.append(f"... and {len(bad) - limit} more failed or errored checks (report.rows has every row)")
        return "\n".join([*concentration(self.rows), *lines])


def check_backprop(
    fn: object,
    *,
    layout: str = "linear",
    hidden: Sequence[str] = HIDDEN_ACTIVATIONS,
    output: Sequence[str] = OUTPUT_ACTIVATIONS,
    loss: Sequence[str] = LOSSES,
    l2: Sequence[float] = (0.0, 0.1),
    sizes: Sequence[tuple[int, int, int]] = ((5, 4, 3), (4, 4, 4)),
    batches: Sequence[int] = (1, 7, 64),
    dtype: Sequence[str] = ("float32", "float64"),
    device: Sequence[str] = ("cpu",),
    variants: Sequence[str] = VARIANTS,
    loss_fn: Callable | None = None,
    name: str | None = None,
) -> Report:
    """Check `fn` (written in `layout`) against the float64 oracle; the Report, or an AssertionError whose message is
    the per-parameter table. Single strings are accepted where sequences are (hidden="relu")."""
    __tracebackhide__ = True  # pytest: the failure shows the user's test line and the table, not this function
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    one = LAYOUTS[layout]
    user = one.user_fn(fn, loss_fn) if layout == "module" else one.user_fn(fn)
    label = name or getattr(fn, "__qualname__", None) or type(fn).__name__
    matrix = Matrix(
        _seq(hidden), _seq(output), _seq(loss), tuple(float(v) for v in _seq(l2)), tuple(map(tuple, sizes)),
        tuple(_seq(batches)), _seq(dtype), _seq(device), variants=_seq(variants),
    )  # fmt: skip
    if not matrix.specs():
        raise ValueError("no sensible configuration in that selection (cross_entropy needs output identity)")
    cls = function_class(user, label)
    rows, plan = run({label: InProcess(cls)}, matrix, progress=False)
    source = {"run": "check_backprop", "commit": "", "torch": torch.__version__, "cpu_model": "", "gpu_name": ""}
    records = [VerificationRecord(**row, **source) for row in rows]
    df = pd.DataFrame([r.__dict__ for r in records], columns=list(VERIFICATION_COLUMNS))
    df["status"] = df["status"].map(str)
    line, code = verdict(df, plan, missing_cases(rows, plan), "")
    report = Report(df, line, code == 0)
    if not report.ok:
        raise BackpropMismatch(report)
    return report


class BackpropMismatch(AssertionError):
    """check_backprop's failure: the message is the verdict and the per-parameter table; .report has every row."""

    def __init__(self, report: Report) -> None:
        self.report = report
        unsupported = report.rows[status_is(report.rows["status"], Status.UNSUPPORTED)]
        why = sorted(set(unsupported["problem"]))[:3]
        note = f"\nunsupported here: {'; '.join(why)}" if why else ""
        bad = report.rows["status"].isin(BAD).any()
        super().__init__(f"{report.verdict}\n{report.failures() if bad else ''}{note}".rstrip())


def _seq(value: object) -> tuple:
    return (value,) if isinstance(value, str | int | float) else tuple(value)
