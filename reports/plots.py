"""PNG plots from the tidy frame: time vs batch, speed-up over the loop, CPU vs CUDA, efficiency, verification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.atomic import atomic_write
from reports.record import CHECKED
from reports.tidy import ranked, steps

plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9})


def _colors(df: pd.DataFrame) -> dict[str, tuple]:
    """One colour per implementation of the frame, in rank order (the same implementation keeps its colour across
    the panels of a plot)."""
    names = ranked(df["impl"], df)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")  # 11+ implementations: no two share a colour
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _legend(axes: list, d: pd.DataFrame, **kw: object) -> None:
    """One legend on the last panel naming every panel's implementations (a CPU-only one included), in rank
    order."""
    labelled = {lab: h for ax in axes for h, lab in zip(*ax.get_legend_handles_labels(), strict=True)}
    order = [n for n in ranked(d["impl"], d) if n in labelled] + [n for n in labelled if n not in set(d["impl"])]
    axes[-1].legend([labelled[n] for n in order], order, **kw)


def _save(fig: plt.Figure, path: Path, rect: tuple[float, float, float, float] | None = None) -> Path:
    """Atomic PNG write (tight layout inside `rect`); fixed metadata keeps the bytes identical for identical inputs."""
    fig.tight_layout(rect=rect)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))
    plt.close(fig)
    return path


def _panels(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(p, g) for p, g in df.groupby("panel", sort=True)]


def _sweep(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Full-precision training-step rows of one sweep (batch_sweep or width_sweep)."""
    d = steps(df)
    return d[(d["kind"] == kind) & ~d["reduced"].fillna(False).astype(bool)]


def _lines_per_impl(
    d: pd.DataFrame,
    x: str,
    y: Callable[[pd.DataFrame], pd.Series],
    xlabel: str,
    ylabel: str,
    title: str,
    path: Path,
    sharey: bool = False,
    extra: Callable[[plt.Axes, pd.DataFrame], None] | None = None,
) -> Path:
    """One panel per device (hardware), one line per implementation, log-log with a base-2 x axis."""
    panels = _panels(d)
    colors = _colors(d)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False, sharey=sharey)
    for ax, (panel, g) in zip(axes[0], panels, strict=True):
        for impl in ranked(g["impl"], g):
            s = g[g["impl"] == impl].sort_values(x)
            ax.plot(s[x], y(s), "o-", ms=3, label=impl, color=colors[impl])
        if extra:
            extra(ax, g)
        ax.set(yscale="log", xlabel=xlabel, title=panel)
        ax.set_xscale("log", base=2)
    axes[0][0].set_ylabel(ylabel)
    _legend(axes[0], d, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def time_vs_batch(df: pd.DataFrame, out: Path) -> Path | None:
    """Median step time vs batch size, log-log, one line per implementation, one panel per device."""
    d = _sweep(df, "batch_sweep")
    if d.empty:
        return None
    return _lines_per_impl(
        d,
        "N",
        lambda s: s["median"] * 1e6,
        "batch size N",
        "median time per training step (µs)",
        "Step time vs batch size — 784-30-10 sigmoid / softmax cross-entropy, fp32",
        out / "time_vs_batch.png",
        sharey=True,
    )


def speedup_over_loop(df: pd.DataFrame, out: Path) -> Path | None:
    """How many times faster than the per-sample loop each implementation is, per batch size."""
    d = _sweep(df, "batch_sweep")
    is_base = d["baseline"].fillna(False).astype(bool)
    loop = d[is_base].set_index(["panel", "N"])["median"]
    if loop.empty:
        return None
    d = d.join(loop.rename("loop_median"), on=["panel", "N"]).dropna(subset=["loop_median"])
    return _lines_per_impl(
        d[~d["baseline"].fillna(False).astype(bool)],
        "N",
        lambda s: s["loop_median"] / s["median"],
        "batch size N",
        "speed-up over the per-sample loop (×)",
        "Speed-up over the per-sample Python loop (higher is better)",
        out / "speedup_over_loop.png",
        extra=lambda ax, g: ax.axhline(1, color="k", lw=0.8),
    )


def time_vs_width(df: pd.DataFrame, out: Path) -> Path | None:
    """GFLOP/s vs hidden width at N=1024: where the matmuls start to dominate the overhead."""
    d = _sweep(df, "width_sweep")
    if d.empty:
        return None

    def peak_line(ax: plt.Axes, g: pd.DataFrame) -> None:
        peak = g["peak_gflops"].dropna()
        if len(peak):
            ax.axhline(peak.iloc[0], color="k", ls="--", lw=0.8)
            ax.text(g["H"].min(), peak.iloc[0] * 1.05, "measured GEMM peak", fontsize=7)

    return _lines_per_impl(
        d,
        "H",
        lambda s: s["gflops"],
        "hidden width H (N=1024, 784-H-10)",
        "achieved GFLOP/s",
        "Throughput vs hidden width",
        out / "gflops_vs_width.png",
        extra=peak_line,
    )


def crossover(cpu: pd.Series, cuda: pd.Series) -> int | None:
    """Smallest batch size from which the best CUDA step is faster than the best CPU step at every larger size."""
    both = pd.concat([cpu.rename("cpu"), cuda.rename("cuda")], axis=1).dropna().sort_index()
    wins = both["cuda"] < both["cpu"]
    for n in both.index:
        if wins.loc[n:].all():
            return int(n)
    return None


@dataclass(frozen=True)
class Crossover:
    """Where the best CUDA step overtakes the best CPU step, and whether both ran on one host."""

    n: int | None  # None: CUDA never wins at every larger batch
    cuda_panel: str
    cpu_panel: str
    same_host: bool
    cuda_host: str
    cpu_host: str

    def sentence(self) -> str:
        """The summary's statement, saying when the two devices are not in one machine."""
        where = (
            f"on one host ({self.cpu_host})"
            if self.same_host
            else f"from different machines (the GPU's host: {self.cuda_host}; the CPU run: {self.cpu_host}), "
            "so the comparison mixes hosts"
        )
        won = f"from N = {self.n} on" if self.n else "at no batch size from which it keeps winning"
        return f"CUDA's best step ({self.cuda_panel}) beats the CPU's best ({self.cpu_panel}) {won}; both ran {where}."


def pair_cpu(best: pd.DataFrame, cuda_host: str) -> str | None:
    """The CPU panel to compare with a GPU: the one measured on the GPU's own host when there is one, else the
    CPU panel with the most batch sizes."""
    cpu = best[best["device"] == "cpu"]
    if cpu.empty:
        return None
    same = cpu[cpu["host"] == cuda_host]
    pool = same if len(same) else cpu
    return pool.groupby("panel")["N"].nunique().sort_index().idxmax()


def cpu_vs_cuda(df: pd.DataFrame, out: Path) -> tuple[Path | None, Crossover | None]:
    """The best implementation per batch size on the GPU and on the CPU it is compared with (its own host's when
    that run is among the inputs), with the crossover batch size marked."""
    d = _sweep(df, "batch_sweep")
    if d.empty or not (d["device"] == "cuda").any():
        return None, None  # a CPU-only plot would compare nothing; the summary says why it is absent
    d = d[~d["contended"].fillna(False).astype(bool)]  # a row slowed by another process is no device's best
    best = d.loc[d.groupby(["device", "panel", "N"])["median"].idxmin()].sort_values("N")
    cuda_panel = sorted(best.loc[best["device"] == "cuda", "panel"].unique())[0]
    cuda_host = best.loc[best["panel"] == cuda_panel, "host"].iloc[0]
    cpu_panel = pair_cpu(best, cuda_host)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for panel in (p for p in (cpu_panel, cuda_panel) if p):
        g = best[best["panel"] == panel]
        device = g["device"].iloc[0]
        color = "C3" if device == "cuda" else "C0"
        ax.plot(g["N"], g["median"] * 1e6, "o-", ms=3, label=f"best on {panel}", color=color)
        for n, t, impl in zip(g["N"], g["median"], g["impl"], strict=True):
            dy = 6 if device == "cpu" else -10
            ax.annotate(
                impl, (n, t * 1e6), textcoords="offset points", xytext=(0, dy), fontsize=6, ha="center", color=color
            )
    cross = None
    if cpu_panel:
        cpu = best[best["panel"] == cpu_panel].set_index("N")["median"]
        cuda = best[best["panel"] == cuda_panel].set_index("N")["median"]
        cpu_host = best.loc[best["panel"] == cpu_panel, "host"].iloc[0]
        cross = Crossover(crossover(cpu, cuda), cuda_panel, cpu_panel, cpu_host == cuda_host, cuda_host, cpu_host)
        if cross.n is not None:
            ax.axvline(cross.n, color="k", ls="--", lw=0.8)
            text = f"CUDA wins from N={cross.n}" + ("" if cross.same_host else " (different machines)")
            ax.annotate(text, (cross.n, ax.get_ylim()[1]), ha="left", va="top", fontsize=8)
    else:
        ax.text(0.02, 0.02, "no CPU run among the inputs", transform=ax.transAxes, fontsize=8, color="C0")
    ax.set(xscale="log", yscale="log", xlabel="batch size N", ylabel="best median step time (µs)")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    ax.set_title("CPU vs CUDA: fastest implementation at each batch size", fontsize=10)
    return _save(fig, out / "cpu_vs_cuda.png"), cross


def efficiency(df: pd.DataFrame, out: Path) -> Path | None:
    """Roofline efficiency (roofline time / measured time) per implementation on the named workloads."""
    d = steps(df)
    d = d[(d["kind"] == "named") & d["roofline_eff"].notna()]
    if d.empty:
        return None
    panels = _panels(d)
    colors = _colors(d)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, (panel, g) in zip(axes[0], panels, strict=True):
        workloads = sorted(set(g["workload"] + " " + g["precision"]))
        impls = ranked(g["impl"], g)
        width = 0.8 / max(len(impls), 1)
        for i, impl in enumerate(impls):
            s = g[g["impl"] == impl].assign(w=lambda f: f["workload"] + " " + f["precision"]).set_index("w")
            vals = [float(s["roofline_eff"].get(w, np.nan)) * 100 for w in workloads]
            xs = np.arange(len(workloads)) + i * width
            ax.bar(xs, vals, width, label=impl, color=colors[impl])
            for x, v in zip(xs, vals, strict=True):
                if not np.isfinite(v):  # capped or unsupported: say so instead of leaving a silent gap
                    ax.text(x, 1, "not run", rotation=90, fontsize=5, ha="center", va="bottom", color="0.4")
        ax.axhline(85, color="k", ls="--", lw=0.8)
        ax.text(len(workloads) - 0.6, 86, "85% target", fontsize=7, ha="right", va="bottom")
        ax.set_xticks(
            np.arange(len(workloads)) + 0.4 - width / 2, [w.replace(" fp32", "") for w in workloads], rotation=20
        )
        ax.set(ylim=(0, 100), title=panel)
    axes[0][0].set_ylabel("% of roofline (measured GEMM peak & bandwidth)")
    _legend(axes[0], d, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Efficiency: roofline time / measured step time (higher is better)", fontsize=10)
    return _save(fig, out / "efficiency.png")


def verification_errors(ver: pd.DataFrame | None, out: Path) -> Path | None:
    """Each check's error as a fraction of its derived tolerance, per implementation and quantity: a row of panels
    per (hardware, check kind, precision), a panel per dtype."""
    if ver is None or ver.empty:
        return None
    v = ver[ver["status"].isin(CHECKED)].copy()
    if v.empty:
        return None
    v["ratio"] = (v["max_rel_err"] / v["tol"]).clip(lower=1e-6)
    quantities = list(dict.fromkeys(v["quantity"]))  # in the order the verifier wrote them
    groups = sorted(  # per hardware and check kind: the precision with the most checks (fp32) first
        v.groupby(["panel", "check", "precision"], sort=True), key=lambda kv: (kv[0][0], kv[0][1], -len(kv[1]))
    )
    dtypes = sorted(set(v["dtype"]))
    fig, axes = plt.subplots(
        len(groups), len(dtypes), figsize=(5.5 * len(dtypes), 3.2 * len(groups) + 0.8), squeeze=False, sharey=True
    )
    for row, ((panel, check, precision), g) in zip(axes, groups, strict=True):
        impls = ranked(g["impl"], g)
        for ax, dtype in zip(row, dtypes, strict=True):
            d = g[g["dtype"] == dtype]
            if d.empty:  # e.g. bf16/fp16: autocast applies to float32 parameters only
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"{check} · {precision}: no {dtype} checks", transform=ax.transAxes, ha="center")
                continue
            for i, impl in enumerate(impls):
                for j, q in enumerate(quantities):
                    r = d[(d["impl"] == impl) & (d["quantity"] == q)]["ratio"]
                    if len(r):
                        x = i + (j - (len(quantities) - 1) / 2) * 0.8 / len(quantities)
                        ax.plot([x, x], [r.min(), r.max()], color=f"C{j}", lw=1)
                        ax.plot(x, r.median(), "o", ms=3, color=f"C{j}", label=q)
            ax.axhline(1, color="r", lw=1)
            ax.text(-0.45, 1.25, "tolerance", color="r", fontsize=7, ha="left")
            ax.set_xticks(range(len(impls)), impls, rotation=20, fontsize=7)
            ax.set(yscale="log")
            ax.set_title(f"{panel}\n{check} · {precision} · {dtype} ({len(d)} checks)", fontsize=8)
        row[0].set_ylabel("max rel. error / tolerance\n(median, range; exact = 1e-6)", fontsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    by_label = dict(zip(labels, handles, strict=True))
    fig.legend(by_label.values(), by_label.keys(), fontsize=7, ncol=6, loc="lower center", bbox_to_anchor=(0.5, 0))
    fig.suptitle("Verification against the float64 oracle: every point must stay below 1", fontsize=10)
    return _save(fig, out / "verification_errors.png", rect=(0, 0.03, 1, 0.98))


def per_sample(df: pd.DataFrame, out: Path) -> Path | None:
    """Per-sample gradients on epfl vs N: one line per implementation, and the bandwidth floor
    (N x |theta| written + x read) / measured copy bandwidth."""
    d = df[df["kind"] == "per_sample"]
    if d.empty:
        return None
    panels = _panels(d)
    colors = _colors(d)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (panel, g) in zip(axes[0], panels, strict=True):
        for impl in ranked(g["impl"], g):
            s = g[g["impl"] == impl].sort_values("N")
            ax.plot(s["N"], s["median"] * 1e3, "o-", ms=3, label=impl, color=colors[impl])
        floor = g.drop_duplicates("N").sort_values("N")
        ax.plot(floor["N"], floor["bytes"] / (floor["bandwidth_gbs"] * 1e9) * 1e3, "k--", lw=1, label="bandwidth floor")
        ax.set(xscale="log", yscale="log", xlabel="batch size N", ylabel="median time (ms)", title=panel)
        ax.legend(fontsize=7)
    fig.suptitle("Per-sample gradients, epfl 784-50-10: N x |θ| values must be written", fontsize=10)
    return _save(fig, out / "per_sample.png")


def _held(d: pd.DataFrame) -> pd.Series:
    """Bytes a row's call holds at its peak: what stays between calls plus the call's own peak (benchmarks.memory)."""
    return d["peak_bytes"].astype(float) + d["resident_bytes"].astype(float)


def memory_vs_batch(df: pd.DataFrame, out: Path) -> Path | None:
    """Peak bytes held (resident + the step's own peak) vs batch size, log-log, one line per implementation and
    panel per device, with the batched algorithm's floor (NetSpec.floor_bytes) drawn."""
    d = _sweep(df, "batch_sweep")
    d = d[d["peak_bytes"].notna() & d["resident_bytes"].notna()]
    if d.empty:
        return None

    def floor(ax: plt.Axes, g: pd.DataFrame) -> None:
        f = g.dropna(subset=["floor_bytes"]).drop_duplicates("N").sort_values("N")
        ax.plot(f["N"], f["floor_bytes"] / 2**20, "k--", lw=1, label="floor (batched step)")

    return _lines_per_impl(
        d,
        "N",
        lambda s: _held(s) / 2**20,
        "batch size N",
        "bytes held at the step's peak (MiB)",
        "Memory vs batch size, 784-30-10 fp32 (held: resident + the step's peak; dashed: floor)",
        out / "memory_vs_batch.png",
        sharey=True,
        extra=floor,
    )


def front(d: pd.DataFrame) -> pd.Series:
    """Rows on the time x memory front: no other row of the same (panel, workload, precision) is both at least as
    fast and at least as small, and strictly better in one of them."""
    on = pd.Series(False, index=d.index)
    for _, g in d.groupby(["panel", "workload", "precision"]):
        t, m = g["median"].to_numpy(float), _held(g).to_numpy(float)
        for i, idx in enumerate(g.index):
            dominated = (t <= t[i]) & (m <= m[i]) & ((t < t[i]) | (m < m[i]))
            on[idx] = not dominated.any()
    return on


def time_memory(df: pd.DataFrame, out: Path) -> Path | None:
    """The large workloads: median time vs bytes held, one point per implementation, the front (neither slower nor
    larger than another) joined and labelled; one panel per (device, workload), fp32."""
    d = steps(df)
    d = d[d["large"].fillna(False).astype(bool) & (d["kind"] == "named") & ~d["reduced"].fillna(False).astype(bool)]
    d = d[d["peak_bytes"].notna() & d["resident_bytes"].notna()]
    if d.empty:
        return None
    d = d.assign(_front=front(d))
    groups = list(d.groupby(["panel", "workload"], sort=True))
    colors = _colors(d)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.2), squeeze=False)
    for ax, ((panel, workload), g) in zip(axes[0], groups, strict=True):
        for impl in ranked(g["impl"], g):
            s = g[g["impl"] == impl]
            ax.plot(s["median"] * 1e3, _held(s) / 2**20, "o", ms=5, color=colors[impl], label=impl)
        f = g[g["_front"]].sort_values("median")
        ax.plot(f["median"] * 1e3, _held(f) / 2**20, "k-", lw=0.8)
        for r in f.itertuples():
            ax.annotate(r.impl, (r.median * 1e3, (r.peak_bytes + r.resident_bytes) / 2**20), fontsize=7)
        fl = g["floor_bytes"].dropna()
        if len(fl):
            ax.axhline(fl.iloc[0] / 2**20, color="k", ls="--", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="median time per step (ms)", title=f"{panel}\n{workload}")
    axes[0][0].set_ylabel("bytes held at the peak (MiB); dashed: floor")
    _legend(axes[0], d, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Time x memory on the large workloads: the line joins the front (lower left is better)", fontsize=10)
    return _save(fig, out / "time_memory.png")
