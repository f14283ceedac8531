"""The grader against a hostile class (tests/plugins/hostile.py), graded inside the real sandbox (bubblewrap): no
wrong gradient passes, the honest students' rows and files are untouched, no process an attack started is alive
after the run, no secret of the grader's environment reaches the gradebook, nothing in it is a spreadsheet formula,
and every entry of the class folder has its row or its line. Skipped, with the reason, where bubblewrap cannot run
(.ci/run installs it: CI runs these)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from verification import isolate
from verification.grading import sandbox, submissions
from verification.grading.gradebook import escape_cell, md_cell, scrub, unescape_cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "plugins"))

from hostile import MARK, SECRET, make_hostile_class  # noqa: E402

WHY = sandbox.unavailable()
needs_sandbox = pytest.mark.skipif(WHY is not None, reason=f"no sandbox here: {WHY}")
SMALL = ["--batch", "7", "--sizes", "5-4-3", "--timeout", "30", "--jobs", "4", "--quiet"]
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
    shm = re.search(r"/dev/shm (\d+) MiB; log (\w+)", rows["space"]["hint"])
    assert shm and int(shm.group(1)) <= sandbox.SHM_BYTES >> 20 and shm.group(2) == "False", rows["space"]["hint"]


@needs_sandbox
def test_no_text_of_a_student_reaches_a_terminal_or_a_page_as_anything_but_text(graded: tuple) -> None:
    """Escape sequences are shown escaped, a file name cannot forge a line, a URL is no link (a code span)."""
    r, _, _, _, out, *_ = graded
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    for text in (r.stdout, r.stderr, out.read_text(encoding="utf-8"), md):
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert not any(line.startswith("pass 99") for line in r.stdout.splitlines()), r.stdout
    assert "skipped x\\npass 99; fail 0; error 0.txt: not a submission" in r.stdout
    linked = [line for line in md.splitlines() if "evil.example" in line]
    assert linked and all(re.fullmatch(r"\| \d+ \| (`+) .* \1 \|", line) for line in linked), linked


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
    assert "skipped .eve: a hidden entry" in r.stdout, r.stdout  # never silently dropped
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
    sizes = {cmd[i + 3]: int(cmd[i + 1]) for i, a in enumerate(cmd) if a == "--size" and cmd[i + 2] == "--tmpfs"}
    assert sizes == {str(sandbox.INSIDE): sandbox.Limits().copy_bytes, "/dev/shm": sandbox.SHM_BYTES}  # all it writes
    read_only = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--remount-ro"]
    assert cmd[-2:] == ["--remount-ro", "/"] and "/dev" in read_only  # bwrap's own tmpfs root and /dev
    assert not any(b.endswith("/log") or b == sys.prefix != sys.base_prefix for b in ro)  # no tox log, no whole venv


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
    assert md_cell("a | b [x](javascript:alert(1)) <b>") == "` a \\| b [x](javascript:alert(1)) <b> `"
    assert md_cell("``x`` www.a.b") == "``` ``x`` www.a.b ```" and md_cell("a\x1b[2Jb\nc") == "` a\\x1b[2Jb\\nc `"
    assert scrub("error at /tmp/twolayer-grade-x/submission/hw.py:3", "/tmp/twolayer-grade-x/submission") == (
        "error at hw.py:3"
    )


# ---- without the sandbox: the channel and the reading of a class folder are the grader's own --------------------


def _pair() -> tuple[Connection, socket.socket]:
    mine, theirs = socket.socketpair()
    return Connection(os.dup(mine.fileno())), theirs


def test_the_honest_students_pass_the_static_checks_the_class_is_graded_with(tmp_path: Path) -> None:
    """Every submission expected to pass clears --forbid (FORBID) and the own-work check: an honest fixture that
    grew an autograd line would fail them all in the graded test, and only where bubblewrap runs."""
    from verification.grading.grader import forbidden, not_own_work

    expected = make_hostile_class(tmp_path / "class")
    names = tuple(FORBID[1::2])
    found = {s.student: s for s in submissions.find(tmp_path / "class").submissions}
    honest = [student for student, (verdict, _) in expected.items() if verdict == "pass"]
    assert honest
    for student in honest:
        sub = found[student]
        folder = sub.path
        if not folder.is_dir():  # a lone file is graded in a folder of its own, as the grader copies it
            folder = tmp_path / "copies" / student
            folder.mkdir(parents=True)
            (folder / sub.file).write_bytes(sub.path.read_bytes())
        assert forbidden(folder, names) == "" and not_own_work(folder) == "", (student, forbidden(folder, names))


def test_the_channel_bounds_an_answer_in_time_and_size_and_believes_no_verdict() -> None:
    """Half a message then silence is a TimeoutError (not a hang); a terabyte announced is refused before any byte
    is allocated; a child claiming a status only the checker gives (fragile, fail) is a malformed answer."""
    conn, theirs = _pair()
    theirs.sendall(struct.pack("!i", 100) + b"x")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        isolate.receive(conn, 0.5, 1000)
    assert time.monotonic() - start < 5
    theirs.sendall(struct.pack("!i", -1) + struct.pack("!Q", 1 << 40))
    conn2, theirs2 = _pair()
    theirs2.sendall(struct.pack("!i", -1) + struct.pack("!Q", 1 << 40))
    with pytest.raises(isolate.BadAnswer, match="announced as 1099511627776 bytes"):
        isolate.receive(conn2, 5, 1 << 20)
    conn3, theirs3 = _pair()
    theirs3.sendall(struct.pack("!i", 3) + b"abc")
    assert isolate.receive(conn3, 5, 10) == b"abc"
    theirs3.close()
    with pytest.raises(EOFError):
        isolate.receive(conn3, 5, 10)
    for status in ("fragile", "FAIL"):
        head = json.dumps({"threads": 1, "status": status, "problem": "", "update_skipped": "", "hints": {},
                           "values": {}}).encode()  # fmt: skip
        with pytest.raises(isolate.BadAnswer, match="a status only the checker gives"):
            isolate.decode(struct.pack("<I", len(head)) + head)
    for c in (conn, conn2, conn3, theirs, theirs2):
        c.close()


def test_every_entry_of_a_hostile_class_folder_is_read_without_hanging_or_failing(tmp_path: Path) -> None:
    """submissions.find and digest on the hostile class: a FIFO is never opened, a 40-deep folder is a row, names
    that collide or do not decode are rows of their own, a hidden entry is said."""
    expected = make_hostile_class(tmp_path / "class")
    found = submissions.find(tmp_path / "class")
    subs = {s.student: s for s in found.submissions}
    assert set(subs) == set(expected) | {"archive"} - set(), set(subs) ^ set(expected)
    assert subs["deep"].verdict == "error" and "nested more than" in subs["deep"].problem
    assert subs["top_fifo"].verdict == "error" and "a FIFO" in subs["top_fifo"].problem
    assert "left out notes.txt (a FIFO)" in subs["fifo"].note and "(a socket)" in subs["socket"].note
    assert not subs["dup/"].verdict and not subs["dup.py"].verdict and subs["dup.py"].file == "dup.py"
    assert any(line.startswith(".eve: a hidden entry") for line in found.skipped)
    shas = {s.student: submissions.digest(s) for s in found.submissions}  # reads no FIFO, fails on no name
    assert len(set(shas.values())) == len(shas)
