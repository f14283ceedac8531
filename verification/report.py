"""What `python -m verification` prints after the cases ran: the per-implementation table, the failures, where
they concentrate, the unsupported cases with their reasons, and the verdict line (with the exit status)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports.record import BAD, CASE_KEY, CHECKED, Status, status_is
from verification.runner import Case, case_label

#: the options a failure can concentrate on, in the order the summary names them
FACETS = ("hidden", "output", "loss", "l2", "shape", "N", "dtype", "precision", "device", "variant")


def _cases(rows: pd.DataFrame) -> int:
    return len(rows.drop_duplicates(list(CASE_KEY)))


def summarize(df: pd.DataFrame) -> str:
    """Per implementation, in cases: planned, checked and unsupported; in checks (one per compared quantity): ok
    and failed; errors (cases that crashed or timed out); the worst error as a fraction of its tolerance."""
    checked = df[df["status"].isin(CHECKED) & ~status_is(df["status"], Status.FRAGILE)].copy()  # fragile: inf
    checked["err/tol"] = checked["max_rel_err"] / checked["tol"].where(checked["tol"] > 0)
    lines = []
    for impl, g in df.groupby("impl", sort=False):
        c = checked[checked["impl"] == impl]
        lines.append(
            {
                "impl": impl,
                "cases": _cases(g),
                "checked cases": _cases(c),
                "unsupported cases": _cases(g[status_is(g["status"], Status.UNSUPPORTED)]),
                "checks ok": int((status_is(g["status"], Status.OK)).sum()),
                "checks failed": int((status_is(g["status"], Status.FAIL)).sum()),
                "error cases": _cases(g[status_is(g["status"], Status.ERROR)]),
                "worst err/tol": c["err/tol"].max() if len(c) else float("nan"),
            }
        )
    return pd.DataFrame(lines).to_string(index=False, float_format=lambda v: f"{v:.3g}")


def unsupported(df: pd.DataFrame, per_impl: int = 3) -> list[str]:
    """'unsupported: IMPL: reason (n cases)' for the most common reasons of each implementation."""
    u = df[status_is(df["status"], Status.UNSUPPORTED)]
    out = []
    for impl, g in u.groupby("impl", sort=False):
        counts = g.groupby("problem", sort=False).size().sort_values(ascending=False)
        for reason, n in counts.head(per_impl).items():
            why = str(reason).removeprefix(f"{impl}: ")  # exceptions name the implementation already
            out.append(f"unsupported: {impl}: {why} ({n} case{'s' if n != 1 else ''})")
        if len(counts) > per_impl:
            out.append(f"unsupported: {impl}: ... and {len(counts) - per_impl} other reasons")
    return out


def failures(df: pd.DataFrame, csv: Path | None, per_group: int = 3) -> list[str]:
    """Failed checks, a few per (implementation, quantity) so every wrong parameter is named, each line naming
    implementation, configuration, quantity, errors and tolerance (or the reason when there is no error value)."""
    out = []
    fragile = df[status_is(df["status"], Status.FRAGILE)]
    for (impl, problem), group in fragile.groupby(["impl", "problem"], sort=False):
        first = case_label(group.iloc[0])  # one cause, said once: its cases and quantities differ only in size
        more = f" and {_cases(group) - 1} more cases" if _cases(group) > 1 else ""
        quantities = ", ".join(dict.fromkeys(group["quantity"].map(str)))
        out.append(f"FRAGILE {impl} [{first}]{more} {quantities}: {problem}")
    bad = df[df["status"].isin(BAD)]
    bad = bad.iloc[(bad["variant"] == "large-logits").argsort(kind="stable")]  # ordinary data's failures first
    for (impl, quantity), group in bad.groupby(["impl", "quantity"], sort=False):
        for _, r in group.head(per_group).iterrows():
            cfg = case_label(r)
            if Status(r["status"]) == Status.ERROR:
                out.append(f"ERROR {impl} [{cfg}]: {r['problem']}")
            elif pd.isna(r["max_abs_err"]):
                out.append(f"FAIL  {impl} [{cfg}] {quantity}: {r['problem']}")
            else:
                out.append(
                    f"FAIL  {impl} [{cfg}] {quantity}: max abs err {r['max_abs_err']:.3g}, "
                    f"max rel err {r['max_rel_err']:.3g} > tol {r['tol']:.3g} ({r['problem']})"
                )
        if len(group) > per_group:
            what = "errors" if quantity == "-" else f"{quantity} failures"
            where = f" (every row is in {csv})" if csv else " (--csv FILE writes every row)"
            out.append(f"      ... {len(group) - per_group} more {impl} {what}{where}")
    return out


def concentration(df: pd.DataFrame) -> list[str]:
    """Per implementation with failures: the options every failing case shares while passing cases do not
    (e.g. 'only hidden=sigmoid; only N=7,64'), or that failures spread over every option."""
    d = df.assign(shape=df["D"].astype(str) + "-" + df["H"].astype(str) + "-" + df["C"].astype(str))
    d = d[~status_is(d["status"], Status.UNSUPPORTED)]
    lines = []
    for impl, g in d.groupby("impl", sort=False):
        bad = g[g["status"].isin(BAD)]
        if bad.empty:
            continue
        only = []
        for facet in FACETS:
            everywhere, failing = set(g[facet]), set(bad[facet])
            if failing < everywhere:
                vals = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(failing))
                only.append(f"only {facet}={vals}")
        where = "; ".join(only) if only else "spread over every option checked"
        lines.append(f"WHERE {impl}: {_cases(bad)} of {_cases(g)} cases fail, {where}")
    return lines


def fragile_cause(fragile: pd.DataFrame) -> str:
    """The commonest cause the fragile rows' hints name, its first clause (hints.CAUSES), e.g. 'no max shift in the
    forward'."""
    causes = fragile["problem"].map(lambda p: str(p).split("hint: ", 1)[-1].split(":")[0])
    return causes.value_counts().index[0] if len(causes) else ""


def verdict(df: pd.DataFrame, plan: list[Case], missing: list[Case], what: str) -> tuple[str, int]:
    """The last line and the exit status: 0 only when every planned case reported back, nothing failed or crashed,
    and at least one case was checked. `what` says how the checks were computed (precision, threads)."""
    if missing:
        return f"INCOMPLETE: {len(missing)} of {len(plan)} planned cases reported nothing, e.g. {missing[0].label}", 1
    n_unsupported = _cases(df[status_is(df["status"], Status.UNSUPPORTED)])
    apart = f"; {n_unsupported} of {len(plan)} planned cases unsupported" if n_unsupported else ""
    bad = df[df["status"].isin(BAD)]
    if len(bad):
        n_fail, n_err = (
            int((status_is(bad["status"], Status.FAIL)).sum()),
            int((status_is(bad["status"], Status.ERROR)).sum()),
        )
        named = ", ".join(sorted(set(bad["quantity"]) - {"-"}))
        parts = [f"{n_fail} failed checks ({named})" if n_fail else "", f"{n_err} errors" if n_err else ""]
        return f"MISMATCH: {' and '.join(p for p in parts if p)} in {len(plan)} planned cases{apart}", 1
    checked = df[df["status"].isin(CHECKED)]
    if checked.empty:
        return "NOTHING VERIFIED: every configuration was unsupported", 1
    n_ok = int((status_is(df["status"], Status.OK)).sum())
    fragile = df[status_is(df["status"], Status.FRAGILE)]
    if len(fragile):
        apart += (
            f"; FRAGILE in {_cases(fragile)} cases: right on every ordinary input, breaks only at a logit of 800 "
            f"({fragile_cause(fragile)}; --strict / strict=True fails these)"
        )
    return f"OK: {n_ok} checks in {_cases(checked)} checked cases match the float64 oracle{what}{apart}", 0
