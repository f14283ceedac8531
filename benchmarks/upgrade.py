"""`python -m benchmarks.upgrade FILE...`: rewrite schema-2 benchmark runs as schema 3, in place and atomically.

Schema 3 rows say what the reports need instead of letting them match names: whether the precision is reduced
(impls.precision), the implementation's rank and whether it is the baseline (the registry), and for a GEMM peak
which product it timed (parsed from the row's workload name, as benchmarks/test_peak.py wrote it in schema 2).
These are the producer's facts, so the producer adds them; the run records that it was upgraded, by which commit.
Measured numbers are never touched. Exit 0 when every file was upgraded or already schema 3, 2 otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

import impls
from benchmarks.test_peak import product_of
from impls.precision import PRECISIONS
from reports.atomic import atomic_write
from reports.provenance import project_commit
from reports.record import READABLE_SCHEMAS, BenchRecord

UPGRADED_TO = 3  # memory (schema 4) was never measured in a schema-2 run: its rows stay without it, readable

SQUARE = re.compile(r"square-(\d+)$")
FORWARD = re.compile(r"net-forward-(\d+)x(\d+)x(\d+)$")  # N x D x H: (N, D) @ (D, H)
DW1 = re.compile(r"net-dW1-(\d+)x(\d+)x(\d+)$")  # H x N x D: (H, N) @ (N, D)


def upgrade_row(extra: dict) -> dict:
    """One schema-2 extra_info as schema 3 (checked by BenchRecord)."""
    d = {**extra, "schema": UPGRADED_TO}
    d["reduced"] = PRECISIONS[d.get("precision", "fp32")].reduced
    if d.get("impl") in impls.names():
        cls = impls.get(d["impl"])
        d.update(rank=cls.rank, baseline=cls.baseline)
    if d.get("kind") == "many_nets":  # "rumelhart x K=1000": K copies of the named workload's net
        d["single"] = d["workload"].split(" x K=")[0]
    if d.get("kind") == "peak_gemm":
        name = d["workload"]
        if m := SQUARE.match(name):
            d.update(product_of(name, *(int(m.group(1)),) * 3))
        elif m := FORWARD.match(name):
            d.update(product_of(name, *map(int, m.groups())))
        elif m := DW1.match(name):
            d.update(product_of(name, *map(int, m.groups())))
    return BenchRecord.from_extra_info(d).to_extra_info()


def upgrade(path: Path) -> str:
    """Upgrade one file; a line saying what was done."""
    raw = path.read_bytes()
    data = json.loads(gzip.decompress(raw) if path.name.endswith(".gz") else raw)
    info = data["machine_info"]["twolayer"]
    if info.get("schema") in READABLE_SCHEMAS:
        return f"{path}: already schema {info['schema']} (readable)"
    if info.get("schema") != 2:
        raise ValueError(f"{path}: schema {info.get('schema')!r}: only schema 2 can be upgraded")
    for b in data["benchmarks"]:
        b["extra_info"] = upgrade_row(b["extra_info"])
    info["schema"] = UPGRADED_TO
    info["upgraded"] = f"schema 2 -> {UPGRADED_TO} by benchmarks/upgrade.py at {project_commit()}"
    text = json.dumps(data, indent=1).encode()
    blob = gzip.compress(text, mtime=0) if path.name.endswith(".gz") else text
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))
    return f"{path}: upgraded {len(data['benchmarks'])} rows to schema {UPGRADED_TO}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.upgrade", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path, help="saved runs (.json or .json.gz)")
    code = 0
    for f in p.parse_args(argv).files:
        try:
            print(upgrade(f))
        except (OSError, ValueError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = 2
    return code


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
