"""`python -m verification.grading`: the grader (the same as `python -m verification.grade`)."""

from reports.cli import run as run_cli
from verification.grading.cli import main

run_cli(main)
