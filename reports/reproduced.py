"""Reproduced experiments: the reference-vs-ours record, its CSV (checked when read), plots and summary section.

The experiments (verification/reproduce/) write reports/results/reproduce/<name>/summary.csv plus their own
CSVs; this module turns those CSVs into PNGs and markdown. No torch here: it reads files only.
"""

from __future__ import annotations

import json
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
from reports.record import Status

SCHEMA = 3  # 1: before the commit column; 2: before status, order and plots.json (2026-12-01)
SUMMARY = "summary.csv"


@dataclass(frozen=True)
class Comparison:
    """One row of an experiment's reference-vs-ours table (values are display strings: references are text)."""

    experiment: str
    quantity: str
    reference: str
    ours: str
    note: str = ""
    status: str = ""  # "" a reported number; Status OK or FAIL for a check that must hold (check())

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise SummaryError(f"status {self.status!r}; choose from {CHECK_STATUSES}")

    @property
    def failed(self) -> bool:
        """A check that did not hold (the command exits 1)."""
        return self.status == Status.FAIL.value


CHECK_STATUSES = ("", Status.OK.value, Status.FAIL.value)


def check(holds: bool) -> str:
    """The status of a check row: OK when it holds, FAIL when it does not."""
    return (Status.OK if holds else Status.FAIL).value


RUN_FIELDS = ("order", "seed", "data", "quick", "seconds", "commit", "schema")
COLUMNS = (*(f.name for f in fields(Comparison)), *RUN_FIELDS)


class SummaryError(ValueError):
    """A summary.csv that is not this schema (missing/extra columns, wrong schema version, empty)."""


def write_summary(
    folder: Path, rows: list[Comparison], order: int, seed: int, data: str, quick: bool, seconds: float
) -> Path:
    """summary.csv for one experiment, atomically; every row carries the experiment's place in the producer's list
    (the section order), the run's seed, data, mode, time and the commit of the code that ran
    (reports.provenance: '+dirty' for uncommitted changes, 'unknown' outside a checkout of this project)."""
    run = {"order": order, "seed": seed, "data": data, "quick": quick, "seconds": round(seconds, 2)}
    run.update(commit=project_commit(), schema=SCHEMA)
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
    if not set(df["status"]) <= set(CHECK_STATUSES) or not df["order"].str.isdigit().all():
        raise SummaryError(f"{path}: status {sorted(set(df['status']))} or order {sorted(set(df['order']))} invalid")
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


# ---- plots: each experiment says what to draw from its CSVs (plots.json); reports draw it --------------------

PLOTS = "plots.json"
PLOT_KINDS = ("curves", "histogram")


@dataclass(frozen=True)
class Plot:
    """One PNG an experiment wants drawn from one of its CSVs: "curves" (a panel per (column, label), a line per
    value of `series`, against `x`) or "histogram" (of the one panel's column, a set of bars per `series` value,
    log-spaced bins). `refs` are reference lines (value, label) across the panels, vertical for a histogram."""

    kind: str
    csv: str
    png: str
    title: str
    x: str
    panels: tuple[tuple[str, str], ...]
    series: str = "series"
    refs: tuple[tuple[float, str], ...] = ()
    logx: bool = False
    logy: bool = False

    def __post_init__(self) -> None:
        if self.kind not in PLOT_KINDS:
            raise SummaryError(f"plot kind {self.kind!r}; known: {', '.join(PLOT_KINDS)}")


def write_plots(folder: Path, plots: list[Plot]) -> Path:
    """plots.json for one experiment, atomically (the producer's description of its figures)."""
    text = json.dumps({"schema": SCHEMA, "plots": [asdict(p) for p in plots]}, indent=1)
    return atomic_write(folder / PLOTS, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_plots(folder: Path) -> list[Plot]:
    """The experiment's plot descriptions, checked (SummaryError names what is wrong)."""
    try:
        data = json.loads((folder / PLOTS).read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise SummaryError(f"{folder / PLOTS}: schema {data.get('schema')!r}, expected {SCHEMA}")
        return [
            Plot(**{**p, "panels": tuple(map(tuple, p["panels"])), "refs": tuple(map(tuple, p.get("refs", ())))})
            for p in data["plots"]
        ]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SummaryError(f"{folder / PLOTS}: unreadable plot description ({exc})") from None


def _save(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}))
    plt.close(fig)
    return path


def _curves(df: pd.DataFrame, plot: Plot) -> plt.Figure:
    fig, axes = plt.subplots(
        1, len(plot.panels), figsize=(max(8, 5 * len(plot.panels)), 4.5 if len(plot.panels) == 1 else 4)
    )
    for ax, (col, ylabel) in zip(np.atleast_1d(axes), plot.panels, strict=True):
        for series, g in df.groupby(plot.series, sort=False):
            g = g.dropna(subset=[col])  # a column measured less often than every row (e.g. every 20 iterations)
            if len(g):
                ax.plot(g[plot.x], g[col], label=str(series), marker="." if len(g) < 60 else None)
        for value, label in plot.refs:
            ax.axhline(value, color="gray", ls=":", label=label)
        ax.set(xlabel=plot.x, ylabel=ylabel, yscale="log" if plot.logy else "linear")
        ax.legend(fontsize=8)
    return fig


def _histogram(df: pd.DataFrame, plot: Plot) -> plt.Figure:
    """Log-binned counts of the panel's column per series; a negative value means "none" (e.g. -1: not solved)
    and is counted in the legend's total only."""
    ((col, xlabel),) = plot.panels
    fig, ax = plt.subplots(figsize=(8, 4.5))
    seen = df[df[col] >= 0]
    low = max(1.0, float(seen[col].min())) if len(seen) else 1.0
    top = max(float(seen[col].max()) if len(seen) else 1.0, 3000.0)
    bins = np.logspace(np.log10(low), np.log10(top + 1), 40)
    for series, g in seen.groupby(plot.series):
        n_all = int((df[plot.series] == series).sum())
        ax.hist(g[col], bins=bins, alpha=0.6, label=f"{series}: {len(g)} of {n_all}")
    for (value, label), color in zip(plot.refs, ("k", "tab:red", "tab:green"), strict=False):
        ax.axvline(value, color=color, ls="--", lw=1, label=label)
    ax.set(xscale="log", xlabel=xlabel, ylabel=plot.x)
    ax.legend(fontsize=8)
    return fig


def render(folder: Path) -> list[Path]:
    """Draw the experiment's plots (plots.json) from its CSVs; no experiment is known here by name."""
    out = []
    for plot in read_plots(folder):
        df = pd.read_csv(folder / plot.csv)
        fig = (_curves if plot.kind == "curves" else _histogram)(df, plot)
        fig.suptitle(plot.title, fontsize=10)
        fig.tight_layout()
        out.append(_save(fig, folder / plot.png))
    return out


def section(root: Path, relative_to: Path) -> tuple[str, list[str]]:
    """Markdown for 'Reproduced experiments': each experiment's table and plots; warnings for skipped files."""
    frames, warnings = find(root)
    if not frames:
        return "", warnings
    frames.sort(key=lambda df: int(df["order"].iloc[0]))  # the producer's order of its experiments
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
        table = df[["quantity", "reference", "ours", "note", "status"]]
        parts.append("| quantity | reference | ours | note | check |")
        parts.append("|---|---|---|---|---|")
        cells = table.map(lambda v: str(v).replace("|", "\\|"))  # a '|' inside a cell would split it
        parts += [f"| {r.quantity} | {r.reference} | {r.ours} | {r.note} | {r.status} |" for r in cells.itertuples()]
        for png in sorted((root / name).glob("*.png")):
            parts += ["", f"![{name} {png.stem}]({Path(os.path.relpath(png, relative_to)).as_posix()})"]
    return "\n".join(parts) + "\n", warnings
