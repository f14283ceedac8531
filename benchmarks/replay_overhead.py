"""`python -m benchmarks.replay_overhead`: the Python that `triton`'s step() runs around a CUDA-graph replay, on
the CPU.

A rumelhart step call on CUDA is one graph replay (~2.5 µs on an H200, measured by an independent script) plus
this Python: input checks, the graph's key, the lookup. It is timed here without a GPU, with a graph whose
replay does nothing and the kernels' first run through triton's interpreter; the one CUDA query a real call adds
(is a capture under way?) is not in it. README's per-call estimate quotes this number.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import timeit
from unittest import mock

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: the kernels' first run is on the CPU


class _NoopGraph:
    """A captured graph whose replay costs nothing: what is left is the implementation's own Python."""

    def replay(self) -> None:
        return None


def measure(calls: int = 100_000, repeat: int = 7) -> float:
    """Seconds of Python per step() call that replays a graph (the best of `repeat` runs of `calls` calls)."""
    import torch

    from impls import triton_fused
    from impls.base import SGD
    from impls.spec import NetSpec, init_params, make_batch

    if triton_fused.IMPORT_ERROR or not triton_fused.INTERPRETED:
        raise RuntimeError("needs triton and TRITON_INTERPRET=1 before triton is imported")
    cls = triton_fused.TritonFused
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")  # rumelhart's net, N = 64
    impl = cls(spec, init_params(spec), SGD(0.1, 0.9))
    x, t = make_batch(spec, 64)
    with (
        mock.patch.object(torch.cuda, "CUDAGraph", _NoopGraph),
        mock.patch.object(torch.cuda, "graph", lambda g: contextlib.nullcontext()),
        mock.patch.object(torch.cuda, "is_current_stream_capturing", lambda: False),
        # _graphable as on CUDA tensors (x.is_cuda is False here), but for the capture query
        mock.patch.object(
            cls,
            "_graphable",
            lambda self, x, t: self.GRAPHS and not self.graph_failure and x.is_contiguous() and t.is_contiguous(),
        ),  # fmt: skip
    ):
        for _ in range(3):  # eager (compiles), captured, replayed
            impl.step(x, t)
        if impl.replays != 2:
            raise RuntimeError(f"expected the third call to replay a graph, got {impl.replays} replays")
        return min(timeit.repeat(lambda: impl.step(x, t), number=calls, repeat=repeat)) / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.replay_overhead", description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=100_000)
    a = p.parse_args(argv)
    try:
        seconds = measure(a.calls)
    except (ImportError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"triton step() around a graph replay: {seconds * 1e6:.2f} us of Python per call (rumelhart, N = 64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
