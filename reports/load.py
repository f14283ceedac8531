"""Read saved pytest-benchmark runs; corrupt, truncated or foreign JSON is skipped with a warning naming it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_INPUTS = (Path("reports/results/raw"), Path(".benchmarks"))


@dataclass(frozen=True)
class Run:
    """One saved pytest-benchmark JSON file."""

    path: Path
    machine_info: dict
    commit_info: dict
    datetime: str
    benchmarks: list[dict]

    @property
    def name(self) -> str:
        return self.path.stem


def find_json(inputs: list[Path]) -> list[Path]:
    """Files given directly, and every *.json below given folders, sorted for deterministic output."""
    files: set[Path] = set()
    for p in inputs:
        if p.is_dir():
            files.update(f for f in p.rglob("*.json") if not f.name.startswith("."))
        elif p.is_file():
            files.add(p)
    return sorted(files)


def load_run(path: Path) -> Run:
    """Parse one file; ValueError says why it is not a usable pytest-benchmark run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"corrupt or truncated JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError("not a pytest-benchmark run (no 'benchmarks' list)")
    if not isinstance(data.get("machine_info"), dict):
        raise ValueError("not a pytest-benchmark run (no 'machine_info')")
    rows = []
    for b in data["benchmarks"]:
        if not isinstance(b, dict) or not isinstance(b.get("stats"), dict) or "median" not in b["stats"]:
            raise ValueError(f"benchmark entry without stats.median: {str(b)[:60]}")
        rows.append(b)
    return Run(path, data["machine_info"], data.get("commit_info") or {}, str(data.get("datetime", "")), rows)


def load_runs(inputs: list[Path]) -> tuple[list[Run], list[str]]:
    """Every usable run under `inputs`, and one warning line per skipped file."""
    runs, warnings = [], []
    for f in find_json(inputs):
        try:
            runs.append(load_run(f))
        except (OSError, ValueError) as exc:
            warnings.append(f"warning: skipping {f}: {exc}")
    return runs, warnings
