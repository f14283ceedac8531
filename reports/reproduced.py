"""Reproduced experiments: the reference-vs-ours record, its CSV (checked when read), plots and summary section.

The experiments (verification/reproduce/) write reports/results/reproduce/<name>/summary.csv plus their own
CSVs; this module turns those CSVs into PNGs and markdown. No torch here: it reads files only.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from reports.atomic import atomic_write
from reports.provenance import project_commit

SCHEMA = 2  # 1: before the commit column (2026-11-30)
SUMMARY = "summary.csv"


@dataclass(frozen=True)
class Comparison:
    """One row of an experiment's reference-vs-ours table (values are display strings: references are text)."""

    experiment: str
    quantity: str
    reference: str
    ours: str
    note: str = ""


RUN_FIELDS = ("seed", "data", "quick", "seconds", "commit", "schema")
COLUMNS = (*(f.name for f in fields(Comparison)), *RUN_FIELDS)


class SummaryError(ValueError):
    """A summary.csv that is not this schema (missing/extra columns, wrong schema version, empty)."""


def write_summary(folder: Path, rows: list[Comparison], seed: int, data: str, quick: bool, seconds: float) -> Path:
    """summary.csv for one experiment, atomically; every row carries the run's seed, data, mode, time and the
    commit of the code that ran (reports.provenance: '+dirty' for uncommitted changes, 'unknown' outside a
    checkout of this project)."""
    run = {"seed": seed, "data": data, "quick": quick, "seconds": round(seconds, 2), "commit": project_commit()}
    run["schema"] = SCHEMA
    df = pd.DataFrame([{**asdict(r), **run} for r in rows], columns=list(COLUMNS))
    return atomic_write(folder / SUMMARY, lambda tmp: df.to_csv(tmp, index=False))


def read_summary(path: Path) -> pd.DataFrame:
    """One summary.csv, checked: exactly COLUMNS, schema SCHEMA, at least one row (SummaryError otherwise)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SummaryError(f"{path}: unreadable ({exc})") from None
    if tuple(df.columns) != COLUMNS:
        raise SummaryError(f"{path}: columns {list(df.columns)} are not {list(COLUMNS)}")
    if df.empty:
        raise SummaryError(f"{path}: no rows")
    if set(df["schema"]) != {str(SCHEMA)}:
        raise SummaryError(f"{path}: schema {sorted(set(df['schema']))}, expected {SCHEMA}")
    return df


def find(root: Path) -> tuple[list[pd.DataFrame], list[str]]:
    """Every experiment's checked summary under root/<name>/summary.csv, and a warning per unusable one."""
    frames, warnings = [], []
    for path in sorted(root.glob(f"*/{SUMMARY}")) if root.is_dir() else []:
        try:
            frames.append(read_summary(path))
        except SummaryError as exc:
            warnings.append(f"warning: skipping {exc}")
    return frames, warnings


# ---- plots, one function per experiment, each from that experiment's CSVs ----------------------------------


def _save(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}))
    plt.close(fig)
    return path


def plot_rumelhart(folder: Path) -> list[Path]:
    """Histogram of sweeps-to-solve per rule with the paper's 1425 and the rerun median 2715; pitfall curves."""
    out = []
    starts = pd.read_csv(folder / "starts.csv")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    solved = starts[starts["sweeps"] >= 0]
    top = max(int(solved["sweeps"].max()) if len(solved) else 1, 3000)
    bins = np.logspace(np.log10(max(1, solved["sweeps"].min() if len(solved) else 1)), np.log10(top + 1), 40)
    for rule, g in solved.groupby("rule"):
        n_all = int((starts["rule"] == rule).sum())
        ax.hist(g["sweeps"], bins=bins, alpha=0.6, label=f"{rule}: {len(g)} of {n_all} solved")
    ax.axvline(1425, color="k", ls="--", lw=1, label="paper: 1425 sweeps")
    ax.axvline(2715, color="tab:red", ls=":", lw=1.5, label="1000-start rerun median: 2715")
    ax.set_xscale("log")
    ax.set_xlabel("sweeps to solve (every output on the right side of 0.5)")
    ax.set_ylabel("starts")
    ax.set_title("Mirror symmetry 6-2-1: sweeps to solve over independent starts")
    ax.legend(fontsize=8)
    out.append(_save(fig, folder / "sweeps_histogram.png"))
    pit = pd.read_csv(folder / "pitfall.csv")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(pit["epoch"], pit["paper_setup_mse"], label="paper setup: ½Σ(o−d)², U(±0.3), α=0.9 (the median start)")
    ax.plot(pit["epoch"], pit["homework_mse"], label="homework: nn.MSELoss(), default init, plain SGD")
    ax.axhline(0.109375, color="gray", ls=":", label="best constant output (MSE 0.109375)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch (full batch of 64 patterns)")
    ax.set_ylabel("mean (o − d)² over the 64 patterns")
    ax.set_title("The pitfall: a mean loss makes gradients 32× smaller; the net learns only the constant")
    ax.legend(fontsize=8)
    out.append(_save(fig, folder / "pitfall.png"))
    return out


def _curves(folder: Path, csv: str, x: str, panels: list[tuple[str, str]], title: str, png: str) -> Path:
    """Line plots of a curves CSV: one panel per (column prefix, y label), one line per `series` value."""
    df = pd.read_csv(folder / csv)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (col, ylabel) in zip(np.atleast_1d(axes), panels, strict=True):
        for series, g in df.groupby("series", sort=False):
            g = g.dropna(subset=[col])  # a column measured less often than every row (e.g. every 20 iterations)
            if len(g):
                ax.plot(g[x], g[col], label=str(series), marker="." if len(g) < 60 else None)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, folder / png)


def plot_epfl(folder: Path) -> list[Path]:
    panels = [("train_loss", "training loss Σ(v−t)²"), ("train_error", "training error"), ("test_error", "test error")]
    return [
        _curves(folder, "curves.csv", "step", panels, "EPFL practical 3: 784-50-10 tanh, per-sample sums", "curves.png")
    ]


def plot_umons(folder: Path) -> list[Path]:
    panels = [("train_loss", "training loss (CE)"), ("test_accuracy", "test accuracy")]
    return [
        _curves(folder, "curves.csv", "epoch", panels, "UMONS: manual (batched) vs torch.nn (module)", "curves.png")
    ]


def plot_cs231n(folder: Path) -> list[Path]:
    panels = [("loss", "loss (CE + reg)"), ("val_accuracy", "validation accuracy")]
    return [_curves(folder, "curves.csv", "iteration", panels, "cs231n two-layer net: toy and MNIST", "curves.png")]


def plot_lab2(folder: Path) -> list[Path]:
    panels = [("train_loss", "training loss (CE)"), ("test_accuracy", "test accuracy"), ("lr", "learning rate")]
    return [
        _curves(folder, "curves.csv", "epoch", panels, "Lab 2: module + SGD momentum + ExponentialLR", "curves.png")
    ]


PLOTTERS = {
    "rumelhart": plot_rumelhart,
    "epfl": plot_epfl,
    "umons": plot_umons,
    "cs231n": plot_cs231n,
    "lab2": plot_lab2,
}


def render(folder: Path) -> list[Path]:
    """The plots of the experiment in `folder` (named by the folder), from its CSVs."""
    return PLOTTERS[folder.name](folder)


def section(root: Path, relative_to: Path) -> tuple[str, list[str]]:
    """Markdown for 'Reproduced experiments': each experiment's table and plots; warnings for skipped files."""
    frames, warnings = find(root)
    if not frames:
        return "", warnings
    order = {name: i for i, name in enumerate(PLOTTERS)}
    frames.sort(key=lambda df: order.get(df["experiment"].iloc[0], len(order)))
    parts = ["## Reproduced experiments", ""]
    parts.append(
        "Each experiment runs the registered implementations on the data named below "
        "(`python -m verification.reproduce NAME`); *reference* is what the source reports."
    )
    for df in frames:
        name = df["experiment"].iloc[0]
        run = df.iloc[0]
        mode = " (quick form)" if run["quick"] == "True" else ""
        about = f"Data: {run['data']}; seed {run['seed']}; {run['seconds']} s; commit {run['commit']}."
        parts += ["", f"### {name}{mode}", "", about, ""]
        table = df[["quantity", "reference", "ours", "note"]]
        parts.append("| quantity | reference | ours | note |")
        parts.append("|---|---|---|---|")
        cells = table.map(lambda v: str(v).replace("|", "\\|"))  # a '|' inside a cell would split it
        parts += [f"| {r.quantity} | {r.reference} | {r.ours} | {r.note} |" for r in cells.itertuples()]
        for png in sorted((root / name).glob("*.png")):
            parts += ["", f"![{name} {png.stem}]({Path(os.path.relpath(png, relative_to)).as_posix()})"]
    return "\n".join(parts) + "\n", warnings
