"""Memory beside time: the peak bytes of one step and the bytes held between steps, read once per row outside the
timed loop by the meter that sees the allocator the implementation uses (Implementation.allocates).

A reading is measured, or absent with its reason: never a zero standing for "not seen".
- peak_bytes: the most the step's own allocations hold at once, beyond what was allocated before it (a step that
  frees everything it allocates reports that maximum, not its net zero).
- resident_bytes: what is held between steps -- the parameters, the inputs and the implementation's persistent
  buffers (momentum, scratch, a CUDA graph's static tensors) -- after the row's first calls.
Meters (what each misses is said in README, "Memory"):
- torch on CPU: torch.profiler's memory events (profile_memory=True), every alloc and free of c10's CPU allocator
  in time order; misses what BLAS/oneDNN allocate themselves (their scratch) and Python objects.
- torch on CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats; resident from memory_allocated,
  with memory_reserved's growth beside it (a CUDA graph's private pool is reserved, not allocated, between replays).
- numpy: tracemalloc, to which NumPy reports its data buffers and through which numba's NRT allocates inside @njit;
  misses buffers a C extension mallocs itself (BLAS scratch).
- xla: the compiled step's memory analysis (temporaries + outputs - aliased), XLA's own plan: on the CPU JAX
  exposes no allocator statistics (device.memory_stats() is None).
- resident on the CPU: the distinct buffers reachable from the implementation object and the inputs (tensors,
  NumPy and JAX arrays, through attributes, dicts, lists and tuples); a compiler's internal caches are not seen.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # kineto prints a line per profiler start/stop otherwise


@dataclass(frozen=True)
class Reading:
    """One row's memory: bytes, or None with the reason; `method` names the meter that read them."""

    peak_bytes: int | None
    resident_bytes: int | None
    method: str
    reason: str | None = None
    reserved_bytes: int | None = None  # CUDA: memory_reserved's growth over the row's setup (graph pools included)
    seconds: float | None = None  # how long the reading took (its extra call included): the memory pass's cost

    def fields(self) -> dict[str, object]:
        """The BenchRecord fields of this reading."""
        return {
            "peak_bytes": self.peak_bytes,
            "resident_bytes": self.resident_bytes,
            "memory_method": self.method,
            "memory_reason": self.reason,
            "reserved_bytes": self.reserved_bytes,
            "memory_s": self.seconds,
        }


def sync(device: str) -> None:
    """Wait for queued GPU work, so a timed region (or a memory reading) contains the whole step."""
    if device == "cuda":
        torch.cuda.synchronize()


class Setup:
    """Brackets a row's setup (inputs, construction, first calls): on CUDA the allocator's counters before it."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._before = (0, 0)
        if device == "cuda":
            sync(device)
            torch.cuda.empty_cache()  # what earlier rows left cached is not this row's reserve
            self._before = (torch.cuda.memory_allocated(), torch.cuda.memory_reserved())

    def resident(self, *roots: object) -> tuple[int, int | None]:
        """(bytes held now that the setup added, reserved growth on CUDA or None): on CUDA the allocator's own
        count, on the CPU the census of the buffers reachable from roots (the implementation and its inputs)."""
        if self.device == "cuda":
            sync(self.device)
            allocated, reserved = self._before
            return torch.cuda.memory_allocated() - allocated, torch.cuda.memory_reserved() - reserved
        return census(*roots), None


_WALKED_MODULES = ("impls", "torch.nn", "torch.optim", "benchmarks", "verification")


def census(*roots: object) -> int:
    """Bytes of the distinct buffers reachable from roots: torch tensors (their storage), NumPy arrays (their base's
    buffer) and JAX arrays, found through attributes of project/torch.nn/torch.optim objects, dicts, lists, tuples
    and sets. A buffer seen twice (a NumPy view of a tensor, a parameter in a dict and a list) counts once."""
    buffers: dict[int, int] = {}  # address -> bytes
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            if obj.device.type == "cpu" and obj.layout == torch.strided:
                storage = obj.untyped_storage()
                _count(buffers, storage.data_ptr(), storage.nbytes())
            continue
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            _count(buffers, base.__array_interface__["data"][0], base.nbytes)
            continue
        if type(obj).__module__.startswith(("jax", "jaxlib")) and hasattr(obj, "unsafe_buffer_pointer"):
            try:
                _count(buffers, obj.unsafe_buffer_pointer(), int(obj.nbytes))
            except (RuntimeError, ValueError):  # a deleted or sharded array: no single buffer
                pass
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif type(obj).__module__.startswith(_WALKED_MODULES) and hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return sum(buffers.values())


def _count(buffers: dict[int, int], address: int, nbytes: int) -> None:
    if address:
        buffers[address] = max(buffers.get(address, 0), nbytes)


def torch_cpu_peak(fn: Callable[[], object]) -> int:
    """The peak of c10's CPU allocations while fn runs: torch.profiler's memory events (a free of a buffer made
    before the profile is not reported, so the peak counts only what fn itself holds), summed in time order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return peak


def numpy_peak(fn: Callable[[], object]) -> int:
    """The peak of what fn allocates through NumPy, numba's runtime and Python, by tracemalloc: NumPy reports its
    data buffers to it, and numba's NRT allocates through PyMem_RawMalloc so that tracemalloc sees it (numba PR
    #1356); Python objects fn creates are counted too (a few hundred bytes)."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already:
            tracemalloc.stop()
    return max(peak - start, 0)


def xla_plan_bytes(compiled: object) -> int:
    """What a compiled XLA executable allocates when called: its temporaries and outputs, less the outputs that
    alias a donated argument, from its memory analysis (XLA plans every buffer of the call ahead of it)."""
    stats = compiled.memory_analysis()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes)


def cuda_peak(fn: Callable[[], object]) -> int:
    """The peak of the CUDA caching allocator's allocated bytes while fn runs, beyond what was allocated before."""
    sync("cuda")
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    sync("cuda")
    return torch.cuda.max_memory_allocated() - before


METHODS = {
    ("torch", "cpu"): "torch.profiler memory events",
    ("torch", "cuda"): "torch.cuda max_memory_allocated",
    ("numpy", "cpu"): "tracemalloc",
    ("xla", "cpu"): "XLA memory analysis",
    ("xla", "cuda"): "XLA memory analysis",
}


def measure(
    fn: Callable[[], object],
    *,
    allocates: str,
    device: str,
    setup: Setup,
    roots: tuple[object, ...],
    plan: Callable[[], int] | None = None,
) -> Reading:
    """Read one row: fn (the timed call) runs once more under the meter of `allocates` on `device`; `plan` gives
    an "xla" implementation's planned bytes; resident bytes from the setup bracket and roots."""
    method = METHODS.get((allocates, device))
    resident, reserved = setup.resident(*roots)
    if method is None:
        return Reading(None, resident, "none", f"no meter for {allocates} allocations on {device}", reserved)
    if allocates == "xla":
        if plan is None:
            return Reading(None, resident, method, "no compiled plan given for an XLA step", reserved)
        return Reading(plan(), resident, method, None, reserved)
    if allocates == "numpy":
        return Reading(numpy_peak(fn), resident, method, None, reserved)
    peak = cuda_peak(fn) if device == "cuda" else torch_cpu_peak(fn)
    return Reading(peak, resident, method, None, reserved)
