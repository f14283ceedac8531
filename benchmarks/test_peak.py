"""The roofline's two ceilings, measured on each device in the same run: fp32 GEMM peak and memory bandwidth."""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import device_marks, devices, record, time_it
from benchmarks.workloads import MNIST


def _gemm_shapes(device: str, bench_set: str) -> list[tuple[str, int, int, int]]:
    """(name, M, K, N): a large square matmul, and the net's largest matmul shapes (forward X.W1^T and dW1)."""
    square = 8192 if device == "cuda" else (1024 if bench_set == "quick" else 2048)
    n = 8192 if bench_set == "quick" else 60000
    return [
        (f"square-{square}", square, square, square),
        (f"net-forward-{n}x{MNIST.D}x{MNIST.H}", n, MNIST.D, MNIST.H),
        (f"net-dW1-{MNIST.H}x{n}x{MNIST.D}", MNIST.H, n, MNIST.D),
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gemm" in metafunc.fixturenames:
        params = []
        for name, marks in device_marks(metafunc.config):
            shapes = _gemm_shapes(name, metafunc.config.getoption("--bench-set"))
            params += [pytest.param(name, s, marks=marks, id=f"{name}-{s[0]}") for s in shapes]
        metafunc.parametrize(("device", "gemm"), params)
    elif "device" in metafunc.fixturenames:
        metafunc.parametrize("device", devices(metafunc.config))


def test_gemm_peak(benchmark, device: str, gemm: tuple[str, int, int, int]) -> None:
    """C = A @ B in fp32 (TF32 off), output preallocated: achieved GFLOP/s = 2 M K N / median."""
    name, M, K, N = gemm
    a = torch.randn(M, K, device=device)
    b = torch.randn(K, N, device=device)
    out = torch.empty(M, N, device=device)
    time_it(benchmark, lambda: torch.mm(a, b, out=out), device, f"peak ({device})", warmup=1)
    ref = (a[:64].double() @ b.double()).float()
    assert torch.allclose(out[:64], ref, rtol=1e-3, atol=1e-3 * K**0.5)
    median = benchmark.stats.stats.median
    flops = 2 * M * K * N
    record(
        benchmark,
        kind="peak_gemm",
        device=device,
        workload=name,
        impl="torch.mm",
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
