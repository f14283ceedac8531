"""`python -m verification`: exit codes, the mismatch report, plug-ins (correct and the usual bugs), bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import impls
from reports.record import CASE_KEY, read_verification
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
    df = read_verification(csv)  # the typed round trip: columns, statuses, one run's provenance
    assert set(df["impl"]) == {"batched", "loop"} and (df["status"] == "ok").all() and set(df["run"]) == {"v"}
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
    code = main(["--impl", f"{PLUGINS}:{fn}", *QUICK])
    out = capsys.readouterr().out
    assert code == 1
    failed = {line.split("] ")[1].split(":")[0] for line in out.splitlines() if line.startswith("FAIL ")}
    assert named <= failed | {"trajectory", "train"}, out
    assert failed - {"trajectory", "train"} <= named | {"loss"}, out
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
    assert "bad.py does not parse: SyntaxError: " in err and err.count("\n") == 1, err


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


# ---- Trust: the code being checked cannot fake a pass, hang the checker, or slip through the data ----------

VARIANTS_FILE = "tests/plugins/variants.py"


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The real `python -m verification` process: the exit status is the process's, not main()'s."""
    return subprocess.run(
        [sys.executable, "-m", "verification", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


CORRECT = ("einsum", "float64_inside", "autograd_inside", "logsumexp_ce", "non_contiguous", "per_sample_loop")


def test_correct_but_differently_written_plugins_pass_every_case(capsys: pytest.CaptureFixture) -> None:
    """einsum, float64 inside, autograd inside, logsumexp CE, non-contiguous outputs, a per-sample loop: every
    planned case (all variants, batches lacking a class) passes; N=64 adds no corner the smaller batches lack."""
    refs = [a for fn in CORRECT for a in ("--impl", f"{VARIANTS_FILE}:{fn}")]
    code = main([*refs, "--quiet", "--batch", "1,7"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK:" in out and "checked cases" in out and "unsupported" not in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("fn", "only", "message"),
    [
        ("one_hot_without_num_classes", "only loss=cross_entropy", "ERROR"),
        ("bincount_without_minlength", "only loss=cross_entropy", "ERROR"),
        ("in_place_update", "spread over every option", "modified its argument(s) W1 in place"),
    ],
)
def test_corner_case_bugs_are_caught(fn: str, only: str, message: str, capsys: pytest.CaptureFixture) -> None:
    code = main(["--impl", f"{VARIANTS_FILE}:{fn}", *QUICK])
    out = capsys.readouterr().out
    assert code == 1, out
    assert message in out
    where = next(line for line in out.splitlines() if line.startswith("WHERE "))
    assert only in where, where


def test_a_softmax_without_the_max_shift_is_fragile_with_its_cause_and_fails_strict(capsys) -> None:
    """Right on every ordinary input, NaN only at the logit-800 data: fragile (exit 0) with the cause in words;
    --strict fails it, the WHERE line naming the large-logits data."""
    assert main(["--impl", f"{VARIANTS_FILE}:unshifted_softmax", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "FRAGILE in" in out.splitlines()[-1] and "no max shift in the softmax: exp(z) overflows" in out, out
    said = [line for line in out.splitlines() if line.startswith("FRAGILE ")]
    cases = int(re.search(r"FRAGILE in (\d+) cases", out).group(1))
    assert len(said) == len({line.split(": ", 1)[1] for line in said}) < cases, said  # a cause once, not per case
    assert main(["--impl", f"{VARIANTS_FILE}:unshifted_softmax", *QUICK, "--strict"]) == 1
    out = capsys.readouterr().out
    where = next(line for line in out.splitlines() if line.startswith("WHERE "))
    assert "only variant=large-logits" in where, where


def test_relu_derivative_one_at_zero_is_a_convention_not_a_bug(tmp_path: Path) -> None:
    """The mask a >= 0 (relu'(0) = 1) differs from torch's only at an exact zero, where both are subgradients: the
    exact-zeros cases pass against the oracle with relu'(0) = 1, and their rows say so."""
    assert main(["--impl", f"{VARIANTS_FILE}:relu_ge", *QUICK, "--csv", str(tmp_path / "relu_ge.csv")]) == 0
    rows = pd.read_csv(tmp_path / "relu_ge.csv")
    said = rows[rows["problem"].fillna("").str.contains("relu'(0) = 1", regex=False)]
    assert len(said) and set(said["variant"]) == {"exact-zeros"} and (said["status"] == "ok").all()


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        ("exits_zero", "the function tried to exit: SystemExit: 0"),
        ("hard_exit", "the plug-in's process exited (code 0)"),
    ],
)
def test_plugin_that_exits_cannot_pass(fn: str, message: str) -> None:
    """sys.exit(0) / os._exit(0) inside the function: exit 1 with ERROR rows, even next to a passing impl."""
    r = _cli("--impl", "batched", "--impl", f"{VARIANTS_FILE}:{fn}", *QUICK)
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stdout and "MISMATCH:" in r.stdout and "errors" in r.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("tests/plugins/exits_at_import.py", "importing tests/plugins/exits_at_import.py failed: SystemExit: 0"),
        ("tests/plugins/hard_exits_at_import.py", "its process exited (code 0) while importing it"),
    ],
)
def test_plugin_that_exits_at_import_is_a_usage_error(file: str, message: str) -> None:
    r = _cli("--impl", "batched", "--impl", f"{file}:fn", *QUICK)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stdout + r.stderr


def test_hanging_plugin_times_out_per_case(capsys: pytest.CaptureFixture) -> None:
    code = main(["--impl", f"{VARIANTS_FILE}:hangs", *QUICK, "--hidden", "tanh", "--loss", "mse", "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "timeout: no result within 1 s" in out and "tanh/identity mse" in out


def test_repeated_deaths_stop_restarting_but_every_case_is_reported(tmp_path: Path) -> None:
    csv = tmp_path / "v.csv"
    assert main(["--impl", f"{VARIANTS_FILE}:hard_exit", *QUICK, "--hidden", "tanh", "--csv", str(csv)]) == 1
    df = pd.read_csv(csv)
    assert (df["status"] == "error").all() and len(df) == len(df.drop_duplicates(list(CASE_KEY))) > 3
    assert df["problem"].str.contains("process exited").sum() == 3
    assert df["problem"].str.startswith("not run: the plug-in's process died on 3 cases in a row").sum() == len(df) - 3


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        ("numpy_grads", "W1: returned numpy.ndarray (4, 5) float64, expected a Tensor (4, 5) float64"),
        ("float64_grads", "W1: returned Tensor (4, 5) float64, expected a Tensor (4, 5) float32"),
        ("python_float_loss", "loss: returned float, expected a Tensor () float"),
    ],
)
def test_returned_values_must_be_tensors_of_the_params_dtype(fn: str, message: str, capsys) -> None:
    code = main(["--impl", f"{VARIANTS_FILE}:{fn}", "--quiet", "--batch", "7", "--hidden", "tanh", "--loss", "mse"])
    out = capsys.readouterr().out
    assert code == 1 and message in out, out


def test_shape_failure_prints_its_reason_not_nan(capsys: pytest.CaptureFixture) -> None:
    main(["--impl", f"{PLUGINS}:bias_not_summed", *QUICK])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("FAIL ") and "] b1:" in x)
    assert "b1: shape (7, 4), expected (4,); hint: one per sample" in line and "nan" not in line


def test_more_failures_point_to_the_csv_only_when_there_is_one(tmp_path: Path, capsys) -> None:
    main(["--impl", f"{PLUGINS}:l2_half", *QUICK])
    out = capsys.readouterr().out
    assert "(--csv FILE writes every row)" in out and "see the CSV" not in out
    csv = tmp_path / "v.csv"
    main(["--impl", f"{PLUGINS}:l2_half", *QUICK, "--csv", str(csv)])
    assert f"(every row is in {csv})" in capsys.readouterr().out


def test_mismatch_summary_counts_errors_too(capsys: pytest.CaptureFixture) -> None:
    assert main(["--impl", f"{PLUGINS}:crashes", *QUICK]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("MISMATCH: ") and " errors in " in last


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--csv", "/proc/version/v.csv"], "--csv /proc/version/v.csv: folder /proc/version: /proc/version is not"),
        (["--csv", "/proc/v.csv"], "--csv /proc/v.csv: folder /proc: not writable"),
        (["--batch", "1000000000000"], "--batch 1000000000000 with size 4-4-4 needs at least"),
        (["--timeout", "0"], "--timeout must be > 0 seconds"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--variant", "huge"], "unknown variant 'huge'"),
    ],
)
def test_output_and_size_problems_are_refused_before_the_first_case(args, message, capsys) -> None:
    assert main(["--impl", "batched", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_case_that_reports_nothing_fails_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """Positive evidence: exit 0 needs a row from every planned case, whatever an executor does."""
    import verification.cli as cli
    from verification.runner import InProcess

    class Silent(InProcess):
        def run(self, case, matrix):
            return [] if case.n == 7 else super().run(case, matrix)

    monkeypatch.setattr(cli, "resolve_impls", lambda refs, *options: {"batched": Silent(impls.get("batched"))})
    args = ["--quiet", "--batch", "1,7", "--dtype", "float64", "--hidden", "tanh", "--csv", str(tmp_path / "v.csv")]
    assert main(args) == 1
    assert "INCOMPLETE: " in capsys.readouterr().out


def test_threads_are_recorded_in_every_row(tmp_path: Path) -> None:
    csv = tmp_path / "v.csv"
    assert main(["--impl", "batched", *QUICK, "--threads", "2", "--csv", str(csv)]) == 0
    assert set(pd.read_csv(csv)["threads"]) == {2}


def test_per_sample_cli(capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "ps.csv"
    assert main(["--per-sample", "--impl", "batched", "--impl", "module", *QUICK, "--csv", str(csv)]) == 0
    captured = capsys.readouterr()
    assert "unsupported: module gives no per-sample gradients (--per-sample)" in captured.err
    assert set(pd.read_csv(csv)["quantity"]) == {"W1", "b1", "W2", "b2"}
    assert main(["--per-sample", "--impl", "module", *QUICK]) == 2
    assert "none of the selected implementations gives per-sample gradients" in capsys.readouterr().err
    import verification.options as cli

    # 1e6 samples of 4-4-4 (the default matrix's largest size): the floors of the float64 implementation and
    # oracle steps and 3 more float64 batches; per-sample, N x |theta| values twice instead
    n = 1_000_000
    worst = max(cli.Matrix().specs(), key=lambda s: cli.case_bytes(s, n, 8, 4))
    batch, per_sample = cli.case_bytes(worst, n, 8, 4), cli.case_bytes(worst, n, 8, 4, per_sample=True)
    assert per_sample > batch >= 2 * worst.floor_bytes(n, 8)
    monkeypatch.setattr(cli, "available_bytes", lambda: (batch + per_sample) // 2)
    cli.check_memory(cli.Matrix(batches=(n,)))  # fits
    with pytest.raises(cli.UsageError, match=rf"needs at least {per_sample / 2**30:.3g} GiB"):
        cli.check_memory(cli.Matrix(batches=(n,), per_sample=True))
    monkeypatch.setattr(cli, "available_bytes", lambda: per_sample - 1)
    assert main(["--per-sample", "--impl", "batched", "--quiet", "--batch", str(n)]) == 2
    assert f"--batch {n} with size 4-4-4 needs at least {per_sample / 2**30:.3g} GiB" in capsys.readouterr().err


def test_a_narrowed_registry_run_does_not_replace_the_committed_csv(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import verification.options as cli

    monkeypatch.setattr(cli, "RESULTS", tmp_path)
    assert main(["--quiet", "--sizes", "5-4-2", "--loss", "cross_entropy", "--batch", "7", "--dtype", "float64"]) == 0
    assert not list(tmp_path.iterdir())
    assert cli.whole_default_run(cli.build_parser().parse_args(["--quiet", "--threads", "2"]))


def test_a_whole_default_run_is_a_new_named_run_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never overwritten: each whole default run is a new file named by time, device and host (issue 19), so a
    user's own run cannot replace the committed runs that README quotes."""
    import verification.options as cli

    monkeypatch.setattr(cli, "RESULTS", tmp_path)
    args = cli.build_parser().parse_args(["--quiet"])
    first, second = cli.csv_path(args, ("cpu",)), cli.csv_path(args, ("cpu",))
    assert first.parent == tmp_path and first.name.endswith(".csv.gz") and "_cpu_" in first.name
    bf16 = cli.csv_path(cli.build_parser().parse_args(["--precision", "bf16"]), ("cpu",))
    assert bf16.name.endswith("_bf16.csv.gz")
    per = cli.csv_path(cli.build_parser().parse_args(["--per-sample"]), ("cpu",))
    assert per.name.endswith("_per-sample.csv.gz")
    assert cli.run_of(first) == first.name.removesuffix(".csv.gz") and first.name[:17] == second.name[:17]


def test_the_command_line_s_prestarted_child_is_the_one_that_runs_the_plugin() -> None:
    """python -m verification starts the plug-in's child before importing torch (verification.child.prestart); the
    executor must take that child, not start a second one after the checker's imports (which doubled the wait)."""
    from verification import child
    from verification.isolate import Isolated

    child.prestart(["--impl", f"{PLUGINS}:correct"])
    pid = child._PRESTARTED[0].proc.pid
    ex = Isolated(f"{PLUGINS}:correct")
    try:
        assert ex._child is not None and ex._child.proc.pid == pid and not child._PRESTARTED
    finally:
        ex.close()
        child.release_all()


def test_a_crash_inside_a_library_names_the_user_s_line_too() -> None:
    """An error raised in NumPy's own Python code says where NumPy raised it and the user's line that called it."""
    import numpy as np

    from verification.runner import crash_line

    code = compile("def loss(X):\n    return np.sum(X, axis=5)\n", "/somewhere/hw.py", "exec")
    names: dict = {"np": np}
    exec(code, names)
    with pytest.raises(Exception) as info:
        names["loss"](np.zeros((2, 3)))
    line = crash_line(info.value)
    assert line.startswith("AxisError: axis 5 is out of bounds") and line.endswith(", from hw.py:2)"), line
