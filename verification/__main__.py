"""`python -m verification`: check every registered implementation, or your own backprop, against the oracle.

Exit 0 if everything matches, 1 if anything does not (or nothing could be checked), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

import impls
from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
from reports.atomic import atomic_write
from verification.plugin import PluginError, is_plugin_ref, plugin_class
from verification.runner import COLUMNS, DTYPES, Matrix, parse_list, run

DEFAULT_CSV = Path("reports/results/verification.csv")
CASE_KEY = ["hidden", "output", "loss_fn", "l2", "D", "H", "C", "N", "dtype", "device"]


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
    p.add_argument("--hidden", default=",".join(HIDDEN_ACTIVATIONS), help="hidden activations, comma-separated")
    p.add_argument("--output", default=",".join(OUTPUT_ACTIVATIONS), help="output activations, comma-separated")
    p.add_argument("--loss", default=",".join(LOSSES), help="losses, comma-separated")
    p.add_argument("--l2", default="0,0.1", help="L2 coefficients, comma-separated (default 0,0.1)")
    p.add_argument(
        "--sizes",
        default="5-4-3,4-4-4",
        help="D-H-C shapes, comma-separated (default 5-4-3,4-4-4: distinct sizes name a misshapen "
        "gradient, equal sizes let a transposed product run and be named by its values)",
    )
    p.add_argument("--batch", default="1,7,64", help="batch sizes, comma-separated")
    p.add_argument("--dtype", default="float32,float64", help="float32 and/or float64")
    p.add_argument("--device", default=None, help="cpu and/or cuda (default: cpu, plus cuda when available)")
    p.add_argument("--steps", type=int, default=4, help="SGD steps in the trajectory check (default 4)")
    p.add_argument("--full", action="store_true", help="also run compiling implementations on every config")
    p.add_argument(
        "--csv",
        default=None,
        help=f"where to write every row (default: {DEFAULT_CSV} when no --impl is given, else none)",
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
        dtypes = parse_list(args.dtype, DTYPES, "dtype")
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
    m = Matrix(hidden, output, loss, l2, sizes, _ints(args.batch, "batch"), dtypes, devices, args.steps, full=args.full)
    if not m.specs():
        raise UsageError("no sensible configuration in that selection (cross_entropy needs --output identity)")
    return m


def resolve_impls(refs: list[str]) -> dict:
    """Registry names and plug-in references -> implementation classes (UsageError on unknown/unloadable)."""
    if not refs:
        return {name: impls.get(name) for name in impls.names()}
    out = {}
    for ref in refs:
        try:
            out[ref] = plugin_class(ref) if is_plugin_ref(ref) else impls.get(ref)
        except (PluginError, impls.UnknownImplementation) as exc:
            raise UsageError(str(exc)) from None
    return out


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
                "cases": len(
                    g.drop_duplicates(["hidden", "output", "loss_fn", "l2", "D", "H", "C", "N", "dtype", "device"])
                ),
                "ok": int((g["status"] == "ok").sum()),
                "failed": int(g["status"].isin(["FAIL", "error"]).sum()),
                "unsupported": int((g["status"] == "unsupported").sum()),
                "worst err/tol": c["err/tol"].max() if len(c) else float("nan"),
            }
        )
    return pd.DataFrame(lines).to_string(index=False, float_format=lambda v: f"{v:.3g}")


def failures(df: pd.DataFrame, per_group: int = 3) -> list[str]:
    """Failed checks, a few per (implementation, quantity) so every wrong parameter is named, each line naming
    implementation, configuration, quantity, errors and tolerance."""
    bad = df[df["status"].isin(["FAIL", "error"])]
    out = []
    for (impl, quantity), group in bad.groupby(["impl", "quantity"], sort=False):
        for _, r in group.head(per_group).iterrows():
            cfg = f"{r.hidden}/{r.output} {r.loss_fn} l2={r.l2:g} {r.D}-{r.H}-{r.C} N={r.N} {r['dtype']} {r.device}"
            if r.status == "error":
                out.append(f"ERROR {impl} [{cfg}]: {r.problem}")
            else:
                out.append(
                    f"FAIL  {impl} [{cfg}] {quantity}: max abs err {r.max_abs_err:.3g}, "
                    f"max rel err {r.max_rel_err:.3g} > tol {r.tol:.3g} ({r.problem})"
                )
        if len(group) > per_group:
            what = "errors" if quantity == "-" else f"{quantity} failures"
            out.append(f"      ... {len(group) - per_group} more {impl} {what} (see the CSV)")
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        matrix = matrix_from_args(args)
        implementations = resolve_impls(args.impl)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # verification runs in true fp32
    torch.backends.cudnn.allow_tf32 = False
    df = pd.DataFrame(run(implementations, matrix, progress=not args.quiet), columns=list(COLUMNS))
    csv = args.csv or (DEFAULT_CSV if not args.impl else None)  # only a whole-registry run replaces the default
    print(summarize(df))
    for line in failures(df):
        print(line)
    if csv:
        atomic_write(csv, lambda tmp: df.to_csv(tmp, index=False))
        print(f"wrote {csv} ({len(df)} rows)")
    if df["status"].isin(["FAIL", "error"]).any():
        bad = df[df["status"].isin(["FAIL", "error"])]
        named = ", ".join(sorted(set(bad["quantity"]) - {"-"})) or "errors"
        print(f"MISMATCH: {len(bad)} failed checks ({named})")
        return 1
    if not (df["status"] == "ok").any():
        print("NOTHING VERIFIED: every configuration was unsupported")
        return 1
    print(f"OK: {int((df['status'] == 'ok').sum())} checks match the float64 oracle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
