"""The typed records that cross from the producers to the reports: a benchmark row (BenchRecord, stored in
pytest-benchmark's extra_info) and a verification row (VerificationRecord, a CSV row), with the Status of a check.

Benchmarks build a BenchRecord (a misspelt field is a TypeError there) and store to_extra_info(); reports read it
back with from_extra_info(), which rejects an unknown field, a missing one, a wrong type or another schema
version with a RecordError naming it, so a typo fails loudly instead of becoming NaN. A run carries the schema
version in machine_info["twolayer"]["schema"]: that is how a run of this suite is told from another project's
pytest-benchmark JSON (like torch.utils.benchmark's Measurement, which is versioned the same way).
A verification CSV carries its schema version and its run's provenance in every row; read_verification() checks
columns, types, statuses and that one file holds one run.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path

import pandas as pd

SCHEMA = 4  # 1 = the untyped extra_info of runs before 2026-11-25; 2 = before the fields marked (3); 3 = before (4)
#: a schema-2 run: `python -m benchmarks.upgrade FILE` adds what 3 needs from the registry; a schema-3 run is read
#: as it is, its rows without memory (MEMORY_ABSENT_BEFORE_4 is their reason)
READABLE_SCHEMAS = (3, 4)
MEMORY_ABSENT_BEFORE_4 = "not measured: the run predates memory readings (schema 3)"
UNSTABLE_IQR = 0.10  # IQR / median above this flags a row as unstable (benchmarks, tidy and summary use it)
#: a CPU row is contended when other processes kept more cores busy during it than torch's threads left free, by
#: this margin: a parallel region then waits for a descheduled thread at every op (the H200 host's many-nets rows,
#: 0.2 -> 208 ms per step while another job ran; 2 threads on 2 cores with one busy process: 0.54 -> 4.4 ms)
CONTENDED_SPARE_CORES = 0.25
STEP_KINDS = ("named", "batch_sweep", "width_sweep")
#: check: the wall time of a student's one-line check, `python -m verification --impl FILE`, start to exit
KINDS = (*STEP_KINDS, "peak_gemm", "peak_bandwidth", "harness", "anatomy", "many_nets", "per_sample", "train", "check")
#: the kinds whose rows carry memory (peak, resident, floor) or the reason they have none: every row that steps
MEMORY_KINDS = (*STEP_KINDS, "many_nets", "per_sample", "train")


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
    reduced: bool | None = None  # (3) the precision computes below float32 somewhere (impls.precision.Precision)
    rank: int | None = None  # (3) the implementation's place on the ladder (Implementation.rank): display order
    baseline: bool | None = None  # (3) the implementation speed-ups are measured against (Implementation.baseline)
    product: str | None = None  # (3) peak_gemm: "square", or the step's own "forward" (X W1^T) or "dW1" (da1^T X)
    N: int | None = None
    D: int | None = None
    H: int | None = None
    C: int | None = None
    K: int | None = None  # many_nets: nets stepped together
    single: str | None = None  # (3) many_nets: the named workload whose single-net step it is compared with
    steps: int | None = None  # train: SGD steps per timed call (the median is per call; per step = median / steps)
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
    foreign_cores: float | None = None  # (3) cores other processes kept busy while the row was timed (CPU, Linux)
    contended: bool | None = None  # (3) foreign_cores > the cores torch's threads left free + CONTENDED_SPARE_CORES
    peak_bytes: int | None = None  # (4) the most the timed call's own allocations hold at once (benchmarks.memory)
    resident_bytes: int | None = None  # (4) held between calls: parameters, inputs, the implementation's buffers
    floor_bytes: int | None = None  # (4) what the batched algorithm must hold at least (NetSpec.floor_bytes)
    reserved_bytes: int | None = None  # (4) CUDA: the allocator's reserve grown by the setup (graph pools included)
    memory_method: str | None = None  # (4) the meter that read peak/resident bytes
    memory_reason: str | None = None  # (4) why peak_bytes is absent, where it is
    memory_s: float | None = None  # (4) seconds the memory reading took, outside the timed loop (its extra call)
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
        if self.schema >= 4 and self.kind in MEMORY_KINDS:  # fail closed: bytes, or the reason there are none
            if self.floor_bytes is None or (self.peak_bytes is None and not self.memory_reason):
                raise RecordError(f"a {self.kind} row needs floor_bytes and peak_bytes or memory_reason")

    @property
    def memory_note(self) -> str | None:
        """Why this row has no peak bytes (its reason, or that its run predates memory readings), else None."""
        if self.peak_bytes is not None or self.kind not in MEMORY_KINDS:
            return None
        return self.memory_reason or (MEMORY_ABSENT_BEFORE_4 if self.schema < 4 else "not measured")

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
        if d.get("schema") not in READABLE_SCHEMAS:
            raise RecordError(f"schema {d.get('schema')!r}, expected one of {READABLE_SCHEMAS}")
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
    "product": _STR,
    "single": _STR,
    **{k: _INT for k in ("N", "D", "H", "C", "K", "steps", "flops", "bytes", "threads", "recompiles", "graphs")},
    "rank": _INT,
    **{k: _INT for k in ("graph_breaks", "schema", "peak_bytes", "resident_bytes", "floor_bytes", "reserved_bytes")},
    **{k: _STR for k in ("memory_method", "memory_reason")},
    **{k: _BOOL for k in ("large", "unstable", "contended", "reduced", "baseline")},
    **{k: _FLOAT for k in ("gflops", "gbs", "first_call_s", "compile_s", "per_net_s", "torch_timer_median")},
    **{k: _FLOAT for k in ("ratio", "iqr_over_median", "foreign_cores", "memory_s")},
    "break_reasons": (tuple,),
}


# ---- verification ---------------------------------------------------------------------------------------------


class Status(str, Enum):
    """The verdict of one compared quantity (or of a whole case that produced nothing to compare)."""

    OK = "ok"
    FAIL = "FAIL"  # compared, and outside the derived tolerance (or misshapen, non-finite, wrong type)
    ERROR = "error"  # the case crashed, timed out or its process died: nothing to compare
    UNSUPPORTED = "unsupported"  # the implementation declares it does not run this case
    #: compared, every gradient within tolerance, the loss alone wrong only at extreme logits (a max-shifted softmax
    #: then -log(p[y])): correct but numerically fragile; a pass unless the run is strict (strict_rows)
    FRAGILE = "fragile"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__  # f"{Status.OK}" is "ok", as in the CSV

    @property
    def checked(self) -> bool:
        """A number was compared with the oracle (pass or fail)."""
        return self in (Status.OK, Status.FAIL, Status.FRAGILE)

    @property
    def bad(self) -> bool:
        """Counts against a verdict of 'verified'."""
        return self in (Status.FAIL, Status.ERROR)


CHECKED = tuple(s.value for s in Status if s.checked)
BAD = tuple(s.value for s in Status if s.bad)


def strict_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows with every fragile verdict counted as a failure (--strict, strict=True): a copy."""
    out = df.copy()
    out.loc[status_is(out["status"], Status.FRAGILE), "status"] = Status.FAIL.value
    return out


def status_is(column: pd.Series, *statuses: Status) -> pd.Series:
    """Rows whose status is one of `statuses` (a Status never equals a CSV's string column under ==)."""
    return column.isin([Status(s).value for s in statuses])


VERIFICATION_SCHEMA = 2  # 1 = the CSVs before 2026-11-30 (column loss_fn, no check kind, no provenance)
CHECK_KINDS = ("batch", "per_sample")  # loss + batch gradients + trajectory, or per-sample gradients


@dataclass(frozen=True)
class VerificationRecord:
    """One compared quantity of one case, and which code on which machine produced it (a CSV row)."""

    impl: str
    check: str
    hidden: str
    output: str
    loss: str
    l2: float
    D: int
    H: int
    C: int
    N: int
    dtype: str
    precision: str
    device: str
    variant: str
    threads: int
    quantity: str
    status: Status
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    tol: float | None = None
    ref32_rel_err: float | None = None
    problem: str = ""
    # provenance: the same in every row of one run
    run: str = ""
    commit: str = ""
    torch: str = ""
    cpu_model: str = ""
    gpu_name: str = ""
    schema: int = VERIFICATION_SCHEMA

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # ValueError on an unknown status
        if self.check not in CHECK_KINDS:
            raise RecordError(f"unknown check {self.check!r}; choose from {', '.join(CHECK_KINDS)}")


#: columns of a verification CSV, in order; CASE_KEY identifies a case (a case has a row per quantity): the
#: fields before `threads`; RUN_FIELDS are the same in every row of one run
VERIFICATION_COLUMNS = tuple(f.name for f in fields(VerificationRecord))
CASE_KEY = VERIFICATION_COLUMNS[: VERIFICATION_COLUMNS.index("threads")]
RUN_FIELDS = VERIFICATION_COLUMNS[VERIFICATION_COLUMNS.index("run") :]
_NUMERIC = tuple(f.name for f in fields(VerificationRecord) if str(f.type).split(" |")[0] in ("int", "float"))


def read_verification(path: str | Path) -> pd.DataFrame:
    """A verification CSV (plain or .gz) as a frame, checked: the columns of this schema, known statuses and check
    kinds, numbers where numbers belong, one run's provenance throughout. RecordError names what is wrong."""
    try:
        text_cols = {c: str for c in VERIFICATION_COLUMNS if c not in _NUMERIC}
        df = pd.read_csv(path, low_memory=False, keep_default_na=False, na_values=[""], dtype=text_cols)
    except (OSError, ValueError, EOFError, zlib.error, pd.errors.ParserError) as exc:  # gzip.BadGzipFile: OSError
        raise RecordError(f"unreadable CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    cols = tuple(df.columns)
    if "schema" not in cols:
        raise RecordError("not a twolayer verification CSV of this version (no schema column; re-run verification)")
    if cols != VERIFICATION_COLUMNS:
        missing = [c for c in VERIFICATION_COLUMNS if c not in cols]
        extra = [c for c in cols if c not in VERIFICATION_COLUMNS]
        raise RecordError(f"columns differ from schema {VERIFICATION_SCHEMA}: missing {missing}, unknown {extra}")
    if df.empty:
        raise RecordError("no rows")
    for c in _NUMERIC:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise RecordError(f"column {c!r} holds non-numbers, e.g. {df[c].iloc[0]!r}")
    schemas = set(df["schema"].unique())
    if schemas != {VERIFICATION_SCHEMA}:
        raise RecordError(f"schema {sorted(schemas)}, this version reads {VERIFICATION_SCHEMA}")
    bad_status = sorted(set(df["status"]) - {s.value for s in Status}, key=str)
    if bad_status:
        raise RecordError(f"unknown status {bad_status[0]!r}; known: {', '.join(s.value for s in Status)}")
    bad_check = sorted(set(df["check"]) - set(CHECK_KINDS), key=str)
    if bad_check:
        raise RecordError(f"unknown check {bad_check[0]!r}; known: {', '.join(CHECK_KINDS)}")
    for c in ("problem", "gpu_name", "commit", "torch", "cpu_model", "run"):
        df[c] = df[c].fillna("")
    for c in RUN_FIELDS:
        if df[c].nunique(dropna=False) > 1:
            raise RecordError(f"rows of more than one run (column {c!r} differs)")
    if not df["run"].iloc[0]:
        raise RecordError("no run name (column 'run' is empty)")
    return df


def write_verification(path: str | Path, records: list[VerificationRecord]) -> Path:
    """Write the records as a CSV (gzip when the name ends .gz), atomically."""
    from reports.atomic import atomic_write

    df = pd.DataFrame([asdict(r) for r in records], columns=list(VERIFICATION_COLUMNS))
    df["status"] = df["status"].map(lambda s: Status(s).value)

    def write(tmp: str) -> None:
        if not str(path).endswith(".gz"):
            df.to_csv(tmp, index=False)
            return
        # no name and mtime 0 in the gzip header: the same rows give the same bytes (no spurious diff)
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                df.to_csv(text, index=False)

    return atomic_write(path, write)
