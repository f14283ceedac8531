"""The typed record one benchmark row carries from the benchmarks to the reports (pytest-benchmark's extra_info).

Benchmarks build a BenchRecord (a misspelt field is a TypeError there) and store to_extra_info(); reports read it
back with from_extra_info(), which rejects an unknown field, a missing one, a wrong type or another schema
version with a RecordError naming it, so a typo fails loudly instead of becoming NaN. A run carries the schema
version in machine_info["twolayer"]["schema"]: that is how a run of this suite is told from another project's
pytest-benchmark JSON (like torch.utils.benchmark's Measurement, which is versioned the same way).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

SCHEMA = 2  # 1 = the untyped extra_info of runs before 2026-11-25
UNSTABLE_IQR = 0.10  # IQR / median above this flags a row as unstable (benchmarks, tidy and summary use it)
STEP_KINDS = ("named", "batch_sweep", "width_sweep")
KINDS = (*STEP_KINDS, "peak_gemm", "peak_bandwidth", "harness", "anatomy", "many_nets", "per_sample")


class RecordError(ValueError):
    """An extra_info that is not a BenchRecord of this schema."""


@dataclass(frozen=True)
class BenchRecord:
    """What one benchmark row measured and on what; fields that do not apply to a kind stay None."""

    kind: str
    impl: str
    device: str
    workload: str
    precision: str = "fp32"
    N: int | None = None
    D: int | None = None
    H: int | None = None
    C: int | None = None
    K: int | None = None  # many_nets: nets stepped together
    hidden: str | None = None
    output: str | None = None
    loss: str | None = None
    dtype: str | None = None
    large: bool | None = None
    flops: int | None = None
    bytes: int | None = None
    gflops: float | None = None
    gbs: float | None = None
    threads: int | None = None
    first_call_s: float | None = None
    compile_s: float | None = None
    recompiles: int | None = None
    graphs: int | None = None
    graph_breaks: int | None = None
    break_reasons: tuple[str, ...] | None = None
    per_net_s: float | None = None
    torch_timer_median: float | None = None
    ratio: float | None = None
    iqr_over_median: float | None = None
    unstable: bool | None = None
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RecordError(f"unknown kind {self.kind!r}; choose from {', '.join(KINDS)}")
        for f in fields(self):
            v, want = getattr(self, f.name), _TYPES[f.name]
            if v is None:
                continue
            if want is _FLOAT:
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            elif want is _INT:
                ok = isinstance(v, int) and not isinstance(v, bool)
            else:
                ok = isinstance(v, want)
            if not ok:
                raise RecordError(f"field {f.name!r} must be a finite {want[0].__name__}, got {v!r}")

    def to_extra_info(self) -> dict:
        """The JSON-ready dict stored in pytest-benchmark's extra_info (None fields left out)."""
        d = {k: v for k, v in asdict(self).items() if v is not None}
        if "break_reasons" in d:
            d["break_reasons"] = list(d["break_reasons"])
        return d

    @classmethod
    def from_extra_info(cls, d: object) -> BenchRecord:
        """Check and rebuild a record; RecordError names what is wrong."""
        if not isinstance(d, dict):
            raise RecordError(f"extra_info must be an object, got {type(d).__name__}")
        if d.get("schema") != SCHEMA:
            raise RecordError(f"schema {d.get('schema')!r}, expected {SCHEMA}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RecordError(f"unknown field(s) {', '.join(unknown)}")
        missing = [k for k in ("kind", "impl", "device", "workload") if k not in d]
        if missing:
            raise RecordError(f"missing field(s) {', '.join(missing)}")
        d = dict(d)
        if isinstance(d.get("break_reasons"), list):
            d["break_reasons"] = tuple(str(r) for r in d["break_reasons"])
        return cls(**d)


_INT, _STR, _BOOL, _FLOAT = (int,), (str,), (bool,), (float,)
_TYPES = {
    **{k: _STR for k in ("kind", "impl", "device", "workload", "precision", "hidden", "output", "loss", "dtype")},
    **{k: _INT for k in ("N", "D", "H", "C", "K", "flops", "bytes", "threads", "recompiles", "graphs")},
    **{k: _INT for k in ("graph_breaks", "schema")},
    **{k: _BOOL for k in ("large", "unstable")},
    **{k: _FLOAT for k in ("gflops", "gbs", "first_call_s", "compile_s", "per_net_s", "torch_timer_median")},
    **{k: _FLOAT for k in ("ratio", "iqr_over_median")},
    "break_reasons": (tuple,),
}
