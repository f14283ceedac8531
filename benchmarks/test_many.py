"""The many-nets engine: one step of K rumelhart nets (64 x 6-2-1) at once, time per net-step vs K.

Compare with K single-net steps (the named `rumelhart` rows of the same run): the engine's point is that a
1000-start study costs ~0.4-1 us per net-step instead of ~20-80 us. The compiled form is what the study uses.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import device_marks, measure_memory, record, sync, time_it
from benchmarks.memory import Setup
from benchmarks.workloads import RUMELHART
from impls.base import SGD
from impls.many import ManyNets
from impls.spec import init_params, make_batch

KS = {"quick": (1000,), "default": (1, 10, 100, 1000), "full": (1, 10, 100, 1000, 10000)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "k_nets" not in metafunc.fixturenames:
        return
    ks = KS[metafunc.config.getoption("--bench-set")]
    params = []
    for device, marks in device_marks(metafunc.config):
        for k in ks:
            for compiled in (False, True) if k >= 100 else (False,):
                tag = "compiled" if compiled else "eager"
                params.append(pytest.param(device, k, compiled, marks=marks, id=f"K{k}-{tag}-{device}"))
    metafunc.parametrize(("device", "k_nets", "compiled"), params)


def test_many_nets_step(benchmark, device: str, k_nets: int, compiled: bool) -> None:
    spec = RUMELHART
    per = [init_params(spec, seed=s, device=device) for s in range(min(k_nets, 16))]
    params = {n: torch.stack([per[i % len(per)][n] for i in range(k_nets)]) for n in spec.param_shapes()}
    setup = Setup(device)
    x, t = make_batch(spec, 64, device=device)
    nets = ManyNets(spec, params, SGD(lr=0.1, momentum=0.9), compile=compiled)
    nets.step(x, t)  # the compilation, when compiled
    sync(device)
    first = per[0]
    single = ManyNets(spec, {n: v.unsqueeze(0) for n, v in first.items()}, SGD(lr=0.1, momentum=0.9))
    loss_k, _ = ManyNets(spec, {n: v[:1] for n, v in params.items()}, SGD()).loss_and_grads(x, t)
    assert torch.allclose(loss_k, single.loss_and_grads(x, t)[0])  # net 0 of the stack = that net alone

    time_it(benchmark, lambda: nets.step(x, t), device, f"many nets ({device})")
    memory = measure_memory(nets, lambda: nets.step(x, t), device, setup, (nets, x, t))
    median = benchmark.stats.stats.median
    record(
        benchmark,
        memory,
        kind="many_nets",
        impl="many (compiled)" if compiled else "many",
        device=device,
        workload=f"rumelhart x K={k_nets}",
        single="rumelhart",  # the named workload of one such net
        K=k_nets,
        N=64,
        D=spec.D,
        H=spec.H,
        C=spec.C,
        precision="fp32",
        per_net_s=median / k_nets,
        floor_bytes=spec.floor_bytes(64, 4, nets=k_nets),
        flops=spec.flops_per_step(64) * k_nets,
        gflops=spec.flops_per_step(64) * k_nets / median / 1e9,
        threads=torch.get_num_threads(),
    )
