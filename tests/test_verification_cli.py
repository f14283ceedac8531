"""`python -m verification`: exit codes, the mismatch report, plug-ins (correct and the usual bugs), bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from verification.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = "tests/plugins/backprops.py"
QUICK = ["--quiet", "--batch", "7", "--dtype", "float64"]


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_registry_run_writes_csv_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "v.csv"
    code = main(["--impl", "batched", "--impl", "loop", *QUICK, "--csv", str(csv)])
    out = capsys.readouterr().out
    assert code == 0, out
    df = pd.read_csv(csv)
    assert set(df["impl"]) == {"batched", "loop"} and (df["status"] == "ok").all()
    assert {"max_abs_err", "max_rel_err", "tol", "quantity"} <= set(df.columns)
    assert "OK:" in out and "batched" in out


def test_correct_plugin_passes(capsys: pytest.CaptureFixture) -> None:
    assert main(["--impl", f"{PLUGINS}:correct", "--quiet"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    ("fn", "named"),
    [
        ("wrong_tensor", {"W1", "b1"}),
        ("bias_not_summed", {"b1"}),
        ("mean_vs_sum", {"W1", "b1", "W2", "b2"}),
        ("missing_output_derivative", {"W1", "b1", "W2", "b2"}),
        ("transposed", {"W1"}),
        ("l2_half", {"W1", "W2"}),
        ("l2_doubled", {"W1", "W2"}),
        ("l2_missing", {"W1", "W2"}),
    ],
)
def test_buggy_plugins_exit_1_naming_the_wrong_parameter(fn: str, named: set, capsys: pytest.CaptureFixture) -> None:
    code = main(["--impl", f"{PLUGINS}:{fn}", "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    failed = {line.split("] ")[1].split(":")[0] for line in out.splitlines() if line.startswith("FAIL ")}
    assert named <= failed | {"trajectory"}, out
    assert failed - {"trajectory"} <= named | {"loss"}, out
    mismatch = next(line for line in out.splitlines() if line.startswith("MISMATCH"))
    assert all(name in mismatch for name in named)


def test_failure_line_names_impl_config_parameter_errors_and_tolerance(capsys: pytest.CaptureFixture) -> None:
    main(["--impl", f"{PLUGINS}:l2_half", *QUICK, "--hidden", "tanh", "--loss", "mse", "--l2", "0.1"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("FAIL ") and "] W1:" in x)
    assert f"{PLUGINS}:l2_half" in line and "tanh/" in line and "mse l2=0.1" in line and "N=7 float64" in line
    assert "max abs err" in line and "max rel err" in line and "> tol" in line


def test_partial_support_is_unsupported_not_failed(capsys: pytest.CaptureFixture) -> None:
    assert main(["--impl", f"{PLUGINS}:sigmoid_sse_only", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "unsupported" in out


def test_nothing_supported_exits_1(capsys: pytest.CaptureFixture) -> None:
    assert main(["--impl", f"{PLUGINS}:sigmoid_sse_only", *QUICK, "--hidden", "tanh"]) == 1
    assert "NOTHING VERIFIED" in capsys.readouterr().out


def test_crashing_plugin_is_an_error_with_location(capsys: pytest.CaptureFixture) -> None:
    assert main(["--impl", f"{PLUGINS}:crashes", *QUICK]) == 1
    assert "RuntimeError: boom (at backprops.py:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--impl", "nope"], "unknown implementation 'nope'; known: "),
        (["--impl", "missing.py:f"], "plug-in file not found: missing.py"),
        (["--impl", f"{PLUGINS}:absent"], "has no attribute 'absent'"),
        (["--impl", f"{PLUGINS}:NOT_CALLABLE"], "is not callable"),
        (["--impl", f"{PLUGINS}:not_a_function_value"], "must accept (params, x, t, spec)"),
        (["--impl", "json:nothing"], "has no attribute 'nothing'"),
        (["--impl", "no_such_pkg.mod:fn"], "importing module no_such_pkg.mod failed"),
        (["--hidden", "gelu"], "unknown hidden activation 'gelu'"),
        (["--loss", "cross_entropy", "--output", "tanh"], "no sensible configuration"),
        (["--dtype", "float16"], "unknown dtype 'float16'"),
        (["--batch", "0"], "--batch: values must be >= 1"),
        (["--sizes", "5-4"], "--sizes: expected D-H-C"),
        (["--l2", "-1"], "--l2: coefficients must be finite and >= 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")


def test_cuda_absent_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here; the error path needs a machine without it")
    assert main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_plugin_with_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    assert main(["--impl", f"{bad}:f"]) == 2
    err = capsys.readouterr().err
    assert f"importing {bad} failed: SyntaxError" in err


def test_module_entry_point_no_traceback() -> None:
    """The real `python -m verification` process: exit 1 for a bug, 2 for bad usage, never a traceback."""
    bug = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", f"{PLUGINS}:bias_not_summed", *QUICK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bug.returncode == 1 and "b1" in bug.stdout and "Traceback" not in bug.stdout + bug.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", "nope"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
