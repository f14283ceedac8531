"""`python -m verification.grade SUBMISSIONS_DIR --layout L`: check a whole class's backprop, one gradebook row each.

Each submission (a folder per student, or one .py / .ipynb file per student) is copied into a private temporary
folder and checked there by `python -m verification` in a process of its own, with its own wall-clock timeout, an
address-space limit (--memory-mb) and a cap on what it may write (its output goes to a file there), in parallel over
--jobs workers. So a submission that hangs, exits, crashes, fills memory or prints megabytes costs only its own row
(status timeout or error, with the reason). Its working directory, HOME and TMPDIR are that folder: it is not shown
the other submissions or the gradebook (an absolute path it guesses is not hidden: run the grader as a user that
cannot read them if students are adversarial).

The gradebook CSV (--out) is rewritten atomically after every row, and each row carries the SHA-256 of the
submission's files and of the options: a rerun keeps the rows of unchanged submissions and grades only the rest,
so an interrupted run loses nothing and regrades nothing. Beside it: a markdown summary (how many passed, the
commonest hints across the class) and a bar chart of those hints.

Exit 0 when every submission has a row (whatever their verdicts), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from reports.atomic import atomic_write
from reports.record import RecordError, Status, read_verification, status_is, strict_rows
from verification.forms import CONFIGURATION, FORMS, configuration
from verification.options import UsageError, build_parser, form_of, matrix_from_args, resolve_form
from verification.report import verdict
from verification.runner import case_label, missing_cases
from verification.sources import NOTEBOOK_SUFFIX

SUFFIXES = (".py", NOTEBOOK_SUFFIX)
#: options passed through to `python -m verification` for every submission
FORWARDED = ("hidden", "output", "loss", "l2", "sizes", "batch", "dtype", "variant", "steps", "l2_convention")
VERDICTS = ("pass", "fragile", "fail", "error", "timeout")
OUTPUT_CAP = 16 << 20  # bytes a submission's process may write (stdout and stderr go to a file)
GRADE_SCHEMA = 1


@dataclass
class GradeRow:
    """One submission's gradebook row (the CSV's columns, in order)."""

    student: str
    file: str
    verdict: str  # VERDICTS
    cases_passed: int
    cases_checked: int
    cases_planned: int
    first_failure: str  # "W1 in relu/identity ... N=7 float32 cpu", or ""
    hint: str
    problem: str  # the verdict line, or why there is none (timeout, error)
    points: float
    seconds: float
    sha256: str
    options: str  # hash of the grading options: a row graded under others is graded again
    schema: int = GRADE_SCHEMA


COLUMNS = tuple(f.name for f in fields(GradeRow))


def build_grade_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verification.grade",
        description="Check every submission's backprop against the float64 oracle and write a gradebook.",
    )
    p.add_argument("submissions", help="a folder holding a folder per student, or a .py / .ipynb file per student")
    p.add_argument(
        "--layout",
        default=None,
        choices=list(FORMS),
        help="the form the submissions are written in (default: each one's recognised from the names it defines)",
    )
    p.add_argument("--name", default="", help="what each submission defines, when not the layout's usual name")
    p.add_argument("--loss-fn", default="", metavar="NAME", help="the module layout: the loss callable's name")
    p.add_argument("--bind", action="append", default=[], metavar="ROLE=NAME[(ARGS)]", help="as python -m verification")
    p.add_argument("--strict", action="store_true", help="fragile verdicts fail (python -m verification --strict)")
    usual = "as python -m verification (default: the layout's usual configuration)"
    for opt in FORWARDED:
        shown = usual if opt in ("hidden", "output", "loss", "l2") else "as python -m verification"
        p.add_argument(f"--{opt.replace('_', '-')}", default=None, help=shown)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per submission (default 300)")
    p.add_argument("--memory-mb", type=int, default=2048, help="address space per submission's process (default 2048)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions checked at once (default: cores)")
    p.add_argument("--out", default="gradebook.csv", help="the gradebook CSV (default gradebook.csv)")
    p.add_argument("--points", type=float, default=10.0, help="points for a pass (default 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path  # the folder (or file) copied for the check
    file: str  # the file checked, relative to path's folder


def find_submissions(root: Path, names: tuple[str, ...]) -> list[Submission]:
    """A submission per folder (the .py / .ipynb in it that defines one of `names`, else its only one) or per file."""
    subs = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix in SUFFIXES:
            subs.append(Submission(entry.stem, entry, entry.name))
        elif entry.is_dir():
            files = sorted(p for p in entry.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            defining = [p for p in files if _defines(p, names)]
            chosen = (defining or files)[:1]
            rel = str(chosen[0].relative_to(entry)) if chosen else ""
            subs.append(Submission(entry.name, entry, rel))
    return subs


def _defines(path: Path, names: tuple[str, ...]) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return any(re.search(rf"(def|class)\s+{re.escape(n)}\b|\b{re.escape(n)}\s*=", text) for n in names)


def digest(sub: Submission) -> str:
    """SHA-256 over the submission's files (names and contents): the rerun's test of 'unchanged'."""
    h = hashlib.sha256()
    files = [sub.path] if sub.path.is_file() else sorted(p for p in sub.path.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(sub.path.parent)).encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def _limits(memory: int, cpu_s: int) -> None:
    """In the submission's process before it starts: its own process group, death with the grader (Linux), its
    address space, the bytes it may write, and CPU seconds (a backstop should the grader be killed mid-run)."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed with the thread that started it
    except (OSError, AttributeError):
        pass
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP, OUTPUT_CAP))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Grader:
    """Grades one submission at a time into a GradeRow (thread-safe: each call has its own folder and process)."""

    def __init__(self, args: argparse.Namespace, options_hash: str) -> None:
        self.args, self.options_hash = args, options_hash

    def ref(self, checked: Path) -> tuple[str, list[str]]:
        """The --impl reference and the extra options naming the code inside the copied submission."""
        ref = f"{checked}:{self.args.name}" if self.args.name else str(checked)
        extra = ["--loss-fn", f"{checked}:{self.args.loss_fn}"] if self.args.loss_fn else []
        return ref, extra

    def grade(self, sub: Submission, sha: str) -> GradeRow:
        start = time.monotonic()
        row = GradeRow(sub.student, sub.file, "error", 0, 0, 0, "", "", "", 0.0, 0.0, sha, self.options_hash)
        if not sub.file:
            row.problem = "no .py or .ipynb file in the submission"
            return row
        with tempfile.TemporaryDirectory(prefix="twolayer-grade-") as tmp:
            work = Path(tmp) / "submission"
            if sub.path.is_dir():
                shutil.copytree(sub.path, work, symlinks=False, ignore_dangling_symlinks=True)
            else:
                work.mkdir()
                shutil.copy2(sub.path, work / sub.path.name)
            checked = work / sub.file
            ref, extra = self.ref(checked)
            try:  # the form: the teacher's, else recognised from the file's names (parsed here, never run)
                cli = forwarded_cli(self.args, self.args.layout or form_of(ref)[0])
            except UsageError as exc:
                row.problem = str(exc)
                return row
            rows_csv = Path(tmp) / "rows.csv"
            cmd = [sys.executable, "-m", "verification", "--impl", ref, *extra, *cli, "--csv", str(rows_csv)]
            env = {**os.environ, "HOME": str(work), "TMPDIR": str(work), "PYTHONPATH": _project_path()}
            env.pop("TWOLAYER_QUICK", None)
            log = Path(tmp) / "output.txt"
            try:
                with open(log, "wb") as out:
                    proc = subprocess.Popen(
                        cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        preexec_fn=lambda: _limits(self.args.memory_mb << 20, int(2 * self.args.timeout) + 30),
                    )  # fmt: skip
                    try:
                        code = proc.wait(timeout=self.args.timeout)
                    except subprocess.TimeoutExpired:
                        _kill_group(proc)
                        row.verdict, row.problem = "timeout", f"no verdict within {self.args.timeout:g} s (killed)"
                        row.seconds = round(time.monotonic() - start, 2)
                        return row
            except OSError as exc:
                row.problem = f"could not start the check: {exc}"
                return row
            row.seconds = round(time.monotonic() - start, 2)
            self.judge(row, code, rows_csv, log, ref, cli)
        return row

    def judge(self, row: GradeRow, code: int, rows_csv: Path, log: Path, ref: str, cli: list[str]) -> None:
        """The row's verdict from the check's exit status and rows: a pass needs every planned case reported."""
        tail = _last_line(log)
        if log.exists() and log.stat().st_size >= OUTPUT_CAP:
            row.problem = f"the submission wrote {OUTPUT_CAP >> 20} MiB of output or more (printing?): stopped there"
            return
        if code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXFSZ": f"wrote more than {OUTPUT_CAP >> 20} MiB of output"}.get(name, f"killed by {name}")
            row.problem = f"the check's process was {why}" if name != "SIGXFSZ" else f"the submission {why}"
            return
        if code == 2 or not rows_csv.exists():
            row.problem = tail or f"the check exited with code {code} and no rows"
            return
        try:
            df = read_verification(rows_csv)
        except (RecordError, ValueError, OSError) as exc:
            row.problem = f"unreadable rows: {exc}"
            return
        df["status"] = df["status"].map(str)
        if self.args.strict:
            df = strict_rows(df)
        planned = build_parser().parse_args(["--impl", ref, *cli])
        resolve_form(planned)  # NumPy code: float64 cases, as the check planned them
        matrix = matrix_from_args(planned)
        plan = list(matrix.cases(ref))
        line, status = verdict(df, plan, missing_cases(df.to_dict("records"), plan), "")
        keys = ["hidden", "output", "loss", "l2", "D", "H", "C", "N", "dtype", "precision", "device", "variant"]
        by_case = df.groupby(keys, sort=False)["status"]
        checked = by_case.apply(lambda s: not status_is(s, Status.UNSUPPORTED).all())
        passed = by_case.apply(lambda s: status_is(s, Status.OK, Status.FRAGILE).all())
        row.cases_planned, row.cases_checked = len(plan), int(checked.sum())
        row.cases_passed = int((passed & checked).sum())
        row.problem = line
        bad = df[status_is(df["status"], Status.FAIL, Status.ERROR)]
        bad = bad.iloc[bad["quantity"].map(lambda q: (q not in ("W1", "b1", "W2", "b2"), q)).argsort(kind="stable")]
        if len(bad):
            first = bad.iloc[0]
            row.first_failure = f"{first['quantity']} in {case_label(first)}"
            problem = str(first["problem"])
            row.hint = problem.split("hint: ", 1)[1] if "hint: " in problem else problem
        if status == 0:
            fragile = status_is(df["status"], Status.FRAGILE).any()
            row.verdict, row.points = ("fragile" if fragile else "pass"), self.args.points
            if fragile:
                row.hint = str(df.loc[status_is(df["status"], Status.FRAGILE), "problem"].iloc[0]).split("hint: ")[-1]
        else:
            errors_only = len(bad) and status_is(bad["status"], Status.ERROR).all()
            row.verdict = "error" if (errors_only or line.startswith("INCOMPLETE")) else "fail"
            share = row.cases_passed / row.cases_checked if row.cases_checked else 0.0
            row.points = round(self.args.points * share, 2) if row.verdict == "fail" else 0.0


def _project_path() -> str:
    return str(Path(__file__).resolve().parents[1])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _last_line(log: Path) -> str:
    """The check's last line of output (its verdict or its one error line), at most 300 characters."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].removeprefix("error: ")[:300] if lines else ""


def read_gradebook(path: Path) -> dict[str, GradeRow]:
    """The rows of an earlier run by student (a missing file is an empty gradebook; a malformed one a UsageError)."""
    if not path.exists():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ValueError(f"columns {reader.fieldnames}, expected {list(COLUMNS)}")
            rows = {}
            for r in reader:
                typed = {f.name: f.type for f in fields(GradeRow)}
                values = {
                    k: (int(v) if typed[k] == "int" else float(v) if typed[k] == "float" else v) for k, v in r.items()
                }
                row = GradeRow(**values)
                if row.verdict not in VERDICTS:
                    raise ValueError(f"unknown verdict {row.verdict!r}")
                rows[row.student] = row
            return rows
    except (ValueError, TypeError, csv.Error) as exc:
        raise UsageError(
            f"--out {path}: not a gradebook of this tool ({exc}); move it away or choose another --out"
        ) from None


def write_gradebook(path: Path, rows: dict[str, GradeRow]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for student in sorted(rows):
                w.writerow(asdict(rows[student]))

    atomic_write(path, write)


def _hint_key(hint: str) -> str:
    """A hint without its numbers and case details, so the same slip in different cases counts once."""
    return re.sub(r"\s+", " ", re.sub(r"[-+]?\d[\d.e+-]*", "#", hint.split(" (at ")[0])).strip()[:110]


def summarize(rows: dict[str, GradeRow], out: Path) -> tuple[Path, Path]:
    """The markdown summary and the bar chart of the commonest hints, beside the gradebook."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = Counter(r.verdict for r in rows.values())
    hinted = [r.hint for r in rows.values() if r.hint and r.verdict != "pass"]
    hints = Counter(_hint_key(h) for h in hinted)
    shown = {}  # each group's hint as a student's row says it (the key's numbers are '#')
    for h in sorted(hinted):
        shown.setdefault(_hint_key(h), re.sub(r"\s+", " ", h.split(" (at ")[0]).strip())
    md, png = out.with_suffix(".md"), out.with_name(out.stem + "_hints.png")
    lines = [f"# Gradebook: {len(rows)} submissions", "", "| verdict | submissions |", "|---|---|"]
    lines += [f"| {v} | {counts.get(v, 0)} |" for v in VERDICTS]
    seconds = sorted(r.seconds for r in rows.values())
    if seconds:
        lines += ["", f"Median {seconds[len(seconds) // 2]:.1f} s per submission (longest {seconds[-1]:.1f} s)."]
    lines += ["", "## The commonest hints", "", "| submissions | hint |", "|---|---|"]
    lines += [f"| {n} | {shown[h].replace('|', '/')} |" for h, n in hints.most_common(10)]
    if not hints:
        lines.append("| 0 | (none) |")
    lines += ["", f"![hints]({png.name})", ""]
    atomic_write(md, lambda tmp: Path(tmp).write_text("\n".join(lines), encoding="utf-8"))
    top = [(shown[h], n) for h, n in hints.most_common(10)[::-1]]
    fig, ax = plt.subplots(figsize=(10, 0.5 * max(len(top), 1) + 1.5))
    ax.barh([h if len(h) < 70 else h[:67] + "..." for h, _ in top] or ["(no hints)"], [n for _, n in top] or [0])
    ax.set_xlabel("submissions")
    ax.set_title(f"The commonest hints across {len(rows)} submissions ({counts.get('pass', 0)} passed)")
    fig.tight_layout()
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return md, png


def forwarded_cli(args: argparse.Namespace, layout: str) -> list[str]:
    """The options of `python -m verification` for a submission in `layout`: the form's usual configuration unless
    given."""
    try:
        config = configuration(layout, {opt: getattr(args, opt) for opt in CONFIGURATION})
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    cli = ["--layout", layout, "--timeout", f"{args.timeout:g}", "--quiet", "--device", "cpu"]
    for opt in FORWARDED:
        value = config[opt] if opt in config else getattr(args, opt)
        if value is not None:
            cli += [f"--{opt.replace('_', '-')}", str(value)]
    for b in args.bind:
        cli += ["--bind", b]
    return cli


def main(argv: list[str] | None = None) -> int:
    args = build_grade_parser().parse_args(argv)
    root, out = Path(args.submissions), Path(args.out)
    try:
        if not root.is_dir():
            raise UsageError(f"{root}: not a folder of submissions")
        if args.jobs < 1 or not args.timeout > 0 or args.memory_mb < 256:
            raise UsageError("--jobs must be >= 1, --timeout > 0 and --memory-mb >= 256")
        cli = forwarded_cli(args, args.layout or "linear")
        probe = ["--impl", "probe.py", *cli]
        matrix_from_args(build_parser().parse_args(probe))  # a bad spec option is one line now, not a row each
        forms = [FORMS[args.layout]] if args.layout else list(FORMS.values())
        names = (args.name,) if args.name else tuple(n for f in forms for n in (f.roles[0].name, *f.roles[0].also))
        subs = find_submissions(root, names)
        if not subs:
            raise UsageError(f"{root}: no submissions (a folder per student, or .py / .ipynb files)")
        if out.resolve().is_relative_to(root.resolve()):
            raise UsageError(f"--out {out}: inside the submissions folder, where students' code would see it")
        rows = read_gradebook(out)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options_hash = hashlib.sha256(repr((cli, args.name, args.loss_fn, args.strict, args.points)).encode()).hexdigest()[
        :16
    ]
    todo = []
    for sub in subs:
        sha = digest(sub)
        old = rows.get(sub.student)
        if old is None or old.sha256 != sha or old.options != options_hash:
            todo.append((sub, sha))
    print(f"{len(subs)} submissions: {len(subs) - len(todo)} unchanged since the last run, {len(todo)} to grade")
    grader = Grader(args, options_hash)
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="submission", disable=True if args.quiet else None)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, bar:
        futures = {pool.submit(grader.grade, sub, sha): sub for sub, sha in todo}
        for fut in as_completed(futures):
            row = fut.result()
            rows[row.student] = row
            write_gradebook(out, rows)  # after every row: an interrupted run loses nothing
            bar.update(1)
            bar.set_postfix_str(f"{row.student}: {row.verdict}", refresh=False)
    kept = {s.student for s in subs}
    rows = {k: v for k, v in rows.items() if k in kept}
    write_gradebook(out, rows)
    md, png = summarize(rows, out)
    counts = Counter(r.verdict for r in rows.values())
    print(f"wrote {out} ({len(rows)} rows), {md}, {png}")
    print("; ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS))
    return 0


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
