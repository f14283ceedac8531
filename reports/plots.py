"""PNG plots from the tidy frame: time vs batch, speed-up over the loop, CPU vs CUDA, efficiency, verification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.atomic import atomic_write
from reports.tidy import IMPL_ORDER, steps

plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9})


def _ordered(impls) -> list[str]:
    order = {n: i for i, n in enumerate(IMPL_ORDER)}
    return sorted(set(impls), key=lambda n: (order.get(n, len(order)), n))


def _colors(names: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(_ordered(IMPL_ORDER + names))}


def _save(fig: plt.Figure, path: Path) -> Path:
    """Atomic PNG write; fixed metadata keeps the bytes identical for identical inputs."""
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))
    plt.close(fig)
    return path


def _panels(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(p, g) for p, g in df.groupby("panel", sort=True)]


def _sweep(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """fp32 training-step rows of one sweep (batch_sweep or width_sweep)."""
    d = steps(df)
    return d[(d["kind"] == kind) & (d["precision"] == "fp32")]


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
    colors = _colors(list(d["impl"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False, sharey=sharey)
    for ax, (panel, g) in zip(axes[0], panels, strict=True):
        for impl in _ordered(g["impl"]):
            s = g[g["impl"] == impl].sort_values(x)
            ax.plot(s[x], y(s), "o-", ms=3, label=impl, color=colors[impl])
        if extra:
            extra(ax, g)
        ax.set(yscale="log", xlabel=xlabel, title=panel)
        ax.set_xscale("log", base=2)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8)
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
    loop = d[d["impl"] == "loop"].set_index(["panel", "N"])["median"]
    if loop.empty:
        return None
    d = d.join(loop.rename("loop_median"), on=["panel", "N"]).dropna(subset=["loop_median"])
    return _lines_per_impl(
        d[d["impl"] != "loop"],
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


def cpu_vs_cuda(df: pd.DataFrame, out: Path) -> tuple[Path | None, int | None]:
    """Best implementation per device vs batch size, side by side, with the crossover batch size marked."""
    d = _sweep(df, "batch_sweep")
    if d.empty or not (d["device"] == "cuda").any():
        return None, None  # a CPU-only plot would compare nothing; the summary says why it is absent
    best = d.loc[d.groupby(["device", "panel", "N"])["median"].idxmin()].sort_values("N")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (device, panel), g in best.groupby(["device", "panel"]):
        color = "C3" if device == "cuda" else "C0"
        ax.plot(g["N"], g["median"] * 1e6, "o-", ms=3, label=f"best on {panel}", color=color)
        for n, t, impl in zip(g["N"], g["median"], g["impl"], strict=True):
            ax.annotate(
                impl,
                (n, t * 1e6),
                textcoords="offset points",
                xytext=(0, 6 if device == "cpu" else -10),
                fontsize=6,
                ha="center",
                color=color,
            )
    cpu = best[best["device"] == "cpu"].groupby("N")["median"].min()
    cuda = best[best["device"] == "cuda"].groupby("N")["median"].min()
    n_cross = crossover(cpu, cuda) if len(cuda) else None
    if n_cross is not None:
        ax.axvline(n_cross, color="k", ls="--", lw=0.8)
        ax.annotate(f"CUDA wins from N={n_cross}", (n_cross, ax.get_ylim()[1]), ha="left", va="top", fontsize=8)
    elif not len(cuda):
        ax.text(0.02, 0.02, "no CUDA run among the inputs", transform=ax.transAxes, fontsize=8, color="C3")
    ax.set(xscale="log", yscale="log", xlabel="batch size N", ylabel="best median step time (µs)")
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=8)
    ax.set_title("CPU vs CUDA: fastest implementation at each batch size", fontsize=10)
    return _save(fig, out / "cpu_vs_cuda.png"), n_cross


def efficiency(df: pd.DataFrame, out: Path) -> Path | None:
    """Roofline efficiency (roofline time / measured time) per implementation on the named workloads."""
    d = steps(df)
    d = d[(d["kind"] == "named") & d["roofline_eff"].notna()]
    if d.empty:
        return None
    panels = _panels(d)
    colors = _colors(list(d["impl"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, (panel, g) in zip(axes[0], panels, strict=True):
        workloads = sorted(set(g["workload"] + " " + g["precision"]))
        impls = _ordered(g["impl"])
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
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Efficiency: roofline time / measured step time (higher is better)", fontsize=10)
    return _save(fig, out / "efficiency.png")


def verification_errors(ver: pd.DataFrame, out: Path) -> Path | None:
    """Each check's error as a fraction of its derived tolerance, per implementation and quantity."""
    if ver is None or ver.empty:
        return None
    v = ver[ver["status"].isin(["ok", "FAIL"])].copy()
    if v.empty:
        return None
    v["ratio"] = (v["max_rel_err"] / v["tol"]).clip(lower=1e-6)
    quantities = ["loss", "W1", "b1", "W2", "b2", "trajectory"]
    impls = _ordered(v["impl"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, dtype in zip(axes, ["float32", "float64"], strict=True):
        d = v[v["dtype"] == dtype]
        for i, impl in enumerate(impls):
            for j, q in enumerate(quantities):
                r = d[(d["impl"] == impl) & (d["quantity"] == q)]["ratio"]
                if len(r):
                    x = i + (j - 2.5) * 0.13
                    ax.plot([x, x], [r.min(), r.max()], color=f"C{j}", lw=1)
                    ax.plot(x, r.median(), "o", ms=3, color=f"C{j}", label=q if i == 0 else None)
        ax.axhline(1, color="r", lw=1)
        ax.text(-0.45, 1.25, "tolerance", color="r", fontsize=7, ha="left")
        ax.set_xticks(range(len(impls)), impls, rotation=20)
        ax.set(yscale="log", title=f"{dtype} ({len(d)} checks)")
    axes[0].set_ylabel("max rel. error / derived tolerance (median, range)\nexact matches drawn at 1e-6")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=6, loc="lower center", bbox_to_anchor=(0.5, -0.02))
    fig.subplots_adjust(bottom=0.25)
    missing = sorted(set(ver["impl"]) - set(impls))
    if missing:
        note = f"not run here (unsupported on these devices): {', '.join(missing)}"
        fig.text(0.01, 0.01, note, fontsize=7, color="0.3")
    fig.suptitle("Verification against the float64 oracle: every point must stay below 1", fontsize=10)
    return _save(fig, out / "verification_errors.png")


def per_sample(df: pd.DataFrame, out: Path) -> Path | None:
    """Per-sample gradients on epfl vs N: one line per implementation, and the bandwidth floor
    (N x |theta| written + x read) / measured copy bandwidth."""
    d = df[df["kind"] == "per_sample"]
    if d.empty:
        return None
    panels = _panels(d)
    colors = _colors(list(d["impl"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (panel, g) in zip(axes[0], panels, strict=True):
        for impl in _ordered(g["impl"]):
            s = g[g["impl"] == impl].sort_values("N")
            ax.plot(s["N"], s["median"] * 1e3, "o-", ms=3, label=impl, color=colors[impl])
        floor = g.drop_duplicates("N").sort_values("N")
        ax.plot(floor["N"], floor["bytes"] / (floor["bandwidth_gbs"] * 1e9) * 1e3, "k--", lw=1, label="bandwidth floor")
        ax.set(xscale="log", yscale="log", xlabel="batch size N", ylabel="median time (ms)", title=panel)
        ax.legend(fontsize=7)
    fig.suptitle("Per-sample gradients, epfl 784-50-10: N x |θ| values must be written", fontsize=10)
    return _save(fig, out / "per_sample.png")
