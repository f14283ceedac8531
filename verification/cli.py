"""The checker's command line (`python -m verification`, `twolayer check`): check every registered implementation, or
your own backprop, against the oracle. verification.__main__ starts the plug-ins' child processes before importing
this module, so their interpreters load torch while this one does.

Exit 0 if everything matches, 1 if anything does not (or nothing could be checked), 2 on a usage error.
"""

from __future__ import annotations

import sys

import pandas as pd
import torch

from impls.precision import PRECISIONS, strict_fp32
from reports.provenance import cpu_model, project_commit
from reports.record import VERIFICATION_COLUMNS, VerificationRecord, strict_rows, write_verification
from verification.executors import close_all, keep_per_sample, keep_precision, resolve_impls
from verification.forms import usual_note
from verification.options import (
    UsageError,
    build_parser,
    check_writable_csv,
    csv_path,
    layout_options,
    matrix_from_args,
    resolve_form,
    run_of,
)
from verification.report import concentration, failures, summarize, unsupported, verdict
from verification.runner import missing_cases, run


def provenance(run_name: str, devices: tuple[str, ...]) -> dict[str, str]:
    """Which code on which machine: taken before the first case, so a tree edited during a long run is not
    credited with what the code at its start computed."""
    return {
        "run": run_name,
        "commit": project_commit(),
        "torch": torch.__version__,
        "cpu_model": cpu_model(),
        "gpu_name": torch.cuda.get_device_name(0) if "cuda" in devices else "",
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        recognised = resolve_form(args)
        matrix = matrix_from_args(args)
        csv = csv_path(args, matrix.devices)
        if csv:
            check_writable_csv(csv)
        torch.set_num_threads(args.threads)
        options = layout_options(args)
        executors = resolve_impls(args.impl, args.timeout, args.threads, args.layout, args.loss_fn, options)
        if matrix.per_sample:
            executors = keep_per_sample(executors)
        if PRECISIONS[matrix.precision].reduced:
            executors = keep_precision(executors, matrix.precision)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    strict_fp32()  # fp32 means fp32; a tf32 case turns TF32 on inside its own context
    header = [note] if (note := usual_note(args.layout, vars(args), recognised.why, recognised.defined)) else []
    header += recognised.notes
    source = provenance(run_of(csv) if csv else "", matrix.devices)
    header += [f"checked {name}: {line}" for name, ex in executors.items() for line in getattr(ex, "sources", ())]
    try:
        notes: list[str] = []
        rows, plan = run(executors, matrix, progress=not args.quiet, notes=notes)
    finally:
        close_all(executors)
    for line in (*notes, *header):  # a convention the numbers settled on first: it decides how the rest reads
        print(line)
    recs = [VerificationRecord(**row, **source) for row in rows]  # typed: a malformed row fails here
    df = pd.DataFrame([r.__dict__ for r in recs], columns=list(VERIFICATION_COLUMNS))
    df["status"] = df["status"].map(str)  # the CSV's strings, as a reader of the file sees them
    if args.strict:
        df = strict_rows(df)
    print(summarize(df))
    for line in (*unsupported(df), *failures(df, csv), *concentration(df)):
        print(line)
    if csv:
        write_verification(csv, recs)
        print(f"wrote {csv} ({len(df)} rows)")
    reduced = PRECISIONS[matrix.precision].reduced
    where = f", computed in {matrix.precision}" if reduced else ""
    where += " (emulated)" if reduced and matrix.allow_emulated else ""
    line, code = verdict(df, plan, missing_cases(rows, plan), f"{where} ({args.threads} torch thread(s))")
    print(line)
    return code
