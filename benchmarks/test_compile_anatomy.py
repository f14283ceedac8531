"""Why compiling an nn.Module step can lose to eager on a tiny net, while compiling the manual step wins.

Four variants of one rumelhart step (64 x 6-2-1), timed side by side; extra_info records how many graphs
dynamo made and why it broke the step (torch._dynamo.explain), and the first-call compile time.
"""

from __future__ import annotations

import time

import pytest
import torch
import torch._dynamo

import impls
from benchmarks.conftest import devices, record, sync, time_it
from benchmarks.workloads import RUMELHART
from impls.base import SGD
from impls.compiled import functional_step
from impls.module import module_loss
from impls.spec import PARAM_NAMES, init_params, make_batch

VARIANTS = ("module-eager", "module-compiled", "manual-eager", "manual-compiled")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        skip = metafunc.config.getoption("--bench-set") == "quick"
        marks = [pytest.mark.skip(reason="compile anatomy runs in the default and full sets")] if skip else []
        metafunc.parametrize("variant", [pytest.param(v, marks=marks) for v in VARIANTS])
        metafunc.parametrize("device", devices(metafunc.config))


def _module_step(spec, p):
    """zero_grad, forward, loss, backward, optimizer.step: what `torch.compile(train_step)` usually wraps."""
    impl = impls.get("module")(spec, p, SGD(lr=0.01, momentum=0.9))

    def step(x, t):
        impl.opt.zero_grad(set_to_none=True)
        loss = module_loss(spec, impl.net, impl.net(x), t)
        loss.backward()
        impl.opt.step()
        return loss.detach()

    return step


def test_compile_anatomy(benchmark, variant: str, device: str) -> None:
    spec = RUMELHART
    p = init_params(spec, device=device)
    x, t = make_batch(spec, 64, device=device)
    torch._dynamo.reset()
    info: dict = {}
    if variant.startswith("module"):
        fn = _module_step(spec, p)
        if variant == "module-compiled":
            explained = torch._dynamo.explain(_module_step(spec, p))(x, t)
            info.update(
                graphs=explained.graph_count,
                graph_breaks=explained.graph_break_count,
                break_reasons=tuple(sorted({str(b.reason).splitlines()[0][:120] for b in explained.break_reasons})),
            )
            torch._dynamo.reset()
            fn = torch.compile(fn)
    else:
        impl = impls.get("compiled" if variant == "manual-compiled" else "batched")(spec, p, SGD(0.01, 0.9))
        fn = impl.step
        if variant == "manual-compiled":
            ps = [impl.params()[k] for k in PARAM_NAMES]
            vs = [torch.zeros_like(v) for v in ps]
            explained = torch._dynamo.explain(functional_step(spec, 0.01, 0.9))(ps, vs, x, t)
            info.update(graphs=explained.graph_count, graph_breaks=explained.graph_break_count, break_reasons=())
            torch._dynamo.reset()
    start = time.perf_counter()
    fn(x, t)
    sync(device)
    first = time.perf_counter() - start
    time_it(benchmark, lambda: fn(x, t), device, f"compile anatomy: rumelhart ({device})")
    median = benchmark.stats.stats.median
    record(
        benchmark,
        kind="anatomy",
        impl=variant,
        device=device,
        workload="rumelhart",
        N=64,
        first_call_s=first,
        compile_s=max(first - median, 0.0) if "compiled" in variant else None,
        threads=torch.get_num_threads(),
        **info,
    )
