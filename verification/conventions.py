"""Conventions, not bugs: code whose every number matches another way of writing the same objective is checked again
under that convention, and passes saying so.

The one convention told apart by its numbers is cs231n's L2 term: the project's `reg * sum W^2` (gradient 2 reg W)
against the older assignments' `0.5 * reg * sum W^2` (gradient reg W). With --l2-convention auto (the default) a
cs231n check runs the project's convention; when its L2 cases fail with the loss and all four gradients equal to
the half convention's (the half_l2 mutant of verification.mutants, to each quantity's tolerance) and every case
without L2 passes, those cases are checked again with reg = 2 l2 -- a whole check of loss, gradients and trajectory,
not a relabelling -- and their rows replace the first ones when every ordinary case of them passes. An explicit
--l2-convention full or half decides alone.
"""

from __future__ import annotations

from dataclasses import replace

from reports.record import Status
from verification.mutants import MUTANTS
from verification.runner import Case, Matrix

HALF_L2_WORDS = next(m.words for m in MUTANTS if m.name == "half_l2")
NOTE = (
    "checked with the older cs231n L2 convention 0.5 * reg * sum W^2 (gradient reg * W): the loss and all four "
    "gradients of every L2 case match it exactly (--l2-convention full fails it, half declares it)"
)


def _key(row: dict) -> tuple:
    return tuple(row[k] for k in ("hidden", "output", "loss", "l2", "D", "H", "C", "N", "dtype", "device", "variant"))


def _case_key(case: Case) -> tuple:
    s = case.spec
    return (s.hidden, s.output, s.loss, s.l2, s.D, s.H, s.C, case.n, case.dtype, case.device, case.variant)


def settle_l2(rows: list[dict], plan: list[Case], executors: dict, matrix: Matrix) -> tuple[list[dict], list[str]]:
    """The rows, with each auto-convention cs231n implementation's L2 cases checked again under the half convention
    where their numbers say it is the code's (the module docstring); and one note line per implementation that it
    applied to."""
    notes = []
    for name, ex in executors.items():
        options = getattr(ex, "options", None)
        if getattr(ex, "layout", "") != "cs231n" or options is None or options.l2_convention != "auto":
            continue
        mine = [r for r in rows if r["impl"] == name]
        plain = [r for r in mine if not r["l2"] and r["variant"] != "large-logits"]  # large logits: settle_fragile
        if not any(HALF_L2_WORDS in str(r["problem"]) for r in mine) or any(Status(r["status"]).bad for r in plain):
            continue
        cases = [c for c in plan if c.impl == name and c.spec.l2]
        half = ex.with_options(replace(options, l2_convention="half"))
        again = [r for c in cases for r in half.run(c, matrix)]
        ordinary = [r for r in again if r["variant"] != "large-logits"]
        if not ordinary or any(Status(r["status"]).bad for r in ordinary):
            continue
        redone = {_case_key(c) for c in cases}
        rows = [r for r in rows if r["impl"] != name or _key(r) not in redone] + again
        notes.append(f"{name}: {NOTE}")
    return rows, notes
