"""bf16/fp16 under autocast: really run in the low format, checked at the derived tolerance, refused with the reason
where the hardware, the implementation or the dtype cannot run it -- never silently run in fp32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import impl_params

import impls
from impls import precision
from impls.base import SGD
from impls.precision import UnsupportedPrecision, build, hardware_reason, precision_reason
from impls.spec import NetSpec, init_params, make_batch
from verification import __main__ as cli
from verification import options, oracle
from verification.compare import tolerance
from verification.runner import Case, Matrix, run_case

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tests" / "plugins"
SPEC = NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy", l2=0.1)
LOW = ["bf16", "fp16"]


@pytest.mark.parametrize(
    ("name", "precision"), impl_params(("precision",), lambda cls: not cls.compiles, precisions=LOW)
)
def test_low_precision_passes_its_tolerance_and_is_really_low(name: str, precision: str) -> None:
    """Every quantity inside the derived bf16/fp16 tolerance, and the gradient error far above the same case's
    fp32 error (> 30x; measured ~1e3-1e4x): proof the step ran in the low format, not silently in fp32."""
    prec = precision
    m = Matrix(precision=prec, allow_emulated=True)
    rows = run_case(Case(name, SPEC, 64, "float32", "cpu", precision=prec), impls.get(name), m)
    assert {r["status"] for r in rows} == {"ok"}, [r["problem"] for r in rows if r["status"] != "ok"]
    assert {r["precision"] for r in rows} == {prec}
    fp32 = run_case(Case(name, SPEC, 64, "float32", "cpu"), impls.get(name), Matrix())
    err = {r["quantity"]: r["max_rel_err"] for r in fp32}
    assert next(r for r in rows if r["quantity"] == "W1")["max_rel_err"] > 30 * err["W1"]


def test_autocast_wrapper_returns_the_parameters_dtype() -> None:
    p = init_params(SPEC)
    step = build(impls.get("batched"), SPEC, p, SGD(0.1, 0.9), "bf16", allow_emulated=True)
    loss, grads = step.step(*make_batch(SPEC, 7))
    assert loss.dtype == torch.float32 and {g.dtype for g in grads.values()} == {torch.float32}
    assert step.params()["W1"].dtype == torch.float32  # fp32 master weights


def test_low_precision_tolerance_is_derived_from_the_unit_roundoff() -> None:
    """2 (16 u_low + gamma_k(u_fp32)) kappa: bf16 u = 2^-8, fp16 u = 2^-11."""
    k = 5 + 4 + 3 + 64 + 8
    g32 = k * 2.0**-24 / (1 - k * 2.0**-24)
    assert tolerance(torch.float32, 5, 4, 3, 64, 1.0, "bf16") == pytest.approx(2 * (16 * 2.0**-8 + g32))
    assert tolerance(torch.float32, 5, 4, 3, 64, 3.0, "fp16") == pytest.approx(6 * (16 * 2.0**-11 + g32))


@pytest.mark.parametrize(
    ("cls_name", "prec", "dtype", "expected"),
    [
        ("numpy_flat", "bf16", torch.float32, "numpy_flat runs in fp32 only, not bf16"),
        ("batched", "bf16", torch.float64, "bf16 applies to float32 parameters, not float64"),
        ("batched", "int8", torch.float32, f"unknown precision 'int8'; choose from {', '.join(precision.PRECISIONS)}"),
        ("numpy_flat", "tf32", torch.float32, "numpy_flat runs in fp32 only, not tf32"),
        ("batched", "tf32", torch.float32, "tf32 is for cuda only, not cpu"),
    ],
)
def test_unsupported_precision_says_why(cls_name: str, prec: str, dtype: torch.dtype, expected: str) -> None:
    assert precision_reason(impls.get(cls_name), prec, "cpu", dtype, allow_emulated=True) == expected
    with pytest.raises(UnsupportedPrecision, match=expected.split(";")[0]):
        build(impls.get(cls_name), SPEC, init_params(SPEC, dtype=dtype), SGD(), prec, allow_emulated=True)


def test_hardware_support_comes_from_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert hardware_reason("bf16", "cpu") is None
    reason = hardware_reason("fp16", "cpu")
    assert reason == (
        "this CPU has no native fp16 (avx512_fp16 or amx_fp16; it has avx2, avx512_bf16, avx512f): "
        "torch would emulate it in software"
    )
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())
    assert "it has neither" in hardware_reason("bf16", "cpu")
    assert hardware_reason("fp32", "cpu") is None


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = cli.main(["--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_refuses_a_precision_the_hardware_lacks(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(options, "hardware_reason", lambda p, d: f"this CPU has no native {p}")
    code, out, err = _cli(["--precision", "bf16", "--impl", "batched"], capsys)
    assert code == 2 and not out
    assert err.strip() == (
        "error: --precision bf16: unsupported here (cpu: this CPU has no native bf16); "
        "--allow-emulated checks the arithmetic anyway"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--impl", "numpy_flat"], "--precision bf16: none of the selected implementations runs in bf16"),
        (["--impl", "batched", "--dtype", "float64"], "--precision bf16 runs float32 parameters in bf16"),
        (["--impl", "batched", "--per-sample"], "--per-sample checks fp32 per-sample gradients"),
    ],
)
def test_cli_bad_precision_requests_exit_2(argv: list[str], message: str, capsys) -> None:
    code, _, err = _cli(["--precision", "bf16", "--allow-emulated", *argv], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_runs_bf16_where_native_and_drops_what_cannot(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """With native bf16 (simulated), the supported implementation runs and the fp32-only one is named, one line."""
    monkeypatch.setattr(options, "hardware_reason", lambda p, d: None)
    monkeypatch.setattr(precision, "hardware_reason", lambda p, d: None)
    argv = ["--precision", "bf16", "--impl", "batched", "--impl", "numba", "--hidden", "relu", "--batch", "7"]
    code, out, err = _cli(argv, capsys)
    assert code == 0, out + err
    assert err.strip() == "unsupported: numba runs in fp32 only, not bf16"
    assert "computed in bf16 (" in out and "(emulated)" not in out


BUGS_CAUGHT_IN_BF16 = ["transposed", "wrong_tensor", "mean_vs_sum", "l2_doubled", "bias_not_summed"]


@pytest.mark.parametrize("bug", BUGS_CAUGHT_IN_BF16)
def test_planted_bugs_are_caught_in_bf16(bug: str, capsys) -> None:
    code, out, _ = _cli(
        ["--precision", "bf16", "--allow-emulated", "--impl", f"{PLUGINS / 'backprops.py'}:{bug}", "--batch", "7,64"],
        capsys,
    )
    assert code == 1 and "MISMATCH" in out


def test_correct_plugin_passes_in_bf16(capsys) -> None:
    code, out, _ = _cli(
        ["--precision", "bf16", "--allow-emulated", "--impl", f"{PLUGINS / 'backprops.py'}:correct", "--batch", "7"],
        capsys,
    )
    assert code == 0 and "computed in bf16 (emulated)" in out


def test_bf16_gradients_are_no_closer_than_bf16_allows() -> None:
    """Sanity of the premise: a float64 oracle with only its inputs rounded to bf16 already differs by ~u_bf16."""
    p = {k: v.numpy() for k, v in init_params(SPEC, dtype=torch.float64).items()}
    x, t = make_batch(SPEC, 64, dtype=torch.float64)
    _, g = oracle.loss_and_grads(p, x.numpy(), t.numpy(), SPEC)
    xr = x.to(torch.bfloat16).double().numpy()
    _, gr = oracle.loss_and_grads(p, xr, t.numpy(), SPEC)
    rel = abs(gr["W1"] - g["W1"]).max() / abs(g["W1"]).max()
    assert 2.0**-12 < rel < 16 * 2.0**-8


def test_a_plugin_that_avoids_the_low_precision_is_an_error_not_a_pass(capsys) -> None:
    code, out, _ = _cli(
        ["--precision", "bf16", "--allow-emulated", "--impl", f"{PLUGINS / 'backprops.py'}:fp32_despite_autocast",
         "--batch", "7", "--hidden", "tanh"],
        capsys,
    )  # fmt: skip
    assert code == 1 and "ran no bf16 operation under torch.autocast" in out and "MISMATCH" in out


def test_per_sample_gradients_are_refused_in_low_precision() -> None:
    step = build(impls.get("batched"), SPEC, init_params(SPEC), SGD(), "bf16", allow_emulated=True)
    with pytest.raises(UnsupportedPrecision, match="per-sample gradients are computed in fp32 only, not bf16"):
        step.per_sample_grads(*make_batch(SPEC, 7))


def test_both_dtypes_named_with_a_precision_exit_2(capsys) -> None:
    code, _, err = _cli(["--precision", "bf16", "--allow-emulated", "--dtype", "float32,float64"], capsys)
    assert code == 2 and "use --dtype float32" in err


@pytest.mark.parametrize(
    ("name", "precision"), impl_params(("precision",), lambda cls: not cls.compiles, precisions=LOW)
)
@pytest.mark.parametrize("loss", ["cross_entropy", "sse"])
def test_a_loss_summed_over_a_large_batch_does_not_overflow_the_low_format(name: str, precision: str, loss: str):
    """40000 samples: the summed cross-entropy (~1e5) and SSE (~5e5) exceed fp16's 65504. On the Xeon host the
    batched fp16 step returned loss = inf (CPU autocast sums in fp16; CUDA's in fp32). Reductions now run in fp32
    on every device: loss, gradients and trajectory within the derived low-precision tolerance."""
    spec = NetSpec(16, 8, 10, "sigmoid", "identity", loss)
    m = Matrix(precision=precision, allow_emulated=True, steps=2)
    rows = run_case(Case(name, spec, 40000, "float32", "cpu", precision=precision), impls.get(name), m)
    assert {r["status"] for r in rows} == {"ok"}, [(r["quantity"], r["problem"]) for r in rows if r["status"] != "ok"]


def test_train_runs_under_autocast_too() -> None:
    """train() of an autocast step runs the same low-precision steps as step() does, losses in float32."""
    p = init_params(SPEC)
    x, t = make_batch(SPEC, 16)
    a = build(impls.get("batched"), SPEC, p, SGD(0.1, 0.9), "bf16", allow_emulated=True)
    b = build(impls.get("batched"), SPEC, p, SGD(0.1, 0.9), "bf16", allow_emulated=True)
    fp32 = build(impls.get("batched"), SPEC, p, SGD(0.1, 0.9))
    losses = a.train(x, t, 3)
    assert losses.dtype == torch.float32
    torch.testing.assert_close(losses, torch.stack([b.step(x, t)[0] for _ in range(3)]), rtol=0, atol=0)
    assert not torch.equal(losses, fp32.train(x, t, 3)), "the steps ran in bf16, not fp32"


def test_tf32_is_a_precision_like_the_others(capsys) -> None:
    """One record says what tf32 is (CUDA only, inputs of the 4 products rounded to 2^-11): its tolerance is derived
    like bf16's, and on a CPU it is refused, never silently run in fp32 (no emulation makes TF32 exist there)."""
    p = precision.PRECISIONS["tf32"]
    k = 5 + 4 + 3 + 64 + 8
    g32 = k * 2.0**-24 / (1 - k * 2.0**-24)
    assert tolerance(torch.float32, 5, 4, 3, 64, 1.0, "tf32") == pytest.approx(2 * (8 * 2.0**-11 + g32))
    assert p.tf32 and p.reduced and p.devices == ("cuda",) and p.autocast is None
    code, out, err = _cli(["--precision", "tf32", "--impl", "batched", "--allow-emulated", "--device", "cpu"], capsys)
    assert code == 2 and not out and err.strip() == "error: --precision tf32: tf32 is for cuda only, not cpu"


def test_bf16_data_stores_the_batch_once_and_is_checked_at_its_own_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16-data: x and float targets converted to bf16 once per batch (the same unmodified batch reuses the copy; a
    changed one is converted again), the step under bf16 autocast; tolerance 2 (17 u_bf16 + gamma_k) kappa."""
    p = precision.PRECISIONS["bf16-data"]
    k = 5 + 4 + 3 + 64 + 8
    g32 = k * 2.0**-24 / (1 - k * 2.0**-24)
    assert tolerance(torch.float32, 5, 4, 3, 64, 1.0, "bf16-data") == pytest.approx(2 * (17 * 2.0**-8 + g32))
    assert p.data == torch.bfloat16 and p.autocast == torch.bfloat16
    spec = NetSpec(5, 4, 3, "tanh", "sigmoid", "sse")
    x, t = make_batch(spec, 16)
    step = build(impls.get("batched"), spec, init_params(spec), SGD(0.1), "bf16-data", allow_emulated=True)
    conversions = []
    real_to = torch.Tensor.to
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **kw: conversions.append(a) or real_to(self, *a, **kw))
    step.step(x, t)
    step.step(x, t)
    assert sum(1 for a in conversions if a[:1] == (torch.bfloat16,)) == 2  # x and t, once for both steps
    x.add_(0.5)
    step.step(x, t)
    assert sum(1 for a in conversions if a[:1] == (torch.bfloat16,)) == 4  # the changed batch converted again
    rows = run_case(Case("batched", spec, 64, "float32", "cpu", precision="bf16-data"), impls.get("batched"),
                    Matrix(precision="bf16-data", allow_emulated=True))  # fmt: skip
    assert {r["status"] for r in rows} == {"ok"}, [r["problem"] for r in rows if r["status"] != "ok"]


def test_tf32_is_read_through_the_api_that_never_raises() -> None:
    """A user who set TF32 through torch's fp32_precision API makes torch raise on reading the legacy allow_tf32 flag
    and torch.get_float32_matmul_precision(); the project reads only fp32_precision (impls.precision.tf32_matmuls), so
    its precision contexts, the triton launch's choice of tl.dot precision and the benchmark records keep working,
    and a context restores the user's setting. In a subprocess: the state is process-wide."""
    import subprocess
    import sys

    script = """
import torch
from impls.precision import PRECISIONS, matmul_precision_setting, strict_fp32, tf32_matmuls
m = torch.backends.cuda.matmul
m.fp32_precision = "tf32"  # the new API: torch then refuses the legacy reads
for legacy_read in (lambda: m.allow_tf32, torch.get_float32_matmul_precision):
    try:
        legacy_read()
        raise SystemExit("torch reads the legacy setting again: this test's premise is gone")
    except RuntimeError as exc:
        assert "mix of the legacy and new APIs" in str(exc), exc
assert tf32_matmuls() and matmul_precision_setting() == "fp32_precision=tf32"
with PRECISIONS["fp32"].context("cuda"):
    assert not tf32_matmuls()
assert tf32_matmuls()
with PRECISIONS["tf32"].context("cuda"):
    assert tf32_matmuls()
strict_fp32()
assert not tf32_matmuls()
print("ok")
"""
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr[-2000:]


def test_bf16_data_converts_again_when_a_batch_gets_new_storage() -> None:
    """The bf16 copy is reused for the same unmodified batch (impls.base.SameInputs); `x.data = y` gives x new
    values without counting as an in-place change, and must not leave the step on the old copy."""
    spec = NetSpec(5, 4, 3, "tanh", "identity", "sse")
    p = init_params(spec)
    impl = build(impls.get("batched"), spec, p, SGD(0.1, 0.0), "bf16-data", allow_emulated=True)
    ref = build(impls.get("batched"), spec, p, SGD(0.1, 0.0), "bf16-data", allow_emulated=True)
    x, t = make_batch(spec, 16)
    impl.step(x, t)
    ref.step(x.clone(), t)  # the same first step, on another tensor
    x.data = torch.randn(16, 5)
    assert torch.equal(impl.step(x, t)[0], ref.step(x.clone(), t)[0])  # the second on the new values
