"""`python -m verification.reproduce NAME [...]`: run source experiments, print reference vs ours, write CSV + PNG.

Exit 0 when every experiment ran (a check inside an experiment that fails raises, exit 1), 2 on bad usage or
missing/corrupt data (one line).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from verification.reproduce import EXPERIMENTS, module


def build_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:10s} {module(name).TITLE}" for name in EXPERIMENTS]
    p = argparse.ArgumentParser(
        prog="python -m verification.reproduce",
        description="Reproduce the project's source experiments with the registered implementations.",
        epilog="experiments:\n" + "\n".join(lines) + "\n  all        every one of them, in this order",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="experiment name(s), or 'all'")
    p.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("TWOLAYER_QUICK") == "1",
        help="small fast form for CI (fewer starts/steps; same code; default when TWOLAYER_QUICK=1)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed, recorded in every CSV (default 0)")
    p.add_argument(
        "--mnist",
        type=Path,
        default=None,
        help="folder with full MNIST in torchvision's layout DIR/MNIST/raw/*-ubyte[.gz] "
        "(default: the 5000 embedded digits)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("reports/results/reproduce"), help="results folder (default %(default)s)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="where cs231n draws its toy data and rumelhart runs its study (default cpu); the others run on cpu",
    )
    p.add_argument("--full-loop", action="store_true", help="epfl: run the per-sample loop for all 1000 steps")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    import torch

    from reports.provenance import project_commit
    from reports.reproduced import render
    from verification.data import DataError, load
    from verification.reproduce.common import Options, finish

    args = build_parser().parse_args(argv)
    names = list(EXPERIMENTS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        print(f"error: unknown experiment {unknown[0]!r}; known: {', '.join(EXPERIMENTS)}, all", file=sys.stderr)
        return 2
    cpu_only = [n for n in names if args.device not in module(n).DEVICES]
    if cpu_only:
        able = ", ".join(n for n in EXPERIMENTS if args.device in module(n).DEVICES)
        print(
            f"error: --device {args.device}: {', '.join(cpu_only)} run on cpu only; choose from {able}", file=sys.stderr
        )
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: CUDA is not available (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    data = None
    try:
        if any(module(n).USES_MNIST for n in names):
            data = load(args.mnist)  # once for every experiment, and before any: missing or corrupt data fail fast
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    project_commit()  # cached now: every summary records the code at the run's start
    opts = Options(
        seed=args.seed,
        quick=args.quick,
        mnist=args.mnist,
        out=args.out,
        progress=not args.quiet,
        extra={"full_loop": args.full_loop},
        data=data,
        device=args.device,
    )
    failed = []
    for name in names:
        mod = module(name)
        print(f"== {name}: {mod.TITLE}\n   source: {mod.SOURCE}", flush=True)
        result = mod.run(opts)
        finish(result, opts, mod.data_label(opts), EXPERIMENTS.index(name), mod.PLOTS)
        pngs = render(opts.out / name)
        width = max(len(r.quantity) for r in result.rows)
        for r in result.rows:
            mark = f"  [{r.status}]" if r.status else ""
            print(f"   {r.quantity:<{width}}  reference: {r.reference:<24}  ours: {r.ours}{mark}")
        failed += [f"{name}: {r.quantity}" for r in result.rows if r.failed]
        print(f"   {result.seconds:.1f} s; wrote {opts.out / name}/ (summary.csv, {len(pngs)} plots)", flush=True)
    for line in failed:
        print(f"FAILED CHECK {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    from reports.cli import run as run_cli

    run_cli(main)
