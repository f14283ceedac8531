"""The entry-point wrapper every `python -m` command shares: exit with main()'s status, quietly when piped to head."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def run(main: Callable[[], int]) -> None:
    """sys.exit(main()); a reader that closes the pipe early (`| head`) ends the program without a traceback."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's final flush goes nowhere
        code = 141  # 128 + SIGPIPE, what a shell reports for a program killed by a closed pipe
    sys.exit(code)
