"""Which code and which machine produced a result: the commit of this project's own checkout and the CPU model.

The commit is read from the git checkout whose top level is the project root (the folder holding `reports/`),
never from a repository that merely encloses the working directory: a copy of the project inside another
repository, or outside any, records "unknown". A checkout whose tracked files differ from HEAD records
"<commit>+dirty", so a number measured on uncommitted code says so (reports/results does not count: the main job
itself rewrites those files). No torch import: reports may use it.
"""

from __future__ import annotations

import datetime as dt
import functools
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN = "unknown"


def _git(*args: str) -> str | None:
    """stdout of `git -C ROOT args`, or None when git is missing or fails."""
    try:
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def project_commit() -> str:
    """'1a2b3c4', '1a2b3c4+dirty' (tracked files changed), or 'unknown' (not a git checkout of this project)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != ROOT:
        return UNKNOWN
    head = _git("rev-parse", "--short=7", "HEAD")
    if not head:
        return UNKNOWN
    # results the suite itself rewrites (reports/results) are data, not code: they do not make a run "dirty"
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports/results")
    return f"{head}+dirty" if changed else head


def commit_details() -> dict[str, object]:
    """pytest-benchmark's commit_info fields for this project's checkout (id, time, dirty, project), or an
    'unknown' record: the enclosing repository's commit never stands in for ours."""
    commit = project_commit()
    if commit == UNKNOWN:
        return {"id": UNKNOWN, "dirty": None, "project": "twolayer", "branch": None, "time": None}
    full = _git("rev-parse", "HEAD") or commit
    return {
        "id": full,
        "dirty": commit.endswith("+dirty"),
        "project": "twolayer",
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "time": _git("show", "-s", "--format=%cI", "HEAD"),
    }


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_name(device_tag: str, suffix: str = "") -> str:
    """'<UTC date-time>_<device tag>_<host>[_suffix]', safe as a file name: how every saved run is named (the
    benchmarks' JSON, the verification CSVs), so runs sort by time and never overwrite each other."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M%S")
    host = platform.node() or "host"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(p for p in (stamp, device_tag, host, suffix) if p))
