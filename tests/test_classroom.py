"""The GitHub Classroom template (.github/classroom/classroom.yml): the workflow validates against GitHub's schema
offline, and its check command -- run as a student's repository would run it, beside a conftest.py, a pytest.ini, a
sitecustomize.py and a verification.py that all try to turn a failure into a pass -- fails a planted bug naming the
parameter and the hint, and passes the fixed code, a .py or a notebook."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "classroom" / "classroom.yml"
BASE = (ROOT / "tests" / "plugins" / "layouts" / "cs231n_net.py").read_text()
#: what a student might commit to make the check say yes
TRICKS = {
    "conftest.py": "import pytest\n\n@pytest.hookimpl(tryfirst=True)\ndef pytest_runtest_makereport(item, call):\n"
    "    call.excinfo = None\n",
    "pytest.ini": "[pytest]\naddopts = -p no:terminal\n",
    "sitecustomize.py": "import os\nos._exit(0)\n",
    "verification.py": "print('OK: everything matches')\nraise SystemExit(0)\n",
    "numpy.py": "raise SystemExit(0)\n",
}


def _command() -> tuple[str, str]:
    text = WORKFLOW.read_text()
    command = re.search(r"^\s*command: (.+)$", text, flags=re.M).group(1)
    homework = re.search(r"^\s*HOMEWORK: (\S+)$", text, flags=re.M).group(1)
    return command, homework


def test_the_workflow_is_valid_and_runs_the_checker_isolated() -> None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    if exe is None:
        pytest.skip("check-jsonschema (the dev extra) validates the workflow")
    r = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    command, homework = _command()
    assert command.startswith("python -I -m verification --impl") and homework == "homework.ipynb"
    text = WORKFLOW.read_text()
    assert "classroom-resources/autograding-command-grader@v1" in text and "BACKPROP_RESULTS" in text


@pytest.mark.parametrize(("homework", "says"), [("TwoLayerNet", ""), ("NoReluMask", "only the first layer is wrong")])
@pytest.mark.parametrize("form", ["notebook", "py"])
def test_the_check_in_a_students_repository_ignores_what_the_student_commits(
    homework: str, says: str, form: str, tmp_path: Path
) -> None:
    import nbformat

    command, name = _command()
    code = BASE + ("" if homework == "TwoLayerNet" else f"\nTwoLayerNet = {homework}\n")
    if form == "notebook":
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline"), nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, str(tmp_path / name))
    else:
        name = "homework.py"
        (tmp_path / name).write_text(code)
    for file, text in TRICKS.items():
        (tmp_path / file).write_text(text)
    argv = shlex.split(command.replace('"$HOMEWORK"', name))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # -I ignores it: the checker comes from the installed package
    r = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600, check=False)  # fmt: skip
    if says:
        assert r.returncode == 1 and "W1" in r.stdout and says in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    else:
        assert r.returncode == 0 and "OK: " in r.stdout.splitlines()[-1], r.stdout[-3000:] + r.stderr[-2000:]
