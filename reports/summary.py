"""The markdown summary: machines and versions, key tables, and the plots embedded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reports.plots import Crossover
from reports.record import CASE_KEY, CHECKED, MEMORY_ABSENT_BEFORE_4, UNSTABLE_IQR, Status, status_is
from reports.tidy import ranked, steps

VER_GROUP = ("panel", "check", "precision", "impl")  # one row of the verification table


def _pct(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v * 100:.0f}"


def _table(df: pd.DataFrame) -> str:
    """A pipe table without extra dependencies (pandas' to_markdown needs tabulate)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def machines(df: pd.DataFrame) -> str:
    cols = ["run", "device", "panel", "torch", "cuda", "blas", "threads", "commit", "date"]
    m = df.drop_duplicates(["run", "device"])[cols].rename(columns={"panel": "hardware"})
    return _table(m.fillna(""))


def _unit(values: pd.Series) -> tuple[str, float]:
    """One unit for a column of seconds: ms when its largest value is >= 10 ms, else µs."""
    return ("ms", 1e3) if np.nanmax(values.to_numpy(dtype=float)) >= 1e-2 else ("µs", 1e6)


def _fmt(v: float, scale: float) -> str:
    """v * scale with 3 significant digits and no exponent: 0.234, 12.4, 209, 8,344."""
    if v is None or not np.isfinite(v):
        return "–"
    x = v * scale
    return f"{x:,.{max(0, 2 - int(np.floor(np.log10(abs(x)))))}f}" if x else "0"


def named_table(df: pd.DataFrame) -> str:
    """Median time per step, one table per hardware: implementation x workload, one unit per column (in its
    heading); the best in each column in bold; † marks a row whose IQR/median exceeds the stability threshold."""
    d = steps(df)
    d = d[d["kind"] == "named"]
    if d.empty:
        return "_no named workloads in the inputs_"
    parts = []
    for panel, g in d.groupby("panel", sort=True):
        parts += [f"### {panel}", "", _named_panel(g), ""]
    return "\n".join(parts) + (
        f"\n– not run: per-sample implementations are capped at N = 1024 (`--loop-max-n`), or the "
        f"implementation does not support the device. † IQR/median > {UNSTABLE_IQR:.0%} (unstable; see Stability). "
        "‡ contended: other processes kept busy the cores torch's threads needed (see Stability)."
    )


def _named_panel(d: pd.DataFrame) -> str:
    """One hardware's named-workload table (see named_table)."""
    d = d.assign(col=d["workload"] + np.where(d["reduced"].fillna(False).astype(bool), " (" + d["precision"] + ")", ""))
    order = list(dict.fromkeys(d.sort_values(["flops", "col"])["col"]))  # the smallest step first
    piv = d.pivot_table(index="impl", columns="col", values="median", aggfunc="min")[order]
    shaky = d.pivot_table(index="impl", columns="col", values="unstable", aggfunc="max").reindex_like(piv)
    busy = d.assign(c=d["contended"].fillna(False).astype(bool))
    busy = busy.pivot_table(index="impl", columns="col", values="c", aggfunc="max").reindex_like(piv)
    cols = {}
    for c in piv.columns:
        unit, scale = _unit(piv[c])
        best = piv[c].min()
        cells = []
        for impl, v in piv[c].items():
            text = _fmt(v, scale)
            if np.isfinite(v) and v == best:
                text = f"**{text}**"
            if np.isfinite(v) and bool(shaky.loc[impl, c]):
                text += " †"
            if np.isfinite(v) and bool(busy.loc[impl, c]):
                text += " ‡"
            cells.append(text)
        cols[f"{c} ({unit})"] = cells
    return _table(pd.DataFrame(cols, index=piv.index).reset_index().rename(columns={"impl": "implementation"}))


def _fastest(d: pd.DataFrame) -> pd.DataFrame:
    """The fastest row per (hardware panel, workload, precision)."""
    return d.loc[d.groupby(["panel", "workload", "precision"])["median"].idxmin()]


def _lead_columns(best: pd.DataFrame, unit: str, scale: float) -> dict[str, pd.Series]:
    """The columns that name a fastest row and give its median: hardware, workload, precision, impl, median."""
    return {
        "hardware": best["panel"],
        "workload": best["workload"],
        "precision": best["precision"],
        "best impl": best["impl"],
        f"median ({unit})": best["median"].map(lambda v: _fmt(v, scale)),
    }


def _mib(v: float) -> str:
    """Bytes as MiB with 3 significant digits (KiB below 0.1 MiB), '–' when absent."""
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v / 2**10:,.3g} KiB" if v < 0.1 * 2**20 else f"{_fmt(v, 1 / 2**20)} MiB"


def _held_cell(row: pd.Series) -> str:
    """'3.71 MiB (1.05×)': bytes held at the call's peak and its ratio to the floor; the reason when unmeasured."""
    if pd.isna(row.get("peak_bytes")):
        note = row.get("memory_note")
        if note == MEMORY_ABSENT_BEFORE_4:
            return "– (older run)"
        return f"– ({note})" if isinstance(note, str) and note else "–"
    held = float(row["peak_bytes"]) + float(row["resident_bytes"])
    ratio = row.get("memory_over_floor")
    return _mib(held) + (f" ({ratio:.2f}×)" if ratio is not None and np.isfinite(ratio) else "")


def memory_table(df: pd.DataFrame) -> str:
    """Bytes held at the step's peak (resident + the step's own peak) per implementation and named workload, fp32,
    one table per hardware, with the measured / floor ratio; the floor as the last row."""
    d = steps(df)
    d = d[(d["kind"] == "named") & ~d["reduced"].fillna(False).astype(bool)]  # full precision (record)
    if d.empty or d["floor_bytes"].isna().all():
        return "_no named workload rows with memory readings in the inputs (runs before schema 4 measured none)_"
    parts = []
    for panel, g in d.groupby("panel", sort=True):
        if g["peak_bytes"].isna().all():  # a whole run without readings: one line, not a table of dashes
            notes = sorted(set(g["memory_note"].dropna()))
            parts += [f"- {panel}: no readings ({'; '.join(notes) or 'not measured'})", ""]
            continue
        order = list(dict.fromkeys(g.sort_values(["flops", "workload"])["workload"]))
        cells = {w: {} for w in order}
        for r in g.itertuples(index=False):
            cells[r.workload][r.impl] = _held_cell(pd.Series(r._asdict()))
        names = ranked(g["impl"], g)
        t = pd.DataFrame({"implementation": names, **{w: [cells[w].get(n, "not run") for n in names] for w in order}})
        floors = g.groupby("workload")["floor_bytes"].first()
        t.loc[len(t)] = ["floor (batched step)", *[_mib(floors.get(w, np.nan)) for w in order]]
        methods = ", ".join(sorted(set(g["memory_method"].dropna())))
        parts += [f"### {panel}", "", _table(t), "", *([f"Meters: {methods}.", ""] if methods else [])]
    return "\n".join(parts).rstrip()


def roofline_table(df: pd.DataFrame) -> str:
    """Best implementation per large workload: time, roofline time, efficiency, GFLOP/s and % of GEMM peak."""
    d = steps(df)
    d = d[d["large"].fillna(False).astype(bool) & d["roofline_eff"].notna()]
    if d.empty:
        return "_no large workloads with measured peaks in the inputs_"
    best = _fastest(d)
    unit, scale = _unit(pd.concat([best["median"], best["roofline_s"]]))
    t = pd.DataFrame(
        {
            **_lead_columns(best, unit, scale),
            f"roofline ({unit})": best["roofline_s"].map(lambda v: _fmt(v, scale)),
            "roofline eff. (%)": best["roofline_eff"].map(_pct),
            "GFLOP/s": best["gflops"].map(lambda v: f"{v:,.0f}"),
            "GEMM peak (%)": best["gemm_eff"].map(_pct),
            "memory (× floor)": [_held_cell(r) for _, r in best.iterrows()],
        }
    )
    same = bool((best["roofline_eff"] - best["gemm_eff"]).abs().max() < 1e-9)
    note = (
        "\n\nEvery row here is compute-bound (flops / peak > bytes / bandwidth), so roofline efficiency equals "
        "the fraction of the GEMM peak."
        if same
        else ""
    )
    return _table(t.sort_values(["hardware", "workload", "precision"])) + note


def loop_ratio_table(df: pd.DataFrame) -> str:
    """The baseline's time (the per-sample loop, as its records say) / the best other time at each batch size."""
    d = steps(df)
    d = d[(d["kind"] == "batch_sweep") & ~d["reduced"].fillna(False).astype(bool)]
    is_base = d["baseline"].fillna(False).astype(bool)  # the producer says which implementation is the baseline
    base = d[is_base].groupby(["panel", "N"])["median"].min()
    vec = d[~is_base].groupby(["panel", "N"])["median"].min()
    if base.empty:
        return "_no baseline (per-sample loop) rows in the inputs_"
    name = d.loc[is_base, "impl"].iloc[0]
    r = pd.concat([base.rename("base"), vec.rename("best")], axis=1).dropna().reset_index()
    r["N"] = r["N"].astype(int)
    r[f"{name} / best"] = (r["base"] / r["best"]).map(lambda v: f"{v:,.0f}×")
    unit, scale = _unit(r["base"])
    r["base"] = r["base"].map(lambda v: _fmt(v, scale))
    r["best"] = r["best"].map(lambda v: _fmt(v, scale))
    return _table(
        r.rename(columns={"panel": "hardware", "base": f"{name} ({unit})", "best": f"best vectorised ({unit})"})
    )


def compile_table(df: pd.DataFrame) -> str:
    d = steps(df)
    d = d[d["compile_s"].notna()]
    if d.empty:
        return "_no compiled rows_"
    t = d.groupby(["panel", "impl"])["compile_s"].agg(["count", "median", "max"]).reset_index()
    t["median"] = t["median"].map(lambda v: f"{v:.2f} s")
    t["max"] = t["max"].map(lambda v: f"{v:.2f} s")
    return _table(t.rename(columns={"panel": "hardware", "count": "shapes compiled", "median": "median first call"}))


def anatomy_table(df: pd.DataFrame) -> str:
    """The compile-anatomy variants of the tiny step: time, dynamo graphs and graph breaks, compile time."""
    d = df[df["kind"] == "anatomy"]
    if d.empty:
        return "_no compile-anatomy rows (they run in the default and full sets)_"
    t = pd.DataFrame(
        {
            "hardware": d["panel"],
            "variant": d["impl"],
            "median (µs)": d["median"].map(lambda v: _fmt(v, 1e6)),
            "graphs": d["graphs"].map(lambda v: "–" if pd.isna(v) else int(v)),
            "graph breaks": d["graph_breaks"].map(lambda v: "–" if pd.isna(v) else int(v)),
            "compile": d["compile_s"].map(lambda v: "–" if pd.isna(v) else f"{v:.2f} s"),
        }
    )
    return _table(t)


#: a student's one-line check should answer within this on a quiet 2-core machine (issue 31; benchmarks/test_check.py)
CHECK_TARGET_S = 2.5


def check_table(df: pd.DataFrame) -> str:
    """The one-line check's wall time per example file, against its target, with whether the cores were quiet."""
    d = df[df["kind"] == "check"]
    if d.empty:
        return "_no one-line check rows_"
    t = pd.DataFrame(
        {
            "hardware": d["panel"],
            "form": d["impl"],
            "file": d["workload"].map(lambda v: f"`{v}`"),
            "median": d["median"].map(lambda v: f"{v:.2f} s"),
            "IQR": d["iqr"].map(lambda v: f"{v:.2f} s") if "iqr" in d else "–",
            f"within {CHECK_TARGET_S:g} s": (d["median"] <= CHECK_TARGET_S).map({True: "yes", False: "no"}),
            "cores quiet": d["contended"].map(lambda v: "–" if pd.isna(v) else ("no" if v else "yes")),
        }
    )
    return _table(t)


def many_nets_table(df: pd.DataFrame) -> str:
    """The many-nets engine: µs per net-step vs K, next to the best single-net step of the same run on the workload
    the row names as its single-net counterpart (its record's `single`)."""
    d = df[df["kind"] == "many_nets"]
    if d.empty:
        return "_no many-nets rows (benchmarks/test_many.py)_"
    single = steps(df)
    single = single.set_index(["panel", "workload"])["median"].groupby(level=[0, 1]).min()
    t = pd.DataFrame(
        {
            "hardware": d["panel"],
            "engine": d["impl"],
            "K": d["K"].astype(int),
            "median per step (µs)": d["median"].map(lambda v: f"{v * 1e6:,.1f}"),
            "per net-step (µs)": (d["median"] / d["K"]).map(lambda v: f"{v * 1e6:,.3f}"),
            "best single-net step (µs)": [
                f"{single.get((p, w), np.nan) * 1e6:,.1f}" if pd.notna(single.get((p, w), np.nan)) else "–"
                for p, w in zip(d["panel"], d["single"], strict=True)
            ],
            "memory (× floor)": [_held_cell(r) for _, r in d.iterrows()],
        }
    ).sort_values(["hardware", "engine", "K"])
    return _table(t)


def train_table(df: pd.DataFrame) -> str:
    """train(x, t, K): the time per step inside one K-step call next to one step per call (the named fp32 step
    row of the same run), and the gain."""
    d = df[df["kind"] == "train"]
    if d.empty:
        return "_no train rows (benchmarks/test_steps.py::test_train)_"
    single = steps(df)
    single = single[(single["kind"] == "named") & ~single["reduced"].fillna(False).astype(bool)]
    single = single.set_index(["panel", "workload", "impl"])["median"]
    per_step = d["median"] / d["steps"]
    base = [single.get(k, np.nan) for k in zip(d["panel"], d["workload"], d["impl"], strict=True)]
    t = pd.DataFrame(
        {
            "hardware": d["panel"],
            "workload": d["workload"],
            "implementation": d["impl"],
            "steps per call": d["steps"].astype(int),
            "per step inside the call (µs)": per_step.map(lambda v: _fmt(v, 1e6)),
            "one step per call (µs)": [_fmt(b, 1e6) for b in base],
            "gain": [f"{b / v:,.2f}×" if np.isfinite(b / v) else "–" for b, v in zip(base, per_step, strict=True)],
            "memory (× floor)": [_held_cell(r) for _, r in d.iterrows()],
        }
    ).sort_values(["hardware", "workload", "implementation"])
    return _table(t)


def per_sample_table(df: pd.DataFrame) -> str:
    """Per-sample gradients: time per N and implementation, the bandwidth floor, and the speed-up over the loop."""
    d = df[df["kind"] == "per_sample"].copy()
    if d.empty:
        return "_no per-sample rows (benchmarks/test_per_sample.py)_"
    d["floor"] = d["bytes"] / (d["bandwidth_gbs"] * 1e9)
    loop = d[d["baseline"].fillna(False).astype(bool)].set_index(["panel", "N"])["median"]
    unit, scale = _unit(d["median"])
    t = pd.DataFrame(
        {
            "hardware": d["panel"],
            "N": d["N"].astype(int),
            "implementation": d["impl"],
            f"median ({unit})": d["median"].map(lambda v: _fmt(v, scale)),
            f"floor ({unit})": d["floor"].map(lambda v: _fmt(v, scale)),
            "median / floor": (d["median"] / d["floor"]).map(lambda v: f"{v:,.1f}×" if np.isfinite(v) else "–"),
            "speed-up over loop": [
                f"{loop.get((p, n), np.nan) / m:,.1f}×" if (p, n) in loop.index else "–"
                for p, n, m in zip(d["panel"], d["N"], d["median"], strict=True)
            ],
            "memory (× floor)": [_held_cell(r) for _, r in d.iterrows()],
        }
    ).sort_values(["hardware", "N", "implementation"])
    return _table(t)


def precision_table(df: pd.DataFrame, availability: list[str]) -> str:
    """Best step in each reduced precision vs the best full-precision step per large workload, with that precision's
    GEMM peak's roofline; and for each run shown, whether its hardware has each format natively (the benchmarks skip
    the rows otherwise)."""
    d = steps(df)
    d = d[d["large"].fillna(False).astype(bool)]
    reduced = d["reduced"].fillna(False).astype(bool)
    low = d[reduced]
    lines = [f"- {a}" for a in availability]
    if low.empty:
        return "No reduced-precision rows in the runs shown. Native support, as each run recorded it:\n\n" + "\n".join(
            lines
        )
    fp32 = d[~reduced].groupby(["panel", "workload"])["median"].min()
    best = _fastest(low)
    unit, scale = _unit(best["median"])
    base = [fp32.get((p, w), np.nan) for p, w in zip(best["panel"], best["workload"], strict=True)]
    t = pd.DataFrame(
        {
            **_lead_columns(best, unit, scale),
            f"best fp32 ({unit})": [_fmt(b, scale) for b in base],
            "speed-up over fp32": [
                f"{b / m:,.2f}×" if np.isfinite(b / m) else "–" for b, m in zip(base, best["median"], strict=True)
            ],
            "GEMM peak (GFLOP/s)": best["peak_gflops"].map(lambda v: f"{v:,.0f}" if np.isfinite(v) else "–"),
            "roofline eff. (%)": best["roofline_eff"].map(_pct),
        }
    ).sort_values(["hardware", "workload", "precision"])
    return _table(t) + "\n\n" + "\n".join(lines)


def gemm_ceiling_table(df: pd.DataFrame) -> str:
    """Where the gap to the square-GEMM roofline lies on the large MNIST batches: "kernel" (the BLAS on exactly the
    step's two big products, forward X W1^T and dW1 = da1^T X, alone: the faster of H as written and H padded to
    the SIMD width, counting the useful flops only) vs "ours" (the rest of the step)."""
    peaks = df[df["kind"] == "peak_gemm"]
    d = steps(df)
    d = d[~d["reduced"].fillna(False).astype(bool) & d["large"].fillna(False).astype(bool) & d["peak_gflops"].notna()]
    rows = []
    for (panel, workload), g in d.groupby(["panel", "workload"]):
        best = g.loc[g["median"].idxmin()]
        n, D, H = int(best["N"]), int(best["D"]), int(best["H"])
        mine = peaks[(peaks["panel"] == panel) & ~peaks["reduced"].fillna(False).astype(bool)]
        mine = mine[(mine["N"] == n) & (mine["D"] == D) & (mine["H"] >= H)]  # H as written, or padded wider

        def product_s(product: str, mine: pd.DataFrame = mine, n: int = n, D: int = D) -> tuple[float, int]:
            """Fastest time of one big product over the measured hidden widths Hp >= H, and that Hp."""
            rows_ = mine[mine["product"] == product]
            found = [(2 * n * D * int(r.H) / (r.gflops * 1e9), int(r.H)) for r in rows_.itertuples()]
            return min(found) if found else (np.nan, 0)

        t_fwd, h_fwd = product_s("forward")
        t_dw1, h_dw1 = product_s("dW1")
        if not (np.isfinite(t_fwd) and np.isfinite(t_dw1)):
            continue
        useful = 2 * n * D * H  # flops of each product without padding
        t_square = 2 * useful / (best["peak_gflops"] * 1e9)
        t_shape = t_fwd + t_dw1
        rows.append(
            {
                "hardware": panel,
                "workload": workload,
                "best impl": best["impl"],
                "roofline eff. (%)": _pct(best["roofline_eff"]),
                "forward alone (useful GFLOP/s)": f"{useful / t_fwd / 1e9:,.0f} (H={h_fwd})",
                "dW1 alone (useful GFLOP/s)": f"{useful / t_dw1 / 1e9:,.0f} (H={h_dw1})",
                "kernel: square peak time / shape time (%)": _pct(t_square / t_shape),
                "ours: shape time / step time (%)": _pct(t_shape / best["median"]),
            }
        )
    if not rows:
        return "_no large workload with the step's GEMM shapes measured alone (benchmarks/test_peak.py)_"
    return _table(pd.DataFrame(rows))


def unstable_table(df: pd.DataFrame) -> str:
    """Rows whose spread exceeds the threshold, then rows timed while other processes used the cores."""
    d = df[df["unstable"].fillna(False).astype(bool)]
    if d.empty:
        text = f"none: every row has IQR/median ≤ {UNSTABLE_IQR:.0%}"
    else:
        t = d[["panel", "impl", "workload", "precision", "median", "iqr_over_median"]].copy()
        unit, scale = _unit(t["median"])
        t["median"] = t["median"].map(lambda v: _fmt(v, scale))
        t["iqr_over_median"] = t["iqr_over_median"].map(_pct)
        t = t.rename(columns={"median": f"median ({unit})", "iqr_over_median": "IQR / median (%)"})
        text = (
            f"{len(d)} of {len(df)} rows have IQR/median > {UNSTABLE_IQR:.0%} (times still comparable, but quote "
            "with care):\n\n" + _table(t.head(25))
        )
    return text + "\n\n" + contended_text(df)


def contended_text(df: pd.DataFrame) -> str:
    """CPU rows timed while other processes kept more cores busy than torch's threads left free (‡)."""
    measured = df[df["foreign_cores"].notna()]
    if measured.empty:
        return "Contention: not measured in the runs shown (runs before 2026-11-30 did not record it)."
    d = measured[measured["contended"].fillna(False).astype(bool)]
    if d.empty:
        return f"Contention: none of the {len(measured)} CPU rows measured was timed beside a busy process."
    t = d[["panel", "impl", "workload", "median", "foreign_cores"]].copy()
    unit, scale = _unit(t["median"])
    t["median"] = t["median"].map(lambda v: _fmt(v, scale))
    t["foreign_cores"] = t["foreign_cores"].map(lambda v: f"{v:.1f}")
    t = t.rename(columns={"median": f"median ({unit})", "foreign_cores": "cores used by other processes"})
    return (
        f"Contention: {len(d)} of {len(measured)} CPU rows were timed while other processes used cores torch's "
        "threads needed (‡; each parallel op then waits for a descheduled thread): re-run them on a quiet "
        "machine or with fewer --threads.\n\n" + _table(t.head(25))
    )


def verification_section(ver: pd.DataFrame | None) -> str:
    """Per hardware, check kind, precision and implementation: cases checked, unsupported and failed, checks ok,
    and the worst error as a fraction of its derived tolerance."""
    if ver is None or ver.empty:
        return "_no verification run found (run `python -m verification`)_"
    checked = ver[ver["status"].isin(CHECKED)]
    ratio = (checked["max_rel_err"] / checked["tol"]).groupby([checked[k] for k in VER_GROUP]).max()
    key = [*VER_GROUP]
    cases = ver.drop_duplicates(list(CASE_KEY))  # an unsupported or error case is one row

    def count(rows: pd.DataFrame, status: Status) -> pd.Series:
        return rows[status_is(rows["status"], status)].groupby(key).size()

    t = pd.DataFrame(
        {
            "cases": cases.groupby(key).size(),
            "unsupported cases": count(cases, Status.UNSUPPORTED),
            "error cases": count(cases, Status.ERROR),
            "checks ok": count(ver, Status.OK),
            "failed checks": count(ver, Status.FAIL),
            "worst err / tol": ratio.map(lambda r: f"{r:.3g}"),
        }
    )
    t[t.columns[:-1]] = t[t.columns[:-1]].fillna(0).astype(int)
    t = t.reset_index().rename(columns={"panel": "hardware", "impl": "implementation"})
    return _table(t.fillna("–"))


@dataclass(frozen=True)
class Inputs:
    """What the summary's sections read."""

    df: pd.DataFrame  # the runs shown, tidy
    ver: pd.DataFrame | None  # the verification runs shown
    plots: dict[str, str]  # plot key -> path relative to the summary
    cross: Crossover | None
    used: list[str]
    availability: list[str]
    warnings: list[str]


@dataclass(frozen=True)
class Section:
    """One part of the summary: a heading (none: the lines stand under the previous one), a sentence saying what
    it shows, and the function that renders its body (None: the section is left out)."""

    title: str | None
    render: Callable[[Inputs], str | None]
    intro: str = ""
    level: int = 2  # markdown heading level


PLOTS = [  # plot key -> its heading (### under the precision section)
    ("efficiency", "Efficiency"),
    ("time_vs_batch", "Time vs batch size"),
    ("speedup_over_loop", "Speed-up over the per-sample loop"),
    ("cpu_vs_cuda", "CPU vs CUDA"),
    ("gflops_vs_width", "Throughput vs hidden width"),
    ("verification_errors", "Verification errors vs tolerances"),
    ("per_sample", "Per-sample gradients vs N"),
    ("memory_vs_batch", "Memory vs batch size"),
    ("time_memory", "Time x memory on the large workloads"),
]


def _plots(i: Inputs) -> str:
    lines = []
    for key, title in PLOTS:
        if key in i.plots:
            lines += [f"### {title}", f"![{title}]({i.plots[key]})", ""]
    if "cpu_vs_cuda" not in i.plots:
        lines += ["### CPU vs CUDA", "No plot: the runs shown hold no CUDA rows (no GPU was benchmarked).", ""]
    return "\n".join(lines[:-1])


SECTIONS: list[Section] = [
    Section("Machines and versions", lambda i: machines(i.df)),
    Section(
        "Runs shown",
        lambda i: "\n".join(f"- {line}" for line in i.used),
        "Plots and tables show one run per hardware (`python -m reports --runs NAME,...` chooses); "
        "`benchmarks.csv` holds every run read.",
    ),
    Section(
        "Named workloads (median time per step, unit in each heading; best per column in bold)",
        lambda i: named_table(i.df),
    ),
    Section(
        "Roofline on the large workloads (best implementation)",
        lambda i: roofline_table(i.df),
        "Roofline time = max(flops / measured GEMM peak of the row's own precision where the run measured one, else "
        "of its full-precision products, bytes / measured copy bandwidth), both measured in the same run on the same "
        "device; efficiency = roofline time / measured time.",
    ),
    Section(
        "The gap on the large MNIST batches: kernel vs ours",
        lambda i: gemm_ceiling_table(i.df),
        "The two big products of the step measured alone with the same BLAS, in the same run: how far the kernel "
        "itself stays below the square-GEMM peak on these skinny shapes (kernel), and how much of the step's time "
        "those two products at their own ceiling account for (ours; the rest is the step's other work).",
        level=3,
    ),
    Section(
        "Memory: bytes held at the step's peak (fp32; × the floor)",
        lambda i: memory_table(i.df),
        "Held = resident (parameters, inputs and the implementation's buffers, kept between steps) + the step's own "
        "peak, read once per row after its timing by the meter of the allocator it uses (benchmarks/memory.py). The "
        "floor is what the batched algorithm must hold at least (NetSpec.floor_bytes): parameters, gradient, "
        "momentum, the batch, the hidden activations and the output error; a per-sample loop or a chunked step "
        "holds less than N activations and can sit below it.",
    ),
    Section(
        "Reduced precision on the large workloads (tf32; bf16 and fp16 under torch.autocast, fp32 master weights)",
        lambda i: precision_table(i.df, i.availability),
    ),
    Section(None, _plots),
    Section(
        "CPU vs CUDA crossover",
        lambda i: i.cross.sentence() if i.cross else "No crossover: the runs shown hold no CUDA rows, or no CPU rows.",
    ),
    Section("Per-sample loop vs best vectorised implementation", lambda i: loop_ratio_table(i.df)),
    Section("torch.compile first-call (compile) time", lambda i: compile_table(i.df)),
    Section(
        "Compile anatomy of the tiny step (rumelhart)",
        lambda i: anatomy_table(i.df),
        "An `nn.Module` step compiled whole breaks at `loss.backward()`: several graphs with eager glue between them "
        "and the optimizer's own graph, so it gains nothing on a launch-bound step; the manual step is one graph.",
    ),
    Section(
        "The one-line check a student runs",
        lambda i: check_table(i.df),
        f"Wall time of `python -m verification --impl FILE --quiet`, start to exit, on a course file with no options "
        f"(the target: {CHECK_TARGET_S:g} s on a quiet 2-core machine). Where it goes: two interpreters importing "
        "torch at once (the checked code's child starts first, verification/child.py), then the cases.",
    ),
    Section(
        "Many nets at once (the 1000-start study's engine)",
        lambda i: many_nets_table(i.df),
        "One step of K independent 64 × 6-2-1 nets with stacked parameters; per net-step = median / K.",
    ),
    Section(
        "K steps per call (Implementation.train)",
        lambda i: train_table(i.df),
        "`train(x, t, 100)` runs 100 SGD steps on one batch in one call; implementations that can (one compiled loop, "
        "one graph replay or one kernel launch) do it without paying the per-call entry each step.",
    ),
    Section(
        "Per-sample gradients (epfl 784-50-10)",
        lambda i: per_sample_table(i.df),
        "`python -m verification --per-sample` checks them sample by sample; the floor is the N × |θ| values written "
        "plus x read, over the copy bandwidth measured in the same run.",
    ),
    Section("Stability", lambda i: unstable_table(i.df)),
    Section("Verification (python -m verification)", lambda i: verification_section(i.ver)),
    Section("Skipped inputs", lambda i: "\n".join(f"- {w}" for w in i.warnings) if i.warnings else None),
]
HEADER = (
    "# twolayer results\n\n"
    "Generated by `python -m reports` from the saved runs listed below; do not edit by hand.\n"
    "Times are pytest-benchmark medians of one full training step (loss, gradients, SGD-momentum update), "
    "fp32 unless a column or row names a reduced precision; every timed step was first checked against the float64 "
    "oracle.\n"
)


def write_summary(
    df: pd.DataFrame,
    ver: pd.DataFrame | None,
    plots: dict[str, Path | None],
    cross: Crossover | None,
    out: Path,
    warnings: list[str],
    used: list[str] | None = None,
    availability: list[str] | None = None,
) -> str:
    """The whole markdown document, section by section (returned; the caller writes it atomically)."""
    rel = {k: p.relative_to(out).as_posix() for k, p in plots.items() if p is not None}
    inputs = Inputs(df, ver, rel, cross, used or [], availability or [], warnings)
    parts = [HEADER]
    for section in SECTIONS:
        body = section.render(inputs)
        if body is None:
            continue
        head = [f"{'#' * section.level} {section.title}"] if section.title else []
        parts += [*head, *([section.intro, ""] if section.intro else []), body, ""]
    return "\n".join(parts)
