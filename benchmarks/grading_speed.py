"""`python -m benchmarks.grading_speed`: what the grader's sandbox costs -- the generated class of
tests/plugins/classroom.py (64 submissions, 16 kinds x 4) graded with and without bubblewrap (--trusted-code), at
--jobs 1 and 2, and each submission's child start-up alone, sandboxed or not. Writes docs/generated/grading_speed.md
(the table docs/grading.md includes). Minutes: run it on a quiet machine, not in the tests.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reports.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "generated" / "grading_speed.md"


def _grade(klass: Path, out: Path, jobs: int, trusted: bool, timeout: float) -> float:
    cmd = [sys.executable, "-m", "verification.grade", str(klass), "--layout", "cs231n", "--timeout", f"{timeout:g}",
           "--jobs", str(jobs), "--quiet", "--out", str(out), *(["--trusted-code"] if trusted else [])]  # fmt: skip
    start = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.monotonic() - start


def _median_row(out: Path) -> float:
    with open(out, newline="", encoding="utf-8") as f:
        return statistics.median(float(r["seconds"]) for r in csv.DictReader(f) if r["verdict"] != "timeout")


def _startup(sandboxed: bool, rounds: int = 7) -> float:
    """Median seconds from starting a child to its answer that the cs231n example is loaded."""
    from verification.child import Child
    from verification.forms import Options
    from verification.grading.sandbox import INPUT, WORK, Limits, command, set_limits

    copy = Path(tempfile.mkdtemp()) / "submission"
    copy.mkdir()
    (copy / "hw.py").write_text((ROOT / "docs" / "examples" / "cs231n_student.py").read_text())
    limits = Limits(60)
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        if sandboxed:
            child = Child.start(prefix=command(copy, limits), env={}, preexec=lambda: set_limits(limits))
            setup = {"copy": (str(INPUT), str(WORK)), "chdir": str(WORK)}
            child.conn.send(("load", str(WORK / "hw.py"), "cs231n", None, Options(), 1, setup))
        else:
            child = Child.start(cwd=str(copy), preexec=lambda: set_limits(limits))
            child.conn.send(("load", str(copy / "hw.py"), "cs231n", None, Options(), 1))
        if not child.conn.poll(120) or child.conn.recv_bytes()[:1] != b"R":
            raise RuntimeError("the child did not load the example")
        times.append(time.monotonic() - start)
        child.kill()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.grading_speed", description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per submission (default 60)")
    p.add_argument("--out", type=Path, default=OUT, help=f"the markdown table (default {OUT.relative_to(ROOT)})")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests" / "plugins"))
    from classroom import make_class

    with tempfile.TemporaryDirectory() as tmp:
        klass = Path(tmp) / "submissions"
        make_class(klass, 64)
        wall, median = {}, {}
        for jobs in (1, 2):
            for trusted in (False, True):
                book = Path(tmp) / f"gb_{jobs}_{trusted}.csv"
                wall[jobs, trusted] = _grade(klass, book, jobs, trusted, args.timeout)
                median[jobs, trusted] = _median_row(book)
    start = {s: _startup(s) for s in (True, False)}
    cost = {j: 100 * (wall[j, False] / wall[j, True] - 1) for j in (1, 2)}
    lines = [
        f"| 64 submissions, `--timeout {args.timeout:g}` | `--jobs 1` | `--jobs 2` |",
        "|---|---|---|",
        f"| in the sandbox (bubblewrap) | {wall[1, False]:.1f} s | {wall[2, False]:.1f} s |",
        f"| `--trusted-code` (no sandbox) | {wall[1, True]:.1f} s | {wall[2, True]:.1f} s |",
        f"| the sandbox's cost | {cost[1]:+.1f} % | {cost[2]:+.1f} % |",
        f"| a submission's median, hangs apart (sandbox, trusted) | {median[1, False]:.2f} s, {median[1, True]:.2f} s "
        f"| {median[2, False]:.2f} s, {median[2, True]:.2f} s |",
        f"| a child's start-up alone, to the example loaded (sandbox, trusted) | {start[True]:.2f} s, "
        f"{start[False]:.2f} s | |",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python -m benchmarks.grading_speed` (one run each). The start-up "
        "is an interpreter importing torch and the checked code, sandboxed or not (bubblewrap itself takes ~5 ms); "
        "then the cases (36 for a cs231n file, ~0.2 s) and the grader's judging. A warm start (one process with "
        "torch loaded, forked per submission) would save most of the start-up, ~1.6 s a submission; not done: a fork "
        "of a process the grader trusts would have to enter the sandbox after the fact (bubblewrap starts a command, "
        "it does not adopt a process).",
    ]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
