"""`python -m verification.grade SUBMISSIONS`: the grader's command line, kept where teachers' scripts call it; the
grader itself is verification.grading (its CLI, the sandbox, the gradebook)."""

from __future__ import annotations

from verification.grading.cli import build_grade_parser, main

__all__ = ["build_grade_parser", "main"]

if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
