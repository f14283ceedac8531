"""One training step of every registered implementation x device x workload, checked against the oracle first."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import impls
from benchmarks.conftest import device_marks, first_call, record, time_it
from benchmarks.workloads import WORKLOADS, Workload, bytes_per_step, select
from impls.base import SGD
from impls.precision import LOW_DTYPES, build, precision_reason
from impls.spec import init_params, make_batch
from verification import oracle
from verification.compare import compare, tolerance

BY_NAME = {w.name: w for w in WORKLOADS}


def _impl_names(config: pytest.Config) -> list[str]:
    wanted = [s.strip() for s in config.getoption("--impls").split(",") if s.strip()]
    for name in wanted:
        try:
            impls.get(name)
        except impls.UnknownImplementation as exc:
            raise pytest.UsageError(f"--impls: {exc}") from None
    return wanted or impls.names()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Registry x workload x device (x precision); unsupported or capped combinations skip with the reason."""
    if "workload" not in metafunc.fixturenames:
        return
    config = metafunc.config
    cap = config.getoption("--loop-max-n")
    params = []
    for w in select(config.getoption("--bench-set")):
        for name in _impl_names(config):
            cls = impls.get(name)
            for dev_name, marks in device_marks(config):
                # low precisions where they matter: the large, GEMM-bound workloads
                precisions = ["fp32"] + ((["tf32"] if dev_name == "cuda" else []) + ["bf16", "fp16"] if w.large else [])
                for prec in precisions:
                    m = list(marks)
                    reason = cls.unsupported_reason(w.spec, dev_name, torch.float32)
                    if not reason and prec in LOW_DTYPES:
                        reason = precision_reason(cls, prec, dev_name, torch.float32)
                    if reason:
                        m.append(pytest.mark.skip(reason=f"{name}: {reason}"))
                    elif cls.per_sample and cap and w.n > cap:
                        m.append(
                            pytest.mark.skip(
                                reason=f"{name} is per-sample: capped at N={cap} (--loop-max-n 0 lifts it)"
                            )
                        )
                    params.append(
                        pytest.param(name, w.name, dev_name, prec, marks=m, id=f"{w.id}-{name}-{dev_name}-{prec}")
                    )
    # plain values only: every param serialises into the JSON (pytest-benchmark compare --group-by=param:workload)
    metafunc.parametrize(("impl_name", "workload", "device", "precision"), params)


@functools.lru_cache(maxsize=8)
def _oracle(workload: Workload) -> tuple[dict, dict]:
    """Float64 loss/gradients at the initial parameters, and each quantity's condition number."""
    spec = workload.spec
    p = {k: v.numpy() for k, v in init_params(spec, seed=0, dtype=torch.float64).items()}
    x, t = make_batch(spec, workload.n, seed=1, dtype=torch.float64)
    kappa: dict[str, float] = {}
    loss, grads = oracle.loss_and_grads(p, x.numpy(), t.numpy(), spec, kappa=kappa)
    return {"loss": loss, **grads}, kappa


def test_step(benchmark, impl_name: str, workload: str, device: str, precision: str) -> None:
    w = BY_NAME[workload]
    spec, n = w.spec, w.n
    cls = impls.get(impl_name)
    tf32 = precision == "tf32"
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        p = init_params(spec, seed=0, dtype=torch.float32, device=device)
        x, t = make_batch(spec, n, seed=1, dtype=torch.float32, device=device)  # inputs allocated before timing
        impl = build(cls, spec, p, SGD(lr=0.01, momentum=0.9), "fp32" if tf32 else precision)

        (loss, grads), first_call_s = first_call(lambda: impl.step(x, t), device)
        _check_against_oracle(w, loss, grads, precision)
        compilations = getattr(impl, "compilations", None)
        stance = torch.compiler.set_stance("fail_on_recompile") if cls.compiles else None
        time_it(benchmark, lambda: impl.step(x, t), device, f"{w.name} ({device})", during=stance)
        recompiles = (impl.compilations - compilations) if compilations is not None else 0
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous_tf32

    median = benchmark.stats.stats.median
    flops = spec.flops_per_step(n)
    record(
        benchmark,
        kind=w.kind,
        impl=impl_name,
        device=device,
        workload=w.name,
        precision=precision,
        large=w.large,
        N=n,
        D=spec.D,
        H=spec.H,
        C=spec.C,
        hidden=spec.hidden,
        output=spec.output,
        loss=spec.loss,
        dtype="float32",
        flops=flops,
        bytes=bytes_per_step(spec, n, 4),
        gflops=flops / median / 1e9,
        threads=torch.get_num_threads(),
        first_call_s=first_call_s,
        compile_s=max(first_call_s - median, 0.0) if cls.compiles else None,
        recompiles=recompiles,
    )
    assert recompiles == 0, f"{impl_name} recompiled {recompiles} time(s) during timing"


def _check_against_oracle(workload: Workload, loss, grads, precision: str) -> None:
    """A benchmark that checks its result cannot time a broken step (TF32 rows get the TF32 unit roundoff, bf16 and
    fp16 rows their derived low-precision tolerance)."""
    ref, kappa = _oracle(workload)
    spec = workload.spec
    low = precision if precision in LOW_DTYPES else "fp32"  # TF32: the fp32 bound, scaled below
    for q in ("loss", "W1", "b1", "W2", "b2"):
        tol = tolerance(torch.float32, spec.D, spec.H, spec.C, workload.n, kappa[q], low)
        if precision == "tf32":
            tol *= 2.0**13  # TF32 keeps 10 mantissa bits: unit roundoff 2^-11 instead of 2^-24
        got = loss if q == "loss" else grads[q]
        check = compare(q, got, np.asarray(ref[q]), tol)
        assert check.ok, f"{q}: rel err {check.max_rel_err:.3g} > tol {check.tol:.3g} ({check.problem})"
