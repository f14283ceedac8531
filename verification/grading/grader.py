"""One submission graded, behind one trust boundary: this process -- the grader -- reads the submission's files
without running them (its form, what it imports), plans the cases, runs the float64 oracle, judges every row and
writes the gradebook; the student's code runs only in a child process inside the sandbox (grading.sandbox), which
answers raw values over a socket (verification.isolate decodes them, never unpickling). Nothing the grader reads back
is a file the student's process could write, and nothing that judges runs with the student's folder on sys.path.

Complete means complete: `pass` needs every planned case of the net being graded checked and right; a case the code
refuses (unsupported, NotImplementedError) is not done. Points are the teacher's --points times the cases passed over
the cases planned, whatever the verdict (POINTS_RULE).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR, S_ISLNK, S_ISREG

import pandas as pd

from reports.record import Status
from verification.child import PROJECT, Child
from verification.grading.gradebook import GradeRow, new_row, plain, scrub
from verification.grading.sandbox import INPUT, WORK, Limits, command, set_limits
from verification.grading.submissions import Submission, walk
from verification.isolate import DEFAULT_TIMEOUT_S, TIMEOUT, Isolated, PluginLoadError
from verification.options import UsageError, build_parser, form_of, layout_options, matrix_from_args, resolve_form
from verification.report import verdict as verdict_line
from verification.runner import case_label, missing_cases, run
from verification.sources import (
    NOTEBOOK_SUFFIX,
    SourceError,
    TooLarge,
    notebook_cells,
    parse_python,
    python_lines,
    python_source,
)  # fmt: skip

POINTS_RULE = "--points x cases passed / cases planned (a refused, failed, errored or unrun case earns nothing)"
TMP_PREFIX = "twolayer-grade-"  #: a submission's temporary folder: TMP_PREFIX + the grader's pid + "-" + random
#: the checker's own packages: a submission that imports one is not the student's own work
OWN_PACKAGES = ("verification", "impls", "reports", "benchmarks")
#: --forbid's names beyond module paths: what using autograd looks like in code
AUTOGRAD = ("torch.autograd", ".backward(", "requires_grad")
#: options of `python -m verification` a teacher's grading options fill in for every submission
FORWARDED = ("hidden", "output", "loss", "l2", "sizes", "batch", "dtype", "variant", "steps", "l2_convention")
CASE_KEYS = ["hidden", "output", "loss", "l2", "D", "H", "C", "N", "dtype", "precision", "device", "variant"]


@dataclass(frozen=True)
class Settings:
    """What the teacher chose, the same for every submission."""

    layout: str | None = None  # None: each submission's form is recognised from its own names
    name: str = ""
    loss_fn: str = ""
    bind: tuple[str, ...] = ()
    strict: bool = False
    given: tuple[tuple[str, str], ...] = ()  # FORWARDED option -> value the teacher gave
    limits: Limits = field(default_factory=Limits)
    points: float = 10.0
    trusted: bool = False  # run submissions without the sandbox (--trusted-code)
    forbid: tuple[str, ...] = ()

    def cli(self, layout: str) -> list[str]:
        """The options of `python -m verification` that plan a submission written in `layout` (never run: parsed)."""
        cli = ["--layout", layout, "--quiet", "--device", "cpu"]
        for opt, value in self.given:
            cli += [f"--{opt.replace('_', '-')}", value]
        for b in self.bind:
            cli += ["--bind", b]
        return cli


def settings_of(args: argparse.Namespace, limits: Limits) -> Settings:
    given = tuple((opt, str(getattr(args, opt))) for opt in FORWARDED if getattr(args, opt, None) is not None)
    return Settings(
        args.layout, args.name, args.loss_fn, tuple(args.bind), args.strict, given, limits, args.points,
        args.trusted_code, tuple(args.forbid),
    )  # fmt: skip


def _imports(path: Path) -> list[tuple[str, str]]:
    """(dotted name, where) of every import in a .py / .ipynb file, a function's own included, parsed (nothing
    runs): `from torch import nn` is torch and torch.nn."""
    try:
        if path.suffix.lower() == NOTEBOOK_SUFFIX:
            text = "\n".join(python_lines(raw) for _, raw in notebook_cells(path))
        else:
            text = python_source(path)
        tree = parse_python(text, path.name)[0]
    except TooLarge:
        raise  # not read is not clean: the caller's row says why
    except (SourceError, OSError):
        return []  # code that does not parse cannot be imported either
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, f"{path.name} line {node.lineno}") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            where = f"{path.name} line {node.lineno}"
            out += [(node.module, where), *((f"{node.module}.{a.name}", where) for a in node.names)]
    return out


def not_own_work(copy: Path) -> str:
    """Why the submission is not the student's own work (it imports the checker's own modules), or ""."""
    for path in _code_files(copy):
        for module, where in _imports(path):
            if module.split(".")[0] in OWN_PACKAGES:
                return (
                    f"imports {module}, the checker's own code ({where}): not the student's own work "
                    "(the oracle is the grader's, never the submission's)"
                )
    return ""


def forbidden(copy: Path, forbid: tuple[str, ...]) -> str:
    """The first use of what the assignment forbids, with where, or "": a module path (--forbid torch.nn) imported or
    used as an attribute chain (torch.nn.Linear), or autograd (--forbid autograd: .backward(, torch.autograd,
    requires_grad)."""
    for path in _code_files(copy):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for name in forbid:
            if name != "autograd":
                hit = next((w for m, w in _imports(path) if m == name or m.startswith(name + ".")), None)
                if hit:
                    return f"uses {name}, which the assignment forbids (--forbid {name}): imported at {hit}"
            marks = AUTOGRAD if name == "autograd" else (f"{name}.",)
            mark = next((m for m in marks if m in text), None)
            if mark:
                return f"uses {name}, which the assignment forbids (--forbid {name}): {path.name} has {mark!r}"
    return ""


def _code_files(folder: Path) -> list[Path]:
    """The copy's .py / .ipynb files (walked as submissions.find walked them: bounded, links not followed)."""
    return sorted(p for p, st in walk(folder) if p.suffix.lower() in (".py", NOTEBOOK_SUFFIX) and S_ISREG(st.st_mode))


def _special(folder: str, names: list[str]) -> set[str]:
    """copytree's ignore: a FIFO, socket or device is never copied (opening a FIFO waits forever; the row says so)."""
    out = set()
    for name in names:
        try:
            mode = os.lstat(os.path.join(folder, name)).st_mode
        except OSError:
            out.add(name)
            continue
        if not (S_ISREG(mode) or S_ISDIR(mode) or S_ISLNK(mode)):
            out.add(name)
    return out


class Grader:
    """Grades one submission at a time into a GradeRow (thread-safe: each call has its own folder and child)."""

    def __init__(self, settings: Settings, options_hash: str, root: Path) -> None:
        self.settings, self.options_hash, self.root = settings, options_hash, root

    def grade(self, sub: Submission, sha: str) -> GradeRow:
        """The submission's row, whatever happens: a failure of the grader's own on it is its error row, said."""
        start = time.monotonic()
        row = new_row(sub.student, plain(sub.file), sha, self.options_hash)
        if sub.verdict:
            row.verdict, row.problem = sub.verdict, plain(sub.problem)
            return row
        tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        try:
            self._grade(row, sub, Path(tmp), start)
        except Exception as exc:  # noqa: BLE001 - the entry gets its row; the class goes on
            row.verdict, row.points = "error", 0.0
            row.problem = f"the grader could not check it: {type(exc).__name__}: {exc}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            row.seconds = round(time.monotonic() - start, 2)
            paths = (tmp, Path(tmp) / "submission", self.root.resolve(), sub.path.resolve(), PROJECT, Path.home())
            for f in ("first_failure", "hint", "problem"):
                setattr(row, f, plain(scrub(getattr(row, f), *paths, WORK, INPUT)))
        return row

    def _grade(self, row: GradeRow, sub: Submission, tmp: Path, start: float) -> None:
        """Copy the submission (never a FIFO, socket or device) to a folder of its own, then check it there."""
        copy = tmp / "submission"
        if sub.path.is_dir():
            shutil.copytree(sub.path, copy, symlinks=True, ignore=_special)  # its links point inside it (find)
        else:
            copy.mkdir()
            shutil.copyfile(sub.path, copy / sub.path.name)
        checked = _lower_suffix(sub.file)  # HOMEWORK.PY is read as the .py it is
        if checked != sub.file:
            (copy / sub.file).rename(copy / checked)
            sub = replace(sub, file=checked)
        try:
            self._check(row, sub, copy, tmp, start)
        except TooLarge as exc:
            row.verdict, row.problem = "error", f"{exc} (the grader reads its files before running it)"

    def _check(self, row: GradeRow, sub: Submission, copy: Path, tmp: Path, start: float) -> None:
        """Fill the row: the static checks, the plan, the cases run in the sandbox, the verdict."""
        s = self.settings
        checked = copy / sub.file
        if why := not_own_work(copy):
            row.problem = why
            return
        if why := forbidden(copy, s.forbid):
            row.verdict, row.problem = "fail", why
            return
        try:
            layout = s.layout or form_of(str(checked))[0]
            args = build_parser().parse_args(["--impl", str(checked), *s.cli(layout)])
            resolve_form(args)  # NumPy code: float64 cases, as the check plans them
            matrix, options = matrix_from_args(args), layout_options(args)
        except UsageError as exc:
            row.problem = str(exc)
            return
        ref = f"{WORK / sub.file}" if not s.trusted else str(checked)
        loss_ref = f"{ref}:{s.loss_fn}" if s.loss_fn else ""
        if s.name:
            ref = f"{ref}:{s.name}"
        log = tmp / "output.txt"
        with open(log, "wb") as out:
            try:
                ex = Isolated(
                    ref, min(DEFAULT_TIMEOUT_S, s.limits.timeout_s), 1, layout, loss_ref, options,
                    start=self._starter(copy, out), deadline=start + s.limits.timeout_s,
                    setup=None if s.trusted else {"copy": (str(INPUT), str(WORK)), "chdir": str(WORK)},
                )  # fmt: skip
            except PluginLoadError as exc:
                row.problem = _output_said(log, s.limits) or str(exc)
                row.verdict = "timeout" if "no answer within" in str(exc) else "error"
                return
            try:
                notes: list[str] = []
                rows, plan = run({sub.student: ex}, matrix, progress=False, notes=notes)
            finally:
                ex.close()
        judge(row, rows, plan, notes, s, _output_said(log, s.limits))

    def _starter(self, copy: Path, out: object) -> Callable[[], Child]:
        """How this submission's child starts: inside the sandbox (bwrap, the copy bound read-only and copied to its
        tmpfs), or -- trusted code -- as the grader's user with its copy as working folder; the rlimits either way."""
        s = self.settings
        env = {"PATH": "/usr/bin:/bin", "HOME": str(copy), "TMPDIR": str(copy), "OMP_NUM_THREADS": "1"}

        def limits() -> None:
            set_limits(s.limits)

        if s.trusted:
            return lambda: Child.start(env=env, cwd=str(copy), stdout=out, preexec=limits)
        return lambda: Child.start(prefix=command(copy, s.limits), env={}, stdout=out, preexec=limits)


def sweep_stale() -> list[str]:
    """Remove the temporary folders of graders that were killed before cleaning up (their pid no longer runs): a
    killed grader's copies of submissions would otherwise stay in /tmp. Returns what was removed."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        pid = folder.name[len(TMP_PREFIX) :].split("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        try:
            if folder.stat().st_uid == os.getuid():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        except OSError:
            continue
    return removed


def _lower_suffix(name: str) -> str:
    return str(Path(name).with_suffix(Path(name).suffix.lower()))


def _output_said(log: Path, limits: Limits) -> str:
    """Why the output ended the check, when it did (it reached the cap), else ""."""
    try:
        size = log.stat().st_size
    except OSError:
        return ""
    if size >= limits.output_bytes:
        return f"the submission wrote {limits.output_bytes >> 20} MiB of output or more (printing?): stopped there"
    return ""


def judge(row: GradeRow, rows: list[dict], plan: list, notes: list[str], s: Settings, output: str) -> None:
    """The row's verdict from the judged rows: complete means complete (the module docstring)."""
    df = pd.DataFrame(rows)
    df["status"] = df["status"].map(str)
    if s.strict:
        df.loc[df["status"] == Status.FRAGILE.value, "status"] = Status.FAIL.value
    missing = missing_cases(rows, plan)
    line, _ = verdict_line(df, plan, missing, "")
    by_case = df.groupby(CASE_KEYS, sort=False)["status"]
    every = set(by_case.groups)
    passed = {k for k, g in by_case if g.isin([Status.OK.value, Status.FRAGILE.value]).all()}
    refused = {k for k, g in by_case if (g == Status.UNSUPPORTED.value).all()}
    row.cases_planned, row.cases_passed, row.cases_refused = len(plan), len(passed), len(refused)
    row.cases_checked = len(every - refused - {k for k, g in by_case if (g == Status.ERROR.value).all()})
    row.points = round(s.points * row.cases_passed / row.cases_planned, 2) if row.cases_planned else 0.0
    bad = df[df["status"].isin([Status.FAIL.value, Status.ERROR.value])]
    order = bad["quantity"].map(lambda q: q not in ("W1", "b1", "W2", "b2")) * 2 + (bad["variant"] == "large-logits")
    bad = bad.iloc[order.argsort(kind="stable")]  # a gradient first, then ordinary data's failures first
    if len(bad):
        first = bad.iloc[0]
        row.first_failure = f"{first['quantity']} in {case_label(first)}"
        problem = str(first["problem"])
        row.hint = problem.split("hint: ", 1)[1] if "hint: " in problem else problem
    said = "; ".join(n.split(": ", 1)[-1] for n in notes)
    unsupported = f"; {len(refused)} of {len(plan)} planned cases unsupported"
    refusal = f"; {len(refused)} of {len(plan)} planned cases refused (unsupported): not done"
    if refused:
        line = line.replace(unsupported, refusal) if unsupported in line else line + refusal
    row.problem = (output or line) + (f" ({said})" if said else "")
    timed_out = df["problem"].fillna("").str.startswith(TIMEOUT).any()
    if not missing and len(passed) == len(plan):
        fragile = (df["status"] == Status.FRAGILE.value).any()
        row.verdict = "fragile" if fragile else "pass"
        if fragile:
            row.hint = str(df.loc[df["status"] == Status.FRAGILE.value, "problem"].iloc[0]).split("hint: ")[-1]
    elif timed_out:
        row.verdict = "timeout"
        row.problem = f"no verdict within {s.limits.timeout_s:g} s (killed): {row.problem}"
    elif output:
        row.verdict = "error"
    elif (df["status"] == Status.FAIL.value).any() or refused:
        row.verdict = "fail"
    else:
        row.verdict = "error"
