"""README examples come from runs: each `$ command` block in README.md is run and its shown lines must appear."""

from __future__ import annotations

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
