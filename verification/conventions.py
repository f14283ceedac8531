"""Conventions, not bugs: code whose every number matches another way of writing the same objective is checked again
under that convention, and passes saying so.

The conventions told apart by their numbers are cs231n's ways of writing the L2 term: the project's `reg * sum W^2`
(gradient 2 reg W), the older assignments' `0.5 * reg * sum W^2` (gradient reg W), and either one over the biases
too. With --l2-convention auto (the default) a cs231n check runs the project's convention; when its L2 cases fail
with the loss and all four gradients equal to another's (the half_l2, l2_biases or half_l2_biases mutant of
verification.mutants, to each quantity's tolerance) and every case without L2 passes, those cases are checked again
under it -- a whole check of loss, gradients and trajectory, not a relabelling -- and their rows replace the first
ones when every ordinary case of them passes. An explicit --l2-convention decides alone.
"""

from __future__ import annotations

from dataclasses import replace

from reports.record import Status
from verification.mutants import MUTANTS
from verification.runner import Case, Matrix

#: the L2 conventions told apart by their numbers: the mutant whose words a failing row carries -> the convention
BY_MUTANT = {"half_l2": "half", "l2_biases": "full+biases", "half_l2_biases": "half+biases"}
WORDS = {m.words: BY_MUTANT[m.name] for m in MUTANTS if m.name in BY_MUTANT}
SAID = {
    "half": "the older cs231n L2 convention 0.5 * reg * sum W^2 (gradient reg * W)",
    "full+biases": "L2 over the biases too, reg * sum(W^2 + b^2): the bias terms taken back out exactly",
    "half+biases": "L2 0.5 * reg * sum(W^2 + b^2), over the biases too: the bias terms taken back out exactly",
}


def note(convention: str) -> str:
    """The line a check that settled on `convention` prints first."""
    return (
        f"checked with {SAID[convention]}: the loss and all four gradients of every L2 case match it exactly "
        f"(--l2-convention full fails it, {convention} declares it)"
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
        named = [c for words, c in WORDS.items() if any(words in str(r["problem"]) for r in mine)]
        if not named or any(Status(r["status"]).bad for r in plain):
            continue
        cases = [c for c in plan if c.impl == name and c.spec.l2]
        for convention in named:
            other = ex.with_options(replace(options, l2_convention=convention))
            again = [r for c in cases for r in other.run(c, matrix)]
            ordinary = [r for r in again if r["variant"] != "large-logits"]
            if ordinary and not any(Status(r["status"]).bad for r in ordinary):
                redone = {_case_key(c) for c in cases}
                rows = [r for r in rows if r["impl"] != name or _key(r) not in redone] + again
                notes.append(f"{name}: {note(convention)}")
                break
    return rows, notes
