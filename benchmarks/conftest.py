"""Benchmark options, devices, machine_info, and the timing discipline (threads fixed, CUDA synchronised)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import pytest
import torch

import impls
from benchmarks.memory import Reading, Setup, measure, sync, xla_plan_bytes
from benchmarks.workloads import MAX_TIME_S, SETS
from impls.base import CompileError
from impls.precision import PRECISIONS, matmul_precision_setting, strict_fp32, tf32_matmuls
from reports.provenance import commit_details, cpu_model, project_commit
from reports.record import CONTENDED_SPARE_CORES, SCHEMA, UNSTABLE_IQR, BenchRecord

WARMUP = 3  # untimed calls before every timed row (after any first call that compiles)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("twolayer")
    g.addoption(
        "--bench-set",
        default=os.environ.get("TWOLAYER_BENCH_SET", "default"),
        choices=SETS,
        help="workload set: quick (CI, ~1 min), default (< 5 min on 2 cores), full (every sweep point)",
    )
    g.addoption(
        "--threads",
        type=int,
        default=int(os.environ["TWOLAYER_THREADS"]) if os.environ.get("TWOLAYER_THREADS") else None,
        help="CPU threads for torch, >= 1 (default: torch's own choice, recorded in machine_info)",
    )
    g.addoption(
        "--loop-max-n",
        type=int,
        default=int(os.environ.get("TWOLAYER_LOOP_MAX_N", "1024")),
        help="largest batch for per-sample implementations, >= 0 (default 1024; 0 = no cap)",
    )
    g.addoption(
        "--bench-device",
        default=os.environ.get("TWOLAYER_BENCH_DEVICE", "cpu,cuda"),
        help="devices to benchmark, comma-separated: cpu and/or cuda (default cpu,cuda; cuda skips with the "
        "reason when absent)",
    )
    g.addoption(
        "--impls",
        default=os.environ.get("TWOLAYER_IMPLS", ""),
        help="only these registered implementations, comma-separated (default: all registered)",
    )


MEDIAN_COLUMNS = ["median", "iqr", "mean", "min", "max", "rounds"]


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--threads")
    if threads is not None:
        if threads < 1:
            raise pytest.UsageError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    if config.getoption("--loop-max-n") < 0:
        raise pytest.UsageError(f"--loop-max-n must be >= 0 (0 = no cap), got {config.getoption('--loop-max-n')}")
    # the reports rank by the median; so does the terminal table unless the user asks otherwise
    given = " ".join(str(a) for a in config.invocation_params.args)
    if hasattr(config.option, "benchmark_sort") and "--benchmark-sort" not in given:
        config.option.benchmark_sort = "median"
    if hasattr(config.option, "benchmark_columns") and "--benchmark-columns" not in given:
        config.option.benchmark_columns = MEDIAN_COLUMNS
    if hasattr(config.option, "benchmark_max_time") and "--benchmark-max-time" not in given:
        config.option.benchmark_max_time = str(MAX_TIME_S[config.getoption("--bench-set")])
    project_commit()  # cached now: the run records the code at its start, even if the tree changes during it
    strict_fp32()  # fp32 rows are true fp32; tf32 rows enter TF32 in their precision's context


def _blas() -> str:
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=(\w+)", cfg)
    return m.group(1) if m else ("mkl" if torch.backends.mkl.is_available() else "unknown")


def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: dict) -> None:
    """pytest-benchmark reads the repository enclosing the working directory; record this project's own."""
    commit_info.clear()
    commit_info.update(commit_details())


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Versions and hardware that a number depends on, stored in every saved run."""
    info = {
        "schema": SCHEMA,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "blas": _blas(),
        "float32_matmul_precision": matmul_precision_setting(),
        "allow_tf32": tf32_matmuls(),
        "bench_set": config.getoption("--bench-set"),
        "commit": project_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        # per device and low precision: "native", or why its rows were skipped (the report says so)
        "low_precision": {
            d: {p.name: p.hardware_reason(d) or "native" for p in PRECISIONS.values() if p.reduced and d in p.devices}
            for d in ("cpu", "cuda")
        },
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu_name=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_capability=f"{props.major}.{props.minor}",
        )
    machine_info["twolayer"] = info


def pytest_report_header(config: pytest.Config) -> list[str]:
    """At the start of a run: how busy the machine is (0.3 s probe), so a contended run is known before it runs."""
    with ForeignLoad() as load:
        time.sleep(0.3)
    threads, cores = torch.get_num_threads(), len(usable_cpus())
    if load.cores is None:
        return ["twolayer: contention not measurable here (no /proc/stat)"]
    line = f"twolayer: other processes keep {load.cores:.1f} cores busy; torch uses {threads} threads of {cores} cores"
    if contended(load.cores, threads):
        line += " -- WARNING: CPU rows will be contended (slow and marked ‡); use a quiet machine or fewer --threads"
    return [line]


def device_marks(config: pytest.Config) -> list[tuple[str, list]]:
    """Requested devices with their marks; cuda gets a skip with the reason when torch sees no GPU."""
    out = []
    for d in config.getoption("--bench-device").split(","):
        d = d.strip()
        if d not in ("cpu", "cuda"):
            raise pytest.UsageError(f"--bench-device: unknown device {d!r}; choose cpu and/or cuda")
        absent = d == "cuda" and not torch.cuda.is_available()
        out.append(
            (d, [pytest.mark.skip(reason="CUDA not available: torch.cuda.is_available() is False")] if absent else [])
        )
    return out


def devices(config: pytest.Config) -> list:
    """Requested devices as pytest params (for a plain parametrize over the device)."""
    return [pytest.param(d, marks=marks, id=d) for d, marks in device_marks(config)]


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (taskset, cgroup cpusets), else all of them."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _busy_seconds() -> float | None:
    """CPU seconds the CPUs this process may use have spent busy since boot (Linux /proc/stat, one line per CPU),
    or None where it cannot be read."""
    mine, busy, seen = usable_cpus(), 0, False
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                name, *values = line.split()
                if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in mine:
                    continue
                user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in values[:8])
                busy += user + nice + system + irq + softirq + steal
                seen = True
    except (OSError, ValueError):
        return None
    return busy / os.sysconf("SC_CLK_TCK") if seen else None


class ForeignLoad:
    """How many cores other processes kept busy while the block ran: all cores' busy time (/proc/stat) minus this
    process's own CPU time (every thread) and its reaped children's (a timed command and what it started), over the
    wall time. None where /proc/stat is missing. The cause of the
    H200 host's many-nets pathology (208 ms instead of 0.2 ms per step): another job on the cores that torch's
    16 threads expected to have, so each parallel op waited for a descheduled thread."""

    def __enter__(self) -> ForeignLoad:
        self.cores: float | None = None
        self._start = (time.monotonic(), _busy_seconds(), sum(os.times()[:4]))
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self._start
        busy1 = _busy_seconds()
        wall = time.monotonic() - wall0
        if busy0 is None or busy1 is None or wall <= 0:
            return
        own = sum(os.times()[:4]) - own0  # this process's and its reaped children's (a timed command's)
        self.cores = round(max(0.0, ((busy1 - busy0) - own) / wall), 3)


def contended(foreign_cores: float | None, threads: int, cores: int | None = None) -> bool | None:
    """True when other processes used more cores than torch's threads left free (by CONTENDED_SPARE_CORES)."""
    if foreign_cores is None:
        return None
    free = max(0, (cores or len(usable_cpus())) - threads)
    return foreign_cores > free + CONTENDED_SPARE_CORES


def time_it(
    benchmark,
    fn: Callable[[], object],
    device: str,
    group: str,
    warmup: int = WARMUP,
    during: AbstractContextManager | None = None,
) -> None:
    """The one timing discipline: `warmup` untimed calls, then pytest-benchmark times fn() with the device
    synchronised inside the timed callable (a CUDA step is timed whole), optionally inside a context (a
    torch.compile stance)."""
    for _ in range(warmup):
        fn()
    sync(device)

    def run() -> None:
        fn()
        sync(device)

    benchmark.group = group
    with during or nullcontext(), ForeignLoad() as load:
        benchmark(run)
    if device == "cpu" and load.cores is not None:  # read by record(); a GPU row does not share the CPU's cores
        benchmark.extra_info["foreign_cores"] = load.cores


def first_call(step: Callable[[], tuple], device: str) -> tuple[tuple, float]:
    """The untimed first call (it compiles where the implementation compiles) and its seconds. A CompileError
    (torch.compile or graph capture failed on this torch and hardware) skips the row with its one line: the row
    says why it has no time, and no traceback lands in the benchmark table."""
    start = time.perf_counter()
    try:
        out = step()
    except CompileError as exc:
        pytest.skip(f"CompileError: {exc}")
    sync(device)
    return out, time.perf_counter() - start


def measure_memory(
    impl: object, fn: Callable[[], object], device: str, setup: Setup, roots: tuple, steps: int | None = None
) -> Reading:
    """The row's memory, read after its timing by the meter of the implementation's allocator (one more call of fn,
    outside the timed loop: the timing is unchanged); an XLA implementation's plan for the same call."""
    allocates = getattr(impl, "allocates", "torch")
    x, t = roots[1], roots[2]
    plan = (lambda: xla_plan_bytes(impl.xla_executable(x, t, steps))) if allocates == "xla" else None
    start = time.perf_counter()
    reading = measure(fn, allocates=allocates, device=device, setup=setup, roots=roots, plan=plan)
    return dataclasses.replace(reading, seconds=time.perf_counter() - start)


def record(benchmark, memory: Reading | None = None, **fields: object) -> BenchRecord:
    """Store the row's typed record in extra_info, with the spread of this row's timings, its memory reading and,
    for a registered implementation, its roles (rank, baseline) as the registry declares them: the reports read
    them, not names."""
    if memory is not None:
        fields = {**fields, **{k: v for k, v in memory.fields().items() if v is not None}}
    if fields.get("impl") in impls.names():
        cls = impls.get(str(fields["impl"]))
        fields = {"rank": cls.rank, "baseline": cls.baseline, **fields}
    stats = benchmark.stats.stats
    spread = stats.iqr / stats.median
    foreign = benchmark.extra_info.pop("foreign_cores", None)
    busy = contended(foreign, torch.get_num_threads())
    rec = BenchRecord(
        **fields, iqr_over_median=spread, unstable=spread > UNSTABLE_IQR, foreign_cores=foreign, contended=busy
    )
    benchmark.extra_info.update(rec.to_extra_info())
    return rec
