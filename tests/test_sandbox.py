"""The grader against a hostile class (tests/plugins/hostile.py), graded inside the real sandbox (bubblewrap): no
wrong gradient passes, the honest students' rows and files are untouched, no process an attack started is alive
after the run, no secret of the grader's environment reaches the gradebook, nothing in it is a spreadsheet formula,
and every entry of the class folder has its row or its line. Skipped, with the reason, where bubblewrap cannot run
(.ci/run installs it: CI runs these)."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verification.grading import sandbox
from verification.grading.gradebook import escape_cell, md_cell, scrub, unescape_cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "plugins"))

from hostile import MARK, SECRET, make_hostile_class  # noqa: E402

WHY = sandbox.unavailable()
needs_sandbox = pytest.mark.skipif(WHY is not None, reason=f"no sandbox here: {WHY}")
SMALL = ["--batch", "7", "--sizes", "5-4-3", "--timeout", "60", "--jobs", "2", "--quiet"]
FORBID = ["--forbid", "torch.nn", "--forbid", "autograd"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def survivors() -> list[str]:
    """Processes whose command line carries the attacks' mark (every process an attack starts execs `sleep MARK`)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if MARK in cmdline:
                out.append(f"{entry.name}: {cmdline}")
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    if WHY is not None:
        pytest.skip(f"no sandbox here: {WHY}")
    root = tmp_path_factory.mktemp("hostile")
    klass, out, cwd = root / "class", root / "grades" / "gradebook.csv", root / "grader-cwd"
    expected = make_hostile_class(klass)
    cwd.mkdir()
    guarded = [klass / "alice" / "two_layer_net.py", klass / "carol.py", ROOT / "verification" / "oracle.py"]
    before = {p: _sha(p) for p in guarded}
    env = {**os.environ, SECRET: "the-grader-s-token", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "verification.grade", str(klass), "--out", str(out), *SMALL, *FORBID],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    with open(out, newline="", encoding="utf-8") as f:
        rows = {unescape_cell(r["student"]): r for r in csv.DictReader(f)}
    return r, rows, expected, before, out, cwd, klass


@needs_sandbox
def test_every_attack_fails_and_every_honest_row_is_right(graded: tuple) -> None:
    r, rows, expected, *_ = graded
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(rows) == set(expected), set(rows) ^ set(expected)
    for student, (verdict, words) in expected.items():
        row = rows[student]
        assert row["verdict"] == verdict, (student, row)
        assert words in row["hint"] + row["problem"] + row["file"], (student, row)
        if verdict != "pass":
            assert float(row["points"]) < 10.0, (student, row)
    assert float(rows["dodge_reg"]["points"]) == 5.0  # 3 of 6 planned cases passed; the 3 refused earn nothing


@needs_sandbox
def test_nothing_outside_its_copy_changed_and_no_process_survives(graded: tuple) -> None:
    _, rows, _, before, _, cwd, klass = graded
    assert {p: _sha(p) for p in before} == before  # a classmate's files, the project's oracle
    assert not list(cwd.iterdir())  # nothing planted where the grader runs
    assert not (klass / "alice" / "numpy.py").exists()
    assert not survivors(), survivors()  # the daemons, the setsid double fork and the fork bomb all died
    assert len(rows) > 10 and "attacker" not in rows  # the gradebook is the grader's: no rewrite of it stuck


@needs_sandbox
def test_no_secret_and_nothing_executable_reaches_the_gradebook(graded: tuple) -> None:
    _, rows, _, _, out, *_ = graded
    for path in (out, out.with_suffix(".md")):
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text and "the-grader-s-token" not in text
        assert str(Path.home()) + "/" not in text and "/tmp/" not in text
    raw = out.read_text(encoding="utf-8")
    assert "\n'=HYPERLINK(1)," in raw and "\n=HYPERLINK" not in raw  # OWASP: a formula cell is quoted
    assert "env: " in rows["leak"]["hint"] and "HOME" in rows["leak"]["hint"]  # it ran, and found a bare environment


@needs_sandbox
def test_entries_that_are_not_submissions_are_said(graded: tuple) -> None:
    """README.txt is no submission (a line, not a row); the archive and the symlinks are rows with the reason."""
    r, rows, _, _, out, *_ = graded
    assert "skipped README.txt: not a submission" in r.stdout, r.stdout
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "## Not graded" in md and "README.txt: not a submission" in md
    assert "Points: --points x cases passed / cases planned" in md and "Cases refused" in md
    assert rows["archive"]["verdict"] == "skipped" and rows["top_link"]["verdict"] == "error"


def test_the_sandbox_command_binds_no_class_folder_and_clears_the_environment(tmp_path: Path) -> None:
    copy = tmp_path / "class" / "alice"
    copy.mkdir(parents=True)
    cmd = sandbox.command(copy, sandbox.Limits())
    assert "--clearenv" in cmd and "--unshare-all" in cmd and "--die-with-parent" in cmd
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--bind", "--bind-try")]
    assert not binds  # nothing writable of the machine: the copy's tmpfs is the only writable place
    ro = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--ro-bind", "--ro-bind-try")]
    assert str(copy) in ro and str(tmp_path / "class") not in ro and str(Path.home()) not in ro
    assert "--size" in cmd and cmd[cmd.index("--size") + 1] == str(sandbox.Limits().copy_bytes)


def test_without_a_sandbox_grading_refuses_in_one_line_unless_told_the_code_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from verification.grading import cli

    monkeypatch.setattr(cli, "unavailable", lambda: "grading sandboxes each submission with bubblewrap, which is "
                        f"not installed: {sandbox.INSTALL}")  # fmt: skip
    klass = tmp_path / "class"
    klass.mkdir()
    (klass / "alice.py").write_text((ROOT / "docs" / "examples" / "cs231n_student.py").read_text())
    assert cli.main([str(klass), "--out", str(tmp_path / "gb.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt install bubblewrap" in err and "--trusted-code" in err, err


def test_gradebook_cells_are_escaped_and_scrubbed() -> None:
    assert escape_cell("=1+1") == "'=1+1" and escape_cell("@SUM(A1)") == "'@SUM(A1)" and escape_cell("ok") == "ok"
    assert unescape_cell(escape_cell("-2")) == "-2" and escape_cell(3.5) == 3.5
    assert md_cell("a | b [x](javascript:alert(1)) <b>") == "a \\| b \\[x\\](javascript:alert(1)) \\<b\\>"
    assert scrub("error at /tmp/twolayer-grade-x/submission/hw.py:3", "/tmp/twolayer-grade-x/submission") == (
        "error at hw.py:3"
    )
