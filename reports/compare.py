"""Compare two sets of runs row by row; on one device it is a regression gate, across devices a comparison table."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from reports.atomic import atomic_write
from reports.load import load_runs
from reports.tidy import steps, tidy

ROW = ["impl", "workload", "precision"]


def parse_threshold(text: str) -> float:
    """'10%' -> 0.10, '0.1' -> 0.10, '10' -> 0.10 (a bare number above 1 is a percentage)."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"--threshold: expected a percentage like 10% or a fraction like 0.1, got {text!r}") from None
    if value > 1 and not t.endswith("%"):
        value /= 100
    if not value > 0:
        raise ValueError(f"--threshold must be > 0, got {text!r}")
    return value


def _side(path: Path, stat: str) -> tuple[pd.DataFrame, list[str]]:
    runs, warnings = load_runs([path])
    df = steps(tidy(runs)) if runs else pd.DataFrame()
    if df.empty:
        return df, warnings
    # newest run wins when a folder holds several runs of the same row
    df = df.sort_values("date").drop_duplicates(["device", *ROW], keep="last")
    return df[["device", *ROW, stat, "run"]].rename(columns={stat: "time"}), warnings


def compare_runs(base: Path, new: Path, threshold: float, stat: str = "median", csv: Path | None = None) -> int:
    """Print the ratio table; 1 if a same-device row is slower than (1 + threshold) x base, 2 if no input."""
    b, wb = _side(base, stat)
    n, wn = _side(new, stat)
    for w in wb + wn:
        print(w, file=sys.stderr)
    for side, path in ((b, base), (n, new)):
        if side.empty:
            print(f"error: no usable benchmark rows in {path}", file=sys.stderr)
            return 2
    same_device = bool(set(b["device"]) & set(n["device"]))
    keys = ["device", *ROW] if same_device else ROW
    m = b.merge(n, on=keys, how="outer", suffixes=("_base", "_new"), indicator=True)
    m["ratio"] = m["time_new"] / m["time_base"]
    m["verdict"] = "ok"
    m.loc[m["_merge"] == "left_only", "verdict"] = "only in base"
    m.loc[m["_merge"] == "right_only", "verdict"] = "only in new"
    if same_device:
        m.loc[m["ratio"] > 1 + threshold, "verdict"] = "REGRESSED"
        m.loc[m["ratio"] < 1 / (1 + threshold), "verdict"] = "faster"
    else:
        m.loc[m["ratio"] < 1, "verdict"] = "new device faster"
        m.loc[m["ratio"] > 1, "verdict"] = "base device faster"
    m = m.sort_values([*keys]).drop(columns="_merge")
    show = m[
        [*keys, *([] if same_device else ["device_base", "device_new"]), "time_base", "time_new", "ratio", "verdict"]
    ]
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(show.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if csv:
        atomic_write(csv, lambda tmp: m.to_csv(tmp, index=False))
    regressed = int((m["verdict"] == "REGRESSED").sum())
    if not same_device:
        print(
            f"device comparison ({', '.join(sorted(set(b['device'])))} vs {', '.join(sorted(set(n['device'])))}): "
            "ratios are new/base; not a regression gate"
        )
        return 0
    if regressed:
        print(f"REGRESSION: {regressed} row(s) slower than base by more than {threshold:.0%} ({stat})")
        return 1
    print(f"no regression beyond {threshold:.0%} ({stat}) in {int(m['ratio'].notna().sum())} compared rows")
    return 0
