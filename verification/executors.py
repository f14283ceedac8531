"""Which implementations a run checks, and how: registered ones in this process, plug-ins each in a child process;
those that cannot run the requested precision or give per-sample gradients are named and left out."""

from __future__ import annotations

import sys
from collections.abc import Callable

import impls
from verification.forms import Options
from verification.isolate import Isolated, PluginLoadError
from verification.options import UsageError
from verification.plugin import is_plugin_ref
from verification.runner import Executor, InProcess


def resolve_impls(
    refs: list[str],
    timeout: float,
    threads: int,
    layout: str = "linear",
    loss_ref: str = "",
    options: Options | None = None,
) -> dict[str, Executor]:
    """Registry names -> in-process executors; plug-in references -> a child process each, started and loaded
    now (UsageError on an unknown name or a plug-in that cannot be loaded; nothing has run yet)."""
    if not refs:
        return {name: InProcess(impls.get(name)) for name in impls.names()}
    out: dict[str, Executor] = {}
    try:
        for ref in refs:
            if is_plugin_ref(ref):
                out[ref] = Isolated(ref, timeout, threads, layout, loss_ref, options)
            else:
                out[ref] = InProcess(impls.get(ref))
    except (PluginLoadError, impls.UnknownImplementation) as exc:
        close_all(out)
        raise UsageError(str(exc)) from None
    return out


def keep(executors: dict[str, Executor], why_not: Callable, none_left: str) -> dict[str, Executor]:
    """The executors for which why_not(cls) is None (plug-ins always stay: the user's function is called as
    asked); one 'unsupported: ...' line for each one left out, and a UsageError (exit 2) when none is left."""
    kept = {}
    for name, ex in executors.items():
        cls = getattr(ex, "cls", None)
        reason = None if cls is None else why_not(cls)
        if reason is None:
            kept[name] = ex
        else:
            print(f"unsupported: {name} {reason}", file=sys.stderr)
            ex.close()
    if not kept:
        raise UsageError(none_left)
    return kept


def keep_precision(executors: dict[str, Executor], precision: str) -> dict[str, Executor]:
    """Only the implementations that run in `precision`."""

    def why_not(cls: type[impls.Implementation]) -> str | None:
        if precision in cls.precisions:
            return None
        return f"runs in {', '.join(cls.precisions)} only, not {precision}"

    return keep(
        executors, why_not, f"--precision {precision}: none of the selected implementations runs in {precision}"
    )


def keep_per_sample(executors: dict[str, Executor]) -> dict[str, Executor]:
    """Only the implementations that give per-sample gradients."""

    def why_not(cls: type[impls.Implementation]) -> str | None:
        return None if cls.gives_per_sample_grads else "gives no per-sample gradients (--per-sample)"

    return keep(executors, why_not, "--per-sample: none of the selected implementations gives per-sample gradients")


def close_all(executors: dict[str, Executor]) -> None:
    """Stop every plug-in process."""
    for ex in executors.values():
        ex.close()
