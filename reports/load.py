"""Read saved pytest-benchmark runs of this suite; corrupt, truncated, foreign (another project's pytest-benchmark
JSON, or this suite's older schema) or NaN-timed input is skipped with a warning naming it."""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports.record import READABLE_SCHEMAS, BenchRecord, RecordError, read_verification

DEFAULT_INPUTS = (Path("reports/results/raw"), Path(".benchmarks"))
DEFAULT_VERIFICATION = Path("reports/results/verification")


@dataclass(frozen=True)
class Run:
    """One saved pytest-benchmark JSON file."""

    path: Path
    machine_info: dict
    commit_info: dict
    datetime: str
    benchmarks: list[dict]
    records: list[BenchRecord]
    dropped: int = 0  # rows left out because their median is not a positive finite time

    @property
    def name(self) -> str:
        return run_name(self.path)


def find_files(inputs: list[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Files given directly, and every file ending in one of `suffixes` below given folders (hidden temp files
    left out), sorted for deterministic output."""
    files: set[Path] = set()
    for p in inputs:
        if p.is_dir():
            files.update(f for f in p.rglob("*") if f.name.endswith(suffixes) and not f.name.startswith("."))
        elif p.is_file():
            files.add(p)
    return sorted(files)


def find_json(inputs: list[Path]) -> list[Path]:
    """Saved runs: *.json and gzipped *.json.gz (how the committed runs are stored)."""
    return find_files(inputs, (".json", ".json.gz"))


def run_name(path: Path) -> str:
    """A saved file's run name: its name without .json/.csv and .gz."""
    name = path.name.removesuffix(".gz")
    return name.rsplit(".", 1)[0] if "." in name else name


def load_run(path: Path, drop_invalid: bool = True) -> Run:
    """Parse one file; ValueError says why it is not a usable pytest-benchmark run. Rows whose median is not a
    positive finite time are dropped (counted in Run.dropped) unless drop_invalid is False (the regression gate
    keeps them, to refuse a verdict on them)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"corrupt gzip ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"corrupt or truncated JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError("not a pytest-benchmark run (no 'benchmarks' list)")
    if not isinstance(data.get("machine_info"), dict):
        raise ValueError("not a pytest-benchmark run (no 'machine_info')")
    ours = data["machine_info"].get("twolayer")
    if not isinstance(ours, dict) or "schema" not in ours:
        raise ValueError("not a twolayer run (machine_info has no 'twolayer' record with a schema version)")
    if ours["schema"] not in READABLE_SCHEMAS:
        readable = ", ".join(map(str, READABLE_SCHEMAS))
        raise ValueError(
            f"twolayer schema {ours['schema']!r}, this version reads {readable} (re-run the benchmarks, or "
            "`python -m benchmarks.upgrade FILE` for a schema-2 run)"
        )
    rows, records, dropped = [], [], 0
    for b in data["benchmarks"]:
        if not isinstance(b, dict) or not isinstance(b.get("stats"), dict) or "median" not in b["stats"]:
            raise ValueError(f"benchmark entry without stats.median: {str(b)[:60]}")
        try:
            rec = BenchRecord.from_extra_info(b.get("extra_info"))
        except (RecordError, TypeError) as exc:
            raise ValueError(f"row {b.get('name', '?')}: {exc}") from None
        median = b["stats"]["median"]
        if drop_invalid and not (isinstance(median, (int, float)) and math.isfinite(median) and median > 0):
            dropped += 1
            continue
        rows.append(b)
        records.append(rec)
    if not rows:
        raise ValueError("no row with a positive finite median")
    when = str(data.get("datetime", ""))
    return Run(path, data["machine_info"], data.get("commit_info") or {}, when, rows, records, dropped)


def load_runs(inputs: list[Path], drop_invalid: bool = True) -> tuple[list[Run], list[str]]:
    """Every usable run under `inputs`, and one warning line per skipped file (or dropped rows)."""
    runs, warnings = [], []
    for f in find_json(inputs):
        try:
            run = load_run(f, drop_invalid)
        except (OSError, ValueError) as exc:
            warnings.append(f"warning: skipping {f}: {exc}")
            continue
        runs.append(run)
        if run.dropped:
            warnings.append(f"warning: {f}: dropped {run.dropped} row(s) whose median is NaN, inf or <= 0")
    return runs, warnings


def load_verification(inputs: list[Path]) -> tuple[pd.DataFrame | None, list[str]]:
    """Every usable verification run (*.csv, *.csv.gz) under `inputs` as one frame, and a warning per skipped
    file (another schema, corrupt, foreign). None when there is none."""
    frames, warnings = [], []
    for f in find_files(inputs, (".csv", ".csv.gz")):
        try:
            frames.append(read_verification(f))
        except RecordError as exc:
            warnings.append(f"warning: skipping {f}: {exc}")
    return (pd.concat(frames, ignore_index=True) if frames else None), warnings
