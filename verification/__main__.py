"""`python -m verification`: check every registered implementation, or your own backprop, against the oracle.

Exit 0 if everything matches, 1 if anything does not (or nothing could be checked), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import torch

import impls
from impls.precision import PRECISIONS, hardware_reason
from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
from reports.atomic import atomic_write, check_writable
from verification.isolate import DEFAULT_TIMEOUT_S, Isolated, PluginLoadError
from verification.plugin import is_plugin_ref
from verification.runner import CASE_KEY, COLUMNS, DTYPES, VARIANTS, InProcess, Matrix, missing_cases, parse_list, run

DEFAULT_CSV = Path("reports/results/verification.csv")
#: measured on the 2-core CI machine: one torch thread is ~1.4x faster than two for these tiny cases (the
#: oracle's NumPy and the checked code then do not fight over the cores); the thread count is in every CSV row
DEFAULT_THREADS = 1
#: the options a failure can concentrate on, in the order the summary names them
FACETS = ("hidden", "output", "loss_fn", "l2", "shape", "N", "dtype", "precision", "device", "variant")


class UsageError(Exception):
    """Bad command line; one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verification",
        description="Compare loss, gradients and a K-step SGD trajectory with a float64 oracle.",
        epilog="Your own backprop: --impl path/to/file.py:fn or package.module:fn, where "
        "fn(params, x, t, spec) -> (loss, grads); raise NotImplementedError for configs you do not support.",
    )
    p.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="NAME|FILE.py:FN|PKG.MOD:FN",
        help="registered name or plug-in function (repeatable; default: every registered one)",
    )
    p.add_argument("--hidden", default=",".join(HIDDEN_ACTIVATIONS), help="hidden activations (default: %(default)s)")
    p.add_argument("--output", default=",".join(OUTPUT_ACTIVATIONS), help="output activations (default: %(default)s)")
    p.add_argument("--loss", default=",".join(LOSSES), help="losses (default: %(default)s)")
    p.add_argument("--l2", default="0,0.1", help="L2 coefficients, comma-separated (default 0,0.1)")
    p.add_argument(
        "--sizes",
        default="5-4-3,4-4-4",
        help="D-H-C shapes, comma-separated (default 5-4-3,4-4-4: distinct sizes name a misshapen "
        "gradient, equal sizes let a transposed product run and be named by its values)",
    )
    p.add_argument("--batch", default="1,7,64", help="batch sizes, comma-separated (default 1,7,64)")
    p.add_argument("--dtype", default=None, help="float32 and/or float64 (default: both; float32 with --precision)")
    p.add_argument("--device", default=None, help="cpu and/or cuda (default: cpu, plus cuda when available)")
    p.add_argument("--steps", type=int, default=4, help="SGD steps in the trajectory check (default 4)")
    p.add_argument(
        "--full", action="store_true", help="also run compiling implementations on every config (default: a subset)"
    )
    p.add_argument(
        "--csv",
        default=None,
        help=f"where to write every row (default: {DEFAULT_CSV} for the whole registry on the default matrix, "
        "verification_per_sample.csv beside it with --per-sample; none for a narrowed run)",
    )
    p.add_argument(
        "--variant",
        default=",".join(VARIANTS),
        help="data variants (default: all): normal; large-logits (cross-entropy, the largest logit "
        "+800); exact-zeros (ReLU, pre-activations exactly 0)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds a plug-in may take per case before it is killed and reported (default {DEFAULT_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch threads, recorded in the CSV (default {DEFAULT_THREADS}: fastest for these small cases)",
    )
    p.add_argument(
        "--per-sample",
        action="store_true",
        help="check per-sample gradients (N, ...) of the implementations that give them (vmap, loop, batched), "
        "each sample against the oracle's, instead of loss, batch gradients and trajectory",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="compute precision (default fp32); bf16/fp16 run the float32 cases under torch.autocast, with the "
        "tolerance derived from that format's unit roundoff, for the implementations that support it",
    )
    p.add_argument(
        "--allow-emulated",
        action="store_true",
        help="run a --precision this hardware lacks (torch emulates it in software): checks the arithmetic",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in parse_list(text, what=what))
    except ValueError as exc:
        raise UsageError(f"--{what}: expected comma-separated integers, got {text!r}") from exc
    if any(v < 1 for v in vals):
        raise UsageError(f"--{what}: values must be >= 1, got {text!r}")
    return vals


def matrix_from_args(args: argparse.Namespace) -> Matrix:
    """Validate every option into a Matrix; UsageError names the bad option."""
    try:
        hidden = parse_list(args.hidden, HIDDEN_ACTIVATIONS, "hidden activation")
        output = parse_list(args.output, OUTPUT_ACTIVATIONS, "output activation")
        loss = parse_list(args.loss, LOSSES, "loss")
        dtypes = parse_list(args.dtype or "float32,float64", DTYPES, "dtype")
        try:
            l2 = tuple(float(v) for v in parse_list(args.l2, what="l2"))
        except ValueError:
            raise ValueError(f"--l2: expected comma-separated numbers, got {args.l2!r}") from None
        if any(not (v >= 0 and v < float("inf")) for v in l2):
            raise ValueError(f"--l2: coefficients must be finite and >= 0, got {args.l2!r}")
        default_devices = "cpu,cuda" if torch.cuda.is_available() else "cpu"
        devices = parse_list(args.device or default_devices, ("cpu", "cuda"), "device")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if "cuda" in devices and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available (torch.cuda.is_available() is False)")
    try:
        sizes = tuple(tuple(int(v) for v in item.split("-")) for item in parse_list(args.sizes, what="sizes"))
    except ValueError:
        raise UsageError(f"--sizes: expected D-H-C[,D-H-C...] with positive integers, got {args.sizes!r}") from None
    if any(len(s) != 3 or min(s) < 1 for s in sizes):
        raise UsageError(f"--sizes: expected D-H-C[,D-H-C...] with positive integers, got {args.sizes!r}")
    if args.steps < 1:
        raise UsageError("--steps must be >= 1")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    try:
        variants = parse_list(args.variant, VARIANTS, "variant")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    batches = _ints(args.batch, "batch")
    m = Matrix(hidden, output, loss, l2, sizes, batches, dtypes, devices, args.steps, full=args.full, variants=variants)
    m.per_sample = args.per_sample
    m.precision, m.allow_emulated = args.precision, args.allow_emulated
    if m.precision != "fp32":
        check_precision(m, explicit_dtype=args.dtype is not None)
    if not m.specs():
        raise UsageError("no sensible configuration in that selection (cross_entropy needs --output identity)")
    check_memory(m)
    return m


def check_precision(m: Matrix, explicit_dtype: bool) -> None:
    """A low precision needs float32 cases, no --per-sample, and hardware that has it (or --allow-emulated)."""
    if m.per_sample:
        raise UsageError(f"--per-sample checks fp32 per-sample gradients; not with --precision {m.precision}")
    if "float32" not in m.dtypes or (explicit_dtype and "float64" in m.dtypes):
        raise UsageError(f"--precision {m.precision} runs float32 parameters under autocast; use --dtype float32")
    m.dtypes = ("float32",)
    if not m.allow_emulated:
        reasons = {d: hardware_reason(m.precision, d) for d in m.devices}
        if all(reasons.values()):
            raise UsageError(
                f"--precision {m.precision}: unsupported here ({'; '.join(f'{d}: {r}' for d, r in reasons.items())}); "
                "--allow-emulated checks the arithmetic anyway"
            )
        m.devices = tuple(d for d, r in reasons.items() if not r)


def case_bytes(D: int, H: int, C: int, n: int, steps: int) -> int:
    """Peak bytes of one case, generously: the K float64 batches (kept by the case, by the oracle's trajectory and
    as the implementation's copies) and the oracle's float64 intermediates (a1, h, dz, da1 and their |.| copies)."""
    return 8 * n * ((D + C) * steps * 3 + (D + 4 * H + 6 * C) * 4)


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(m: Matrix) -> None:
    """Refuse, before the first case, a batch whose tensors cannot fit in the memory available now."""
    free = available_bytes()
    if free is None:
        return
    need, (D, H, C), n = max(
        (case_bytes(*s, n, m.steps) + (24 * n * (s[1] * (s[0] + s[2] + 1) + s[2]) if m.per_sample else 0), s, n)
        for s in m.sizes
        for n in m.batches
    )  # per-sample: N x |theta| float64 values, three times (the implementation's, a copy, the oracle's)
    if need > free:
        raise UsageError(
            f"--batch {n} with size {D}-{H}-{C} needs about {need / 2**30:.3g} GiB per case, "
            f"but only {free / 2**30:.3g} GiB of memory is available"
        )


def check_writable_csv(path: Path) -> None:
    """Fail before the first case if the CSV cannot be written where asked (UsageError, one line)."""
    if path.is_dir():
        raise UsageError(f"--csv {path}: is a folder, not a file")
    try:
        check_writable(path.parent if str(path.parent) else Path("."), f"--csv {path}: folder")
    except OSError as exc:
        raise UsageError(str(exc)) from None


def resolve_impls(refs: list[str], timeout: float, threads: int) -> dict:
    """Registry names -> in-process executors; plug-in references -> a child process each, started and loaded
    now (UsageError on an unknown name or a plug-in that cannot be loaded; nothing has run yet)."""
    if not refs:
        return {name: InProcess(impls.get(name)) for name in impls.names()}
    out: dict = {}
    try:
        for ref in refs:
            if is_plugin_ref(ref):
                out[ref] = Isolated(ref, timeout=timeout, threads=threads)
            else:
                out[ref] = InProcess(impls.get(ref))
    except (PluginLoadError, impls.UnknownImplementation) as exc:
        close_all(out)
        raise UsageError(str(exc)) from None
    return out


MATRIX_OPTIONS = (  # not per_sample, precision, allow_emulated: those runs have a default CSV of their own
    "impl",
    "hidden",
    "output",
    "loss",
    "l2",
    "sizes",
    "batch",
    "dtype",
    "device",
    "steps",
    "full",
    "variant",
)


def whole_default_run(args: argparse.Namespace) -> bool:
    """True when every matrix option has its default (the run the committed verification CSV stands for)."""
    defaults = build_parser().parse_args([])
    return all(getattr(args, k) == getattr(defaults, k) for k in MATRIX_OPTIONS)


def keep_precision(executors: dict, precision: str) -> dict:
    """Only the implementations that run in `precision`; one line for each one dropped, and a UsageError (exit 2)
    when none is left. (Plug-ins run in any precision: the user's function is called under autocast.)"""
    keep = {}
    for name, ex in executors.items():
        cls = getattr(ex, "cls", None)
        if cls is None or precision in cls.precisions:
            keep[name] = ex
        else:
            print(f"unsupported: {name} runs in {', '.join(cls.precisions)} only, not {precision}", file=sys.stderr)
            ex.close()
    if not keep:
        raise UsageError(f"--precision {precision}: none of the selected implementations runs in {precision}")
    return keep


def keep_per_sample(executors: dict) -> dict:
    """Only the implementations that give per-sample gradients; one line for each one dropped, and a
    UsageError (exit 2) when none is left."""
    keep = {}
    for name, ex in executors.items():
        if getattr(getattr(ex, "cls", None), "gives_per_sample_grads", False):
            keep[name] = ex
        else:
            print(f"unsupported: {name} gives no per-sample gradients (--per-sample)", file=sys.stderr)
            ex.close()
    if not keep:
        raise UsageError("--per-sample: none of the selected implementations gives per-sample gradients")
    return keep


def close_all(executors: dict) -> None:
    """Stop every plug-in process."""
    for ex in executors.values():
        ex.close()


def summarize(df: pd.DataFrame) -> str:
    """Per implementation: cases, checks passed/failed/unsupported, worst error as a fraction of its tolerance."""
    checked = df[df["status"].isin(["ok", "FAIL"])].copy()
    checked["err/tol"] = checked["max_rel_err"] / checked["tol"].where(checked["tol"] > 0)
    lines = []
    for impl, g in df.groupby("impl", sort=False):
        c = checked[checked["impl"] == impl]
        lines.append(
            {
                "impl": impl,
                "cases": len(g.drop_duplicates(list(CASE_KEY))),
                "ok": int((g["status"] == "ok").sum()),
                "failed": int(g["status"].isin(["FAIL", "error"]).sum()),
                "unsupported": int((g["status"] == "unsupported").sum()),
                "worst err/tol": c["err/tol"].max() if len(c) else float("nan"),
            }
        )
    return pd.DataFrame(lines).to_string(index=False, float_format=lambda v: f"{v:.3g}")


def failures(df: pd.DataFrame, csv: Path | None, per_group: int = 3) -> list[str]:
    """Failed checks, a few per (implementation, quantity) so every wrong parameter is named, each line naming
    implementation, configuration, quantity, errors and tolerance (or the reason when there is no error value)."""
    bad = df[df["status"].isin(["FAIL", "error"])]
    out = []
    for (impl, quantity), group in bad.groupby(["impl", "quantity"], sort=False):
        for _, r in group.head(per_group).iterrows():
            dtype = r["dtype"] if r.precision == "fp32" else f"{r['dtype']}/{r.precision}"
            cfg = f"{r.hidden}/{r.output} {r.loss_fn} l2={r.l2:g} {r.D}-{r.H}-{r.C} N={r.N} {dtype} {r.device}"
            cfg += "" if r.variant == "normal" else f" {r.variant}"
            if r.status == "error":
                out.append(f"ERROR {impl} [{cfg}]: {r.problem}")
            elif pd.isna(r.max_abs_err):
                out.append(f"FAIL  {impl} [{cfg}] {quantity}: {r.problem}")
            else:
                out.append(
                    f"FAIL  {impl} [{cfg}] {quantity}: max abs err {r.max_abs_err:.3g}, "
                    f"max rel err {r.max_rel_err:.3g} > tol {r.tol:.3g} ({r.problem})"
                )
        if len(group) > per_group:
            what = "errors" if quantity == "-" else f"{quantity} failures"
            where = f" (every row is in {csv})" if csv else " (--csv FILE writes every row)"
            out.append(f"      ... {len(group) - per_group} more {impl} {what}{where}")
    return out


def concentration(df: pd.DataFrame) -> list[str]:
    """Per implementation with failures: the options every failing case shares while passing cases do not
    (e.g. 'only hidden=sigmoid; only N=7,64'), or that failures spread over every option."""
    d = df.assign(shape=df["D"].astype(str) + "-" + df["H"].astype(str) + "-" + df["C"].astype(str))
    d = d[d["status"] != "unsupported"]
    lines = []
    for impl, g in d.groupby("impl", sort=False):
        bad = g[g["status"].isin(["FAIL", "error"])]
        if bad.empty:
            continue
        only = []
        for facet in FACETS:
            everywhere, failing = set(g[facet]), set(bad[facet])
            if failing < everywhere:
                vals = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(failing))
                only.append(f"only {facet}={vals}")
        cases = len(bad.drop_duplicates(list(CASE_KEY)))
        total = len(g.drop_duplicates(list(CASE_KEY)))
        where = "; ".join(only) if only else "spread over every option checked"
        lines.append(f"WHERE {impl}: {cases} of {total} cases fail, {where}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    suffix = "_per_sample" if args.per_sample else ("" if args.precision == "fp32" else f"_{args.precision}")
    default_csv = DEFAULT_CSV.with_name(f"verification{suffix}.csv")
    # only the full default matrix over the whole registry replaces the committed CSV; a narrowed run writes none
    csv = Path(args.csv) if args.csv else (default_csv if whole_default_run(args) else None)
    try:
        matrix = matrix_from_args(args)
        if csv:
            check_writable_csv(csv)
        torch.set_num_threads(args.threads)
        executors = resolve_impls(args.impl, args.timeout, args.threads)
        if matrix.per_sample:
            executors = keep_per_sample(executors)
        if matrix.precision != "fp32":
            executors = keep_precision(executors, matrix.precision)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # verification runs in true fp32
    torch.backends.cudnn.allow_tf32 = False
    try:
        rows, plan = run(executors, matrix, progress=not args.quiet)
    finally:
        close_all(executors)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    print(summarize(df))
    for line in failures(df, csv):
        print(line)
    for line in concentration(df):
        print(line)
    if csv:
        atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
        print(f"wrote {csv} ({len(df)} rows)")
    missing = missing_cases(rows, plan)
    if missing:
        print(f"INCOMPLETE: {len(missing)} of {len(plan)} planned cases reported nothing, e.g. {missing[0].label}")
        return 1
    bad = df[df["status"].isin(["FAIL", "error"])]
    if len(bad):
        n_fail, n_err = int((bad["status"] == "FAIL").sum()), int((bad["status"] == "error").sum())
        named = ", ".join(sorted(set(bad["quantity"]) - {"-"}))
        parts = [f"{n_fail} failed checks ({named})" if n_fail else "", f"{n_err} errors" if n_err else ""]
        print(f"MISMATCH: {' and '.join(p for p in parts if p)} in {len(plan)} planned cases")
        return 1
    if not (df["status"] == "ok").any():
        print("NOTHING VERIFIED: every configuration was unsupported")
        return 1
    n_ok = int((df["status"] == "ok").sum())
    where = "" if matrix.precision == "fp32" else f", computed in {matrix.precision}"
    emulated = " (emulated)" if matrix.precision != "fp32" and matrix.allow_emulated else ""
    print(
        f"OK: {n_ok} checks in {len(plan)} planned cases match the float64 oracle{where}{emulated} "
        f"({args.threads} torch thread(s))"
    )
    return 0


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
