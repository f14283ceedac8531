"""Per-sample gradients on epfl (784-50-10) across N: every implementation that gives them, against the floor.

The N x |theta| result must be written (float32), and x read: (bytes written + read) / the copy bandwidth measured
in the same run is the floor the reports compare with; and the speed-up over the per-sample loop at every N.
"""

from __future__ import annotations

import pytest
import torch

import impls
from benchmarks.conftest import device_marks, measure_memory, record, time_it
from benchmarks.memory import Setup
from benchmarks.workloads import EPFL
from impls.base import SGD
from impls.spec import init_params, make_batch
from verification import oracle
from verification.compare import tolerance
from verification.runner import compare_per_sample

NS = {"quick": (100,), "default": (1, 10, 100, 1000), "full": (1, 10, 100, 1000, 4096)}


def per_sample_bytes(n: int, itemsize: int = 4) -> int:
    """What a per-sample step must move at least: the N x |theta| gradients written, x read, the weights read."""
    theta = EPFL.H * (EPFL.D + 1) + EPFL.C * (EPFL.H + 1)
    return itemsize * (n * theta + n * EPFL.D + theta)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ps_impl" not in metafunc.fixturenames:
        return
    config = metafunc.config
    cap = config.getoption("--loop-max-n")
    names = [n for n in impls.names() if impls.get(n).gives_per_sample_grads]
    params = []
    for device, marks in device_marks(config):
        for n in NS[config.getoption("--bench-set")]:
            for name in names:
                m = list(marks)
                reason = impls.get(name).unsupported_reason(EPFL, device, torch.float32)
                if reason:
                    m.append(pytest.mark.skip(reason=f"{name}: {reason}"))
                elif name == "loop" and cap and n > cap:
                    m.append(pytest.mark.skip(reason=f"loop capped at N={cap} (--loop-max-n 0 lifts it)"))
                params.append(pytest.param(name, n, device, marks=m, id=f"epfl-N{n}-{name}-{device}"))
    metafunc.parametrize(("ps_impl", "n", "device"), params)


def test_per_sample_grads(benchmark, ps_impl: str, n: int, device: str) -> None:
    p = init_params(EPFL, seed=0, device=device)
    setup = Setup(device)
    x, t = make_batch(EPFL, n, seed=1, device=device)
    impl = impls.get(ps_impl)(EPFL, p, SGD(lr=0.01))
    got = impl.per_sample_grads(x, t)  # a timed implementation must first be right, sample by sample
    kappa: dict[str, float] = {}
    p64 = {k: v.cpu().double().numpy() for k, v in p.items()}
    ref = oracle.per_sample_grads(p64, x.cpu().double().numpy(), t.cpu().double().numpy(), EPFL, kappa)
    for k in ref:
        tol = tolerance(torch.float32, EPFL.D, EPFL.H, EPFL.C, 1, kappa[k])
        check = compare_per_sample(k, got[k].cpu(), ref[k], tol, torch.float32)
        assert check.ok, f"{ps_impl} {k}: {check.problem}"
    del got  # the timed calls' results are dropped as they come; the first one's too, before memory is read
    time_it(benchmark, lambda: impl.per_sample_grads(x, t), device, f"per-sample epfl ({device})")
    memory = measure_memory(impl, lambda: impl.per_sample_grads(x, t), device, setup, (impl, x, t))
    median = benchmark.stats.stats.median
    record(
        benchmark,
        memory,
        kind="per_sample",
        impl=ps_impl,
        device=device,
        workload=f"epfl-per-sample-{n}",
        N=n,
        D=EPFL.D,
        H=EPFL.H,
        C=EPFL.C,
        bytes=per_sample_bytes(n),
        floor_bytes=EPFL.floor_bytes(n, 4, momentum=False, per_sample=True),
        flops=EPFL.flops_per_step(n),
        gflops=EPFL.flops_per_step(n) / median / 1e9,
        threads=torch.get_num_threads(),
    )
