"""What every reproduced experiment shares: its options, the reference-vs-ours record, and how results are written.

Each experiment module defines NAME, TITLE, SOURCE, DEVICES (where it can run), PLOTS (what reports draws from its
CSVs) and run(opts) -> Result, whose checks that must hold are rows with a status (reports.reproduced.check: ok
or FAIL; the command exits 1 on a FAIL, and the row stays in the table). Results land in
reports/results/reproduce/<NAME>/: summary.csv (the reference-vs-ours table, one typed Comparison per row),
the experiment's own CSVs (curves, per-start results), and PNG plots rendered from those CSVs by
reports.reproduced (reports never imports torch; verification calls it to render what it just measured).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports.atomic import atomic_write
from reports.reproduced import Comparison, Plot, write_plots, write_summary
from verification.data import Digits, load

DEFAULT_OUT = Path("reports/results/reproduce")

__all__ = ["DEFAULT_OUT", "Comparison", "Options", "Result", "Timer", "digits", "write_csv"]


@dataclass(frozen=True)
class Options:
    """Command-line options every experiment receives."""

    seed: int = 0
    quick: bool = False  # a small, fast form for CI: same code path, fewer steps/starts
    mnist: Path | None = None  # full MNIST folder (torchvision layout); None = the embedded 5000 digits
    out: Path = DEFAULT_OUT
    progress: bool = True
    extra: dict = field(default_factory=dict)  # experiment-specific switches (e.g. epfl's full per-sample loop)
    data: Digits | None = None  # the digits, loaded once by the command line for every experiment of the run
    device: str = "cpu"  # where experiments that declare DEVICES with cuda draw and train (--device)


@dataclass
class Result:
    """The reference-vs-ours rows, and how long the run took."""

    name: str
    rows: list[Comparison]
    seconds: float = 0.0


class Timer:
    """Wall-clock seconds since creation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def write_csv(folder: Path, name: str, df: pd.DataFrame) -> Path:
    """One experiment CSV, atomically."""
    return atomic_write(folder / name, lambda tmp: df.to_csv(tmp, index=False))


def finish(result: Result, opts: Options, data: str, order: int, plots: list[Plot]) -> Path:
    """Write summary.csv (every row carries the experiment's order, the seed, the data source and the run's mode)
    and plots.json (what reports draws from the CSVs) for the experiment."""
    folder = opts.out / result.name
    write_plots(folder, plots)
    return write_summary(folder, result.rows, order, opts.seed, data, opts.quick, result.seconds)


def fmt(v: float, digits: int = 4) -> str:
    """A number for the table: 4 significant digits, no exponent for ordinary sizes."""
    return f"{v:.{digits}g}"


def digits(opts: Options) -> Digits:
    """The run's MNIST digits: those the command line loaded, else loaded now (embedded, or from opts.mnist)."""
    return opts.data if opts.data is not None else load(opts.mnist)
