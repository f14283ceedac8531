"""The machinery every form shares: what a form declares (Form), how its roles are found in the user's code (Role,
Bound, Options), how values coming back are read (as_tensor, as_loss, as_vector), which net a check runs
(configuration), and how a file's form is recognised from the names it defines (Defined, recognise).

A form is one way people write the net -- a course's functions or classes with their own names, shapes and
conventions -- adapted to the checker's one signature fn(params, x, t, spec) -> (loss, grads) in the nn.Linear
layout (W1 (H, D), b1 (H,), W2 (C, H), b2 (C,)). Each lives in a module of this package and registers itself
(register(Form(...))), with its recognition rule beside it (the model: Pillow's image plug-ins, each with its own
_accept, and Pygments' lexers, whose ambiguous guesses are reported, never picked silently).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import torch
from torch import Tensor

from impls.base import UnsupportedConfig
from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, NetSpec
from verification.runner import CaseError
from verification.sources import Defined, Namespace, SourceError

UserFn = Callable[[dict[str, Tensor], Tensor, Tensor, NetSpec], tuple[object, dict[str, object]]]
HINTS = "__hints__"  #: a grads dict's key for what an adapter saw (quantity -> words), read by verification.plugin
#: cs231n's ways of writing L2, as (factor, biases): reg passed = factor * l2 (0.5 * reg * sum W^2 == l2 * sum W^2 with
#: reg = 2 l2); biases: the penalty covers the biases too, reg * sum(W^2 + b^2), which the adapter takes back out of
#: the loss and the bias gradients exactly (l2 sum b^2, 2 l2 b: the same objective otherwise). "auto" runs "full"
#: and, when every number of the l2 > 0 cases matches another exactly, checks those cases again under it
#: (verification.conventions) -- an explicit choice is kept
L2_CONVENTIONS = {"full": (1.0, False), "half": (2.0, False), "full+biases": (1.0, True), "half+biases": (2.0, True)}
L2_CHOICES = ("auto", *L2_CONVENTIONS)


class LayoutMismatch(CaseError):
    """The user's code returned shapes of another form than the one asked for (one clear line)."""


@dataclass(frozen=True)
class Options:
    """How the user's code is written beyond its form (plain strings: it crosses to the isolated child)."""

    bind: tuple[tuple[str, str], ...] = ()  # (role, "name" or "name(arg, ...)" in the form's argument names)
    l2_convention: str = "auto"  # cs231n: "full" reg * sum W^2, "half" 0.5 * reg * sum W^2, "auto" (see above)

    def __post_init__(self) -> None:
        if self.l2_convention not in L2_CHOICES:
            raise ValueError(f"unknown l2_convention {self.l2_convention!r}; choose from {', '.join(L2_CHOICES)}")
        for role, target in self.bind:
            if not _BIND.fullmatch(target.strip()):
                raise ValueError(f"bind {role}={target!r}: expected NAME or NAME(arg, ...)")

    @property
    def l2_factor(self) -> float:
        """What the code is passed as reg, per unit of the spec's l2 ("auto" runs the project's convention)."""
        return L2_CONVENTIONS.get(self.l2_convention, (1.0, False))[0]

    @property
    def l2_biases(self) -> bool:
        """The code's L2 penalty covers the biases too (taken back out by the adapter)."""
        return L2_CONVENTIONS.get(self.l2_convention, (1.0, False))[1]


_BIND = re.compile(r"([A-Za-z_][\w.]*)\s*(?:\(([\w\s,]*)\))?")


def parse_bind(items: Mapping[str, str] | list[str] | tuple[str, ...] | None) -> tuple[tuple[str, str], ...]:
    """{'role': 'name(...)'} or ['role=name(...)', ...] as Options.bind (ValueError on a malformed item)."""
    if not items:
        return ()
    if isinstance(items, Mapping):
        return tuple((str(k), str(v)) for k, v in items.items())
    out = []
    for item in items:
        role, sep, target = item.partition("=")
        if not sep or not role.strip() or not target.strip():
            raise ValueError(f"--bind {item!r}: expected ROLE=NAME or ROLE=NAME(arg, ...)")
        out.append((role.strip(), target.strip()))
    return tuple(out)


@dataclass(frozen=True)
class Role:
    """A piece of the user's code a form calls: its default name(s) and, for a function, its arguments."""

    name: str
    also: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    optional: bool = False


@dataclass
class Bound:
    """The user's objects by role, each function called with the form's arguments in its own order."""

    objects: dict[str, object]
    orders: dict[str, tuple[str, ...] | None] = field(default_factory=dict)  # role -> the user's argument order
    sources: list[str] = field(default_factory=list)  # what was found where, for the report
    missing: dict[str, str] = field(default_factory=dict)  # optional role -> why it is absent

    def has(self, role: str) -> bool:
        return role in self.objects

    def get(self, role: str) -> object:
        if role not in self.objects:
            raise UnsupportedConfig(self.missing.get(role, f"no {role} given"))
        return self.objects[role]

    def call(self, role: str, form_args: tuple[str, ...]) -> Callable[..., object]:
        """The role's function as f(*args in the form's order)."""
        fn, order = self.get(role), self.orders.get(role)
        if not order:
            return fn  # type: ignore[return-value]

        def reordered(*args: object) -> object:
            named = dict(zip(form_args, args, strict=True))
            return fn(*(named[a] for a in order))  # type: ignore[operator]

        return reordered


def _accepts_nothing(defined: Defined) -> str | None:
    return None


@dataclass(frozen=True)
class Form:
    """One way of writing the net: its roles, what it supports, how its code is called in the linear layout, its
    course's usual net, and how a file written in it is recognised."""

    name: str
    summary: str  # what it expects, one line (the docs' table)
    adapt: Callable[[Bound, Options], UserFn]
    roles: tuple[Role, ...]
    supports: Callable[[NetSpec], str | None] = lambda spec: None  # None, or why a spec is not this form's
    usual: tuple[tuple[str, str], ...] = ()  # the course's own configuration (CLI option -> value): the default
    asks: tuple[str, ...] = ()  # options the user's code fixes that have no usual value: the user must say them
    #: evidence in words that a file is written in this form ("defines forward_propagation and ..."), or None
    recognise: Callable[[Defined], str | None] = _accepts_nothing
    fallback: bool = False  # recognised only when no other form is (a torch model beside a course's classes)
    #: the usual net of one file where its code says more than the course's (its Tanh class, its L2 regulariser)
    usual_for: Callable[[Defined], dict[str, str]] | None = None
    course: str = ""  # whose form it is (the docs' table)

    @property
    def rule(self) -> str:
        """How a file written in this form is recognised, in words (its recognise function's docstring)."""
        return " ".join((self.recognise.__doc__ or "").split())

    def user_fn(self, source: object, options: Options | None = None) -> UserFn:
        """The user's code as fn(params, x, t, spec); a spec this form does not cover raises UnsupportedConfig
        (reported as unsupported, not failed) before the user's code runs. fn.sources says what was found where."""
        options = options or Options()
        bound = self.bind(source, options)
        adapted = self.adapt(bound, options)

        def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
            reason = self.supports(spec)
            if reason:
                raise UnsupportedConfig(reason)
            return adapted(params, x, t, spec)

        fn.sources = tuple(bound.sources)  # type: ignore[attr-defined]
        return fn

    def bind(self, source: object, options: Options) -> Bound:
        """Find each role in the source (ValueError, one line, when a needed one is absent)."""
        unknown = sorted({r for r, _ in options.bind} - {r.name for r in self.roles})
        if unknown:
            raise ValueError(f"--bind {unknown[0]}: the {self.name} form's roles are {self.role_list()}")
        ns = namespace_of(source)
        if ns is None:  # one object: the form's first role
            first = self.roles[0]
            needed = [r.name for r in self.roles[1:] if not r.optional]
            if needed:
                raise ValueError(
                    f"the {self.name} form needs {self.role_list()}: give the module, the file or notebook, "
                    "globals() or a dict of them, not one object"
                )
            if self.name == "linear" and inspect.isclass(source):
                raise ValueError(_CLASS_IN_LINEAR.format(name=source.__name__))
            ns = Namespace({first.name: source})
        binds = dict(options.bind)
        bound = Bound({})
        for role in self.roles:
            target = binds.get(role.name)
            name, order = _parse_target(target) if target else (None, None)
            candidates = [name] if name else [role.name, *role.also]
            found = next((c for c in candidates if c in ns.names or c in ns.failed), None)
            if found is None and not name:  # Activation_ReLu, LayerDense, CategoricalCrossEntropy: spelling aside
                keys = {spelling(c) for c in candidates}
                found = next((n for n in [*ns.names, *ns.failed] if spelling(n) in keys and _defined(ns, n)), None)
            if found is None:
                why = f"no {' or '.join(candidates)}" + (f" in {ns.path.name}" if ns.path else "")
                if role.optional:
                    bound.missing[role.name] = f"{why} (the {self.name} form's {role.name})"
                    continue
                hint = f"; --bind {role.name}=YOUR_NAME (bind={{'{role.name}': ...}}) maps another name"
                raise ValueError(f"{why}: the {self.name} form needs {self.role_list()}{hint}")
            try:
                obj = ns.get(found)
            except SourceError as exc:
                raise ValueError(str(exc)) from None
            bound.objects[role.name] = obj
            if role.args and callable(obj) and not inspect.isclass(obj):
                order = order or _order_by_names(obj, role.args)
                if order and sorted(order) != sorted(role.args):
                    raise ValueError(
                        f"--bind {role.name}: the arguments must be a permutation of {', '.join(role.args)}"
                    )
                bound.orders[role.name] = order if order != role.args else None
            where = ns.origin.get(found, "")
            called = f" called as {found}({', '.join(bound.orders[role.name])})" if bound.orders.get(role.name) else ""
            if where or called or found != role.name:
                bound.sources.append(f"{role.name}: {found}{called}" + (f" from {where}" if where else ""))
        return bound

    def role_list(self) -> str:
        return ", ".join(r.name + (" (optional)" if r.optional else "") for r in self.roles)


_CLASS_IN_LINEAR = (
    "{name} is a class; the linear form takes a function fn(params, x, t, spec) -> (loss, grads). "
    "For a class give its form (--layout, or layout= in check_backprop): "
    "cs231n (TwoLayerNet(D, H, C).loss(X, y, reg)), nielsen (Network([D, H, C]).backprop(x, y)), "
    "layers (Linear/ReLU/Sigmoid objects), nnfs (Layer_Dense) or module (an nn.Module, with a loss_fn)"
)


def _defined(ns: Namespace, name: str) -> bool:
    """The name is the code's own (a class or function it defines), not an import that happens to match."""
    obj = ns.names.get(name)
    return name in ns.failed or inspect.isclass(obj) or inspect.isfunction(obj)


def spelling(name: str) -> str:
    """A name with the case and underscores aside: how readers' renamings of a course's names are matched
    (Layer_Dense, LayerDense, layer_dense)."""
    return name.lower().replace("_", "")


def attribute(obj: object, *names: str) -> str | None:
    """The first of `names` the object has, else one that matches one of them with the case and underscores aside
    (dWeights, d_weights for dweights), else None."""
    found = next((n for n in names if hasattr(obj, n)), None)
    if found is not None:
        return found
    keys = {spelling(n) for n in names}
    return next((a for a in vars(obj) if spelling(a) in keys), None) if hasattr(obj, "__dict__") else None


def namespace_of(source: object) -> Namespace | None:
    """The source as a Namespace (a module, a dict such as a notebook's globals()), or None for one object."""
    if isinstance(source, Namespace):
        return source
    if isinstance(source, ModuleType):
        return Namespace(dict(vars(source)))
    if isinstance(source, Mapping):
        return Namespace(dict(source), origin=dict(source.get("__twolayer_origin__", {}) or {}))
    return None


def _parse_target(target: str) -> tuple[str, tuple[str, ...] | None]:
    m = _BIND.fullmatch(target.strip())
    if not m:
        raise ValueError(f"bind {target!r}: expected NAME or NAME(arg, ...)")
    args = tuple(a.strip() for a in m.group(2).split(",") if a.strip()) if m.group(2) is not None else None
    return m.group(1), args


def _order_by_names(fn: object, args: tuple[str, ...]) -> tuple[str, ...] | None:
    """The function's parameter order when its names are the form's in another order (case aside), else None."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    lower = {a.lower(): a for a in args}
    if len(params) == len(args) and sorted(p.lower() for p in params) == sorted(lower):
        return tuple(lower[p.lower()] for p in params)
    return None


def crash(exc: BaseException) -> str:
    """'TypeError: message (at file.py:12)' (verification.runner.crash_line)."""
    from verification.runner import crash_line

    return crash_line(exc)


def call_with(fn: Callable[..., object], *args: object, **optional: object) -> object:
    """fn(*args), with each keyword of `optional` that fn's signature names (nnfs's forward(inputs, training)); one
    required parameter left unfilled under another name (forward(inputs, train)) takes the one optional unused."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    extra = {k: v for k, v in optional.items() if k in params}
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional[len(args) :] if p.default is p.empty and p.name not in extra]
    unused = [v for k, v in optional.items() if k not in extra]
    if len(required) == 1 and len(unused) == 1 and required[0] is positional[len(args)]:
        return fn(*args, unused[0], **extra)
    return fn(*args, **extra)


# ---- objects kept as a training loop keeps them ---------------------------------------------------------------------


class Kept:
    """One object per role and shape for the whole check, built on first use, as a training loop builds its net once:
    what an object keeps between calls (momentum, a cache of the last batch, gradients never zeroed) meets the next
    call as it would in training, and the trajectory's later steps name it (runner.STATEFUL_HINT). A fresh object
    per call hid it: each call then looked like a first step."""

    def __init__(self) -> None:
        self._objects: dict[tuple, object] = {}

    def get(self, key: tuple, make: Callable[[], object]) -> object:
        if key not in self._objects:
            self._objects[key] = make()
        return self._objects[key]


def write_into(held: dict, values: Mapping[str, object]) -> None:
    """The values into a params dict as a training loop's update leaves them: into the very arrays (or tensors) it
    holds where shape and dtype agree -- an attribute aliasing params['W1'] sees them, as it would after
    `params['W1'] -= lr * dW1` -- else as new entries of the same dict."""
    for k, v in values.items():
        old = held.get(k)
        same = getattr(old, "shape", None) == getattr(v, "shape", ())
        same = same and getattr(old, "dtype", 0) == getattr(v, "dtype", 1)
        if same and isinstance(old, np.ndarray) and old.flags.writeable:
            old[...] = v
        elif same and isinstance(old, Tensor):
            with torch.no_grad():
                old.copy_(v)  # type: ignore[arg-type]
        else:
            held[k] = v.copy() if isinstance(v, np.ndarray) else v.clone() if isinstance(v, Tensor) else v


def left_unchanged(call: str, before: Mapping[str, object], now: Mapping[str, object]) -> None:
    """LayoutMismatch naming the first of `before` (a name -> the values passed in) that `call` changed: `now` (the
    same names -> what the caller holds after the call) differs. A training step or a gradient written into an alias
    inside the call leaves the caller's parameters or data changed, which the returned numbers alone never show."""
    for k, was in before.items():
        cur = now.get(k)
        a = cur.detach().cpu().numpy() if isinstance(cur, Tensor) else cur
        b = was.detach().cpu().numpy() if isinstance(was, Tensor) else was
        if isinstance(b, np.ndarray) and not (
            isinstance(a, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        ):
            raise LayoutMismatch(
                f"{call} changed {k} in place: the caller's parameters and data must come back as they went in "
                "(a training step inside it? a gradient written into an alias of the array?)"
            )


# ---- values coming back --------------------------------------------------------------------------------------------


def as_tensor(value: object, like: Tensor) -> object:
    """A NumPy array or tensor as a tensor on like's device, in like's dtype when it came in a wider float (NumPy
    promotes to float64 unasked: the more precise value is kept at the case's tolerance); a narrower float is
    UnsupportedConfig (the code computes in float32: float64 cases cannot be checked in float64). Anything else
    unchanged (compare() names it)."""
    if isinstance(value, np.ndarray | np.generic):
        value = torch.as_tensor(np.asarray(value))
    if not isinstance(value, Tensor) or not value.is_floating_point():
        return value
    value = value.detach().to(like.device)
    if value.dtype != like.dtype:
        if torch.finfo(value.dtype).eps > torch.finfo(like.dtype).eps:
            raise UnsupportedConfig(
                f"the code computes in {str(value.dtype).removeprefix('torch.')}: it returned "
                f"{str(value.dtype).removeprefix('torch.')} gradients for {str(like.dtype).removeprefix('torch.')} "
                "inputs, so these cases cannot be checked at that precision"
            )
        value = value.to(like.dtype)
    return value


def as_loss(value: object, like: Tensor) -> object:
    """The loss as a 0-dim tensor of the parameters' dtype (NumPy returns Python or NumPy scalars of its own choosing;
    a tensor of one element of any shape is the same number)."""
    if isinstance(value, float | int | np.generic | np.ndarray) and np.size(value) == 1:
        return torch.tensor(float(np.asarray(value).reshape(-1)[0]), dtype=like.dtype, device=like.device)
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.detach().reshape(()).to(like.device, like.dtype)
    return value


def as_vector(value: object, n: int, like: Tensor) -> object:
    """A bias or its gradient given as (n,), (n, 1) or (1, n) -- all conventions -- as (n,)."""
    value = as_tensor(value, like)
    if isinstance(value, Tensor) and value.numel() == n and value.dim() <= 2 and (n in value.shape or n == 1):
        return value.reshape(n)  # a lone output's bias gradient may come back a scalar: the same number
    return value


def unfilled(name: str, value: object) -> str:
    """Words for a value that came back None or empty from NumPy code: a section of the assignment still to write."""
    what = "None" if value is None else repr(value) if isinstance(value, dict | list | tuple) else type(value).__name__
    return f"{name} came back {what}: not filled in (the assignment's section for it still to write?)"


# ---- which net a check runs ------------------------------------------------------------------------------------------

FORMS: dict[str, Form] = {}  #: every registered form by name, in registration order


def register(form: Form) -> Form:
    """Make the form available everywhere under its name (one module of verification.forms per form)."""
    if form.name in FORMS and FORMS[form.name] is not form:
        raise ValueError(f"form name {form.name!r} registered twice")
    FORMS[form.name] = form
    KNOWN_ROLE_NAMES.update(n for r in form.roles for n in (r.name, *r.also))
    return form


EVERY = {  # the options that choose which nets a check runs, and all their values (comma-separated, as typed)
    "hidden": ",".join(HIDDEN_ACTIVATIONS),
    "output": ",".join(OUTPUT_ACTIVATIONS),
    "loss": ",".join(LOSSES),
    "l2": "0,0.1",
    # (D, H, C): all different, so a misshapen gradient is named by its shape; and all equal, so a transposed product
    # still runs (instead of crashing inside the user's code) and is named by its wrong values
    "sizes": "5-4-3,4-4-4",
}
CONFIGURATION = tuple(EVERY)


def usual(form: str, defined: Defined | None = None) -> dict[str, str]:
    """The form's usual configuration, for this file where it says more (Form.usual_for: the activations it
    defines, the regulariser it takes)."""
    one = FORMS[form]
    extra = one.usual_for(defined) if one.usual_for is not None and defined is not None else {}
    return {**dict(one.usual), **extra}


def configuration(form: str, given: Mapping[str, str | None], defined: Defined | None = None) -> dict[str, str]:
    """The configuration a check runs: what was given, else the form's usual one for this file (code written for its
    course's net computes that net only: checking it on another is a false alarm), else every one (the linear form's
    fn takes the spec). ValueError names what a form that fixes it in the user's code with no usual value needs."""
    one = FORMS[form]
    usual_net = usual(form, defined)
    missing = [opt for opt in one.asks if given.get(opt) is None]
    if missing:
        raise ValueError(
            f"the {form} form checks the model and loss as your code fixes them: say which with "
            f"{', '.join(f'--{opt}' for opt in missing)} (check_backprop: {', '.join(f'{opt}=' for opt in missing)}), "
            "e.g. --hidden relu --output identity --loss cross_entropy"
        )
    return {opt: usual_net.get(opt, every) if given.get(opt) is None else given[opt] for opt, every in EVERY.items()}


def usual_note(form: str, given: Mapping[str, str | None], why: str = "", defined: Defined | None = None) -> str | None:
    """One line saying which form the code was checked as (and why, when recognised) and which of the form's usual
    options (for this file) the check assumed, when it assumed any."""
    assumed = [(opt, v) for opt, v in usual(form, defined).items() if given.get(opt) is None]
    because = f" ({why})" if why else ""
    if not assumed:
        return f"checked as the {form} form{because}" if why else None
    flags = " ".join(f"--{opt} {v}" for opt, v in assumed)
    return f"checked as the {form} form's usual net{because}: {flags} (give these options to check another)"


# ---- recognition ---------------------------------------------------------------------------------------------------


class Unrecognised(ValueError):
    """No form, or more than one, fits the names a file defines (one line; a usage error)."""


def recognise(defined: Defined) -> tuple[Form, str]:
    """The one form whose rule the defined names fit, with the rule's evidence in words; Unrecognised (one line)
    when none fits or several do (an ambiguous file is reported, never guessed)."""
    hits = [(f, why) for f in FORMS.values() if not f.fallback and (why := f.recognise(defined))]
    if not hits:
        hits = [(f, why) for f in FORMS.values() if f.fallback and (why := f.recognise(defined))]
    where = f"{defined.path.name}" if defined.path else "the code"
    if len(hits) > 1:
        raise Unrecognised(
            f"{where} fits {len(hits)} forms: "
            + "; ".join(f"{f.name} ({why})" for f, why in hits)
            + ": say which with --layout (layout= in check_backprop)"
        )
    if not hits:
        imported = [f"{n} (imported from {m})" for n, m in defined.imported.items() if n in KNOWN_ROLE_NAMES]
        also = f"; it imports {', '.join(imported)}: check the file that defines it" if imported else ""
        if near := _near_misses(defined):
            raise Unrecognised(f"{where} fits no form: {near}{also}; --layout and --bind name another")
        names = ", ".join(f"{f.name}: {f.roles[0].name}" for f in FORMS.values())
        raise Unrecognised(
            f"{where} defines none of the forms' names ({names}){also}; --layout and --bind name another"
        )
    return hits[0]


def _near_misses(defined: Defined) -> str:
    """What a file that fits no form defines of one (a form's name with another signature, half of a pair), in
    words: "it defines forward_propagation(x, theta), but the coursera form is recognised by ...", or ""."""
    out = []
    for form in FORMS.values():
        mine = {n for r in form.roles for n in (r.name, *r.also)}
        found = [f"{n}({', '.join(defined.functions[n])})" for n in mine if n in defined.functions]
        found += [f"class {n}" for n in mine if n in defined.classes]
        if found and not form.fallback:
            out.append(f"it defines {', '.join(sorted(found))}, but the {form.name} form is recognised by {form.rule}")
    return "; ".join(out)


KNOWN_ROLE_NAMES: set[str] = set()  # every form's role names (filled as forms register): an import of one is named


def defines(defined: Defined, *functions: str) -> str | None:
    """'defines f and g' when the code defines every one of these functions, else None."""
    if all(f in defined.functions for f in functions):
        return "defines " + " and ".join(functions)
    return None


def defines_class(defined: Defined, name: str, method: str | None = None) -> str | None:
    """'defines class C (with m)' when the code defines class `name` (with method `method`), else None."""
    cls = defined.classes.get(name)
    if cls is None or (method and method not in cls.methods):
        return None
    return f"defines class {name}" + (f" with {method}()" if method else "")


def recognise_object(obj: object, with_loss_fn: bool = False) -> tuple[Form, str, Defined]:
    """The form of code given as an object (check_backprop(TwoLayerNet), check_backprop(globals())): a namespace by
    its names, as a file; one class or function by what it is, whatever its name -- as the first role of each form
    that takes one object (its only role; the module form's model, given a loss_fn), by that form's rule."""
    import inspect

    from verification.sources import ClassInfo

    ns = namespace_of(obj)
    if ns is not None:
        defined = Defined.of(ns)
        form, why = recognise(defined)
        return form, why, defined
    whole = Defined.of({getattr(obj, "__name__", "obj"): obj})
    hits = []
    for form in FORMS.values():
        if len(form.roles) != 1 and not (form.name == "module" and with_loss_fn):
            continue
        role = form.roles[0].name
        one = Defined(dict(whole.functions), dict(whole.classes), libraries=whole.libraries)
        if inspect.isclass(obj):
            methods = tuple(m for m in dir(obj) if callable(getattr(obj, m, None)))
            mine = whole.classes.get(getattr(obj, "__name__", ""))
            uses = mine.uses if mine else frozenset()
            one.classes[role] = ClassInfo(tuple(b.__name__ for b in obj.__mro__[1:]), methods, uses=uses)
        elif callable(obj) and getattr(obj, "__name__", None) in whole.functions:
            one.functions[role] = whole.functions[obj.__name__]
        if why := form.recognise(one):
            hits.append((form, why))
    name = getattr(obj, "__qualname__", type(obj).__name__)
    if len(hits) != 1:
        forms = ", ".join(f.name for f, _ in hits) or "none"
        raise Unrecognised(
            f"{name} fits {len(hits)} forms' first role ({forms}): say which with layout= (the forms: "
            f"{', '.join(FORMS)})"
        )
    form, why = hits[0]
    return form, why.replace(f" {form.roles[0].name}", f" {name}", 1) if name != form.roles[0].name else why, whole
