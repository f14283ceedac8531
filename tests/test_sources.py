"""Notebooks as a source (verification.sources): the rule for which cells run, on notebooks written the way the
courses' notebooks are (tests/plugins/notebooks/), from check_backprop and the CLI; errors are one line naming the
cell."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from verification import check_backprop
from verification.sources import SourceError, definition, load_notebook, python_lines

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "tests" / "plugins" / "notebooks"
EPFL = {"layout": "epfl", "hidden": "tanh", "output": "tanh", "loss": "sse", "l2": 0.0, "batches": (7,)}
FORMS = [
    ("epfl_practical3.ipynb", EPFL),
    ("umons_assignment4.ipynb", {"layout": "layers", "hidden": "sigmoid", "output": "identity",
                                 "loss": "cross_entropy", "l2": 0.0, "batches": (7,)}),
    ("cs231n_two_layer_net.ipynb", {"layout": "cs231n", "hidden": "relu", "output": "identity",
                                    "loss": "cross_entropy", "batches": (7,)}),
    ("rumelhart_mlp.ipynb:MLP", {"layout": "module", "loss_fn": str(NOTEBOOKS / "rumelhart_mlp.ipynb:loss_fn"),
                                 "hidden": "sigmoid", "output": "sigmoid", "loss": "mse", "l2": 0.0,
                                 "sizes": [(6, 2, 1)], "batches": (64,)}),
]  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "verification", "--quiet", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("notebook", "opts"), FORMS, ids=[f[0].split(".")[0] for f in FORMS])
def test_each_course_form_notebook_is_checked_without_running_its_training(notebook: str, opts: dict) -> None:
    """Each notebook mounts Drive, runs magics and shell lines, downloads data and has a training loop of 10**9
    epochs: only its definitions run, so the check finishes (in seconds) and passes."""
    report = check_backprop(str(NOTEBOOKS / notebook), **opts, timeout=120)
    roles = [s for s in report.sources if " from " in s and not s.startswith("stood in for ")]
    assert report.ok and roles and all(" from cell " in s for s in roles), report.sources


def test_the_last_of_four_definitions_counts_and_the_report_names_its_cell() -> None:
    ns = load_notebook(NOTEBOOKS / "epfl_practical3.ipynb")
    assert ns.origin["backward_pass"].startswith("cell 17 (In [17]): def backward_pass(")
    r = cli("--impl", str(NOTEBOOKS / "epfl_practical3.ipynb"), "--layout", "epfl", "--hidden", "tanh", "--output",
            "tanh", "--loss", "sse", "--l2", "0", "--batch", "7")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "backward_pass from cell 17 (In [17]): def backward_pass(" in r.stdout, r.stdout


def planted(tmp_path: Path, old: str, new: str, name: str = "epfl_practical3.ipynb") -> Path:
    """A copy of a course notebook with one line of its last definition changed."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    cell = next(c for c in reversed(nb["cells"]) if c["cell_type"] == "code" and old in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(old, new)
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return path


def test_a_planted_bug_in_a_notebook_fails_naming_the_parameter_and_the_slip(tmp_path: Path) -> None:
    path = planted(tmp_path, "dl_ds1 = dsigma(s1) * dl_dx1", "dl_ds1 = dsigma(x1) * dl_dx1")
    with pytest.raises(AssertionError) as info:
        check_backprop(str(path), **EPFL)
    assert "W1" in str(info.value) and "dsigma(x1)) instead of its input" in str(info.value), str(info.value)
    r = cli("--impl", str(path), "--layout", "epfl", "--hidden", "tanh", "--output", "tanh", "--loss", "sse",
            "--l2", "0", "--batch", "7")  # fmt: skip
    assert r.returncode == 1 and "dsigma(x1)) instead of its input" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            "    x0 = x\n    dl_dx2",
            "    x0 = x\n    dl_dx2 = = 1\n    dl_dx2",
            "cell 17 (In [17]) ('def backward_pass(w1, b1, w2, b2,') does not parse: SyntaxError",
        ),
        (
            "def backward_pass(w1, b1, w2, b2,\n                  t,\n                  x, s1",
            "@undefined_decorator\ndef backward_pass(w1, b1, w2, b2,\n                  t,\n                  x, s1",
            "cell 17 (In [17]) ('@undefined_decorator') raised NameError",
        ),
    ],
    ids=["syntax-error", "raises"],
)
def test_a_needed_cell_that_does_not_parse_or_raises_is_one_line_naming_it(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    """The last definition is broken: never an earlier draft checked in its place; exit 2, one line."""
    path = planted(tmp_path, old, new)
    r = cli("--impl", str(path), "--layout", "epfl", "--hidden", "tanh", "--output", "tanh", "--loss", "sse")
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and says in lines[0], r.stdout + r.stderr


def test_a_file_that_is_not_a_notebook_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "homework.ipynb"
    bad.write_text('{"cells": [ {"cell_type": "code", "source": "import torch"')
    r = cli("--impl", str(bad), "--layout", "epfl")
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "homework.ipynb is not a readable notebook" in lines[0], lines
    with pytest.raises(ValueError, match="is not a readable notebook"):
        check_backprop(str(bad), layout="epfl")


def test_python_2_code_is_converted_by_2to3_and_said(tmp_path: Path) -> None:
    """cs231n's 2016 files are Python 2 (print x, xrange): read through 2to3's fixers, the report says so, the code is
    checked as written; Python 2 that 2to3 cannot convert stays one line (exit 2)."""
    text = (ROOT / "docs" / "examples" / "cs231n_student.py").read_text()
    old = tmp_path / "old_solution.py"
    old.write_text(
        text.replace("    def loss(", "    def loss_shape(self, X):\n        print X.shape\n\n    def loss(", 1)
    )
    r = cli("--impl", str(old), "--batch", "7")
    assert r.returncode == 0 and "Python 2 code, run as Python 3 after 2to3's fixes" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "broken.py"
    bad.write_text(
        "class TwoLayerNet(object):\n    def loss(self, X, y=None, reg=0.0):\n        print X.shape\n   x = (\n"
    )
    r = cli("--impl", str(bad))
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "does not parse: SyntaxError" in lines[0], lines


def test_ipython_lines_are_blanked_and_cell_magics_dropped() -> None:
    cell = "%matplotlib inline\n!pip install torch\nfiles = !ls\ntorch.mv?\nimport torch\n# why?\nx = 1"
    assert python_lines(cell).splitlines() == ["", "", "", "", "import torch", "# why?", "x = 1"]
    code = "e = np.exp(inputs)   # TODO: subtract max?\ndZ2 = dZ2 / m   # here or in dW2?\n?np.dot\nnp.dot??"
    assert python_lines(code).split("\n") == [*code.splitlines()[:2], "", ""]  # a comment's "?" is code
    assert python_lines("%%time\nfor i in range(10**9): pass") == ""


@pytest.mark.parametrize(
    ("code", "runs"),
    [
        ("import dlc_practical_prologue as prologue", True),
        ("def f(x):\n    return train(x)", True),
        ("class Net(object):\n    pass", True),
        ("sigma = torch.tanh", True),
        ("dsigma = lambda x: 1 - torch.tanh(x) ** 2", True),
        ("eta, zeta = 0.1, 0.9", True),
        ("loss_fn = torch.nn.MSELoss()", True),
        ("w1 = torch.empty(50, 784).normal_(0, 1e-6)", False),  # a call whose callee calls: data, never run
        ("stats = net.train(x_train, y_train, num_iters=500)", True),  # one call: its callee is checked at run time
        ("x, y = next(iter(loader))", False),
        ("for epoch in range(10**9):\n    pass", False),
        ("print(model)", False),
        ("train_model(model, loader)", False),
        ("try:\n    import google.colab\nexcept ImportError:\n    pass", True),
        ("if True:\n    train_model()", False),
    ],
)
def test_which_statements_define_things(code: str, runs: bool) -> None:
    assert definition(ast.parse(code).body[0]) is runs


def test_a_call_that_is_not_an_nn_module_construction_never_runs(tmp_path: Path) -> None:
    """`stats = net.train(...)` passes the static rule (one call, call-free arguments) but its callee is no nn.Module
    class, so it is skipped; `loss_fn = torch.nn.MSELoss()` runs."""
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1,
         "source": "import torch\nclass Net:\n    def train(self):\n        raise SystemExit('trained')\nnet = Net\n"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 2,
         "source": "stats = net.train(None)\nloss_fn = torch.nn.MSELoss()\n"},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    path = tmp_path / "hw.ipynb"
    path.write_text(json.dumps(nb))
    ns = load_notebook(path)
    assert "stats" not in ns.names and type(ns.names["loss_fn"]).__name__ == "MSELoss"
    with pytest.raises(SourceError, match="no definition of missing"):
        ns.get("missing")
