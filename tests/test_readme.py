"""README examples come from runs: each `$ command` block in README.md is run and its shown lines must appear."""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def examples() -> list[tuple[str, list[str]]]:
    """(command, expected lines) for every fenced block whose first line starts with '$ '; '...' skips lines."""
    blocks = re.findall(r"```[a-z]*\n(\$ .*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    out = []
    for block in blocks:
        first, *rest = block.rstrip("\n").split("\n")
        out.append((first[2:], [line for line in rest if line.strip() != "..."]))
    return out


def test_readme_has_examples() -> None:
    assert examples(), "README.md lost its checked examples"


@pytest.mark.parametrize(("command", "lines"), examples(), ids=[c for c, _ in examples()])
def test_readme_example_output_is_what_a_run_prints(command: str, lines: list[str]) -> None:
    argv = shlex.split(command)
    assert argv[0] == "python", f"examples run with python: {command}"
    r = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    printed = set((r.stdout + r.stderr).splitlines())
    missing = [line for line in lines if line not in printed]
    assert not missing, f"README claims lines that `{command}` does not print:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("verification", ["--timeout", "default 60", "--threads", "--variant"]),
        ("verification.reproduce", ["rumelhart", "epfl", "umons", "cs231n", "lab2", "--quick", "--seed"]),
        ("reports", ["compare BASE NEW", "--min-coverage", "--runs", "--reproduced"]),
        ("benchmarks", ["--bench-set", "--impls", "--loop-max-n", "--benchmark-sort"]),
    ],
)
def test_help_states_options_and_defaults(module: str, expected: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0 and all(e in r.stdout for e in expected), r.stdout


def test_piping_into_head_is_quiet() -> None:
    """A reader that closes the pipe early: no BrokenPipe traceback."""
    r = subprocess.run(
        f"{shlex.quote(sys.executable)} -m verification --impl batched --quiet --batch 7 | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "impl" in r.stdout and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


# ---- the numbers README quotes come from the committed results ------------------------------------------------

GLANCE = {"rumelhart": 1, "mnist-64": 2, "epfl": 3, "mnist-60000": 4}  # workload -> column of the glance table


def glance_cell(seconds: float) -> str:
    """How README writes a median: µs, one decimal under 100, else 3 significant digits with thousands commas."""
    us = seconds * 1e6
    if us < 100:
        return f"{us:.1f}"
    return f"{round(us, 2 - math.floor(math.log10(us))):,.0f}"


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    return text[start : text.index("\n## ", start + 1)]


def test_results_at_a_glance_match_the_committed_cpu_run() -> None:
    import pandas as pd

    df = pd.read_csv(ROOT / "reports/results/benchmarks.csv")
    cpu = df[(df["device"] == "cpu") & (df["kind"] == "named") & (df["precision"] == "fp32")]
    newest = cpu[cpu["date"] == cpu["date"].max()]
    section = _section("Results at a glance")
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    checked = 0
    for cells in rows[1:]:
        impl = cells[0].strip()
        for workload, col in GLANCE.items():
            got = cells[col].strip()
            r = newest[(newest["impl"] == impl) & (newest["workload"] == workload)]
            if r.empty:
                assert got == "(capped)", (impl, workload, got)
                continue
            want = glance_cell(float(r["median"].iloc[0]))
            if float(r["median"].iloc[0]) == newest[newest["workload"] == workload]["median"].min():
                want = f"**{want}**"
            assert got == want, (impl, workload, got, want)
            checked += 1
    assert checked >= 12, "the glance table lost its rows"


def test_quoted_peaks_and_worst_verification_error_match_the_committed_results() -> None:
    import pandas as pd

    df = pd.read_csv(ROOT / "reports/results/benchmarks.csv")
    cpu = df[df["device"] == "cpu"]
    newest = cpu[cpu["date"] == cpu["date"].max()]
    gemm = newest[newest["kind"] == "peak_gemm"]
    peak = gemm[(gemm["precision"] == "fp32") & gemm["workload"].str.startswith("square-")]["gflops"].max()
    bw = newest[newest["kind"] == "peak_bandwidth"]["bandwidth_gbs"].max()
    ver = pd.read_csv(ROOT / "reports/results/verification.csv", low_memory=False)
    ok = ver[ver["status"].isin(["ok", "FAIL"])]
    worst = (ok["max_rel_err"] / ok["tol"]).max()
    section = _section("Results at a glance")
    assert f"fp32 GEMM peak {peak:.0f} GFLOP/s" in section
    assert f"copy bandwidth {bw:.0f} GB/s" in section
    assert f"the worst error at {worst:.2f} of its derived tolerance" in section
