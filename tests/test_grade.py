"""verification.grade on a generated class (tests/plugins/classroom.py): the right row for every kind of submission,
including those that hang, exit, fill memory, print megabytes or do not parse; a killed run resumed loses no row and
regrades none; usage errors are one line."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "plugins"))

from classroom import ORDER, make_class  # noqa: E402

SMALL = ["--batch", "7", "--sizes", "5-4-3", "--timeout", "25", "--jobs", "2", "--quiet"]


def grade(*args: str, wait: bool = True) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "verification.grade", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("class")
    expected = make_class(root / "submissions", len(ORDER))
    out = root / "grades" / "gradebook.csv"
    r = grade(str(root / "submissions"), "--layout", "cs231n", "--out", str(out), *SMALL)
    return root, out, expected, r


def test_every_kind_of_submission_gets_its_right_row(graded: tuple) -> None:
    _, out, expected, r = graded
    assert r.returncode == 0, r.stdout + r.stderr
    got = rows(out)
    assert set(got) == set(expected)
    for student, (verdict, words) in expected.items():
        row = got[student]
        assert row["verdict"] == verdict, (student, row)
        assert words in row["hint"] + row["problem"], (student, row)
        # relu/identity cross_entropy, l2 0 and 0.1, N=7, 5-4-3, float64 (NumPy code), normal/large-logits/exact-zeros
        assert int(row["cases_planned"]) == (6 if verdict in ("pass", "fragile", "fail") else int(row["cases_planned"]))
    assert float(got["s000_correct"]["points"]) == 10.0 and float(got["s009_hang"]["points"]) == 0.0
    assert 0 < float(got["s005_half_reg"]["points"]) < 10.0  # the l2 = 0 cases pass


def test_the_summary_and_the_hints_chart_are_written(graded: tuple) -> None:
    _, out, expected, _ = graded
    md = out.with_suffix(".md").read_text()
    assert f"# Gradebook: {len(expected)} submissions" in md and "| pass | 3 |" in md and "sign flipped" in md
    assert out.with_name("gradebook_hints.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each hint row says a hint as a student's row says it, numbers included (not the grouping key's '#')
    shown = [line[line.index("| ", 2) + 2 : -2] for line in md.splitlines() if re.match(r"\| \d+ \| ", line)]
    shown = [re.fullmatch(r"(`+) (.*) \1", h).group(2).replace("\\|", "|") for h in shown]  # md_cell's code span
    with out.open(newline="", encoding="utf-8") as f:
        hints = {" ".join(r["hint"].split(" (at ")[0].split()) for r in csv.DictReader(f)}
    assert shown and all(h in hints for h in shown), (shown, hints)


def test_a_killed_run_resumed_loses_no_row_and_regrades_none(graded: tuple, tmp_path: Path) -> None:
    root, _, expected, _ = graded
    out = tmp_path / "gradebook.csv"
    proc = grade(str(root / "submissions"), "--layout", "cs231n", "--out", str(out), *SMALL, wait=False)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not out.exists() or len(rows(out)) < 4):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the grader and every check it started, mid-run
    proc.wait()
    before = rows(out)
    assert 4 <= len(before) < len(expected)
    r = grade(str(root / "submissions"), "--layout", "cs231n", "--out", str(out), *SMALL)
    assert r.returncode == 0 and f"{len(before)} unchanged since the last run" in r.stdout, r.stdout
    after = rows(out)
    assert set(after) == set(expected)
    assert all(after[s] == row for s, row in before.items())  # same seconds, same hash: not regraded
    (root / "submissions" / "s000_correct" / "two_layer_net.py").write_text("class TwoLayerNet: pass\n")
    r = grade(str(root / "submissions"), "--layout", "cs231n", "--out", str(out), *SMALL)
    assert f"{len(expected) - 1} unchanged since the last run, 1 to grade" in r.stdout, r.stdout
    assert rows(out)["s000_correct"]["verdict"] == "error"


def test_usage_errors_are_one_line(graded: tuple, tmp_path: Path) -> None:
    root, _, _, _ = graded
    subs = str(root / "submissions")
    bad_book = tmp_path / "book.csv"
    bad_book.write_text("name,grade\nann,3\n")
    for args, says in [
        ((str(tmp_path / "nowhere"), "--layout", "cs231n"), "not a folder of submissions"),
        ((subs, "--layout", "cs231n", "--out", f"{subs}/book.csv"), "inside the submissions folder"),
        ((subs, "--layout", "cs231n", "--out", str(bad_book)), "not a gradebook of this tool"),
        ((subs, "--layout", "cs231n", "--loss", "nope"), "unknown loss 'nope'"),
    ]:
        r = grade(*args)
        lines = (r.stdout + r.stderr).strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and says in lines[0], (args, r.stdout + r.stderr)
