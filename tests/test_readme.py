"""The numbers README.md and docs/glance.md quote come from the committed runs they name; the options --help states.

(The commands and code blocks of README.md and docs/ are run by tests/test_docs.py.)
"""

from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from reports.record import BAD, CHECKED, Status

ROOT = Path(__file__).resolve().parents[1]


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


# ---- the numbers README quotes come from the committed runs README names ------------------------------------
# Each run is named by its file (reports/results/raw/NAME.json[.gz], reports/results/verification/NAME.csv[.gz]):
# the main job adds new runs beside them and never rewrites one, so these checks hold in a checkout where a user
# ran the main job (issue 19), and they never read "the newest" run.

GLANCE = {"rumelhart": 1, "mnist-64": 2, "epfl": 3, "mnist-60000": 4}  # workload -> column of the glance tables
RUN = re.compile(r"`(\d{4}-\d\d-\d\dT\d{4,6}_[^`]+)`")


def glance_cell(seconds: float) -> str:
    """How README writes a median: µs, one decimal under 100, else 3 significant digits with thousands commas."""
    us = seconds * 1e6
    if us < 100:
        return f"{us:.1f}"
    return f"{round(us, 2 - math.floor(math.log10(us))):,.0f}"


GLANCE_PAGE = ROOT / "docs" / "glance.md"  # the per-implementation tables, the peaks and the worst errors


def _section(title: str) -> str:
    """README's section `## title`, up to the next section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    return text[start : text.index("\n## ", start + 1)]


def _glance() -> str:
    return GLANCE_PAGE.read_text(encoding="utf-8")


def _rows(section: str, first_cell: str) -> list[list[str]]:
    """The cells of the table whose heading row starts with `first_cell` (heading included)."""
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell}"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if "---" not in line:
            rows.append([c.strip() for c in line.split("|")[1:-1]])
    return rows


def committed_run(name: str):
    """The tidy rows of one committed benchmark run, found by its name."""
    from reports.load import load_run
    from reports.tidy import tidy

    path = next(p for p in (ROOT / "reports/results/raw").glob(f"{name}.json*"))
    return tidy([load_run(path)])


def committed_verification(name: str):
    from reports.record import read_verification

    return read_verification(next((ROOT / "reports/results/verification").glob(f"{name}.csv*")))


def _named(df):
    return df[(df["kind"] == "named") & (df["precision"] == "fp32")]


def test_glance_table_per_implementation_matches_the_run_it_names() -> None:
    rows = _rows(_glance(), "µs per step")
    (run,) = RUN.findall(rows[0][0])
    named = _named(committed_run(run))
    checked = 0
    for cells in rows[1:]:
        impl = cells[0]
        for workload, col in GLANCE.items():
            r = named[(named["impl"] == impl) & (named["workload"] == workload)]
            if r.empty:
                assert cells[col] == "(capped)", (impl, workload, cells[col])
                continue
            median = float(r["median"].iloc[0])
            want = glance_cell(median)
            if median == named[named["workload"] == workload]["median"].min():
                want = f"**{want}**"
            assert cells[col] == want, (run, impl, workload, cells[col], want)
            checked += 1
    assert checked >= 12, "the glance table lost its rows"


def test_glance_table_best_per_device_matches_the_runs_it_names() -> None:
    rows = _rows(_section("Results at a glance"), "best µs per step")
    devices = set()
    for cells in rows[1:]:
        (run,) = RUN.findall(cells[0])
        named = _named(committed_run(run))
        device = "cuda" if cells[0].startswith("cuda") else "cpu"
        named = named[named["device"] == device]
        devices.add(device)
        for workload, col in GLANCE.items():
            best = named[named["workload"] == workload].sort_values("median").iloc[0]
            assert cells[col] == f"{best['impl']} {glance_cell(float(best['median']))}", (run, workload, cells[col])
    assert devices == {"cpu", "cuda"} and len(rows) >= 4, "the CPU and CUDA sides of the glance table"


def test_quoted_peaks_and_worst_verification_errors_match_the_runs_named() -> None:
    section = _glance()
    peaks = re.search(
        r"Measured in run `([^`]+)`: fp32 GEMM peak (\d+) GFLOP/s .*?, copy bandwidth (\d+) GB/s", section
    )
    assert peaks, "README lost its peak sentence"
    df = committed_run(peaks.group(1))
    gemm = df[(df["kind"] == "peak_gemm") & (df["precision"] == "fp32") & df["workload"].str.startswith("square-")]
    assert f"{gemm['gflops'].max():.0f}" == peaks.group(2)
    assert f"{df[df['kind'] == 'peak_bandwidth']['bandwidth_gbs'].max():.0f}" == peaks.group(3)
    quoted = re.findall(r"worst error at (0\.\d\d) of its\s+derived\s+tolerance\s+\(run\s+`([^`]+)`\)", section)
    assert len(quoted) >= 2, "README quotes the worst verification error of the CPU and the CUDA run"
    for ratio, run in quoted:
        ver = committed_verification(run)
        checked = ver[ver["status"].isin(CHECKED)]
        assert (ver["status"] == Status.OK.value).any() and not ver["status"].isin(BAD).any(), run
        assert f"{(checked['max_rel_err'] / checked['tol']).max():.2f}" == ratio, run


def test_jax_table_matches_the_run_it_names() -> None:
    """The JAX-vs-the-rest table: jax's own median and the fastest other row, one step per call and per step inside
    a train call (median / steps), per workload of the glance tables."""
    rows = _rows(_glance(), "JAX beside the others")
    (run,) = RUN.findall(rows[0][0])
    df = committed_run(run)
    frames = {"one step per call": (_named(df), "median"), "train": (df[df["kind"] == "train"], "per")}
    frames["train"] = (frames["train"][0].assign(per=lambda d: d["median"] / d["steps"]), "per")
    checked = 0
    for cells in rows[1:]:
        frame, col = frames["train" if "train" in cells[0] else "one step per call"]
        mine = cells[0].startswith("jax")
        for workload, c in GLANCE.items():
            f = frame[frame["workload"] == workload]
            if f.empty:
                assert cells[c] == "–", (cells[0], workload)
                continue
            if mine:
                want = glance_cell(float(f[f["impl"] == "jax"][col].iloc[0]))
            else:
                best = f[f["impl"] != "jax"].sort_values(col).iloc[0]
                want = f"{best['impl']} {glance_cell(float(best[col]))}"
            assert cells[c] == want, (run, cells[0], workload, cells[c], want)
            checked += 1
    assert checked >= 12, "the JAX table lost its rows"
