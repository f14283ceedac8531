"""The `twolayer` command (a console script): one entry point for what people do with the project, each subcommand
the same code as its `python -m` form, which stays.

    twolayer check FILE [options]   python -m verification --impl FILE [options]: your backprop, its form recognised
    twolayer grade DIR [options]    python -m verification.grade DIR [options]: a class's gradebook
    twolayer bench [options]        python -m benchmarks [options]: every implementation on this machine
    twolayer report [options]       python -m reports [options]: tables, plots and the summary from saved runs
    twolayer reproduce [NAME]       python -m verification.reproduce [NAME]: the five source experiments

`twolayer check` with no file checks the registry (python -m verification). Each subcommand's --help is its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE = __doc__.split("\n\n", 2)[1]


def _check(argv: list[str]) -> int:
    from verification.__main__ import main

    if argv and not argv[0].startswith("-"):  # twolayer check FILE ...: the file is the --impl
        argv = ["--impl", argv[0], *argv[1:]]
    return main(argv)


def _grade(argv: list[str]) -> int:
    from verification.grade import main

    return main(argv)


def _bench(argv: list[str]) -> int:
    from benchmarks.__main__ import main

    return main(argv)


def _report(argv: list[str]) -> int:
    from reports.__main__ import main

    return main(argv)


def _reproduce(argv: list[str]) -> int:
    from verification.reproduce.__main__ import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "check": _check,
    "grade": _grade,
    "bench": _bench,
    "report": _report,
    "reproduce": _reproduce,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the subcommand; its exit status (2 with the usage for an unknown or missing one)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: twolayer {{{','.join(COMMANDS)}}} ...\n\n{USAGE}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose from {', '.join(COMMANDS)} (twolayer --help)", file=sys.stderr)
        return 2
    return COMMANDS[name](rest)


def run() -> None:
    """The console script's entry point: exit with main()'s status (quietly when piped to head)."""
    from reports.cli import run as run_cli

    run_cli(main)


if __name__ == "__main__":  # python -m verification.console CMD ...: the same as the installed `twolayer CMD ...`
    run()
