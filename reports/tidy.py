"""Saved runs -> one tidy pandas frame: a row per run x implementation x device x workload x size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.load import Run
from reports.record import STEP_KINDS, UNSTABLE_IQR

KEY = ["impl", "device", "workload", "precision"]
#: the record's fields that become columns as they are
RECORD_COLUMNS = (
    *KEY,
    "kind",
    "reduced",
    "rank",
    "baseline",
    "product",
    "single",
    "N",
    "D",
    "H",
    "C",
    "K",
    "steps",
    "flops",
    "bytes",
    "gflops",
    "compile_s",
    "recompiles",
    "large",
    "graphs",
    "graph_breaks",
    "foreign_cores",
    "contended",
    "peak_bytes",
    "resident_bytes",
    "floor_bytes",
    "reserved_bytes",
    "memory_method",
    "memory_s",
    "memory_note",  # why a row that steps has no peak bytes (BenchRecord.memory_note)
)

RUN_COLUMNS = (
    "run",
    "machine",
    "host",
    "cpu_model",
    "cores",  # the machine's CPU count: a 2-core VM slice and a 16-core host of one CPU model are two hardwares
    "gpu_name",
    "torch",
    "cuda",
    "blas",
    "threads",
    "commit",
    "date",
)
STAT_COLUMNS = ("min", "median", "mean", "iqr", "rounds")  # pytest-benchmark's statistics of the row
#: what tidy derives: the spread, and the roofline from the same run's measured peaks
DERIVED_COLUMNS = (
    "iqr_over_median",
    "unstable",
    "peak_gflops",
    "bandwidth_gbs",
    "roofline_s",
    "roofline_eff",
    "gemm_eff",
    "memory_over_floor",
)
COLUMNS = [*RUN_COLUMNS, *RECORD_COLUMNS, *STAT_COLUMNS, *DERIVED_COLUMNS]


def host_of(run: Run) -> str:
    """The machine a run came from, as far as a run can tell: CPU model, core count and host name (a GPU's host
    is the machine of its CUDA rows, so a CPU run on the same machine has the same host)."""
    info = run.machine_info["twolayer"]
    return f"{info.get('cpu_model', '?')} x {info.get('cpu_count', '?')} ({run.machine_info.get('node', '?')})"


def tidy(runs: list[Run]) -> pd.DataFrame:
    """All benchmark rows, with each device's measured peaks (from the same run) joined on."""
    rows = []
    for run in runs:
        info = run.machine_info["twolayer"]
        for b, r in zip(run.benchmarks, run.records, strict=True):
            s = b["stats"]
            rows.append(
                {
                    "run": run.name,
                    "machine": run.machine_info.get("node", "?"),
                    "host": host_of(run),
                    "cpu_model": info.get("cpu_model", "?"),
                    "cores": info.get("cpu_count"),
                    "gpu_name": info.get("gpu_name", "") if r.device == "cuda" else "",
                    "torch": info.get("torch", "?"),
                    "cuda": info.get("cuda") or "",
                    "blas": info.get("blas", "?"),
                    "threads": r.threads if r.threads is not None else info.get("torch_threads"),
                    "commit": info.get("commit") or run.commit_info.get("id", "")[:7],
                    "date": (run.datetime or info.get("date", ""))[:19],
                    **{k: getattr(r, k) for k in RECORD_COLUMNS},
                    **{k: s.get(k) for k in STAT_COLUMNS},
                    "_gbs": r.gbs,
                }
            )
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df["iqr_over_median"] = df["iqr"] / df["median"]
    df["unstable"] = df["iqr_over_median"] > UNSTABLE_IQR
    # each row's roofline uses the square-GEMM peak of its own precision when the run measured one, else the peak
    # of the run's full-precision products (a run before the tf32 peak existed: its tf32 rows used the fp32 peak)
    gemm = df[(df["kind"] == "peak_gemm") & (df["product"] == "square")]
    peaks = gemm.groupby(["run", "device", "precision"])["gflops"].max().rename("peak_gflops")
    full = gemm[~gemm["reduced"].fillna(False).astype(bool)].groupby(["run", "device"])["gflops"].max()
    bw = df[df["kind"] == "peak_bandwidth"].groupby(["run", "device"])["_gbs"].max().rename("bandwidth_gbs")
    df = df.join(peaks, on=["run", "device", "precision"]).join(bw, on=["run", "device"])
    df["peak_gflops"] = df["peak_gflops"].fillna(df.join(full.rename("_full"), on=["run", "device"])["_full"])
    df = df.drop(columns=["_gbs"])
    is_step = df["kind"].isin(STEP_KINDS)
    compute_s = df["flops"] / (df["peak_gflops"] * 1e9)
    memory_s = df["bytes"] / (df["bandwidth_gbs"] * 1e9)
    df["roofline_s"] = np.where(is_step, np.fmax(compute_s, memory_s), np.nan)
    df["roofline_eff"] = df["roofline_s"] / df["median"]
    df["gemm_eff"] = np.where(is_step, df["gflops"] / df["peak_gflops"], np.nan)
    held = df["peak_bytes"].astype(float) + df["resident_bytes"].astype(float)  # what the call holds at its peak
    df["memory_over_floor"] = held / df["floor_bytes"].astype(float)
    df["_o"] = df["rank"].fillna(np.inf)  # the producer's rank (Implementation.rank); unranked rows last, by name
    df = df.sort_values(["run", "device", "kind", "workload", "N", "_o", "impl", "precision"], kind="stable")
    return df.drop(columns="_o")[COLUMNS].reset_index(drop=True)


def ranked(impls: object, df: pd.DataFrame | None = None) -> list[str]:
    """Implementation names in their records' rank order (Implementation.rank, as the producer wrote it), else by
    name: the one display order of tables, legends and colours."""
    names = sorted(set(impls))
    if df is None or "rank" not in df:
        return names
    rank = df.groupby("impl")["rank"].min()
    return sorted(names, key=lambda n: (rank.get(n, np.inf) if pd.notna(rank.get(n, np.nan)) else np.inf, n))


def steps(df: pd.DataFrame) -> pd.DataFrame:
    """Only the training-step rows (no peaks or harness checks)."""
    return df[df["kind"].isin(STEP_KINDS)]


def label(row: pd.Series) -> str:
    """'cpu: <model>, <n> cores' / 'cuda: <gpu>' for plot panels and tables: a CPU is its model and its core count
    (a cloud CPU model names both a 2-core VM slice and a 16-core host); the count is left out where a run lacks it."""
    if row["device"] == "cuda":
        return f"cuda: {row['gpu_name'] or row['cpu_model']}"
    cores = row.get("cores")
    return f"cpu: {row['cpu_model']}" + (f", {int(cores)} cores" if cores is not None and pd.notna(cores) else "")


def verification_panel(ver: pd.DataFrame) -> pd.Series:
    """'cpu: <model>' / 'cuda: <gpu>' for each verification row, as label() names a benchmark row's hardware."""
    cuda = "cuda: " + ver["gpu_name"].astype(str)
    return cuda.where(ver["device"] == "cuda", "cpu: " + ver["cpu_model"].astype(str))


def verification_view(ver: pd.DataFrame, wanted: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The verification rows to show: per hardware, check kind and precision, the run named in `wanted`, else the
    newest (run names start with their UTC time); and one line per shown run saying what it covers."""
    v = ver.assign(panel=verification_panel(ver))
    if wanted:
        v = v[v["run"].isin(wanted)]
    keep, lines = [], []
    for (panel, check, precision), g in v.groupby(["panel", "check", "precision"], sort=True):
        chosen = max(g["run"])
        keep.append(g[g["run"] == chosen])
        commit = g.loc[g["run"] == chosen, "commit"].iloc[0]
        lines.append(f"{panel}, {check}, {precision}: run {chosen} (commit {commit})")
    return (pd.concat(keep, ignore_index=True) if keep else v.iloc[:0]), lines
