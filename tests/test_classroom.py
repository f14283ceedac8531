"""The GitHub Classroom template (.github/classroom/): the workflow validates against GitHub's schema offline, runs
the test file that sits beside it, and that test file -- as a student's repository would hold it -- fails a planted
bug naming the parameter and the hint, and passes the fixed code, a .py or a notebook."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_layouts import plugin_is_installed

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / ".github" / "classroom"
BASE = (ROOT / "tests" / "plugins" / "layouts" / "cs231n_net.py").read_text()


def test_the_workflow_is_valid_and_runs_the_test_file_beside_it() -> None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema (the dev extra) validates the workflow")
    workflow = TEMPLATE / "classroom.yml"
    r = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(workflow)],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    text = workflow.read_text()
    assert "command: python -m pytest -q test_backprop.py" in text and (TEMPLATE / "test_backprop.py").is_file()
    assert "classroom-resources/autograding-command-grader@v1" in text and "BACKPROP_RESULTS" in text


@pytest.mark.parametrize(
    ("homework", "says"),
    [("TwoLayerNet", ""), ("NoReluMask", "only the first layer is wrong"), ("notebook", "")],
)
def test_the_teachers_test_file_in_a_students_repository(homework: str, says: str, tmp_path: Path) -> None:
    shutil.copy(TEMPLATE / "test_backprop.py", tmp_path)
    code = BASE + ("" if homework in ("TwoLayerNet", "notebook") else f"\nTwoLayerNet = {homework}\n")
    if homework == "notebook":
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline"), nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, str(tmp_path / "homework.ipynb"))
    else:
        (tmp_path / "two_layer_net.py").write_text(code)
    load = [] if plugin_is_installed() else ["-p", "verification.pytest_plugin"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", *load, "-p", "no:cacheprovider", "test_backprop.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if says:
        assert r.returncode == 1 and "W1" in r.stdout and says in r.stdout, r.stdout[-3000:]
    else:
        assert r.returncode == 0, r.stdout[-3000:]
