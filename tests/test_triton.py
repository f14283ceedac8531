"""The "triton" implementation: the whole step in one kernel launch and K steps in one launch, checked against the
float64 oracle. Without a GPU, tests/conftest.py sets TRITON_INTERPRET=1 before triton is imported, so the same
kernel runs on CPU tensors through triton's interpreter; with a GPU it runs compiled (and benchmarks time it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import impls
from impls.base import SGD
from impls.spec import NetSpec, init_params, make_batch
from verification.runner import Case, Matrix, run_case

triton_fused = pytest.importorskip("impls.triton_fused")
if triton_fused.IMPORT_ERROR:
    pytest.skip(triton_fused.IMPORT_ERROR, allow_module_level=True)
DEVICE = "cpu" if triton_fused.INTERPRETED else "cuda"
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip("triton runs on CUDA here (TRITON_INTERPRET is not 1) and no GPU is available", allow_module_level=True)
CLS = impls.get("triton")
pytestmark = [pytest.mark.cuda] if DEVICE == "cuda" else []  # compiled: runs with the GPU checks (-m cuda)


def _ok(rows: list[dict]) -> None:
    bad = [(r["quantity"], r["status"], r["problem"]) for r in rows if r["status"] != "ok"]
    assert not bad, bad
    assert {r["quantity"] for r in rows} >= {"loss", "W1", "trajectory", "train"}


@pytest.mark.parametrize(
    "spec",
    [
        NetSpec(100, 20, 5, "tanh", "sigmoid", "sse", l2=0.1),  # D > BLOCK_D (64): two column blocks
        NetSpec(70, 3, 4, "relu", "identity", "cross_entropy", l2=0.0),
        NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse"),  # rumelhart's shape: H, C far below a tile
    ],
    ids=lambda s: s.label,
)
def test_row_and_column_blocks_and_padding_match_the_oracle(spec: NetSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """N = 70 > BLOCK_N (32): three row blocks, the last one partial; padded units, outputs and classes must
    contribute nothing to the loss, the gradients and the update (the tiled kernel, even for a net that would run
    in registers)."""
    monkeypatch.setattr(CLS, "TINY_TILE", 0)
    _ok(run_case(Case("triton", spec, 70, "float32", DEVICE), CLS, Matrix()))


TINY = [  # (spec, N): nets whose register tiles fit TINY_TILE
    (NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse"), 64),  # Rumelhart's mirror-symmetry net, all 64 patterns
    (NetSpec(4, 10, 3, "relu", "identity", "cross_entropy", l2=0.05), 5),  # the cs231n toy net
    (NetSpec(5, 3, 2, "tanh", "identity", "mse", l2=0.01), 15),  # nothing a power of two: every tile padded
]


def _tiny_ids(v: object) -> str:
    return v.label if isinstance(v, NetSpec) else f"N{v}"


@pytest.mark.parametrize(("spec", "n"), TINY, ids=_tiny_ids)
def test_tiny_nets_run_in_registers_and_match_the_oracle(spec: NetSpec, n: int) -> None:
    """Below TINY_TILE the step is _tiny_train_kernel: unpadded register tiles, every loss and hidden unit."""
    impl = CLS(spec, init_params(spec, device=DEVICE))
    impl.step(*make_batch(spec, n, device=DEVICE))
    assert impl.launched == {"_tiny_train_kernel": 1}
    _ok(run_case(Case("triton", spec, n, "float32", DEVICE), CLS, Matrix()))


@pytest.mark.parametrize(("spec", "n"), TINY, ids=_tiny_ids)
def test_the_tiny_kernel_follows_the_tiled_kernel(spec: NetSpec, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """30 steps in one launch of each one-program kernel, from the same state: the same trajectory up to fp32
    summation order (the tiled kernel pads every tile to tl.dot's 16 and sums in another order)."""
    p, (x, t) = init_params(spec, device=DEVICE), make_batch(spec, n, device=DEVICE)
    tiny, tiled = CLS(spec, p, SGD(0.1, 0.9)), CLS(spec, p, SGD(0.1, 0.9))
    tiny_losses = tiny.train(x, t, 30)
    monkeypatch.setattr(CLS, "TINY_TILE", 0)
    torch.testing.assert_close(tiny_losses, tiled.train(x, t, 30), rtol=1e-5, atol=1e-6)
    assert tiny.launched == {"_tiny_train_kernel": 1} and tiled.launched == {"_train_kernel": 1}
    for k, v in tiny.params().items():
        torch.testing.assert_close(v, tiled.params()[k], rtol=1e-5, atol=1e-6)


def test_the_tiny_kernel_keeps_the_step_in_registers() -> None:
    """Compiled for sm_90 here, without a GPU (tests/plugins/kernel_census.py): the rumelhart step loop of
    _tiny_train_kernel loads and stores nothing but the loss and has fewer barriers and under half the SASS
    instructions of the tiled kernel's step loop (whose inner loops also run twice per step) -- the reason it is
    the faster kernel, shown before a GPU times it."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "plugins" / "kernel_census.py")],
        cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    census = {row["kernel"]: row for row in map(json.loads, r.stdout.splitlines())}
    tiny = census["_tiny_train_kernel"]["loops"][-1]  # the outermost loop: the steps
    tiled = census["_train_kernel"]["loops"][-1]
    assert census["_tiny_train_kernel"]["warps"] == 1
    assert tiny["global"] == 1, tiny  # the loss of the step; the batch and the parameters stay in registers
    assert tiny["barriers"] < tiled["barriers"] and 2 * tiny["instructions"] < tiled["instructions"], (tiny, tiled)
    page = (Path(__file__).parents[1] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for quoted in (  # the counts the GPU-target table of docs/benchmarks.md quotes
        f"per step {tiny['instructions']} SASS instructions, {tiny['barriers']} barriers, {tiny['global']} store",
        f"a step loop of {tiled['instructions']} per warp in 4 warps, with {tiled['barriers']} barriers",
    ):
        assert quoted in page, f"docs/benchmarks.md does not quote the census: {quoted!r}"


@pytest.mark.parametrize(
    ("spec", "kernel"),
    [
        (NetSpec(9, 5, 3, "sigmoid", "identity", "cross_entropy", l2=0.01), "_train_kernel"),
        (NetSpec(6, 2, 1, "tanh", "sigmoid", "sse", l2=0.01), "_tiny_train_kernel"),
    ],
    ids=lambda v: v.label if isinstance(v, NetSpec) else v,
)
def test_k_steps_in_one_launch_equal_k_single_steps(spec: NetSpec, kernel: str) -> None:
    """The momentum and the parameters carry over between calls as within one launch."""
    p = init_params(spec, device=DEVICE)
    x, t = make_batch(spec, 40, device=DEVICE)
    one, many = CLS(spec, p, SGD(0.2, 0.9)), CLS(spec, p, SGD(0.2, 0.9))
    singles = torch.stack([one.step(x, t)[0].clone() for _ in range(6)])
    losses = many.train(x, t, 6)
    assert many.launched == {kernel: 1} and one.launched == {kernel: 6} and losses.shape == (6,)
    torch.testing.assert_close(losses, singles, rtol=1e-6, atol=1e-7)
    for k in ("W1", "b1", "W2", "b2"):
        torch.testing.assert_close(many.params()[k], one.params()[k], rtol=1e-6, atol=1e-7)


def test_bad_inputs_are_refused_before_the_kernel_reads_them() -> None:
    """The kernel reads without bounds checks: a label of C would read past the logits."""
    spec = NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy")
    impl = CLS(spec, init_params(spec, device=DEVICE))
    x, t = make_batch(spec, 7, device=DEVICE)
    t[0] = 3
    with pytest.raises(impls.InputError, match=r"class labels must lie in \[0, 3\)"):
        impl.step(x, t)


def test_interpreted_rows_are_never_timed() -> None:
    if not triton_fused.INTERPRETED:
        pytest.skip("compiled for a GPU here: its rows are timed")
    assert "interpreter" in CLS.timing_reason("cpu")


@pytest.mark.parametrize(
    ("spec", "n"),
    [
        (NetSpec(100, 20, 5, "tanh", "sigmoid", "sse", l2=0.1), 300),  # 5 row blocks over 4 programs, 2 column blocks
        (NetSpec(70, 3, 4, "relu", "identity", "cross_entropy", l2=0.01), 130),
        (NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse"), 64),
    ],
    ids=lambda v: v.label if isinstance(v, NetSpec) else f"N{v}",
)
def test_the_large_batch_path_matches_the_oracle(spec: NetSpec, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ROWS_FROM_N on, a step is three launches over many programs (rows, dW1 splits, update): every program
    count, stride and partial sum must add up to the oracle's step, its trajectory and train()."""
    monkeypatch.setattr(CLS, "ROWS_FROM_N", 1)
    monkeypatch.setattr(CLS, "TINY_TILE", 0)  # else the 6-2-1 net would run in registers, whatever its N
    _ok(run_case(Case("triton", spec, n, "float32", DEVICE), CLS, Matrix()))


def test_the_large_batch_path_is_three_launches_per_step_and_equals_the_one_program_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = NetSpec(40, 6, 3, "sigmoid", "identity", "cross_entropy", l2=0.01)
    p = init_params(spec, device=DEVICE)
    x, t = make_batch(spec, 200, device=DEVICE)
    one = CLS(spec, p, SGD(0.2, 0.9))
    single_program = torch.stack([one.step(x, t)[0].clone() for _ in range(3)])
    monkeypatch.setattr(CLS, "ROWS_FROM_N", 1)
    rows = CLS(spec, p, SGD(0.2, 0.9))
    losses = rows.train(x, t, 3)
    assert rows.launches == 9 and one.launches == 3
    torch.testing.assert_close(losses, single_program, rtol=1e-5, atol=1e-6)  # other summation orders: fp32 noise
    for k, v in rows.params().items():
        torch.testing.assert_close(v, one.params()[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows_from_n", [None, 1], ids=["one-program", "large-batch"])
@pytest.mark.parametrize(
    ("spec", "n"),
    [
        (NetSpec(100, 20, 5, "tanh", "sigmoid", "sse", l2=0.1), 130),
        (NetSpec(70, 3, 4, "relu", "identity", "cross_entropy"), 130),
        (NetSpec(6, 2, 1, "sigmoid", "sigmoid", "sse"), 64),  # one program: the tiny kernel
    ],
    ids=_tiny_ids,
)
def test_bf16_data_is_read_as_bf16_and_matches_the_oracle(
    spec: NetSpec, n: int, rows_from_n: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precision bf16-data: x (and float targets) arrive stored in bf16 and the kernels read them so, within the
    precision's derived tolerance (impls.precision). Interpreted, x is widened in registers (BF16_DOT is False:
    the interpreter's bf16 tl.dot is wrong); compiled on a GPU, x's products run on bf16 tensor cores (the tiny
    kernel widens x once in registers: its products are not tl.dot)."""
    if rows_from_n:
        monkeypatch.setattr(CLS, "ROWS_FROM_N", rows_from_n)
        monkeypatch.setattr(CLS, "TINY_TILE", 0)
    matrix = Matrix(precision="bf16-data", allow_emulated=True)
    _ok(run_case(Case("triton", spec, n, "float32", DEVICE, precision="bf16-data"), CLS, matrix))


def test_every_kernel_lowers_for_an_sm90_gpu_without_one() -> None:
    """The interpreter runs kernels as Python, so it accepts what a real compile refuses (a plain-bool global read
    by a kernel failed every bf16-data launch on a GPU); lowering each kernel configuration to Triton IR for sm_90
    runs that compile front end here (tests/plugins/lower_triton_kernels.py, in a process without the interpreter)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "plugins" / "lower_triton_kernels.py")],
        cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and "FAIL" not in r.stdout and r.stdout.count("ok ") == 21, r.stdout + r.stderr[-2000:]


@pytest.mark.parametrize("rows_from_n", [None, 64], ids=["one-program", "three-launches"])
def test_tf32_on_cuda_runs_x_products_on_tensor_cores_within_the_tf32_tolerance(
    rows_from_n: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Precision tf32 (CUDA only, like torch's TF32): under its context x's two products are launched with
    input_precision "tf32", and the step still matches the oracle within tf32's derived tolerance; outside it, and
    on CPU tensors (the interpreter), they stay "ieee"."""
    x = torch.zeros(2, 2, device=DEVICE)
    tf32 = impls.precision.PRECISIONS["tf32"]
    assert triton_fused._x_dot(x) == "ieee"
    with tf32.context("cuda"):
        assert triton_fused._x_dot(x) == ("tf32" if DEVICE == "cuda" else "ieee")
    if DEVICE != "cuda":
        pytest.skip("precision tf32 is CUDA only; the interpreter runs on CPU tensors")
    if rows_from_n:
        monkeypatch.setattr(CLS, "ROWS_FROM_N", rows_from_n)
    spec = NetSpec(100, 20, 5, "tanh", "sigmoid", "sse", l2=0.1)
    _ok(run_case(Case("triton", spec, 130, "float32", DEVICE, precision="tf32"), CLS, Matrix(precision="tf32")))
    p, (x, t) = init_params(spec, device=DEVICE), make_batch(spec, 130, device=DEVICE)
    grads = {}
    for name in ("fp32", "tf32"):  # within tolerance is not enough: an ignored X_DOT (all IEEE) would pass that
        with impls.precision.PRECISIONS[name].context("cuda"):
            grads[name] = CLS(spec, p).step(x, t)[1]["W1"].clone()
    assert not torch.equal(grads["fp32"], grads["tf32"]), "tf32 gave the IEEE products: TF32 did not run"


@pytest.mark.parametrize(("spec", "n"), [TINY[0], (NetSpec(40, 6, 3, "sigmoid", "identity", "cross_entropy"), 300)],
                         ids=_tiny_ids)  # fmt: skip
def test_cuda_graphs_replay_the_eager_launches(spec: NetSpec, n: int) -> None:
    """On CUDA a call seen twice is captured and replayed (GRAPHS): the same kernels on the same buffers, so the same
    bits as eager launches, step after step; a graph reads x where it lies, so an in-place change is seen; train's
    losses survive the next replay."""
    if DEVICE != "cuda":
        pytest.skip("CUDA graphs need a GPU; the interpreter runs on CPU tensors")
    p, (x, t) = init_params(spec, device=DEVICE), make_batch(spec, n, device=DEVICE)
    graphed, eager = CLS(spec, p, SGD(0.1, 0.9)), CLS(spec, p, SGD(0.1, 0.9))
    eager.GRAPHS = False
    for k in range(5):
        if k == 3:
            x.mul_(0.5)  # in place: the graph must read the new values
        a, b = graphed.step(x, t), eager.step(x, t)
        assert torch.equal(a[0], b[0]) and all(torch.equal(a[1][q], b[1][q]) for q in a[1]), k
    assert graphed.replays == 4 and not graphed.graph_failure and eager.replays == 0
    assert graphed.launched == eager.launched
    runs = [graphed.train(x, t, 7) for _ in range(3)]  # eager, captured and replayed, replayed
    assert graphed.replays == 6
    for k, losses in enumerate(runs):  # each call's losses kept: a later replay must not overwrite them
        assert torch.equal(losses, eager.train(x, t, 7)), k
    for q, v in graphed.params().items():
        assert torch.equal(v, eager.params()[q]), q
