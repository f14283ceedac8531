"""`python -m verification`: check every registered implementation, or your own backprop, against the oracle
(verification.cli). The child process each plug-in runs in is started before anything heavy is imported here, so
the two interpreters load torch at the same time (a student's one-line check waits for one start-up, not two).

Exit 0 if everything matches, 1 if anything does not (or nothing could be checked), 2 on a usage error.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from verification.child import prestart, release_all

    argv = list(sys.argv[1:] if argv is None else argv)
    prestart(argv)
    try:
        from verification.cli import main as check

        return check(argv)
    finally:
        release_all()


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
