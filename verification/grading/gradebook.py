"""The gradebook: one typed row per submission (GradeRow), the CSV written atomically and read back checked, and the
markdown summary with its chart of the commonest hints.

Nothing in it is executable by the program that opens it: a cell a spreadsheet would read as a formula (one that
starts with =, +, -, @, a tab or a carriage return) is prefixed with a quote, OWASP's rule for CSV injection, and
read back without it; a student's text is shown in the markdown as a code span (md_cell), where no link, emphasis or
HTML forms, and carries no control character anywhere (plain()). Rows never carry a path of the grader's machine
(scrub()).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from reports.atomic import atomic_write

#: what a row says of its submission: pass (every planned case checked and right), fragile (right, breaks only at the
#: logit-800 data), fail (a case wrong, or refused: not done), error (could not be checked: its reason), timeout,
#: skipped (not a submission the grader reads: an archive to unpack)
VERDICTS = ("pass", "fragile", "fail", "error", "timeout", "skipped")
GRADE_SCHEMA = 2  # 1 = before cases_refused and the skipped verdict (2026-12-07)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  #: OWASP: a CSV cell a spreadsheet evaluates


@dataclass
class GradeRow:
    """One submission's gradebook row (the CSV's columns, in order)."""

    student: str
    file: str
    verdict: str  # VERDICTS
    cases_passed: int
    cases_refused: int  # planned cases the code declared unsupported: not done
    cases_checked: int
    cases_planned: int
    first_failure: str  # "W1 in relu/identity ... N=7 float64 cpu", or ""
    hint: str
    problem: str  # the verdict line, or why there is none (timeout, error)
    points: float
    seconds: float
    sha256: str
    options: str  # hash of the grading options: a row graded under others is graded again
    schema: int = GRADE_SCHEMA


COLUMNS = tuple(f.name for f in fields(GradeRow))


def new_row(student: str, file: str, sha: str, options: str) -> GradeRow:
    """An error row to fill in: nothing passed until a check says so."""
    return GradeRow(student, file, "error", 0, 0, 0, 0, "", "", "", 0.0, 0.0, sha, options)


#: characters a student's text may not carry into a terminal, a CSV or a markdown page: C0/C1 controls (ESC starts a
#: terminal escape, OSC 52 sets a clipboard; a newline forges a line), the bidirectional overrides of "Trojan Source"
#: and the line/paragraph separators
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def plain(text: object) -> str:
    """A student's text (a file name, an exception message) made inert for a terminal and a single line: undecodable
    bytes of a file name (surrogates) become U+FFFD, each unsafe character its \\xNN / \\uNNNN escape."""
    out = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), out)


def escape_cell(value: object) -> object:
    """A CSV cell no spreadsheet evaluates: text starting like a formula gets a leading quote (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def unescape_cell(value: str) -> str:
    """escape_cell's inverse, for reading a gradebook back."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def scrub(text: str, *paths: str | Path) -> str:
    """The text without any of the grader's own paths (a temporary folder, the class folder, the project, home): a
    row names files by their name inside the submission."""
    out = str(text)
    for p in sorted({str(p).rstrip("/") for p in paths if str(p) not in ("", "/")}, key=len, reverse=True):
        out = out.replace(p + "/", "").replace(p, "<grader>")
    return out


class GradebookError(ValueError):
    """A file at --out that is not a gradebook of this tool (one line)."""


def read_gradebook(path: Path) -> dict[str, GradeRow]:
    """The rows of an earlier run by student (a missing file is an empty gradebook; a malformed one GradebookError)."""
    if not path.exists():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ValueError(f"columns {reader.fieldnames}, expected {list(COLUMNS)}")
            rows = {}
            typed = {f.name: f.type for f in fields(GradeRow)}
            for r in reader:
                values = {
                    k: int(v) if typed[k] == "int" else float(v) if typed[k] == "float" else unescape_cell(v)
                    for k, v in r.items()
                }
                row = GradeRow(**values)
                if row.verdict not in VERDICTS or row.schema != GRADE_SCHEMA:
                    raise ValueError(f"verdict {row.verdict!r}, schema {row.schema}")
                rows[row.student] = row
            return rows
    except (ValueError, TypeError, csv.Error) as exc:
        raise GradebookError(
            f"--out {path}: not a gradebook of this tool ({exc}); move it away or choose another --out"
        ) from None


def write_gradebook(path: Path, rows: dict[str, GradeRow]) -> None:
    """The whole gradebook, atomically (a temp file renamed), students in order, every text cell escaped."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for student in sorted(rows):
                w.writerow({k: escape_cell(v) for k, v in asdict(rows[student]).items()})

    atomic_write(path, write)


def md_cell(text: str) -> str:
    """A student's text as one markdown table cell, shown verbatim as a code span: no table, link (a bare URL or www.
    is linked by GitHub everywhere but in code), emphasis or HTML of its own. The span's fence is one backtick
    longer than the text's longest run of them; a pipe is escaped, which GitHub's tables require even in code."""
    text = re.sub(r"\s+", " ", plain(text)).strip()
    if not text:
        return ""
    fence = "`" * (max((len(r) for r in re.findall("`+", text)), default=0) + 1)
    text = text.replace("|", "\\|")
    return f"{fence} {text} {fence}"


def _hint_key(hint: str) -> str:
    """A hint without its numbers and case details, so the same slip in different cases counts once."""
    return re.sub(r"\s+", " ", re.sub(r"[-+]?\d[\d.e+-]*", "#", hint.split(" (at ")[0])).strip()[:110]


def summarize(rows: dict[str, GradeRow], out: Path, skipped: list[str], points_rule: str) -> tuple[Path, Path]:
    """The markdown summary (verdict counts, how points are given, the refused cases, the entries skipped, the
    commonest hints) and the bar chart of those hints, beside the gradebook."""
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
    refused = sum(r.cases_refused for r in rows.values())
    lines += ["", f"Points: {points_rule}."]
    lines += [f"Cases refused (the code declared them unsupported; not done): {refused} in "
              f"{sum(1 for r in rows.values() if r.cases_refused)} submissions."]  # fmt: skip
    seconds = sorted(r.seconds for r in rows.values())
    if seconds:
        lines += ["", f"Median {seconds[len(seconds) // 2]:.1f} s per submission (longest {seconds[-1]:.1f} s)."]
    if skipped:
        lines += ["", "## Not graded", "", *(f"- {md_cell(s)}" for s in skipped)]
    lines += ["", "## The commonest hints", "", "| submissions | hint |", "|---|---|"]
    lines += [f"| {n} | {md_cell(shown[h])} |" for h, n in hints.most_common(10)]
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
