"""What a class folder holds: every entry becomes a submission to grade, a row that says why it cannot be graded, or
a line of the summary saying why it was skipped -- never silently dropped, and never the grader's end.

- a folder is a student's: the file checked is the one of its .py / .ipynb files (any case of the suffix) whose
  names fit a form (the teacher's --layout or --name first), its row saying which others it held; the rest of the
  folder is copied beside it, so its imports work;
- a .py / .ipynb file is a student's; x.py beside x.ipynb is one student, one file taken and the row says which;
- an archive (.zip, .tar.gz, ...) is a `skipped` row: unpack it first;
- a symlink is never followed out of its student's folder: one at the top of the class folder, or one inside a
  folder that points outside it, is an error row; a symlink loop or an entry that cannot be read is that entry's
  error row;
- anything else (README.txt, a stray .csv) is listed in the summary as not a submission.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from verification.sources import NOTEBOOK_SUFFIX, SourceError, scan

SUFFIXES = (".py", NOTEBOOK_SUFFIX)
ARCHIVES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")
NEVER = ("__pycache__", ".ipynb_checkpoints", ".git")  #: folders inside a submission that hold no candidate


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


@dataclass
class Found:
    """The class folder read: submissions (with the entries that cannot be graded) and the lines of what was not."""

    submissions: list[Submission] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _is_code(p: Path) -> bool:
    return p.suffix.lower() in SUFFIXES


def _fits(path: Path, names: tuple[str, ...]) -> int:
    """How well a candidate file fits: 2 it defines one of `names` (the teacher's), 1 its names fit one form, else 0."""
    from verification.forms import Unrecognised, recognise

    try:
        defined = scan(path)
    except (SourceError, OSError):
        return 0
    if names and any(n in defined.functions or n in defined.classes for n in names):
        return 2
    try:
        recognise(defined)
    except Unrecognised:
        return 0
    return 1


def _outside(link: Path, folder: Path) -> bool:
    """A symlink whose target (resolved) is not inside `folder`; a loop raises OSError/RuntimeError."""
    return not link.resolve(strict=True).is_relative_to(folder.resolve())


def _candidates(folder: Path) -> tuple[list[Path], str]:
    """The .py / .ipynb files under a student's folder, and the problem (a symlink out of it, a loop, an unreadable
    part) that makes the folder an error row, or ""."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False, onerror=_raise):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in NEVER and not d.startswith("."))
        for name in [*dirnames, *filenames]:
            p = here / name
            if p.is_symlink():
                try:
                    if _outside(p, folder):
                        return [], f"{p.relative_to(folder)} is a symlink to outside the submission: not followed"
                except (OSError, RuntimeError):
                    return [], f"{p.relative_to(folder)} is a symlink loop"
        out += [here / f for f in sorted(filenames) if _is_code(here / f) and (here / f).is_file()]
    return out, ""


def _raise(exc: OSError) -> None:
    raise exc


def find(root: Path, names: tuple[str, ...] = ()) -> Found:
    """Every entry of the class folder, as the module docstring says (`names`: the teacher's --name or --layout's
    first role, preferred among a folder's files)."""
    found = Found()
    entries = sorted(root.iterdir(), key=lambda p: p.name)
    stems: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        student = entry.stem if entry.is_file() else entry.name
        if entry.is_symlink():
            try:
                target = entry.resolve(strict=True)
                where = "inside" if target.is_relative_to(root.resolve()) else "outside"
                problem = f"a symlink to {where} the class folder, not followed"
            except (OSError, RuntimeError):
                problem = "a symlink loop"
            found.submissions.append(Submission(student, entry, entry.name, verdict="error", problem=problem))
            continue
        try:
            if entry.is_dir():
                files, problem = _candidates(entry)
                if problem:
                    found.submissions.append(Submission(student, entry, verdict="error", problem=problem))
                elif not files:
                    found.submissions.append(
                        Submission(student, entry, verdict="error", problem="no .py or .ipynb file in the submission")
                    )
                else:
                    found.submissions.append(_choose(student, entry, files, entry, names))
            elif _is_code(entry):
                stems.setdefault(entry.stem, []).append(entry)
            elif entry.name.lower().endswith(ARCHIVES):
                found.submissions.append(
                    Submission(student.split(".")[0], entry, entry.name, verdict="skipped",
                               problem=f"an archive ({entry.name}): unpack it into a folder first")
                )  # fmt: skip
            else:
                found.skipped.append(f"{entry.name}: not a submission (a folder, a .py or a .ipynb)")
        except OSError as exc:
            found.submissions.append(
                Submission(student, entry, verdict="error", problem=f"cannot be read: {exc.strerror or exc}")
            )
    for stem, files in stems.items():
        found.submissions.append(_choose(stem, files[0], files, None, names))
    found.submissions.sort(key=lambda s: s.student)
    return found


def _choose(student: str, path: Path, files: list[Path], folder: Path | None, names: tuple[str, ...]) -> Submission:
    """The file to check among a submission's candidates: the best fitting (the teacher's name, then a form's), the
    first of equals; the row's note names the others."""
    ranked = sorted(files, key=lambda p: -_fits(p, names))  # stable: name order among equals
    chosen = ranked[0]
    rel = str(chosen.relative_to(folder)) if folder is not None else chosen.name
    others = [str(p.relative_to(folder)) if folder is not None else p.name for p in ranked[1:]]
    note = f"also held {', '.join(others)}; checked {rel}" if others else ""
    return Submission(student, folder if folder is not None else chosen, rel, note)


def digest(sub: Submission) -> str:
    """SHA-256 over the submission's files (names and contents; a symlink by its target's name, never followed):
    the rerun's test of 'unchanged'."""
    h = hashlib.sha256()
    if sub.path.is_symlink() or not sub.path.exists():
        h.update(str(sub.path.name).encode() + b"\0" + os.readlink(sub.path).encode() if sub.path.is_symlink() else b"")
        return h.hexdigest()
    if sub.path.is_file():
        files = [sub.path]
    else:
        walked = os.walk(sub.path, followlinks=False)
        files = sorted(
            Path(d) / f for d, dirs, fs in walked for f in [*fs, *(x for x in dirs if (Path(d) / x).is_symlink())]
        )
    for p in files:
        h.update(str(p.relative_to(sub.path.parent)).encode() + b"\0")
        try:
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
        except OSError:
            h.update(b"\0unreadable")
    return h.hexdigest()
