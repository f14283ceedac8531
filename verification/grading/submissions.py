"""What a class folder holds: every entry becomes a submission to grade, a row that says why it cannot be graded, or
a line of the summary saying why it was skipped -- never silently dropped, never merged with another, and never the
grader's end (a strange entry is that entry's row; reading one is bounded in depth, count and bytes).

- a folder is a student's: the file checked is the one of its .py / .ipynb files (any case of the suffix) whose
  names fit a form (the teacher's --layout or --name first), its row saying which others it held; the rest of the
  folder is copied beside it, so its imports work;
- a .py / .ipynb file is a student's; x.py beside x.ipynb is one student, one file taken and the row says which;
- an archive (.zip, .tar.gz, ...) is a `skipped` row: unpack it first;
- a symlink is never followed out of its student's folder: one at the top of the class folder, or one inside a
  folder that points outside it, is an error row; a symlink loop or an entry that cannot be read is that entry's
  error row;
- a FIFO, socket or device is never opened (reading a FIFO waits forever): at the top an error row, inside a
  folder left out of the copy and said in the row;
- two entries that would be the same student (alice/ and alice.py, or names equal once undecodable bytes are
  replaced) are each their own row, named by the entry;
- a hidden entry (.eve) and anything else (README.txt, a stray .csv) is a line of the summary, not a submission.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from verification.grading.gradebook import plain
from verification.sources import NOTEBOOK_SUFFIX, SourceError, scan

SUFFIXES = (".py", NOTEBOOK_SUFFIX)
ARCHIVES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")
NEVER = ("__pycache__", ".ipynb_checkpoints", ".git")  #: folders inside a submission that hold no candidate
MAX_DEPTH = 32  #: folders within folders a submission may have (an assignment tree has ~4)
MAX_ENTRIES = 10_000  #: files and folders a submission may hold (a whole cs231n assignment has ~200)
MAX_CODE_FILES = 200  #: .py / .ipynb files of one submission the grader reads (a cs231n assignment has ~30)
MAX_RANKED = 20  #: candidates whose names are read to choose the file checked; the rest rank by name only


class Unreadable(Exception):
    """A submission folder the grader does not read further (too deep, too many entries): its row's reason."""


@dataclass(frozen=True)
class Submission:
    """One student's entry: the folder (or file) copied for the check and the file checked in it; or, where it
    cannot be graded, the verdict and the reason its row says."""

    student: str
    path: Path
    file: str = ""  # the file checked, relative to the copy's folder
    note: str = ""  # what else it held that was not checked
    verdict: str = ""  # "" to grade; "error" or "skipped" with `problem`
    problem: str = ""
    entry: str = ""  # the class folder's entry, as its row may name it when two would be the same student


@dataclass
class Found:
    """The class folder read: submissions (with the entries that cannot be graded) and the lines of what was not."""

    submissions: list[Submission] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _is_code(p: Path) -> bool:
    return p.suffix.lower() in SUFFIXES


def _fits(path: Path, names: tuple[str, ...]) -> int:
    """How well a candidate file fits: 2 it defines one of `names` (the teacher's), 1 its names fit one form, else 0
    (a file that cannot be read, parsed or recognised; never the grader's failure)."""
    from verification.forms import Unrecognised, recognise

    try:
        defined = scan(path)
    except (SourceError, OSError, RecursionError, MemoryError, ValueError):
        return 0
    if names and any(n in defined.functions or n in defined.classes for n in names):
        return 2
    try:
        recognise(defined)
    except Unrecognised:
        return 0
    return 1


def walk(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry under a folder with its lstat, symlinks not followed, depth-first in name order, iteratively (no
    recursion limit to reach); Unreadable past MAX_DEPTH or MAX_ENTRIES, OSError where a folder cannot be listed."""
    stack, count = [(folder, 0)], 0
    while stack:
        here, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Unreadable(f"folders nested more than {MAX_DEPTH} deep: not read")
        with os.scandir(here) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for e in entries:
            count += 1
            if count > MAX_ENTRIES:
                raise Unreadable(f"more than {MAX_ENTRIES} files and folders: not read")
            st = e.stat(follow_symlinks=False)
            yield Path(e.path), st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((Path(e.path), depth + 1))
        stack += reversed(subdirs)


def _kind(st: os.stat_result) -> str:
    """'a FIFO', 'a socket' or 'a device' for what is neither file, folder nor symlink, else ''."""
    m = st.st_mode
    if stat.S_ISREG(m) or stat.S_ISDIR(m) or stat.S_ISLNK(m):
        return ""
    return "a FIFO" if stat.S_ISFIFO(m) else "a socket" if stat.S_ISSOCK(m) else "a device"


def _candidates(folder: Path) -> tuple[list[Path], str, list[str]]:
    """The .py / .ipynb files under a student's folder; the problem (a symlink out of it, a loop, an unreadable
    part, too deep or too big) that makes the folder an error row, or ""; and what is left out of its copy (a FIFO,
    socket or device)."""
    out, left_out = [], []
    try:
        for p, st in walk(folder):
            rel = p.relative_to(folder)
            if stat.S_ISLNK(st.st_mode):
                try:
                    if not p.resolve(strict=True).is_relative_to(folder.resolve()):
                        return [], f"{plain(rel)} is a symlink to outside the submission: not followed", []
                except (OSError, RuntimeError):
                    return [], f"{plain(rel)} is a symlink loop", []
            elif kind := _kind(st):
                left_out.append(f"{plain(rel)} ({kind})")
            elif stat.S_ISREG(st.st_mode) and _is_code(p) and not any(part in NEVER for part in rel.parts):
                if not any(part.startswith(".") for part in rel.parts):
                    out.append(p)
    except Unreadable as exc:
        return [], str(exc), []
    except OSError as exc:
        return [], f"cannot be read: {exc.strerror or exc}", []
    if len(out) > MAX_CODE_FILES:
        return [], f"{len(out)} .py / .ipynb files, more than the {MAX_CODE_FILES} the grader reads: not read", []
    return sorted(out), "", left_out


def find(root: Path, names: tuple[str, ...] = ()) -> Found:
    """Every entry of the class folder, as the module docstring says (`names`: the teacher's --name or --layout's
    first role, preferred among a folder's files)."""
    found = Found()
    stems: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        shown = plain(entry.name)
        if entry.name.startswith("."):
            found.skipped.append(f"{shown}: a hidden entry (its name starts with a dot), not a submission")
            continue
        try:
            st = entry.lstat()
        except OSError as exc:
            found.submissions.append(_error(entry, f"cannot be read: {exc.strerror or exc}"))
            continue
        student = plain(entry.name if stat.S_ISDIR(st.st_mode) else entry.stem)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = entry.resolve(strict=True)
                where = "inside" if target.is_relative_to(root.resolve()) else "outside"
                problem = f"a symlink to {where} the class folder, not followed"
            except (OSError, RuntimeError):
                problem = "a symlink loop"
            found.submissions.append(_error(entry, problem, shown))
        elif kind := _kind(st):
            found.submissions.append(_error(entry, f"{kind}, not a file or folder: not read", shown))
        elif stat.S_ISDIR(st.st_mode):
            files, problem, left_out = _candidates(entry)
            if problem or not files:
                found.submissions.append(_error(entry, problem or "no .py or .ipynb file in the submission"))
            else:
                sub = _choose(student, entry, files, entry, names)
                if left_out:
                    what = f"left out {', '.join(left_out)}: not a file or folder"
                    sub = replace(sub, note=f"{sub.note}; {what}" if sub.note else what)
                found.submissions.append(sub)
        elif _is_code(entry):
            stems.setdefault(entry.stem, []).append(entry)
        elif entry.name.lower().endswith(ARCHIVES):
            found.submissions.append(
                Submission(plain(entry.name.split(".")[0]), entry, shown, verdict="skipped",
                           problem=f"an archive ({shown}): unpack it into a folder first", entry=entry.name)
            )  # fmt: skip
        else:
            found.skipped.append(f"{shown}: not a submission (a folder, a .py or a .ipynb)")
    for stem, files in stems.items():
        found.submissions.append(_choose(plain(stem), files[0], files, None, names))
    found.submissions = _distinct(found.submissions)
    found.submissions.sort(key=lambda s: s.student)
    return found


def _error(entry: Path, problem: str, file: str = "") -> Submission:
    """An entry's error row."""
    student = plain(entry.name if entry.is_dir() and not entry.is_symlink() else entry.stem)
    return Submission(student, entry, file, verdict="error", problem=problem, entry=entry.name)


def _distinct(subs: list[Submission]) -> list[Submission]:
    """Each submission its own student: where two entries would share one (alice/ and alice.py, alice.zip, names
    equal once undecodable bytes are replaced), each is named by its entry instead (a folder with a trailing /)."""
    count = Counter(s.student for s in subs)
    out = []
    for s in subs:
        if count[s.student] > 1:
            name = plain(s.entry or s.path.name) + ("/" if s.path.is_dir() and not s.path.is_symlink() else "")
            s = replace(s, student=name)
        out.append(s)
    seen: Counter[str] = Counter()
    for i, s in enumerate(out):  # still equal (two undecodable names): numbered
        seen[s.student] += 1
        if seen[s.student] > 1:
            out[i] = replace(s, student=f"{s.student} ({seen[s.student]})")
    return out


def _choose(student: str, path: Path, files: list[Path], folder: Path | None, names: tuple[str, ...]) -> Submission:
    """The file to check among a submission's candidates: the best fitting (the teacher's name, then a form's), the
    first of equals; the row's note names the others. Only the first MAX_RANKED are read to rank them."""
    fits = {p: _fits(p, names) if i < MAX_RANKED else 0 for i, p in enumerate(files)}
    ranked = sorted(files, key=lambda p: -fits[p])  # stable: name order among equals
    chosen = ranked[0]
    rel = str(chosen.relative_to(folder)) if folder is not None else chosen.name
    others = [plain(p.relative_to(folder)) if folder is not None else plain(p.name) for p in ranked[1:]]
    note = f"also held {', '.join(others)}; checked {plain(rel)}" if others else ""
    entry = folder.name if folder is not None else chosen.name
    return Submission(student, folder if folder is not None else chosen, rel, note, entry=entry)


def digest(sub: Submission) -> str:
    """SHA-256 over the submission's files (names as bytes and contents; a symlink by its target's name, never
    followed; a FIFO, socket or device by its name only, never opened): the rerun's test of 'unchanged'."""
    h = hashlib.sha256()
    try:
        st = sub.path.lstat()
    except OSError:
        return h.hexdigest()
    if not stat.S_ISDIR(st.st_mode):
        items = [(sub.path, st)]
    else:
        try:
            items = list(walk(sub.path))
        except (Unreadable, OSError) as exc:
            h.update(f"\0unreadable {exc}".encode())
            return h.hexdigest()
    for p, pst in items:
        h.update(os.fsencode(p.relative_to(sub.path.parent)) + b"\0")
        try:
            if stat.S_ISLNK(pst.st_mode):
                h.update(os.fsencode(os.readlink(p)))
            elif stat.S_ISREG(pst.st_mode):
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            elif not stat.S_ISDIR(pst.st_mode):
                h.update(b"\0special")
        except OSError:
            h.update(b"\0unreadable")
    return h.hexdigest()
