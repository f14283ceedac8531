"""One training step of every registered implementation x device x workload, checked against the oracle first."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import impls
from benchmarks.conftest import device_marks, first_call, measure_memory, record, time_it
from benchmarks.memory import Setup
from benchmarks.workloads import WORKLOADS, Workload, select
from impls.base import SGD
from impls.precision import PRECISIONS, build, precision_reason
from impls.spec import init_params, make_batch
from verification import oracle
from verification.compare import compare, tolerance, trajectory_tolerance

BY_NAME = {w.name: w for w in WORKLOADS}


def _impl_names(config: pytest.Config) -> list[str]:
    wanted = [s.strip() for s in config.getoption("--impls").split(",") if s.strip()]
    for name in wanted:
        try:
            impls.get(name)
        except impls.UnknownImplementation as exc:
            raise pytest.UsageError(f"--impls: {exc}") from None
    return wanted or impls.names()


TRAIN_STEPS = 100  # steps per timed train() call
#: where the per-call cost is a visible part of a step, per benchmark set
TRAIN_WORKLOADS = {"quick": ("rumelhart",), "default": ("rumelhart", "mnist-64", "epfl")}
TRAIN_WORKLOADS["full"] = TRAIN_WORKLOADS["default"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Registry x workload x device (x precision); unsupported or capped combinations skip with the reason."""
    if "train_workload" in metafunc.fixturenames:
        _train_params(metafunc)
        return
    if "workload" not in metafunc.fixturenames:
        return
    config = metafunc.config
    cap = config.getoption("--loop-max-n")
    params = []
    for w in select(config.getoption("--bench-set")):
        for name in _impl_names(config):
            cls = impls.get(name)
            for dev_name, marks in device_marks(config):
                # reduced precisions where they matter: the large, GEMM-bound workloads
                precisions = [
                    p.name for p in PRECISIONS.values() if (w.large or not p.reduced) and dev_name in p.devices
                ]
                for prec in precisions:
                    m = list(marks)
                    reason = cls.unsupported_reason(w.spec, dev_name, torch.float32) or cls.timing_reason(dev_name)
                    if not reason:
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


def _train_params(metafunc: pytest.Metafunc) -> None:
    """Registry x small named workload x device for the train() rows (fp32); per-sample implementations skip."""
    params = []
    for w in (BY_NAME[n] for n in TRAIN_WORKLOADS[metafunc.config.getoption("--bench-set")]):
        for name in _impl_names(metafunc.config):
            cls = impls.get(name)
            for dev_name, marks in device_marks(metafunc.config):
                m = list(marks)
                reason = cls.unsupported_reason(w.spec, dev_name, torch.float32) or cls.timing_reason(dev_name)
                if not reason and cls.per_sample:
                    reason = "per-sample: its train() is its step loop, timed in the step rows"
                if reason:
                    m.append(pytest.mark.skip(reason=f"{name}: {reason}"))
                params.append(pytest.param(name, w.name, dev_name, marks=m, id=f"{w.id}-{name}-{dev_name}-train"))
    metafunc.parametrize(("impl_name", "train_workload", "device"), params)


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
    p = init_params(spec, seed=0, dtype=torch.float32, device=device)
    setup = Setup(device)  # resident bytes: what the inputs, the implementation and its first calls hold from here
    x, t = make_batch(spec, n, seed=1, dtype=torch.float32, device=device)  # inputs allocated before timing
    impl = build(cls, spec, p, SGD(lr=0.01, momentum=0.9), precision)  # steps inside the precision's context
    (loss, grads), first_call_s = first_call(lambda: impl.step(x, t), device)
    _check_against_oracle(w, loss, grads, precision)
    compilations = getattr(impl, "compilations", None)
    stance = torch.compiler.set_stance("fail_on_recompile") if cls.compiles else None
    time_it(benchmark, lambda: impl.step(x, t), device, f"{w.name} ({device})", during=stance)
    recompiles = (impl.compilations - compilations) if compilations is not None else 0
    memory = measure_memory(impl, lambda: impl.step(x, t), device, setup, (impl, x, t))

    median = benchmark.stats.stats.median
    flops = spec.flops_per_step(n)
    record(
        benchmark,
        memory,
        kind=w.kind,
        impl=impl_name,
        device=device,
        workload=w.name,
        precision=precision,
        reduced=PRECISIONS[precision].reduced,
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
        bytes=spec.bytes_per_step(n, 4),
        floor_bytes=spec.floor_bytes(n, 4),
        gflops=flops / median / 1e9,
        threads=torch.get_num_threads(),
        first_call_s=first_call_s,
        compile_s=max(first_call_s - median, 0.0) if cls.compiles else None,
        recompiles=recompiles,
    )
    assert recompiles == 0, f"{impl_name} recompiled {recompiles} time(s) during timing"


def _check_against_oracle(workload: Workload, loss, grads, precision: str) -> None:
    """A benchmark that checks its result cannot time a broken step (each precision at its derived tolerance)."""
    ref, kappa = _oracle(workload)
    spec = workload.spec
    for q in ("loss", "W1", "b1", "W2", "b2"):
        tol = tolerance(torch.float32, spec.D, spec.H, spec.C, workload.n, kappa[q], precision)
        got = loss if q == "loss" else grads[q]
        check = compare(q, got, np.asarray(ref[q]), tol)
        assert check.ok, f"{q}: rel err {check.max_rel_err:.3g} > tol {check.tol:.3g} ({check.problem})"


def test_train(benchmark, impl_name: str, train_workload: str, device: str) -> None:
    """train(x, t, 100): the median is per call; per step = median / 100, next to the step rows of the same run.
    Checked first: the losses of a 3-step call against the oracle's three steps."""
    w = BY_NAME[train_workload]
    spec, n = w.spec, w.n
    p = init_params(spec, seed=0, device=device)
    setup = Setup(device)
    impl = impls.get(impl_name)(spec, p, SGD(lr=0.01, momentum=0.9))
    x, t = make_batch(spec, n, seed=1, device=device)
    (losses,), first_call_s = first_call(lambda: (impl.train(x, t, 3),), device)
    _check_train_losses(w, losses)
    time_it(benchmark, lambda: impl.train(x, t, TRAIN_STEPS), device, f"{w.name} ({device}, train)")
    memory = measure_memory(impl, lambda: impl.train(x, t, TRAIN_STEPS), device, setup, (impl, x, t), TRAIN_STEPS)
    median = benchmark.stats.stats.median
    flops = spec.flops_per_step(n) * TRAIN_STEPS
    record(
        benchmark,
        memory,
        kind="train",
        impl=impl_name,
        device=device,
        workload=w.name,
        N=n,
        D=spec.D,
        H=spec.H,
        C=spec.C,
        steps=TRAIN_STEPS,
        dtype="float32",
        flops=flops,
        floor_bytes=spec.floor_bytes(n, 4) + TRAIN_STEPS * 4,  # and the (steps,) losses it returns
        gflops=flops / median / 1e9,
        threads=torch.get_num_threads(),
        first_call_s=first_call_s,
    )


def _check_train_losses(workload: Workload, losses) -> None:
    """The three losses of train(x, t, 3) against the oracle's trajectory on that batch, at the trajectory bound."""
    spec = workload.spec
    p = {k: v.numpy() for k, v in init_params(spec, seed=0, dtype=torch.float64).items()}
    x, t = make_batch(spec, workload.n, seed=1, dtype=torch.float64)
    ref, _ = oracle.sgd_trajectory(p, [(x.numpy(), t.numpy())] * 3, spec, 0.01, 0.9)
    _, kappa = _oracle(workload)
    step_tol = max(tolerance(torch.float32, spec.D, spec.H, spec.C, workload.n, kappa[q]) for q in kappa)
    check = compare("train losses", losses, np.asarray(ref), trajectory_tolerance(torch.float32, step_tol, 3))
    assert check.ok, f"train losses: rel err {check.max_rel_err:.3g} > tol {check.tol:.3g} ({check.problem})"
