"""How long a student waits for the one-line check: `python -m verification --impl FILE --quiet`, start to exit, on
course files as handed in, no options. Issue 31's target is 2.5 s for the cs231n example on a quiet 2-core machine
(reports.summary.CHECK_TARGET_S); the row records how busy the other cores were (ForeignLoad, children included).

Where the time goes: the checker's interpreter and the checked code's child process each import torch (~1.5 s); the
child is started first (verification/child.py), so the two overlap; then the cases (36 for the cs231n example,
~0.1 s) and the report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.conftest import ForeignLoad, record

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {  # form -> a file written as its students write it
    "cs231n": "docs/examples/cs231n_student.py",
    "coursera": "tests/plugins/notebooks/coursera_planar.ipynb",
}
ROUNDS = {"quick": 3, "default": 5, "full": 9}


@pytest.mark.parametrize("form", list(EXAMPLES))
def test_one_line_check(benchmark, form: str, request: pytest.FixtureRequest) -> None:
    path = EXAMPLES[form]
    cmd = [sys.executable, "-m", "verification", "--impl", path, "--quiet"]

    def check() -> None:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
        assert r.returncode == 0 and "OK: " in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]

    check()  # warm: the bytecode caches are written once, as they would be on a student's machine
    benchmark.group = "one-line check (cpu)"
    with ForeignLoad() as load:
        benchmark.pedantic(check, rounds=ROUNDS[request.config.getoption("--bench-set")], iterations=1)
    if load.cores is not None:
        benchmark.extra_info["foreign_cores"] = load.cores
    record(benchmark, kind="check", impl=form, device="cpu", workload=Path(path).name, threads=1)
