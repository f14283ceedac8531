"""The teacher's grader: a class's gradebook, every submission run inside a sandbox and judged outside it.

cli.py          the command line (python -m verification.grade, twolayer grade)
submissions.py  what a class folder holds: a row or a reason for every entry
grader.py       one submission: static checks, the plan, the cases in the sandbox, the verdict (the trust boundary)
sandbox.py      bubblewrap's command line and the limits, one table
gradebook.py    the rows, the CSV (nothing executable in it) and the summary
"""
