"""check_backprop, the layouts people write (cs231n, Nielsen, nn.Module), hints in words, and the pytest plugin:
each on real-shaped example code (tests/plugins/layouts/) with planted bugs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from verification import check_backprop
from verification.forms import CONFIGURATION, EVERY, configuration, usual_note
from verification.forms import FORMS as LAYOUT_TABLE
from verification.runner import Case, Matrix, run_case

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "plugins" / "layouts"
sys.path.insert(0, str(LAYOUTS))

import cs231n_net  # noqa: E402
import module_net  # noqa: E402
import nielsen_network  # noqa: E402

CS231N = {"layout": "cs231n", "hidden": "relu", "output": "identity", "loss": "cross_entropy"}
NIELSEN = {"layout": "nielsen", "hidden": "sigmoid", "output": "sigmoid", "loss": "half_sse", "l2": 0.0}
MODULE = {"layout": "module", "hidden": "tanh", "output": "identity", "loss": "sse", "l2": 0.0}
SMALL = {"batches": (7,), "sizes": [(5, 4, 3)]}


def test_correct_code_of_each_layout_passes() -> None:
    nets = (cs231n_net.TwoLayerNet, CS231N), (cs231n_net.TorchTwoLayerNet, CS231N), (nielsen_network.Network, NIELSEN)
    for net, opts in nets:
        report = check_backprop(net, **opts, batches=(1, 7))
        assert report.ok and report.verdict.startswith("OK: ") and (report.rows["status"] == "ok").all()
    report = check_backprop(module_net.Net, **MODULE, loss_fn=module_net.sum_of_squares, batches=(1, 7))
    assert report.ok


@pytest.mark.parametrize(
    ("net", "says"),
    [
        (cs231n_net.NoReluMask, ["W1", "b1", "only the first layer is wrong"]),
        (cs231n_net.HalfReg, ["W1", "L2 gradient halved"]),
        (cs231n_net.SignFlipped, ["W2", "b2", "sign flipped"]),
        (cs231n_net.LinearShaped, ["W1 came back (4, 5), the nn.Linear layout's shape", "layout='linear'"]),
    ],
    ids=lambda v: getattr(v, "__name__", "says"),
)
def test_a_planted_cs231n_bug_fails_naming_the_parameter_and_the_bug(net: type, says: list[str]) -> None:
    with pytest.raises(AssertionError) as info:
        check_backprop(net, **CS231N, **SMALL)
    assert all(s in str(info.value) for s in says), str(info.value)


def test_nielsen_and_module_bugs_fail_with_their_reason() -> None:
    with pytest.raises(AssertionError, match="W2"):
        check_backprop(nielsen_network.NoOutputPrime, **NIELSEN, **SMALL, dtype="float64")
    with pytest.raises(AssertionError, match="no gradient came back"):
        check_backprop(module_net.Detached, **MODULE, loss_fn=module_net.sum_of_squares, **SMALL)


def test_configurations_a_layout_cannot_express_are_counted_apart_with_the_reason() -> None:
    """Every configuration asked of cs231n code: only ReLU -> softmax CE is that code's; the rest are unsupported
    cases with the reason, counted apart from the checked ones -- never a failure, never silently dropped."""
    every = {opt: EVERY[opt].split(",") for opt in ("hidden", "output", "loss", "l2")}
    report = check_backprop(cs231n_net.TwoLayerNet, layout="cs231n", **every, **SMALL, dtype="float64")
    assert report.ok and "planned cases unsupported" in report.verdict
    reasons = set(report.rows.loc[report.rows["status"] == "unsupported", "problem"])
    assert reasons == {"the cs231n form is ReLU -> softmax cross-entropy (TwoLayerNet.loss) only"}


@pytest.mark.parametrize("layout", [name for name, lay in LAYOUT_TABLE.items() if lay.usual])
def test_a_course_layout_is_checked_on_its_usual_net_unless_told_and_the_docs_say_which(layout: str) -> None:
    """Code in a course's layout fixes its net; checking it on another is a false alarm, so it is not the default."""
    usual = dict(LAYOUT_TABLE[layout].usual)
    config = configuration(layout, {})
    assert all(config[opt] == usual.get(opt, EVERY[opt]) for opt in CONFIGURATION), config
    assert configuration(layout, {"hidden": "sigmoid"})["hidden"] == "sigmoid"  # given: what was asked
    assert configuration(layout, {"l2": ""})["l2"] == ""  # given empty: the option's error later, never the usual
    note = usual_note(layout, {})
    assert note and all(f"--{opt} {v}" in note for opt, v in usual.items())
    assert usual_note(layout, {opt: "x" for opt in CONFIGURATION}) is None  # nothing assumed: nothing said
    flags = note.split(": ", 1)[1].split(" (", 1)[0]
    assert f"| `{flags}` |" in (ROOT / "docs" / "generated" / "forms.md").read_text(encoding="utf-8"), flags


def test_the_module_layout_must_be_told_its_net_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"say which with --hidden, --output, --loss \(check_backprop: hidden="):
        check_backprop(module_net.Net, layout="module", loss_fn=module_net.sum_of_squares)
    r = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", f"{LAYOUTS / 'module_net.py'}:Net", "--layout", "module",
         "--loss-fn", f"{LAYOUTS / 'module_net.py'}:sum_of_squares", "--hidden", "tanh"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--output, --loss" in r.stderr, r.stderr


def test_the_epfl_notebook_passes_the_one_line_a_student_types() -> None:
    """No configuration options: the course's tanh / tanh / sse net, said in the first line, and exit 0."""
    r = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", "tests/plugins/notebooks/epfl_practical3.ipynb",
         "--layout", "epfl", "--quiet", "--batch", "7"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == usual_note("epfl", {}) and "\nOK: " in r.stdout


@pytest.mark.parametrize(
    ("bug", "quantity", "hint"),
    [
        ("transposed", "W1", "transposed"),
        ("bias_not_summed", "b1", "one per sample: not summed over the batch"),
        ("mean_vs_sum", "W2", "scaled by 1/N = 1/7"),
        ("l2_missing", "W1", "L2 term missing"),
        ("l2_half", "W2", "L2 gradient halved"),
        ("l2_doubled", "W1", "L2 gradient doubled"),
        ("wrong_tensor", "W1", "the hidden activation's derivative uses the formula in its output"),
        ("sign_flipped", "b2", "sign flipped"),
    ],
)
def test_each_hint_names_its_planted_bug(bug: str, quantity: str, hint: str) -> None:
    """The hint beside the numbers, on the backprop bugs of tests/plugins/backprops.py (float64: the numbers fit the
    explanation far inside the tolerance)."""
    from impls.spec import NetSpec
    from verification.plugin import plugin_class

    cls = plugin_class(f"{ROOT / 'tests/plugins/backprops.py'}:{bug}")
    spec = NetSpec(4, 4, 4, "sigmoid", "identity", "sse", l2=0.1 if bug.startswith("l2") else 0.0)
    rows = run_case(Case(bug, spec, 7, "float64", "cpu"), cls, Matrix())
    row = next(r for r in rows if r["quantity"] == quantity)
    assert row["status"] == "FAIL" and f"hint: {hint}" in row["problem"], row["problem"]


def plugin_is_installed() -> bool:
    """Whether this environment's pytest loads the fixture by itself (the package's pytest11 entry point)."""
    return any(ep.value == "verification.pytest_plugin" for ep in entry_points(group="pytest11"))


STUDENT_TEST = """
    import sys
    sys.path.insert(0, {folder!r})
    from {module} import {names}

    def test_my_two_layer_net(check_backprop):
        check_backprop({call})
"""
#: (layout, module, the student's call, what a failure must say): a planted bug, then the fixed code
STUDENTS = [
    ("cs231n", "cs231n_net", 'NoReluMask, layout="cs231n", hidden="relu", output="identity", loss="cross_entropy"',
     ["W1", "only the first layer is wrong"]),
    ("cs231n", "cs231n_net", 'TwoLayerNet, layout="cs231n", hidden="relu", output="identity", '
     'loss="cross_entropy"', []),
    ("nielsen", "nielsen_network", 'NoOutputPrime, layout="nielsen", hidden="sigmoid", output="sigmoid", '
     'loss="half_sse", l2=0.0, batches=(1, 7)', ["W2", "b2"]),
    ("nielsen", "nielsen_network", 'Network, layout="nielsen", hidden="sigmoid", output="sigmoid", loss="half_sse", '
     "l2=0.0, batches=(1, 7)", []),
    ("module", "module_net", 'Detached, layout="module", hidden="tanh", output="identity", loss="sse", l2=0.0, '
     "loss_fn=sum_of_squares, batches=(1, 7)", ["no gradient came back"]),
    ("module", "module_net", 'Net, layout="module", hidden="tanh", output="identity", loss="sse", l2=0.0, '
     "loss_fn=sum_of_squares, batches=(1, 7)", []),
]  # fmt: skip


@pytest.mark.parametrize(("layout", "module", "call", "says"), STUDENTS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_students_ten_line_test_fails_naming_the_bug_and_passes_once_fixed(
    layout: str, module: str, call: str, says: list[str], tmp_path: Path
) -> None:
    """Plain pytest with the plugin's fixture, per layout: the planted bug fails naming the parameter and the bug,
    the fixed code passes. The pytest11 entry point registers the fixture when the package is installed (as tox and
    CI install it); from a checkout that was not installed, -p names it (naming it twice is an error)."""
    names = call.split(",")[0] + (", sum_of_squares" if "loss_fn=sum_of_squares" in call else "")
    test = tmp_path / "test_student.py"
    test.write_text(textwrap.dedent(STUDENT_TEST.format(folder=str(LAYOUTS), module=module, names=names, call=call)))
    load = [] if plugin_is_installed() else ["-p", "verification.pytest_plugin"]
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *load, "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if not says:
        assert r.returncode == 0, r.stdout[-2000:]
    else:
        assert r.returncode == 1 and all(s in r.stdout for s in says), r.stdout[-3000:]


def test_the_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.pytest11]\ntwolayer = "verification.pytest_plugin"' in text


def test_a_plugin_file_imports_modules_beside_it(tmp_path: Path) -> None:
    """`from network import Network` in a plug-in works as it would in its own folder (Nielsen's layout of files)."""
    (tmp_path / "helper_module_beside.py").write_text("FACTOR = 1.0\n")
    (tmp_path / "mine.py").write_text(
        "from helper_module_beside import FACTOR\n"
        f"import sys; sys.path.insert(0, {str(ROOT / 'tests/plugins')!r})\n"
        "from backprops import correct\n"
        "def fn(params, x, t, spec):\n    return correct(params, x, t, spec)\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", f"{tmp_path / 'mine.py'}:fn", "--quiet", "--batch", "7",
         "--sizes", "5-4-3", "--hidden", "tanh"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and "OK:" in r.stdout, r.stdout + r.stderr


def test_a_class_is_checked_as_its_form_and_in_the_linear_form_is_one_line() -> None:
    """TwoLayerNet given with no form is recognised as cs231n's (the first line says why); told the linear form, one
    line naming the forms, from the Python call and from the CLI (exit 2), never a TypeError in every case."""
    report = check_backprop(cs231n_net.TwoLayerNet, **SMALL)
    assert report.ok and "recognised as the cs231n form (defines class TwoLayerNet with loss())" in report.sources[0]
    with pytest.raises(ValueError, match="TwoLayerNet is a class; the linear form takes a function"):
        check_backprop(cs231n_net.TwoLayerNet, layout="linear")
    r = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", f"{LAYOUTS / 'cs231n_net.py'}:TwoLayerNet", "--quiet",
         "--layout", "linear"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "give its form (--layout" in lines[0], r.stdout + r.stderr


def test_the_failure_message_says_where_the_cases_fail() -> None:
    """The CLI's WHERE line (which options the failing cases share) heads the table in the fixture's message too."""
    with pytest.raises(AssertionError) as info:
        check_backprop(cs231n_net.NoMaxShift, **CS231N, **SMALL, strict=True)
    assert "WHERE NoMaxShift: " in str(info.value) and "only variant=large-logits" in str(info.value), str(info.value)
