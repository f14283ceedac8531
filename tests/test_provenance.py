"""The record says which code ran: the commit of this project's own checkout, '+dirty' when tracked files differ,
'unknown' for a copy that is not a checkout (the H200 run's copy recorded an unrelated enclosing repository)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reports import provenance


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout.strip()


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point provenance at a folder of our choosing (a fresh cache each time)."""

    def use(path: Path) -> None:
        monkeypatch.setattr(provenance, "ROOT", path.resolve())
        provenance.project_commit.cache_clear()

    yield use
    provenance.project_commit.cache_clear()


def test_a_copy_inside_another_repository_records_unknown(root, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / "copy").mkdir(parents=True)
    _git(outer, "init", "-q")
    (outer / "x").write_text("x")
    _git(outer, "add", "x")
    _git(outer, "commit", "-qm", "unrelated")
    root(outer / "copy")
    assert provenance.project_commit() == "unknown"
    assert provenance.commit_details()["id"] == "unknown"
    root(tmp_path / "nowhere")
    assert provenance.project_commit() == "unknown"


def test_a_checkout_records_its_commit_and_dirty_when_tracked_files_differ(root, tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("1")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-qm", "c")
    head = _git(repo, "rev-parse", "--short=7", "HEAD")
    root(repo)
    (repo / "untracked.txt").write_text("results of a run")  # untracked files do not make it dirty
    assert provenance.project_commit() == head
    (repo / "a.py").write_text("2")
    root(repo)
    assert provenance.project_commit() == f"{head}+dirty"
    details = provenance.commit_details()
    assert details["dirty"] is True and details["id"].startswith(head) and details["project"] == "twolayer"


def test_run_names_sort_by_time_and_are_file_safe() -> None:
    name = provenance.run_name("cuda-NVIDIA H200/x", "bf16")
    assert name[:4].isdigit() and "_cuda-NVIDIA-H200-x_" in name and name.endswith("_bf16") and " " not in name


def test_results_the_suite_rewrites_do_not_make_a_run_dirty(root, tmp_path: Path) -> None:
    repo = tmp_path / "proj"
    (repo / "reports/results").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "reports/results/summary.csv").write_text("1")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "c")
    (repo / "reports/results/summary.csv").write_text("2")  # what the main job does to committed results
    root(repo)
    assert not provenance.project_commit().endswith("+dirty")
