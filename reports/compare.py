"""Compare two sets of runs row by row; on one device it is a regression gate, across devices a comparison table."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reports.atomic import atomic_write
from reports.load import load_runs
from reports.tidy import steps, tidy

ROW = ["impl", "workload", "precision"]


def parse_threshold(text: str, option: str = "--threshold") -> float:
    """'10%' -> 0.10, '0.1' -> 0.10, '10' -> 0.10 (a bare number above 1 is a percentage)."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"{option}: expected a percentage like 10% or a fraction like 0.1, got {text!r}") from None
    if value > 1 and not t.endswith("%"):
        value /= 100
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"{option} must be > 0, got {text!r}")
    return value


#: exit statuses of `python -m reports compare`, one meaning each
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_NO_EVIDENCE, EXIT_MACHINE = 0, 1, 2, 3, 4
DEFAULT_MIN_COVERAGE = 0.90  # a "no regression" verdict needs at least this fraction of the baseline's rows
#: what the gate compares: a timing statistic ("time", with --stat), or a memory reading of the row (benchmarks.memory)
METRICS = ("time", "peak_bytes", "resident_bytes")


def _side(path: Path, stat: str) -> tuple[pd.DataFrame, list[str]]:
    """One side's step rows, newest run per row, with the compared column (a statistic or a memory reading) as
    "time" (the name the table has always had)."""
    runs, warnings = load_runs([path], drop_invalid=False)
    df = steps(tidy(runs)) if runs else pd.DataFrame()
    if df.empty:
        return df, warnings
    # newest run wins when a folder holds several runs of the same row
    df = df.sort_values("date").drop_duplicates(["device", *ROW], keep="last")
    df = df.assign(hardware=[_hardware(r) for r in df.itertuples()])
    return df[["device", *ROW, stat, "run", "hardware"]].rename(columns={stat: "time"}), warnings


def _hardware(r) -> str:
    """What a timing depends on: the CPU model (or GPU name) and the thread count."""
    chip = r.gpu_name if r.device == "cuda" and r.gpu_name else r.cpu_model
    return f"{r.device}: {chip}, {r.threads:g} threads" if pd.notna(r.threads) else f"{r.device}: {chip}"


def _machines(df: pd.DataFrame) -> str:
    return "; ".join(sorted(set(df["hardware"])))


def compare_runs(
    base: Path,
    new: Path,
    threshold: float,
    stat: str = "median",
    csv: Path | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    allow_machine_change: bool = False,
    metric: str = "time",
) -> int:
    """Print the ratio table. On one device it is a gate that fails closed: EXIT_REGRESSION if a row is slower than
    (1 + threshold) x base, EXIT_NO_EVIDENCE if fewer than min_coverage of the baseline's rows could be compared or
    a compared time is not a positive finite number, EXIT_MACHINE if the machines differ (unless allowed);
    EXIT_USAGE when a side has no usable rows. Across devices it is a comparison table (EXIT_OK). metric: a
    memory column instead of the time (a row without a reading, a schema-3 run's say, is no evidence: it fails
    closed as an invalid time does; 0 bytes is a reading, and 0 -> 0 is a ratio of 1)."""
    if metric not in METRICS:
        print(f"error: unknown metric {metric!r}; choose from {', '.join(METRICS)}", file=sys.stderr)
        return EXIT_USAGE
    memory = metric != "time"
    column = metric if memory else stat
    b, wb = _side(base, column)
    n, wn = _side(new, column)
    for w in wb + wn:
        print(w, file=sys.stderr)
    for side, path in ((b, base), (n, new)):
        if side.empty:
            print(f"error: no usable benchmark rows in {path}", file=sys.stderr)
            return EXIT_USAGE
    print(f"base machine: {_machines(b)}")
    print(f"new machine:  {_machines(n)}")
    same_device = bool(set(b["device"]) & set(n["device"]))
    keys = ["device", *ROW] if same_device else ROW
    m = b.merge(n, on=keys, how="outer", suffixes=("_base", "_new"), indicator=True)
    tb, tn = m["time_base"].astype(float), m["time_new"].astype(float)
    if memory:  # bytes: 0 is a reading (a step that allocates nothing); 0 -> more is an unbounded growth
        valid = np.isfinite(tb) & np.isfinite(tn) & (tb >= 0) & (tn >= 0)
        m["ratio"] = np.where(tb > 0, tn / tb.where(tb > 0, 1), np.where(tn > 0, np.inf, 1.0))
    else:
        valid = np.isfinite(tb) & np.isfinite(tn) & (tb > 0) & (tn > 0)
        m["ratio"] = tn / tb
    invalid_label, worse, what = ("NO READING", "larger", metric) if memory else ("INVALID TIME", "slower", stat)
    m["verdict"] = "ok"
    m.loc[m["_merge"] == "left_only", "verdict"] = "only in base"
    m.loc[m["_merge"] == "right_only", "verdict"] = "only in new"
    both = m["_merge"] == "both"
    m.loc[both & ~valid, "verdict"] = invalid_label
    if same_device:
        m.loc[both & valid & (m["ratio"] > 1 + threshold), "verdict"] = "REGRESSED"
        m.loc[both & valid & (m["ratio"] < 1 / (1 + threshold)), "verdict"] = "smaller" if memory else "faster"
    else:
        m.loc[both & valid & (m["ratio"] < 1), "verdict"] = "new device faster"
        m.loc[both & valid & (m["ratio"] > 1), "verdict"] = "base device faster"
    m = m.sort_values([*keys]).drop(columns="_merge")
    show = m[
        [*keys, *([] if same_device else ["device_base", "device_new"]), "time_base", "time_new", "ratio", "verdict"]
    ]
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if csv:
        atomic_write(csv, lambda tmp: m.to_csv(tmp, index=False))
    if not same_device:
        print(
            f"device comparison ({', '.join(sorted(set(b['device'])))} vs {', '.join(sorted(set(n['device'])))}): "
            "ratios are new/base; not a regression gate"
        )
        return EXIT_OK
    compared = int((both & valid).sum())
    coverage = compared / len(b)
    need = f"at least {min_coverage:.0%} needed"
    print(f"coverage: {compared} of {len(b)} baseline rows compared ({coverage:.0%}; {need})")
    invalid = m[m["verdict"] == invalid_label]
    if len(invalid):
        kind = "no memory reading (or a negative one)" if memory else f"a {stat} that is not a positive finite time"
        print(f"NO VERDICT: {len(invalid)} row(s) have {kind}")
        return EXIT_NO_EVIDENCE
    if coverage < min_coverage:
        print(f"NO VERDICT: only {coverage:.0%} of the baseline's rows could be compared (< {min_coverage:.0%})")
        return EXIT_NO_EVIDENCE
    shared = set(b["device"]) & set(n["device"])
    hb, hn = set(b.loc[b["device"].isin(shared), "hardware"]), set(n.loc[n["device"].isin(shared), "hardware"])
    if hb != hn and not allow_machine_change:
        print(
            "NO VERDICT: the runs come from different machines (see above); timings are not comparable. "
            "--allow-machine-change compares them anyway"
        )
        return EXIT_MACHINE
    regressed = int((m["verdict"] == "REGRESSED").sum())
    if regressed:
        print(f"REGRESSION: {regressed} row(s) {worse} than base by more than {threshold:.0%} ({what})")
        return EXIT_REGRESSION
    print(f"no regression beyond {threshold:.0%} ({what}) in {compared} compared rows")
    return EXIT_OK
