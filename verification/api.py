"""check_backprop(): the verifier as a Python call, for a user's own test suite.

    from verification import check_backprop
    check_backprop(TwoLayerNet, layout="cs231n")     # raises AssertionError naming what is wrong

It runs the same matrix as `python -m verification` (narrowed by the keyword arguments), compares with the same
float64 oracle at the same derived tolerances, and returns a typed Report; when anything fails, errs or does not
report back it raises an AssertionError whose message is the per-parameter table -- error, tolerance, and a hint in
words where the numbers allow one. An object or namespace runs in this process (it is the caller's own code); a path
to a .py file or a notebook runs in an isolated child process, as the command line does. In Jupyter the Report
shows as an HTML table (Report._repr_html_), and a failure shows that table before it raises.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from types import ModuleType

import pandas as pd
import torch

from reports.record import BAD, VERIFICATION_COLUMNS, Status, VerificationRecord, status_is, strict_rows
from verification.forms import CONFIGURATION, FORMS, Options, configuration, parse_bind
from verification.isolate import DEFAULT_TIMEOUT_S, Isolated, PluginLoadError
from verification.plugin import function_class
from verification.report import concentration, verdict
from verification.runner import VARIANTS, InProcess, Matrix, case_label, missing_cases, run
from verification.sources import Defined


@dataclass(frozen=True)
class Report:
    """What check_backprop found: a row per compared quantity of every case, the verdict line, and whether it holds."""

    rows: pd.DataFrame  # reports.record.VerificationRecord columns
    verdict: str
    ok: bool
    sources: tuple[str, ...] = ()  # what was checked from where: "backward_pass: ... from cell 14 (In [146]): def ..."

    def __repr__(self) -> str:
        return f"Report({self.verdict!r}, {len(self.rows)} rows)"

    def _repr_html_(self) -> str:
        """Jupyter's view: the verdict, where failures concentrate, the failing (or fragile) rows with their hints,
        and a count of the rows that passed; the whole table is report.rows."""
        bad = self.rows[status_is(self.rows["status"], Status.FAIL, Status.ERROR, Status.FRAGILE)]
        colour = "#1a7f37" if self.ok else "#cf222e"
        parts = [f'<p style="color:{colour};font-weight:bold">{html.escape(self.verdict)}</p>']
        parts += [f"<p>{html.escape(line)}</p>" for line in (*concentration(self.rows), *self.sources)]
        if len(bad):
            parts.append(_html_table(bad.head(50)))
        n_ok = int(status_is(self.rows["status"], Status.OK).sum())
        parts.append(f"<p>{n_ok} checks within tolerance of {len(self.rows)} rows (report.rows has every one)</p>")
        return "".join(parts)

    def failures(self, limit: int = 20) -> str:
        """The per-parameter table of what failed: case, quantity, error, tolerance, problem (with its hint)."""
        bad = self.rows[status_is(self.rows["status"], Status.FAIL, Status.ERROR)]
        bad = pd.concat([bad, self.rows[status_is(self.rows["status"], Status.FRAGILE)]])  # the failures first
        lines = [f"{'case':<58} {'quantity':<10} {'rel. error':>10} {'tolerance':>10}  problem"]
        for _, r in bad.head(limit).iterrows():
            err = "-" if pd.isna(r["max_rel_err"]) else f"{r['max_rel_err']:.3g}"
            tol = "-" if pd.isna(r["tol"]) else f"{r['tol']:.3g}"
            lines.append(f"{case_label(r):<58} {r['quantity']:<10} {err:>10} {tol:>10}  {r['problem']}")
        if len(bad) > limit:
            lines.append(f"... and {len(bad) - limit} more failed or errored checks (report.rows has every row)")
        return "\n".join([*concentration(self.rows), *lines])


def check_backprop(
    fn: object,
    *,
    layout: str | None = None,
    hidden: Sequence[str] | None = None,
    output: Sequence[str] | None = None,
    loss: Sequence[str] | None = None,
    l2: Sequence[float] | float | None = None,
    sizes: Sequence[tuple[int, int, int]] | None = None,
    batches: Sequence[int] = (1, 7, 64),
    dtype: Sequence[str] | None = None,
    device: Sequence[str] = ("cpu",),
    variants: Sequence[str] = VARIANTS,
    loss_fn: Callable | str | None = None,
    name: str | None = None,
    bind: Mapping[str, str] | None = None,
    l2_convention: str = "auto",
    strict: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Report:
    """Check `fn` against the float64 oracle; the Report, or an AssertionError whose message is the per-parameter
    table. `fn` is the object, a namespace (a module, a notebook's globals(), a dict) in which the form finds its
    roles by name, or a path "hw.py" / "hw.ipynb" (with ":NAME" for the first role), run in an isolated child
    process. `layout` is the form the code is written in (verification.forms), recognised from its names when not
    given. Single strings are accepted where sequences are (hidden="relu"); hidden, output, loss, l2 and sizes
    default to the form's usual net (its course's: epfl's tanh/tanh/sse), else every one; dtype to both, or float64
    for NumPy code (as its author wrote it). `strict` fails the fragile verdicts (right on every ordinary input,
    breaking only at extreme logits) instead of reporting them beside a pass."""
    __tracebackhide__ = True  # pytest: the failure shows the user's test line and the table, not this function
    if layout is not None and layout not in FORMS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(FORMS)}")
    layout, why, numpy_only, defined = _form(fn, layout, loss_fn)
    options = Options(parse_bind(bind), l2_convention)
    given = {"hidden": hidden, "output": output, "loss": loss, "l2": l2}
    given["sizes"] = None if sizes is None else ",".join("-".join(map(str, s)) for s in sizes)
    given_text = {k: None if v is None else ",".join(map(str, _seq(v))) for k, v in given.items()}
    config = configuration(layout, given_text, defined)
    hidden, output, loss, l2 = (tuple(v for v in config[k].split(",") if v) for k in CONFIGURATION[:4])  # () stays ()
    shapes = tuple(tuple(int(v) for v in s.split("-")) for s in config["sizes"].split(",") if s)
    dtypes = _seq(dtype) if dtype is not None else ("float64",) if numpy_only else ("float32", "float64")
    matrix = Matrix(
        hidden, output, loss, tuple(float(v) for v in l2), shapes,
        tuple(_seq(batches)), dtypes, _seq(device), variants=_seq(variants),
    )  # fmt: skip
    if not matrix.specs():
        raise ValueError("no sensible configuration in that selection (cross_entropy needs output identity)")
    if isinstance(fn, str | PathLike):
        ref = str(fn)
        label = name or ref
        loss_ref = loss_fn if isinstance(loss_fn, str) else ""
        try:
            executor = Isolated(ref, timeout=timeout, layout=layout, loss_ref=loss_ref, options=options)
        except PluginLoadError as exc:
            raise ValueError(str(exc)) from None
        sources = list(executor.sources)
    else:
        source = {"model": fn, "loss_fn": loss_fn} if layout == "module" else fn
        user = FORMS[layout].user_fn(source, options)
        label = name or _label(fn, layout)

        def rebuild(opts: Options) -> type:
            return function_class(FORMS[layout].user_fn(source, opts), label)

        executor = InProcess(function_class(user, label), layout, options, rebuild)
        sources = list(getattr(user, "sources", ()))
    notes: list[str] = []
    if why:
        sources.insert(0, f"{label}: recognised as the {layout} form ({why})")
    try:
        rows, plan = run({label: executor}, matrix, progress=False, notes=notes)
    finally:
        executor.close()
    source_row = {"run": "check_backprop", "commit": "", "torch": torch.__version__, "cpu_model": "", "gpu_name": ""}
    records = [VerificationRecord(**row, **source_row) for row in rows]
    df = pd.DataFrame([r.__dict__ for r in records], columns=list(VERIFICATION_COLUMNS))
    df["status"] = df["status"].map(str)
    if strict:
        df = strict_rows(df)
    line, code = verdict(df, plan, missing_cases(rows, plan), "")
    report = Report(df, line, code == 0, tuple(sources + notes))
    if not report.ok:
        show_in_notebook(report)
        raise BackpropMismatch(report)
    return report


class BackpropMismatch(AssertionError):
    """check_backprop's failure: the message is the verdict and the per-parameter table; .report has every row."""

    def __init__(self, report: Report) -> None:
        self.report = report
        unsupported = report.rows[status_is(report.rows["status"], Status.UNSUPPORTED)]
        why = sorted(set(unsupported["problem"]))[:3]
        note = f"\nunsupported here: {'; '.join(why)}" if why else ""
        bad = report.rows["status"].isin(BAD).any()
        checked = "".join(f"\nchecked {line}" for line in report.sources)
        super().__init__(f"{report.verdict}\n{report.failures() if bad else ''}{note}{checked}".rstrip())

    def _render_traceback_(self) -> list[str]:
        """IPython: the message alone, without the checker's frames (the table was displayed above it)."""
        return [f"BackpropMismatch: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


def show_in_notebook(report: Report) -> None:
    """Display the report's HTML table when running inside an IPython kernel (a notebook); else nothing."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        display(report)


def _html_table(rows: pd.DataFrame) -> str:
    head = "".join(
        f"<th>{html.escape(c)}</th>" for c in ("case", "quantity", "status", "rel. error", "tolerance", "problem")
    )
    body = []
    for _, r in rows.iterrows():
        err = "-" if pd.isna(r["max_rel_err"]) else f"{r['max_rel_err']:.3g}"
        tol = "-" if pd.isna(r["tol"]) else f"{r['tol']:.3g}"
        colour = _COLOURS.get(str(r["status"]), "")
        cells = (case_label(r), r["quantity"], r["status"], err, tol, r["problem"])
        body.append(f'<tr style="background:{colour}">' + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_COLOURS = {  # a row's background in the Jupyter view, by reports.record.Status
    Status.FAIL.value: "#fbe3e4",
    Status.ERROR.value: "#fbe3e4",
    Status.FRAGILE.value: "#fff4d6",
    Status.OK.value: "",
    Status.UNSUPPORTED.value: "#f0f0f0",
}


def _form(fn: object, layout: str | None, loss_fn: object) -> tuple[str, str, bool, Defined | None]:
    """(form, why it was recognised, NumPy code?, what it defines) of what check_backprop was given; ValueError (one
    line) when no form, or several, fit it."""
    from verification.forms.core import Unrecognised, recognise_object
    from verification.options import UsageError, form_of

    try:
        if isinstance(fn, str | PathLike):
            form, why, defined = form_of(str(fn))
        else:
            found, why, defined = recognise_object(fn, with_loss_fn=loss_fn is not None)
            form = found.name
    except (UsageError, Unrecognised) as exc:
        if layout is not None:
            return layout, "", False, None
        if inspect.isfunction(fn):  # a function of no course's form: the project's own signature, as before
            return "linear", "", False, None
        raise ValueError(str(exc)) from None
    numpy_only = defined is not None and defined.numpy_only
    return (layout, "", numpy_only, defined) if layout is not None else (form, why, numpy_only, defined)


def _label(fn: object, layout: str) -> str:
    """How the rows name the checked code: a class's or function's name, a module's, or the layout's code."""
    if isinstance(fn, ModuleType):
        return fn.__name__
    if isinstance(fn, Mapping):
        return str(fn.get("__name__", f"{layout} code")).replace("__main__", f"{layout} code")
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _seq(value: object) -> tuple:
    return (value,) if isinstance(value, str | int | float) else tuple(value)
