"""`python -m benchmarks.profile_tiny [--device cpu] [--workload rumelhart]`: where a tiny step's microseconds go.

torch.profiler over 100 steps of each torch implementation: top-level aten calls per step (each one is a
dispatch, ~2-5 us on a CPU, a kernel launch on a GPU), all aten calls incl. nested, and self time per step.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.profiler import ProfilerActivity, profile

import impls
from benchmarks.workloads import WORKLOADS
from impls.base import SGD
from impls.spec import init_params, make_batch


def profile_impl(name: str, workload: str, device: str, steps: int = 100) -> dict:
    """Counts and self time per step for one implementation (skipped if it does not support the device)."""
    w = next(w for w in WORKLOADS if w.name == workload)
    cls = impls.get(name)
    if cls.unsupported_reason(w.spec, device, torch.float32):
        return {}
    impl = cls(w.spec, init_params(w.spec, device=device), SGD(0.01, 0.9))
    x, t = make_batch(w.spec, w.n, device=device)
    for _ in range(20):
        impl.step(x, t)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            impl.step(x, t)
    aten = [e for e in prof.events() if e.name.startswith("aten::")]
    top = [e for e in aten if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    self_us = sum(e.self_cpu_time_total for e in prof.key_averages()) / steps
    heaviest = max(prof.key_averages(), key=lambda e: e.self_cpu_time_total)
    return {
        "impl": name,
        "top-level aten/step": len(top) / steps,
        "all aten/step": len(aten) / steps,
        "self CPU us/step": round(self_us, 1),
        "heaviest": f"{heaviest.key} ({heaviest.self_cpu_time_total / steps:.1f} us)",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_tiny", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--workload", default="rumelhart", choices=sorted({w.name for w in WORKLOADS}))
    a = p.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        print("error: CUDA is not available (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    import pandas as pd

    rows = [r for n in impls.names() if n != "numpy_flat" and (r := profile_impl(n, a.workload, a.device))]
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
