"""`python -m verification.grade SUBMISSIONS` (`twolayer grade`): check a whole class's backprop, one gradebook row
each, every submission inside the sandbox (verification.grading.sandbox) and judged by the grader alone
(verification.grading.grader).

Each entry of the class folder -- a folder per student, or a .py / .ipynb per student -- gets a row or a line saying
why it was skipped (verification.grading.submissions); submissions run --jobs at once, each with its own wall-clock
--timeout, address-space, output, CPU and process limits. The gradebook CSV (--out) is rewritten atomically after
every row, and each row carries the SHA-256 of the submission's files and of the options: a rerun keeps the rows of
unchanged submissions and grades only the rest. Beside it: a markdown summary (how many passed, how points are
given, the cases refused, what was skipped, the commonest hints) and a bar chart of those hints.

Exit 0 when every entry has its row or its line (whatever their verdicts), 2 on a usage error -- a sandbox that cannot
start here among them, unless --trusted-code says the code is trusted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from verification.forms import FORMS, L2_CHOICES
from verification.grading.gradebook import VERDICTS, GradebookError, plain, read_gradebook, summarize, write_gradebook
from verification.grading.grader import FORWARDED, POINTS_RULE, Grader, settings_of, sweep_stale
from verification.grading.sandbox import Limits, unavailable
from verification.grading.submissions import digest, find
from verification.options import UsageError, build_parser, matrix_from_args


def build_grade_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verification.grade",
        description="Check every submission's backprop against the float64 oracle, each in a sandbox, and write a "
        "gradebook.",
    )
    p.add_argument("submissions", help="a folder holding a folder per student, or a .py / .ipynb file per student")
    p.add_argument(
        "--layout",
        default=None,
        choices=list(FORMS),
        help="the form the submissions are written in (default: each one's recognised from the names it defines)",
    )
    p.add_argument("--name", default="", help="what each submission defines, when not the form's usual name")
    p.add_argument("--loss-fn", default="", metavar="NAME", help="the module form: the loss callable's name")
    p.add_argument("--bind", action="append", default=[], metavar="ROLE=NAME[(ARGS)]", help="as python -m verification")
    p.add_argument("--strict", action="store_true", help="fragile verdicts fail (python -m verification --strict)")
    usual = "as python -m verification (default: the form's usual configuration)"
    for opt in FORWARDED:
        shown = usual if opt in ("hidden", "output", "loss", "l2", "sizes") else "as python -m verification"
        choices = list(L2_CHOICES) if opt == "l2_convention" else None
        p.add_argument(f"--{opt.replace('_', '-')}", default=None, choices=choices, help=shown)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per submission (default 300)")
    p.add_argument("--memory-mb", type=int, default=2048, help="address space per process (default 2048)")
    p.add_argument("--copy-mb", type=int, default=256, help="the writable space a submission has (default 256)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions checked at once (default: cores)")
    p.add_argument("--out", default="gradebook.csv", help="the gradebook CSV (default gradebook.csv)")
    p.add_argument("--points", type=float, default=10.0, help="points for every planned case passed (default 10)")
    p.add_argument(
        "--forbid",
        action="append",
        default=[],
        metavar="MODULE|autograd",
        help="what the assignment forbids (repeatable): a module (torch.nn) imported or used, or autograd "
        "(.backward(), torch.autograd, requires_grad); a submission using it fails with the reason",
    )
    p.add_argument(
        "--trusted-code",
        action="store_true",
        help="run the submissions without the sandbox (as your user, with the same limits): only for code you trust, "
        "or where bubblewrap cannot run",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    _no_cwd_on_path()
    args = build_grade_parser().parse_args(argv)
    root, out = Path(args.submissions), Path(args.out)
    try:
        if not root.is_dir():
            raise UsageError(f"{root}: not a folder of submissions")
        if args.jobs < 1 or not args.timeout > 0 or args.memory_mb < 256 or args.copy_mb < 16:
            raise UsageError("--jobs must be >= 1, --timeout > 0, --memory-mb >= 256 and --copy-mb >= 16")
        limits = Limits(args.timeout, args.memory_mb << 20, copy_bytes=args.copy_mb << 20)
        settings = settings_of(args, limits)
        probe = ["--impl", "probe.py", *settings.cli(args.layout or "linear")]
        matrix_from_args(build_parser().parse_args(probe))  # a bad spec option is one line now, not a row each
        if out.resolve().is_relative_to(root.resolve()):
            raise UsageError(f"--out {out}: inside the submissions folder, where students' code would see it")
        if not args.trusted_code and (why := unavailable()):
            raise UsageError(f"{why} (or, for code you trust, --trusted-code)")
        forms = [FORMS[args.layout]] if args.layout else list(FORMS.values())
        names = (args.name,) if args.name else tuple(n for f in forms for n in (f.roles[0].name, *f.roles[0].also))
        found = find(root, names)
        if not found.submissions:
            raise UsageError(f"{root}: no submissions (a folder per student, or .py / .ipynb files)")
        rows = read_gradebook(out)
    except (UsageError, GradebookError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options_hash = hashlib.sha256(repr(settings).encode()).hexdigest()[:16]
    todo = []
    for sub in found.submissions:
        sha = digest(sub)
        old = rows.get(sub.student)
        if old is None or old.sha256 != sha or old.options != options_hash:
            todo.append((sub, sha))
    n = len(found.submissions)
    print(f"{n} submissions: {n - len(todo)} unchanged since the last run, {len(todo)} to grade")
    for line in found.skipped:
        print(f"skipped {line}")
    sweep_stale()
    grader = Grader(settings, options_hash, root)
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="submission", disable=True if args.quiet else None)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, bar:
        futures = {pool.submit(grader.grade, sub, sha): sub for sub, sha in todo}
        for fut in as_completed(futures):
            row = fut.result()
            if futures[fut].note:
                row.file = f"{row.file} ({plain(futures[fut].note)})"
            rows[row.student] = row
            write_gradebook(out, rows)  # after every row: an interrupted run loses nothing
            bar.update(1)
            bar.set_postfix_str(f"{row.student}: {row.verdict}", refresh=False)
    kept = {s.student for s in found.submissions}
    rows = {k: v for k, v in rows.items() if k in kept}
    write_gradebook(out, rows)
    md, png = summarize(rows, out, found.skipped, POINTS_RULE)
    counts = Counter(r.verdict for r in rows.values())
    print(f"wrote {out} ({len(rows)} rows), {md}, {png}")
    print("; ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS))
    return 0


def _no_cwd_on_path() -> None:
    """`python -m` puts the working folder first on sys.path: a numpy.py or matplotlib.py planted there would be what
    the grader imports next. The grader's own modules are loaded by now; the rest come from the environment."""
    here = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", here)]
