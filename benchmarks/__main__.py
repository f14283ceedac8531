"""`python -m benchmarks [--bench-set S] [pytest args...]`: run the suite and save its raw JSON atomically.

The JSON lands in reports/results/raw/<date>_<device>_<host>.json (override with --out); pytest-benchmark
writes it to a temp file first, which is renamed only once it is complete and parses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pytest

from reports.provenance import run_name

RAW_DIR = Path("reports/results/raw")


def default_name(devices: str) -> str:
    """<UTC date-time>_<device>_<host>.json, the device named after the GPU when CUDA is benchmarked."""
    import torch

    tag = "cpu"
    if "cuda" in devices and torch.cuda.is_available():
        tag = "cuda-" + torch.cuda.get_device_name(0)
    return run_name(tag) + ".json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.splitlines()[0],
        epilog="Every other argument goes to pytest, e.g. the suite's own --impls A,B, --threads N (>= 1), "
        "--loop-max-n N (>= 0, default 1024), -k EXPR, or pytest-benchmark's --benchmark-max-time S, "
        "--benchmark-sort COL (default here: median), --benchmark-columns COLS.",
    )
    parser.add_argument(
        "--out", default=None, help="JSON path (default reports/results/raw/<date>_<device>_<host>.json)"
    )
    parser.add_argument(
        "--bench-set",
        default="quick" if os.environ.get("TWOLAYER_QUICK") == "1" else "default",
        choices=("quick", "default", "full"),
        help="workload set (default: default; quick when TWOLAYER_QUICK=1)",
    )
    parser.add_argument(
        "--bench-device", default="cpu,cuda", help="cpu and/or cuda, comma-separated (default cpu,cuda)"
    )
    args, rest = parser.parse_known_args(argv)
    out = Path(args.out) if args.out else RAW_DIR / default_name(args.bench_device)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    code = pytest.main(
        [
            "benchmarks",
            "--benchmark-only",
            f"--benchmark-json={tmp}",
            f"--bench-set={args.bench_set}",
            f"--bench-device={args.bench_device}",
            "-p",
            "no:cacheprovider",
            *rest,
        ]
    )
    try:
        json.loads(tmp.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: benchmark JSON not written or unreadable ({exc}); nothing saved", file=sys.stderr)
        tmp.unlink(missing_ok=True)
        return int(code) or 1
    os.replace(tmp, out)
    print(f"saved {out}")
    return int(code)


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
