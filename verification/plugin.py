"""Load a user's backprop function ("path/to/file.py:fn" or "package.module:fn") and wrap it as an implementation."""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.utils._pytree as pytree
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from impls.base import SGD, Grads, ManualSGD, apply_sgd
from impls.precision import TORCH_PRECISIONS, precision_name
from impls.spec import NetSpec
from verification.forms import HINTS, Options
from verification.sources import NOTEBOOK_SUFFIX, Namespace, SourceError
from verification.sources import load as load_source

UserFn = Callable[[dict[str, Tensor], Tensor, Tensor, NetSpec], tuple[Tensor, dict[str, Tensor]]]


class PluginError(ValueError):
    """The plug-in reference cannot be loaded (bad form, missing file, import error, not callable)."""


def is_plugin_ref(ref: str) -> bool:
    """True for 'file.py[:fn]', 'hw.ipynb[:Name]' or 'pkg.mod:fn'; registry names contain neither ':' nor a suffix."""
    return ":" in ref or ref.endswith((".py", NOTEBOOK_SUFFIX))


def split_ref(ref: str) -> tuple[str, str]:
    """(file or module, attribute or ''): 'hw.ipynb' -> ('hw.ipynb', ''), 'a/b.py:fn' -> ('a/b.py', 'fn')."""
    if ref.endswith((".py", NOTEBOOK_SUFFIX)):
        return ref, ""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise PluginError(
            f"plug-in {ref!r} must look like path/to/file.py[:NAME], homework.ipynb[:NAME] or package.module:NAME"
        )
    return target, attr


def load_namespace(target: str) -> Namespace:
    """The names a file, notebook or importable module defines (verification.sources); PluginError on failure."""
    if target.endswith((".py", NOTEBOOK_SUFFIX)) or "/" in target or "\\" in target:
        try:
            return load_source(Path(target))
        except SourceError as exc:
            raise PluginError(str(exc)) from None
    try:
        module = importlib.import_module(target)
    except Exception as exc:
        raise PluginError(f"importing module {target} failed: {type(exc).__name__}: {exc}") from exc
    return Namespace(dict(vars(module)))


def load_function(ref: str, signature: bool = True) -> UserFn:
    """Import the object named by `ref` (a function, or with signature=False any callable, e.g. a class another
    layout wraps); every failure becomes one PluginError line."""
    target, attr = split_ref(ref)
    if not attr:
        raise PluginError(f"plug-in {ref!r} must name its function: {ref}:NAME")
    ns = load_namespace(target)
    try:
        fn = ns.get(attr)
    except SourceError:
        raise PluginError(f"{target} has no attribute {attr!r}") from None
    if not callable(fn):
        raise PluginError(f"{target}:{attr} is not callable")
    if not signature:
        return fn
    try:
        inspect.signature(fn).bind(None, None, None, None)
    except TypeError:
        raise PluginError(f"{target}:{attr} must accept (params, x, t, spec)") from None
    except ValueError:
        pass  # builtins without a signature: let the call decide
    return fn


def _same(a: Tensor, b: Tensor) -> bool:
    """Equal values, NaN equal to NaN (parameters that a NaN gradient made NaN are not a mutation)."""
    return torch.equal(a, b) or (a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all()))


class InputMutated(RuntimeError):
    """The plug-in changed a tensor it was given (params, x or t) in place; callers rely on their tensors."""


class LowPrecisionNotUsed(RuntimeError):
    """A plug-in asked to run in bf16/fp16 computed nothing in that format (an error row, never a pass)."""


class LowPrecisionWitness(TorchDispatchMode):
    """Counts the torch operations that return a tensor of the low dtype while the user's function runs: evidence
    that autocast reached its arithmetic (a NumPy function, or one that casts to float32 itself, shows none)."""

    def __init__(self, low: torch.dtype) -> None:
        super().__init__()
        self.low, self.ops = low, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(o, Tensor) and o.dtype == self.low for o in pytree.tree_leaves(out)):
            self.ops += 1
        return out


def _autocast_dtype(p: Tensor) -> torch.dtype | None:
    """The low dtype autocast is computing in on p's device, or None (gradients may come back in it)."""
    device = p.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None


def plugin_class(
    ref: str, layout: str = "linear", loss_ref: str | None = None, options: Options | None = None
) -> type[ManualSGD]:
    """An implementation class whose loss_and_grads calls the code `ref` names (a file, notebook or module, and the
    layout's first role's name after ':'), written in `layout` (verification.forms; the module layout's loss
    callable is `loss_ref`), on copies of the parameters."""
    from verification.forms import FORMS

    if layout not in FORMS:
        raise PluginError(f"unknown layout {layout!r}; choose from {', '.join(FORMS)}")
    one, options = FORMS[layout], options or Options()
    target, attr = split_ref(ref)
    stood_in: dict[str, str] = {}
    read_as: list[str] = []
    if layout == "linear":
        if not attr and target.endswith((".py", NOTEBOOK_SUFFIX)):  # the file's one fn(params, x, t, spec)
            attr = _the_linear_function(load_namespace(target), target)
        source: object = load_function(f"{target}:{attr}" if attr else ref)
    else:
        source = load_namespace(target)
        stood_in, read_as = source.stood_in, source.notes
        if attr and one.roles[0].name not in dict(options.bind):  # hw.py:MyNet names the form's first role
            options = replace(options, bind=((one.roles[0].name, attr), *options.bind))
    if layout == "module":
        if not loss_ref:
            raise PluginError("the module layout needs the loss callable: --loss-fn FILE.py:fn (or a notebook's)")
        loss = load_function(loss_ref, signature=False)
        names = {**source.names, "loss_fn": loss}
        source = Namespace(names, origin=source.origin, failed=source.failed, path=source.path)
    try:
        fn = one.user_fn(source, options)
    except PluginError:
        raise
    except ValueError as exc:  # the form refuses what it was given (verification.forms): one line
        raise PluginError(f"{ref}: {exc}") from None
    fn.sources = (*read_as, *getattr(fn, "sources", ()), *(f"stood in for {m}: {why}" for m, why in stood_in.items()))
    return function_class(fn, ref)


def _the_linear_function(ns: Namespace, target: str) -> str:
    """The name of the one function fn(params, x, t, spec) a file defines (PluginError when none or several)."""
    from verification.forms.linear import SIGNATURE

    found = []
    for name, obj in ns.names.items():
        try:
            if inspect.isfunction(obj) and tuple(inspect.signature(obj).parameters) == SIGNATURE:
                found.append(name)
        except (TypeError, ValueError):
            continue
    if len(found) != 1:
        which = f"{len(found)} of them ({', '.join(found)})" if found else "none"
        raise PluginError(f"{target} defines {which} fn(params, x, t, spec): name it, {target}:NAME")
    return found[0]


def function_class(fn: UserFn, name: str) -> type[ManualSGD]:
    """An implementation class whose loss_and_grads calls `fn(params, x, t, spec)` on copies of the parameters."""

    class Plugin(ManualSGD):
        summary = f"user function {name}"
        precisions = TORCH_PRECISIONS  # called inside the precision's context (torch.autocast, TF32)

        def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
            super().__init__(spec, params, sgd)
            self.update_skipped = ""
            self.hints: dict[str, str] = {}  # what the layout's adapter saw, per quantity (verification.forms)

        def loss_and_grads(self, p: dict[str, Tensor], x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
            given = {**{k: v.clone() for k, v in p.items()}, "x": x.clone(), "t": t.clone()}
            originals = {**p, "x": x, "t": t}
            low = _autocast_dtype(p["W1"])
            witness = LowPrecisionWitness(low) if low is not None else contextlib.nullcontext()
            with witness:
                out = fn({k: given[k] for k in p}, given["x"], given["t"], self.spec)
            if low is not None and not witness.ops:
                name = precision_name(low)
                raise LowPrecisionNotUsed(
                    f"the function ran no {name} operation under torch.autocast (NumPy, or explicit float32 "
                    f"casts?): it was not computed in {name}, so it cannot be checked in {name}"
                )
            changed = [k for k, v in given.items() if not _same(v, originals[k])]
            if changed:
                raise InputMutated(
                    f"the function modified its argument(s) {', '.join(changed)} in place; "
                    "it must leave the caller's params, x and t unchanged"
                )
            if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
                raise TypeError(f"must return (loss, grads dict), returned {type(out).__name__}")
            loss, grads = out
            grads = dict(grads)
            self.hints = dict(grads.pop(HINTS, None) or {})
            return loss, grads

        def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
            """Like ManualSGD.step, but a malformed gradient skips the update so it can still be compared."""
            loss, grads = self.loss_and_grads(self._p, x, t)
            shapes = self.spec.param_shapes()
            bad = [
                k
                for k in shapes
                if not isinstance(grads.get(k), Tensor)
                or tuple(grads[k].shape) != shapes[k]
                or grads[k].dtype not in (self._p[k].dtype, _autocast_dtype(self._p[k]))
            ]
            if bad:
                self.update_skipped = f"update not applied: gradient {', '.join(bad)} missing, misshapen or mistyped"
                return loss, grads
            with torch.no_grad():
                apply_sgd([self._p[k] for k in shapes], [grads[k].detach() for k in shapes], self._v, self.sgd)
            return loss, grads

    Plugin.name = name
    Plugin.sources = tuple(getattr(fn, "sources", ()))  # what was found where (a notebook's cell), for the report
    return Plugin
