"""The roofline's ceilings, measured on each device in the same run: GEMM peak (fp32, and bf16/fp16 where the
hardware has them), the GEMM ceilings of the step's own two big products, and memory bandwidth."""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import device_marks, devices, record, time_it
from benchmarks.workloads import MNIST
from impls.numpy_flat import padded_hidden
from impls.precision import PRECISIONS, precision_of
from verification.compare import UNIT_ROUNDOFF


def _gemm_shapes(device: str, bench_set: str) -> list[tuple[str, int, int, int]]:
    """(name, M, K, N): a large square matmul, and the step's two big products alone (forward X.W1^T and dW1 =
    da1^T X) at each large batch size of the set: the ceiling the BLAS reaches on exactly the step's shapes."""
    square = 8192 if device == "cuda" else (1024 if bench_set == "quick" else 2048)
    shapes = [(f"square-{square}", square, square, square)]
    D = MNIST.D
    for n in (8192,) if bench_set == "quick" else (8192, 60000):
        for H in sorted({MNIST.H, padded_hidden(MNIST.H)}):  # as written, and padded as numpy_flat runs it
            shapes += [(f"net-forward-{n}x{D}x{H}", n, D, H), (f"net-dW1-{H}x{n}x{D}", H, n, D)]
    return shapes


def product_of(name: str, M: int, K: int, N: int) -> dict[str, object]:
    """The record fields that say what a GEMM row measured: the square peak, or one of the step's two big
    products with its batch size N, inputs D and hidden width H (the reports match rows on these, not on names)."""
    if name.startswith("square-"):
        return {"product": "square"}
    if name.startswith("net-forward-"):  # (N, D) @ (D, H)
        return {"product": "forward", "N": M, "D": K, "H": N}
    return {"product": "dW1", "N": K, "D": N, "H": M}  # (H, N) @ (N, D)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gemm" in metafunc.fixturenames:
        params = []
        for name, marks in device_marks(metafunc.config):
            shapes = _gemm_shapes(name, metafunc.config.getoption("--bench-set"))
            for p in PRECISIONS.values():  # each precision's own peak, where the device has it
                if name not in p.devices:
                    continue
                prec, reason = p.name, p.hardware_reason(name)
                m = [*marks, *([pytest.mark.skip(reason=f"{prec} peak: {reason}")] if reason else [])]
                for s in shapes if not p.reduced else shapes[:1]:  # reduced precisions: the square peak only
                    params.append(pytest.param(name, s, prec, marks=m, id=f"{name}-{s[0]}-{prec}"))
        metafunc.parametrize(("device", "gemm", "precision"), params)
    elif "device" in metafunc.fixturenames:
        metafunc.parametrize("device", devices(metafunc.config))


def test_gemm_peak(benchmark, device: str, gemm: tuple[str, int, int, int], precision: str) -> None:
    """C = A @ B in `precision` (its dtype, in its context: TF32 for tf32), output preallocated: achieved GFLOP/s =
    2 M K N / median."""
    name, M, K, N = gemm
    p = precision_of(precision)
    dtype = p.autocast or torch.float32
    a = torch.randn(M, K, device=device, dtype=dtype)
    b = torch.randn(K, N, device=device, dtype=dtype)
    out = torch.empty(M, N, device=device, dtype=dtype)
    with p.context(device):
        time_it(benchmark, lambda: torch.mm(a, b, out=out), device, f"peak ({device})", warmup=1)
    ref = a[:64].double() @ b.double()
    # fp32 accumulation, inputs/result rounded to the format: |err| <= 2u |ref| + gamma_K sum|a b| (<= 1e-3 sqrt K)
    u = p.unit_roundoff or UNIT_ROUNDOFF[torch.float32]
    assert torch.allclose(out[:64].double(), ref, rtol=2 * u + 1e-3, atol=1e-3 * K**0.5)
    median = benchmark.stats.stats.median
    flops = 2 * M * K * N
    record(
        benchmark,
        kind="peak_gemm",
        device=device,
        workload=name,
        precision=precision,
        reduced=p.reduced,
        impl="torch.mm",
        **product_of(name, M, K, N),
        flops=flops,
        gflops=flops / median / 1e9,
        threads=torch.get_num_threads(),
    )


def test_memory_bandwidth(benchmark, device: str) -> None:
    """dst.copy_(src) over a buffer far larger than the caches: bandwidth = bytes read + written / median."""
    numel = (1 << 28) if device == "cuda" else (1 << 26)  # 1 GiB on GPU, 256 MiB on CPU
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    time_it(benchmark, lambda: dst.copy_(src), device, f"peak ({device})", warmup=1)
    assert torch.equal(dst[:1000], src[:1000]) and torch.equal(dst[-1000:], src[-1000:])
    median = benchmark.stats.stats.median
    moved = 2 * numel * 4
    record(
        benchmark,
        kind="peak_bandwidth",
        device=device,
        workload=f"copy-{numel * 4 >> 20}MiB",
        impl="Tensor.copy_",
        bytes=moved,
        gbs=moved / median / 1e9,
        threads=torch.get_num_threads(),
    )
