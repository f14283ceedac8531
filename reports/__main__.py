"""`python -m reports [IN ...] [--out DIR]` and `python -m reports compare BASE NEW [--threshold 10%]`.

Reads saved pytest-benchmark runs (never modifies them) and writes, atomically: a tidy CSV, PNG plots and a
markdown summary. Exit 0 on success, 2 when no usable input is found; compare exits 1 on a regression.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from reports import plots
from reports.atomic import atomic_write, atomic_write_text, check_writable, replace_folder
from reports.compare import DEFAULT_MIN_COVERAGE, EXIT_USAGE, METRICS, compare_runs, parse_threshold
from reports.load import DEFAULT_INPUTS, DEFAULT_VERIFICATION, load_runs, load_verification
from reports.record import STEP_KINDS
from reports.reproduced import PLOTS, SummaryError, render, section
from reports.summary import write_summary
from reports.tidy import label, tidy, verification_view

DEFAULT_OUT = Path("reports/results")
DEFAULT_REPRODUCED = Path("reports/results/reproduce")


def choose_runs(df: pd.DataFrame, wanted: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """For plots and the summary, one run per hardware panel: the runs named in `wanted`, else the newest. Returns
    the chosen rows and one line per panel saying which run feeds it (and when an older run of the same panel
    holds more step rows than the chosen one, so a partial run never replaces a fuller one unsaid)."""
    if wanted:
        df = df[df["run"].isin(wanted)]
    lines = []
    keep = []
    step = df[df["kind"].isin(STEP_KINDS)]
    for panel, g in df.groupby("panel", sort=True):
        runs = g.groupby("run")["date"].max().sort_values()
        chosen = runs.index[-1]
        keep.append((panel, chosen))
        counts = step[step["panel"] == panel].groupby("run").size()
        n = int(counts.get(chosen, 0))
        line = f"{panel}: run {chosen} ({n} step rows)"
        fuller = counts[counts > n]
        if len(fuller):
            other = fuller.idxmax()
            line += f"; NOTE: older run {other} has {int(fuller.max())} step rows (--runs {other} to use it)"
        skipped = [r for r in runs.index if r != chosen]
        if skipped:
            line += f"; not shown: {', '.join(skipped)}"
        lines.append(line)
    mask = pd.Series(False, index=df.index)
    for panel, run in keep:
        mask |= (df["panel"] == panel) & (df["run"] == run)
    return df[mask], lines


def low_precision_lines(runs: list, shown: set[str]) -> list[str]:
    """'run NAME, cpu: bf16 native; fp16 <why not>' for each run shown that recorded it (older runs did not)."""
    out = []
    for run in runs:
        info = run.machine_info["twolayer"].get("low_precision")
        if run.name in shown:
            if not isinstance(info, dict):
                out.append(f"run {run.name}: not recorded (benchmarked before the bf16/fp16 rows existed)")
                continue
            for device, formats in info.items():
                text = "; ".join(f"{p} {why}" for p, why in formats.items())
                out.append(f"run {run.name}, {device}: {text}")
    return out


def build(
    inputs: list[Path],
    out: Path,
    verification: list[Path],
    reproduced: Path = DEFAULT_REPRODUCED,
    wanted_runs: list[str] | None = None,
) -> int:
    """Read, tidy, plot and summarise; exit status as the module docstring says."""
    try:
        check_writable(out, "--out")
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs, warnings = load_runs(inputs)
    for w in warnings:
        print(w, file=sys.stderr)
    if not runs:
        where = ", ".join(str(p) for p in inputs)
        print(f"error: no usable pytest-benchmark JSON found in {where}", file=sys.stderr)
        return 2
    df = tidy(runs)
    if df.empty:
        print("error: the inputs hold no benchmark rows", file=sys.stderr)
        return 2
    df["panel"] = df.apply(label, axis=1)
    unknown = sorted(set(wanted_runs or []) - set(df["run"]))
    if unknown:
        print(f"error: --runs: no such run {unknown[0]!r}; read: {', '.join(sorted(set(df['run'])))}", file=sys.stderr)
        return 2
    ver_all, vwarn = load_verification(verification)
    for w in vwarn:
        print(w, file=sys.stderr)
    warnings += vwarn
    ver, vused = verification_view(ver_all) if ver_all is not None else (None, [])
    out.mkdir(parents=True, exist_ok=True)
    csv = atomic_write(out / "benchmarks.csv", lambda tmp: df.drop(columns="panel").to_csv(tmp, index=False))
    view, used = choose_runs(df, wanted_runs)
    for line in (*used, *vused):
        print(f"using {line}")
    made: dict[str, Path | None] = {}

    def draw(folder: Path) -> None:
        made.update(
            time_vs_batch=plots.time_vs_batch(view, folder),
            speedup_over_loop=plots.speedup_over_loop(view, folder),
            efficiency=plots.efficiency(view, folder),
            gflops_vs_width=plots.time_vs_width(view, folder),
            verification_errors=plots.verification_errors(ver, folder),
            per_sample=plots.per_sample(view, folder),
            memory_vs_batch=plots.memory_vs_batch(view, folder),
            time_memory=plots.time_memory(view, folder),
        )
        made["cpu_vs_cuda"], made["_cross"] = plots.cpu_vs_cuda(view, folder)

    plot_dir = replace_folder(out / "plots", draw)  # a fresh folder: no plot of an earlier run survives
    cross = made.pop("_cross")
    made = {k: (plot_dir / p.name if p is not None else None) for k, p in made.items()}
    for folder in sorted(p.parent for p in reproduced.glob(f"*/{PLOTS}")) if reproduced.is_dir() else []:
        try:
            render(folder)  # the experiments' plots, redrawn from their CSVs as each experiment describes them
        except (SummaryError, OSError, KeyError, ValueError) as exc:
            warnings.append(f"warning: {folder}: plots not redrawn ({exc})")
    extra, rwarn = section(reproduced, out)
    for w in rwarn:
        print(w, file=sys.stderr)
    lows = low_precision_lines(runs, set(view["run"]))
    text = write_summary(view, ver, made, cross, out, warnings, [*used, *vused], lows)
    md = atomic_write_text(out / "README.md", text + extra)
    n_plots = sum(p is not None for p in made.values())
    print(f"read {len(runs)} run(s), {len(df)} rows; wrote {csv}, {md} and {n_plots} plots in {plot_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        p = argparse.ArgumentParser(
            prog="python -m reports compare",
            description="Per-row ratios NEW/BASE of the time (or --metric peak_bytes / resident_bytes); exit 1 when a "
            "row regressed past the threshold.",
        )
        p.add_argument("base", type=Path, help="baseline run: a JSON file or a folder of them")
        p.add_argument("new", type=Path, help="new run: a JSON file or a folder of them")
        p.add_argument("--threshold", default="10%", help="allowed slow-down, e.g. 10%% or 0.1 (default 10%%)")
        p.add_argument("--stat", default="median", choices=("min", "median", "mean"), help="statistic (default median)")
        p.add_argument(
            "--metric",
            default="time",
            choices=METRICS,
            help="what is gated: the time (--stat of it), or a memory reading, peak_bytes or resident_bytes, with the "
            "same threshold, coverage and machine rules (default time)",
        )
        p.add_argument("--csv", type=Path, default=None, help="also write the comparison table here")
        p.add_argument(
            "--min-coverage",
            default=f"{DEFAULT_MIN_COVERAGE:.0%}",
            help="fraction of the baseline's rows that must be compared for a verdict (default %(default)s)",
        )
        p.add_argument(
            "--allow-machine-change",
            action="store_true",
            help="gate even when CPU model, thread count or GPU differ between the runs (default: refuse, exit 4)",
        )
        a = p.parse_args(argv[1:])
        try:
            threshold = parse_threshold(a.threshold)
            min_coverage = parse_threshold(a.min_coverage, "--min-coverage")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return compare_runs(a.base, a.new, threshold, a.stat, a.csv, min_coverage, a.allow_machine_change, a.metric)
    p = argparse.ArgumentParser(
        prog="python -m reports",
        description=__doc__.splitlines()[0],
        epilog="Sub-command: python -m reports compare BASE NEW [--threshold 10%] [--stat median] "
        "[--min-coverage 90%] [--allow-machine-change] [--csv FILE]: a regression gate on one device, a "
        "comparison table across devices (python -m reports compare --help).",
    )
    p.add_argument(
        "inputs", nargs="*", type=Path, help="JSON files or folders (default: reports/results/raw and .benchmarks)"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default reports/results)")
    p.add_argument(
        "--verification",
        type=Path,
        action="append",
        default=None,
        help=f"verification runs: CSV files or folders of them, repeatable (default {DEFAULT_VERIFICATION}/ when it "
        "exists; a named path must exist); the newest run per hardware, check and precision is shown",
    )
    p.add_argument(
        "--runs",
        default=None,
        help="comma-separated run names (JSON file stems) for the plots and summary (default: the newest per "
        "hardware; every run always goes to benchmarks.csv)",
    )
    p.add_argument(
        "--reproduced",
        type=Path,
        default=DEFAULT_REPRODUCED,
        help="reproduced experiments (python -m verification.reproduce) for the summary (default %(default)s)",
    )
    a = p.parse_args(argv)
    for v in a.verification or []:
        if not v.exists():
            print(f"error: --verification {v}: no such file or folder", file=sys.stderr)
            return 2
    wanted = [r.strip() for r in a.runs.split(",") if r.strip()] if a.runs else None
    inputs = a.inputs or list(DEFAULT_INPUTS)
    return build(inputs, a.out, a.verification or [DEFAULT_VERIFICATION], a.reproduced, wanted)


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
