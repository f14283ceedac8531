"""The forms students write a two-layer net in (verification.forms): each file, written as its authors write it, is
recognised and checked with no options; the usual slips of each new form are named by their hints; what a file
imports that is not here is stood in for; NumPy code is checked at the float64 it was written for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from verification import check_backprop
from verification.forms import FORMS, table
from verification.options import UsageError, form_of

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "plugins" / "layouts"
NOTEBOOKS = ROOT / "tests" / "plugins" / "notebooks"
COURSERA_PY = LAYOUTS / "coursera_planar.py"
COURSERA_NB = NOTEBOOKS / "coursera_planar.ipynb"
NNFS = LAYOUTS / "nnfs_spiral.py"
CS231N_2017 = LAYOUTS / "cs231n_2017_neural_net.py"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "verification", "--quiet", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_the_docs_table_of_forms_is_the_registry_s() -> None:
    """docs/generated/forms.md is `python -m verification.forms`'s output: a form missing from it fails here."""
    text = (ROOT / "docs" / "generated" / "forms.md").read_text(encoding="utf-8")
    assert text == table(), "regenerate: python -m verification.forms > docs/generated/forms.md"
    assert all(f"| `{name}` |" in text for name in FORMS)
    assert '--8<-- "docs/generated/forms.md"' in (ROOT / "docs" / "check.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("path", "form"),
    [
        (COURSERA_NB, "coursera"),
        (COURSERA_PY, "coursera"),
        (NNFS, "nnfs"),
        (CS231N_2017, "cs231n"),
        (LAYOUTS / "cs231n_net.py", "cs231n"),
        (LAYOUTS / "epfl_practical.py", "epfl"),
        (NOTEBOOKS / "epfl_practical3.ipynb", "epfl"),
        (LAYOUTS / "umons_layers.py", "layers"),
        (NOTEBOOKS / "umons_assignment4.ipynb", "layers"),
        (LAYOUTS / "nielsen_network.py", "nielsen"),
        (LAYOUTS / "dlfs_ch4.py", "dlfs"),
        (LAYOUTS / "dlfs_ch5.py", "dlfs"),
        (LAYOUTS / "module_net.py", "module"),
        (NOTEBOOKS / "rumelhart_mlp.ipynb", "module"),
        (ROOT / "docs" / "examples" / "my_backprop.py", "linear"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_each_form_is_recognised_from_the_names_a_file_defines(path: Path, form: str) -> None:
    """Parsed, never run: the class and function names (and signatures) a file defines choose its form."""
    found, why, defined = form_of(str(path))
    assert found == form and why.startswith("defines "), (found, why)
    assert defined is not None and defined.path == path


@pytest.mark.parametrize("path", [COURSERA_NB, COURSERA_PY, NNFS, CS231N_2017], ids=lambda p: p.name)
def test_a_homework_as_its_author_wrote_it_is_checked_with_no_options(path: Path) -> None:
    """The course's helper imports (planar_utils, testCases_v2, nnfs, past.builtins) are not here and its data loading
    and training run at module level: only its definitions run, the missing imports are stood in for and said, and
    its form's usual net is checked in float64 -- a pass (fragile at the logit-800 data, where its log breaks)."""
    r = cli("--impl", str(path))
    lines = r.stdout.splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert lines[0].startswith(f"checked as the {form_of(str(path))[0]} form's usual net (defines "), lines[0]
    assert lines[1].startswith("checked in float64: NumPy code"), lines[1]
    assert any(" stood in for " in line for line in lines), r.stdout
    assert lines[-1].startswith("OK: "), lines[-1]


def test_coursera_stand_ins_are_the_course_s_own_and_say_so() -> None:
    r = cli("--impl", str(COURSERA_PY), "--batch", "7", "--variant", "normal")
    assert r.returncode == 0 and "stood in for planar_utils: " in r.stdout, r.stdout
    assert "sigmoid as planar_utils defines it" in r.stdout, r.stdout


@pytest.mark.parametrize(
    ("bind", "quantities", "hint"),
    [
        ("compute_cost=compute_cost_one_sided", {"loss"}, "its (1 - Y) log(1 - A2) term is missing"),
        ("compute_cost=compute_cost_sign_flipped", {"loss"}, "sign flipped"),
        ("forward_propagation=forward_propagation_tanh_output", {"loss", "W1", "W2"}, "tanh where the binary"),
        ("backward_propagation=backward_propagation_no_tanh_derivative", {"W1", "b1"}, "only the first layer"),
        ("backward_propagation=backward_propagation_not_averaged", {"W1", "W2"}, "scaled by N = 7"),
        ("backward_propagation=backward_propagation_unfilled", {"W1"}, "came back None: not filled in"),
    ],
    ids=lambda v: v.split("=")[-1] if isinstance(v, str) and "=" in v else None,
)
def test_each_coursera_slip_fails_naming_the_quantity_and_the_slip(bind: str, quantities: set[str], hint: str) -> None:
    r = cli("--impl", str(COURSERA_PY), "--bind", bind, "--batch", "7", "--variant", "normal")
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAIL ")]
    assert r.returncode == 1 and failed, r.stdout + r.stderr
    named = {line.split("] ", 1)[1].split(":")[0] for line in failed}
    assert quantities <= named, (named, r.stdout)
    assert any(hint in line for line in failed), r.stdout


@pytest.mark.parametrize(
    ("bind", "hint"),
    [
        ("Activation_Softmax_Loss_CategoricalCrossentropy=Softmax_Loss_Not_Averaged", "scaled by N = 7"),
        ("Activation_ReLU=Activation_ReLU_Output_Mask", "only the first layer is wrong"),
        ("Layer_Dense=Layer_Dense_No_Transpose", "only the first layer is wrong"),
    ],
    ids=lambda v: v.split("=")[-1] if "=" in v else None,
)
def test_each_nnfs_slip_fails_with_its_hint(bind: str, hint: str) -> None:
    r = cli("--impl", str(NNFS), "--bind", bind, "--batch", "7", "--variant", "normal")
    assert r.returncode == 1 and hint in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("chapter", "hidden", "helper"), [(4, "sigmoid", "common.functions"), (5, "relu", "common.layers")]
)
def test_deep_learning_from_scratch_as_its_readers_write_it(chapter: int, hidden: str, helper: str) -> None:
    """Chapter 4's sigmoid net and chapter 5's net of layers, each star-importing the book's common/ helpers (stood
    in for by the book's definitions, said) beside a training script: checked with no options, the net's hidden
    activation read from the file, the book's log(y + 1e-7) a convention said first."""
    r = cli("--impl", str(LAYOUTS / f"dlfs_ch{chapter}.py"))
    lines = r.stdout.splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "log(p + 1e-7) in the loss, a guard against log(0): accepted, the gradients the exact loss's" in lines[0]
    assert lines[1].startswith(
        "checked as the dlfs form's usual net (defines class TwoLayerNet with loss() and gradient()): "
        f"--hidden {hidden} "
    ), lines[1]
    assert any(f"stood in for {helper}: " in line and "as " + helper + " defines them" in line for line in lines)
    assert lines[-1].startswith("OK: "), lines[-1]


@pytest.mark.parametrize(
    ("bug", "hint"),
    [("no_batch_mean", "scaled by N = 7"), ("grad_of_output", "only the first layer is wrong")],
)
def test_each_deep_learning_from_scratch_slip_is_named_and_its_guarded_loss_is_not(
    tmp_path: Path, bug: str, hint: str
) -> None:
    """A wrong gradient beside the book's guarded loss: the gradient fails with its hint, the loss (right under the
    guard) is no failure."""
    text = (LAYOUTS / "dlfs_ch4.py").read_text().replace('    bug = ""', f'    bug = "{bug}"')
    (tmp_path / "two_layer_net.py").write_text(text)
    r = cli("--impl", str(tmp_path / "two_layer_net.py"), "--batch", "7", "--variant", "normal")
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAIL ")]
    assert r.returncode == 1 and failed and any(hint in line for line in failed), r.stdout + r.stderr
    assert not any("] loss:" in line for line in failed), failed


def test_nnfs_separate_softmax_and_loss_classes_are_checked_where_there_is_no_combined_one(tmp_path: Path) -> None:
    """Without the combined class the separate ones are checked: their backward divides by p, right on every
    ordinary input and NaN at the logit-800 data -- fragile, its cause said."""
    text = NNFS.read_text().replace("class Activation_Softmax_Loss_CategoricalCrossentropy(", "class Unused(")
    (tmp_path / "separate.py").write_text(text.replace("Activation_Softmax_Loss_CategoricalCrossentropy()", "Unused()"))
    r = cli("--impl", str(tmp_path / "separate.py"), "--batch", "7")
    assert r.returncode == 0 and "FRAGILE in" in r.stdout.splitlines()[-1], r.stdout + r.stderr
    assert "the backward divides by p" in r.stdout.splitlines()[-1], r.stdout


def test_readers_renamings_and_flat_copies_of_the_books_helpers_are_still_the_book_s(tmp_path: Path) -> None:
    """nnfs classes renamed with the case and underscores aside (LayerDense, ReLuActivation), a loss class of one's
    own with forward() but no calculate(); Deep Learning from Scratch's layers.py copied flat (`from layers import
    *`) and absent: each checked with no options, and passes (they were exit 2, exit 1 and exit 1 with a NameError)."""
    text = NNFS.read_text().replace("Layer_Dense", "LayerDense").replace("Activation_ReLU", "ReLuActivation")
    assert "LayerDense" in text and "ReLuActivation" in text
    (tmp_path / "renamed.py").write_text(text)
    r = cli("--impl", str(tmp_path / "renamed.py"), "--batch", "7", "--variant", "normal")
    assert r.returncode == 0 and "defines class LayerDense" in r.stdout and "ReLuActivation" in r.stdout, r.stdout
    own = NNFS.read_text().replace("def calculate(self, output, y):", "def calculate_mean(self, output, y):")
    own = own.replace("self.loss.calculate(", "self.loss.calculate_mean(")
    assert own.count("calculate_mean") >= 2
    (tmp_path / "own_loss.py").write_text(own.replace("class Activation_Softmax_Loss_CategoricalCrossentropy(",
                                                      "class Unused("))  # fmt: skip
    r = cli("--impl", str(tmp_path / "own_loss.py"), "--batch", "7", "--variant", "normal")
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("OK: "), r.stdout + r.stderr
    flat = (LAYOUTS / "dlfs_ch5.py").read_text().replace("from common.layers import *", "from layers import *")
    (tmp_path / "two_layer_net.py").write_text(flat)
    r = cli("--impl", str(tmp_path / "two_layer_net.py"), "--batch", "7", "--variant", "normal")
    assert r.returncode == 0 and "stood in for layers: " in r.stdout, r.stdout + r.stderr


def test_a_nielsen_network_with_output_for_feedforward_and_nabla_w_first_is_checked(tmp_path: Path) -> None:
    """Readers' Networks call the forward pass output() and return (nabla_w, nabla_b): the forward found among the
    readers' names, the order told by the shapes (W1 (H, D), b1 (H, 1)); the same net with its output-layer
    derivative left out still fails."""
    text = (LAYOUTS / "nielsen_network.py").read_text().replace("def feedforward(", "def output(")
    text = text.replace("        return nabla_b, nabla_w\n", "        return nabla_w, nabla_b\n")
    assert "def output(" in text and "return nabla_w, nabla_b" in text
    (tmp_path / "network.py").write_text(text)
    r = cli("--impl", str(tmp_path / "network.py"), "--variant", "normal")
    assert r.returncode == 0 and r.stdout.splitlines()[-1].startswith("OK: "), r.stdout + r.stderr
    r = cli("--impl", f"{tmp_path / 'network.py'}:NoOutputPrime", "--layout", "nielsen", "--variant", "normal")
    assert r.returncode == 1 and "MISMATCH" in r.stdout.splitlines()[-1], r.stdout + r.stderr


def test_nnfs_layers_are_kept_across_calls_so_gradients_never_zeroed_are_seen(tmp_path: Path) -> None:
    """The layers live as long as the training loop's: dweights added to instead of set (never zeroed) is right on
    each first call and fails the trajectory's later steps, by name; the book's own layers pass."""
    text = NNFS.read_text()
    old = "        self.dweights = np.dot(self.inputs.T, dvalues)\n"
    assert text.count(old) == 2
    new = "        self.dweights = getattr(self, 'dweights', 0) + np.dot(self.inputs.T, dvalues)\n"
    (tmp_path / "kept.py").write_text(text.replace(old, new))
    r = cli("--impl", str(tmp_path / "kept.py"), "--batch", "7", "--variant", "normal")
    assert r.returncode == 1 and "state persists between calls" in r.stdout, r.stdout + r.stderr


def test_numpy_code_is_checked_in_float64_and_float32_only_when_asked(tmp_path: Path) -> None:
    """The course's own `assert isinstance(cost, float)` after `cost = np.squeeze(cost)` (its 2017 version) fails on
    float32 data (np.float32 is no float): not the student's error by default; asked for, those rows say what the
    code raised."""
    old = tmp_path / "coursera_2017.py"
    old.write_text(COURSERA_PY.read_text().replace("cost = float(np.squeeze(cost))", "cost = np.squeeze(cost)"))
    r = cli("--impl", str(old), "--batch", "7", "--variant", "normal", "--csv", str(tmp_path / "rows.csv"))
    assert r.returncode == 0 and "checked in float64: NumPy code" in r.stdout, r.stdout + r.stderr
    assert set(pd.read_csv(tmp_path / "rows.csv")["dtype"]) == {"float64"}
    r = cli("--impl", str(old), "--batch", "7", "--variant", "normal", "--dtype", "float32,float64")
    assert r.returncode == 1 and "checked in float64" not in r.stdout, r.stdout
    assert "ERROR" in r.stdout and "AssertionError" in r.stdout and "float32" in r.stdout, r.stdout


def test_two_forms_in_one_file_is_one_line_naming_both(tmp_path: Path) -> None:
    both = tmp_path / "both.py"
    both.write_text(COURSERA_PY.read_text() + "\n\n" + (LAYOUTS / "epfl_practical.py").read_text())
    r = cli("--impl", str(both))
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, lines
    assert "fits 2 forms: coursera (" in lines[0] and "epfl (" in lines[0] and "--layout" in lines[0], lines[0]
    r = cli("--impl", str(both), "--layout", "epfl", "--batch", "7")  # --layout still decides
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_file_of_no_form_is_one_line_naming_the_forms(tmp_path: Path) -> None:
    other = tmp_path / "helpers.py"
    other.write_text("import numpy as np\n\ndef relu(x):\n    return np.maximum(x, 0)\n")
    r = cli("--impl", str(other))
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "defines none of the forms' names" in lines[0], lines
    assert all(f"{name}: " in lines[0] for name in FORMS), lines[0]


def test_a_linear_activation_is_no_layer_and_the_near_miss_says_the_whole_rule(tmp_path: Path) -> None:
    """An nnfs reader's `class Linear` with no constructor arguments is the identity activation, not a layer: the
    layers form does not take the file, and the one line says what it would need, its rule in full."""
    (tmp_path / "main.py").write_text(
        "import numpy as np\n\nclass Layer:\n    def __init__(self, nr_inputs, nr_neurons):\n"
        "        self.weights = np.zeros((nr_inputs, nr_neurons))\n\n"
        "class Linear:\n    def forward(self, x, train):\n        self.output = x\n\n"
        "class ReLU:\n    def forward(self, x, train):\n        self.output = np.maximum(0, x)\n"
    )
    with pytest.raises(UsageError) as info:
        form_of(str(tmp_path / "main.py"))
    assert str(info.value).count("\n") == 0 and f"recognised by {FORMS['layers'].rule}" in str(info.value)
    assert "built with arguments (its sizes, or W and b) and one of `ReLU`, `Sigmoid`, `Tanh`" in str(info.value)


def test_a_notebook_importing_its_class_is_checked_through_the_assignment_s_file(tmp_path: Path) -> None:
    """cs231n's two_layer_net.ipynb imports TwoLayerNet from cs231n/classifiers/neural_net.py, which imports
    past.builtins: recognised through that file, read by the same definitions rule, its stand-in said."""
    (tmp_path / "cs231n" / "classifiers").mkdir(parents=True)
    for init in ("cs231n/__init__.py", "cs231n/classifiers/__init__.py"):
        (tmp_path / init).write_text("")
    shutil.copy(CS231N_2017, tmp_path / "cs231n" / "classifiers" / "neural_net.py")
    cells = [
        "import numpy as np\nimport matplotlib.pyplot as plt\nfrom cs231n.classifiers.neural_net import TwoLayerNet\n"
        "from cs231n.data_utils import load_CIFAR10\n%matplotlib inline",
        "net = TwoLayerNet(4, 10, 3, std=1e-1)\nX = 10 * np.random.randn(5, 4)\nloss, grads = net.loss(X, y, reg=0.05)",
    ]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": i + 1, "source": c}
                    for i, c in enumerate(cells)], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    (tmp_path / "two_layer_net.ipynb").write_text(json.dumps(nb))
    r = cli("--impl", "two_layer_net.ipynb", "--batch", "7", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "in cs231n/classifiers/neural_net.py, which it imports" in r.stdout.splitlines()[0], r.stdout
    assert "stood in for past.builtins" in r.stdout and "(imported by cs231n.classifiers.neural_net)" in r.stdout
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "two_layer_net.ipynb", alone)
    r = cli("--impl", "two_layer_net.ipynb", cwd=alone)  # the assignment's folder is not there: said, exit 2
    assert r.returncode == 2 and "imports TwoLayerNet (imported from cs231n.classifiers.neural_net)" in r.stderr


def test_a_stood_in_import_raises_only_when_the_checked_code_uses_it(tmp_path: Path) -> None:
    text = COURSERA_PY.read_text().replace("A2 = sigmoid(Z2)", "A2 = sklearn.special.expit(Z2)")
    (tmp_path / "uses_sklearn.py").write_text(text)
    r = cli("--impl", str(tmp_path / "uses_sklearn.py"), "--batch", "7", "--variant", "normal")
    assert r.returncode == 1 and "ImportError: sklearn could not be imported here" in r.stdout, r.stdout
    assert "and the checked code uses it" in r.stdout


def test_a_script_s_work_never_runs(tmp_path: Path) -> None:
    """Module-level work, a __main__ block and a training loop: skipped (it would exit, print, or never end)."""
    text = NNFS.read_text() + (
        "\nimport sys\nprint('trained')\nsys.exit(3)\nif __name__ == '__main__':\n    while True:\n        pass\n"
    )
    (tmp_path / "script.py").write_text(text)
    r = cli("--impl", str(tmp_path / "script.py"), "--batch", "7", "--variant", "normal")
    assert r.returncode == 0 and "trained" not in r.stdout, r.stdout + r.stderr


def test_check_backprop_recognises_a_path_a_namespace_and_a_class() -> None:
    assert check_backprop(str(COURSERA_NB), batches=(7,)).ok
    sys.path.insert(0, str(LAYOUTS))
    try:
        import cs231n_net
    finally:
        sys.path.remove(str(LAYOUTS))
    report = check_backprop(cs231n_net.TwoLayerNet, batches=(7,), variants="normal")
    assert report.ok and (report.rows["dtype"] == "float64").all()  # NumPy code: float64, as written
    namespace = {"forward_pass": None}
    with pytest.raises(ValueError, match="defines none of the forms' names"):
        check_backprop(namespace)


def test_the_twolayer_command_runs_the_same_check() -> None:
    twolayer = Path(sys.executable).with_name("twolayer")
    if not twolayer.exists():
        pytest.skip(f"the console script is not installed beside {sys.executable} (pip install -e .)")
    r = subprocess.run([str(twolayer), "check", str(COURSERA_PY), "--quiet", "--batch", "7"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith("checked as the coursera form"), r.stdout
    r = subprocess.run([str(twolayer), "train"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "unknown command 'train'; choose from check, grade, bench, report" in r.stderr


def test_form_of_a_missing_file_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"plug-in file not found: nowhere\.py"):
        form_of("nowhere.py")


def test_a_required_parameter_renamed_takes_the_one_optional_left() -> None:
    """nnfs's forward(inputs, training) as readers rename it: forward(inputs, train) still gets training's value;
    a function that names it gets it by name; one that has no such parameter gets none."""
    from verification.forms.core import call_with

    assert call_with(lambda x, train: (x, train), 1, training=True) == (1, True)
    assert call_with(lambda x, training=False: (x, training), 1, training=True) == (1, True)
    assert call_with(lambda x: x, 1, training=True) == 1
    with pytest.raises(TypeError):  # two unfilled: nothing guessed
        call_with(lambda x, a, b: x, 1, training=True)
