"""Named workloads (where they come from), grouped in sets: quick (CI), default (< 5 min on 2 cores), full."""

from __future__ import annotations

from dataclasses import dataclass

from impls.spec import NetSpec

RUMELHART = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")  # mirror symmetry, RHW 1986
EPFL = NetSpec(784, 50, 10, "tanh", "tanh", "sse")  # per-sample 784-50-10 tanh net
MNIST = NetSpec(784, 30, 10, "sigmoid", "identity", "cross_entropy")  # 784-30-10 sigmoid, softmax CE
#: deeplearning.ai's planar classifier (course 1, week 3): 400 points in 2-D, 4 tanh units, one sigmoid output, bce
COURSERA = NetSpec(2, 4, 1, "tanh", "sigmoid", "bce")

SETS = ("quick", "default", "full")
#: the most seconds pytest-benchmark spends timing one row of each set (its --benchmark-max-time, unless given):
#: a row still gets its 5 rounds at least, and a microsecond row thousands; the full set keeps pytest-benchmark's 1 s
MAX_TIME_S = {"quick": 0.25, "default": 0.5, "full": 1.0}


@dataclass(frozen=True)
class Workload:
    """A spec and a batch size; `sets` says which benchmark sets include it, `kind` which plot it feeds."""

    name: str
    spec: NetSpec
    n: int
    sets: tuple[str, ...]
    kind: str = "named"  # named | batch_sweep | width_sweep

    @property
    def id(self) -> str:
        return self.name

    @property
    def large(self) -> bool:
        """The roofline target applies to these: the named large workloads (epfl, mnist-60000) and batch >= 8192."""
        return (self.kind == "named" and self.n >= 1000) or self.n >= 8192


def _sweep_batch() -> list[Workload]:
    out = []
    for k in range(14):  # 1 .. 8192
        n = 2**k
        sets = ("full",) + (("default",) if k % 2 == 0 or n == 8192 else ()) + (("quick",) if n in (1, 256) else ())
        out.append(Workload(f"batch-{n}", MNIST, n, sets, "batch_sweep"))
    return out


def _sweep_width() -> list[Workload]:
    out = []
    for H in (8, 16, 32, 64, 128, 256, 512, 1024):
        sets = ("full",) + (("default",) if H in (16, 64, 256, 1024) else ())
        out.append(
            Workload(
                f"width-{H}", NetSpec(784, H, 10, "sigmoid", "identity", "cross_entropy"), 1024, sets, "width_sweep"
            )
        )
    return out


WORKLOADS: list[Workload] = [
    Workload("rumelhart", RUMELHART, 64, SETS),
    Workload("coursera", COURSERA, 400, SETS),
    Workload("epfl", EPFL, 1000, SETS),
    Workload("mnist-64", MNIST, 64, SETS),
    Workload("mnist-60000", MNIST, 60000, ("default", "full")),
    *_sweep_batch(),
    *_sweep_width(),
]


def select(bench_set: str) -> list[Workload]:
    """The workloads of one set."""
    if bench_set not in SETS:
        raise ValueError(f"unknown benchmark set {bench_set!r}; choose from {', '.join(SETS)}")
    return [w for w in WORKLOADS if bench_set in w.sets]
