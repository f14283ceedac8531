"""The ways people write a two-layer net, each adapted to the checker's one signature fn(params, x, t, spec) ->
(loss, grads) in the nn.Linear layout (W1 (H, D), b1 (H,), W2 (C, H), b2 (C,)).

- linear: that signature itself (python -m verification's plug-ins).
- cs231n: a class TwoLayerNet(input_size, hidden_size, output_size[, dtype=, device=, std=]) with `params` W1 (D, H),
  b1 (H,), W2 (H, C), b2 (C,) -- NumPy or torch -- and loss(X, y, reg) -> (loss, grads dict); or EECS 498's
  function nn_forward_backward(params, X, y, reg) (torch). ReLU, softmax cross-entropy, L2 reg * sum W^2
  (l2_convention "full", the project's) or 0.5 * reg * sum W^2 ("half", the older assignments).
- nielsen: a class Network(sizes) with `biases` [(H, 1), (C, 1)] and `weights` [(H, D), (C, H)] NumPy arrays,
  backprop(x, y) -> (nabla_b, nabla_w) for one sample as column vectors, and feedforward(a); sigmoid, the
  quadratic cost 1/2 |a - y|^2 per sample; the batch gradient is the sum over samples (half_sse here).
- module: an nn.Module (or a function building one from D, H, C) with two nn.Linear layers, and a loss callable
  loss_fn(output, t): the gradients autograd gives through them are checked (a detached tensor or a wrong loss
  shows), no L2 of its own.
- epfl (EPFL deep learning, practical 3): forward_pass(w1, b1, w2, b2, x) -> (x0, s1, x1, s2, x2) for one sample,
  w1 (H, D), and backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2) accumulating
  into the four tensors in place; called per sample as the practical's loop does, x as a vector (D,) or, when the
  code takes it so, a column (D, 1) with column biases; sigma both layers, loss sum (x2 - t)^2.
- layers (UMONS Machine Learning II, assignment IV): layer objects Linear(in_features, out_features) with weight
  (in, out) or (out, in) and bias, forward(x) caching, backward(dupstream) -> dx setting weight_grad/bias_grad;
  activation objects ReLU(), Sigmoid(), Tanh(); a Net(layers) where there is one. The checker builds
  [Linear(D, H), act, Linear(H, C)] with its parameters, feeds dLoss/dy as dupstream and reads the gradients.

Where the code comes from (verification.sources): one object, or a namespace -- a module, a dict such as a
notebook's globals(), or a .py / .ipynb file -- in which each of the layout's roles is found by its usual name.
Options.bind maps a role to another name, and a function's arguments to another order, in one option:
"backward_pass=back_ward_pass", "forward_pass=forward_pass(x, w1, w2, b1, b2)"; a function whose parameter names
are a permutation of the layout's is called by name without it.

What students write that is a convention, not a bug, is accepted: NumPy's float64 gradients for float32 inputs
(kept at float32's tolerance; float32 gradients for float64 inputs make those cases unsupported with the reason),
constructor arguments dtype/device (given the case's, so a device='cuda' default runs on a CPU), biases and
gradients of shape (H,), (H, 1) or (1, H). A gradient that fits another layout's shapes is named in one line as
a layout mismatch, not reported as wrong numbers.
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
from verification.sources import Namespace, SourceError

UserFn = Callable[[dict[str, Tensor], Tensor, Tensor, NetSpec], tuple[object, dict[str, object]]]
HINTS = "__hints__"  #: a grads dict's key for what an adapter saw (quantity -> words), read by verification.plugin
L2_CONVENTIONS = {"full": 1.0, "half": 2.0}  #: reg passed = factor * l2: 0.5 * reg * sum W^2 == l2 * sum W^2


class LayoutMismatch(CaseError):
    """The user's code returned shapes of another layout than the one asked for (one clear line)."""


@dataclass(frozen=True)
class Options:
    """How the user's code is written beyond its layout (plain strings: it crosses to the isolated child)."""

    bind: tuple[tuple[str, str], ...] = ()  # (role, "name" or "name(arg, ...)" in the layout's argument names)
    l2_convention: str = "full"  # cs231n: "full" reg * sum W^2, "half" 0.5 * reg * sum W^2

    def __post_init__(self) -> None:
        if self.l2_convention not in L2_CONVENTIONS:
            raise ValueError(f"unknown l2_convention {self.l2_convention!r}; choose from {', '.join(L2_CONVENTIONS)}")
        for role, target in self.bind:
            if not _BIND.fullmatch(target.strip()):
                raise ValueError(f"bind {role}={target!r}: expected NAME or NAME(arg, ...)")


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
    """A piece of the user's code a layout calls: its default name(s) and, for a function, its arguments."""

    name: str
    also: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    optional: bool = False


@dataclass
class Bound:
    """The user's objects by role, each function called with the layout's arguments in its own order."""

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

    def call(self, role: str, layout_args: tuple[str, ...]) -> Callable[..., object]:
        """The role's function as f(*args in the layout's order)."""
        fn, order = self.get(role), self.orders.get(role)
        if not order:
            return fn  # type: ignore[return-value]

        def reordered(*args: object) -> object:
            named = dict(zip(layout_args, args, strict=True))
            return fn(*(named[a] for a in order))  # type: ignore[operator]

        return reordered


@dataclass(frozen=True)
class Layout:
    """One way of writing the net: its roles, what it supports, and how its code is called in the linear layout."""

    name: str
    summary: str
    adapt: Callable[[Bound, Options], UserFn]
    roles: tuple[Role, ...]
    supports: Callable[[NetSpec], str | None] = lambda spec: None  # None, or why a spec is not this layout's
    usual: tuple[tuple[str, str], ...] = ()  # the course's own configuration (CLI option -> value): the default
    asks: tuple[str, ...] = ()  # options the user's code fixes that have no usual value: the user must say them

    def user_fn(self, source: object, options: Options | None = None) -> UserFn:
        """The user's code as fn(params, x, t, spec); a spec this layout does not cover raises UnsupportedConfig
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
            raise ValueError(f"--bind {unknown[0]}: the {self.name} layout's roles are {self.role_list()}")
        ns = _namespace(source)
        if ns is None:  # one object: the layout's first role
            first = self.roles[0]
            needed = [r.name for r in self.roles[1:] if not r.optional]
            if needed:
                raise ValueError(
                    f"the {self.name} layout needs {self.role_list()}: give the module, the file or notebook, "
                    "globals() or a dict of them, not one object"
                )
            if self is LAYOUTS["linear"] and inspect.isclass(source):
                raise ValueError(_CLASS_IN_LINEAR.format(name=source.__name__))
            ns = Namespace({first.name: source})
        binds = dict(options.bind)
        bound = Bound({})
        for role in self.roles:
            target = binds.get(role.name)
            name, order = _parse_target(target) if target else (None, None)
            candidates = [name] if name else [role.name, *role.also]
            found = next((c for c in candidates if c in ns.names or c in ns.failed), None)
            if found is None:
                why = f"no {' or '.join(candidates)}" + (f" in {ns.path.name}" if ns.path else "")
                if role.optional:
                    bound.missing[role.name] = f"{why} (the {self.name} layout's {role.name})"
                    continue
                hint = f"; --bind {role.name}=YOUR_NAME (bind={{'{role.name}': ...}}) maps another name"
                raise ValueError(f"{why}: the {self.name} layout needs {self.role_list()}{hint}")
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
    "{name} is a class; the linear layout takes a function fn(params, x, t, spec) -> (loss, grads). "
    "For a class give its layout (--layout, or layout= in check_backprop): "
    "cs231n (TwoLayerNet(D, H, C).loss(X, y, reg)), nielsen (Network([D, H, C]).backprop(x, y)), "
    "layers (Linear/ReLU/Sigmoid objects) or module (an nn.Module, with a loss_fn)"
)


def _namespace(source: object) -> Namespace | None:
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
    """The function's parameter order when its names are the layout's in another order (case aside), else None."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    lower = {a.lower(): a for a in args}
    if len(params) == len(args) and sorted(p.lower() for p in params) == sorted(lower):
        return tuple(lower[p.lower()] for p in params)
    return None


# ---- values coming back --------------------------------------------------------------------------------------------


def _tensor(value: object, like: Tensor) -> object:
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


def _loss(value: object, like: Tensor) -> object:
    """The loss as a 0-dim tensor of the parameters' dtype (NumPy returns Python or NumPy scalars of its own choosing;
    a tensor of one element of any shape is the same number)."""
    if isinstance(value, float | int | np.generic | np.ndarray):
        return torch.tensor(float(np.asarray(value).reshape(-1)[0]), dtype=like.dtype, device=like.device)
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.detach().reshape(()).to(like.device, like.dtype)
    return value


def _vector(value: object, n: int, like: Tensor) -> object:
    """A bias or its gradient given as (n,), (n, 1) or (1, n) -- all conventions -- as (n,)."""
    value = _tensor(value, like)
    if isinstance(value, Tensor) and value.numel() == n and value.dim() <= 2 and n in value.shape:
        return value.reshape(n)
    return value


# ---- linear ------------------------------------------------------------------------------------------------------


def linear(bound: Bound, options: Options) -> UserFn:
    """The checker's own signature: fn itself."""
    return bound.get("fn")  # type: ignore[return-value]


# ---- cs231n ------------------------------------------------------------------------------------------------------


def _cs231n_supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss) != ("relu", "identity", "cross_entropy"):
        return "the cs231n layout is ReLU -> softmax cross-entropy (TwoLayerNet.loss) only"
    return None


def construct(cls: Callable[..., object], like: Tensor, *args: object) -> object:
    """cls(*args), given the case's device and dtype where its constructor takes them (EECS 498's TwoLayerNet
    defaults to device='cuda'; a dtype default tells NumPy from torch)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, object] = {}
    if "device" in params:
        kwargs["device"] = like.device.type if like.device.index is None else str(like.device)
    if "dtype" in params:
        default = params["dtype"].default
        numpy = isinstance(default, np.dtype) or (isinstance(default, type) and issubclass(default, np.generic))
        kwargs["dtype"] = np.dtype(str(like.dtype).removeprefix("torch.")) if numpy else like.dtype
    return cls(*args, **kwargs)


def cs231n(bound: Bound, options: Options) -> UserFn:
    """TwoLayerNet(D, H, C) with our parameters in its params dict (W transposed), loss(X, y, reg) called; or
    nn_forward_backward(params, X, y, reg) on torch tensors."""
    target = bound.get("TwoLayerNet")
    factor = L2_CONVENTIONS[options.l2_convention]

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        like = params["W1"]
        if inspect.isclass(target):
            net = construct(target, like, spec.D, spec.H, spec.C)
            numpy = not isinstance(getattr(net, "params", {}).get("W1"), Tensor)  # a fresh net's W1 tells its library
        else:
            net, numpy = None, False

        def conv(a: Tensor) -> object:
            return a.detach().cpu().numpy().copy() if numpy else a.detach().clone()

        mine = {"W1": conv(params["W1"].T), "b1": conv(params["b1"]), "W2": conv(params["W2"].T)}
        mine["b2"] = conv(params["b2"])
        if net is None:
            result = target(mine, conv(x), conv(t), spec.l2 * factor)  # type: ignore[operator]
        else:
            net.params = mine
            result = net.loss(conv(x), y=conv(t), reg=spec.l2 * factor)
        if not (isinstance(result, tuple | list) and len(result) == 2):
            raise LayoutMismatch(f"loss(X, y, reg) returned {type(result).__name__}, expected (loss, grads)")
        loss, grads = result
        out = {k: _tensor(v, like) for k, v in dict(grads).items()}
        for k in ("W1", "W2"):
            g = out.get(k)
            if isinstance(g, Tensor) and g.shape == params[k].shape and g.shape != params[k].T.shape:
                raise LayoutMismatch(
                    f"{k} came back {tuple(g.shape)}, the nn.Linear layout's shape; the cs231n layout's is "
                    f"{tuple(params[k].T.shape)} (use layout='linear' for nn.Linear-shaped code)"
                )
            if isinstance(g, Tensor):
                out[k] = g.T if g.dim() == 2 else g
        for k, n in (("b1", spec.H), ("b2", spec.C)):
            out[k] = _vector(out.get(k), n, like)
        return _loss(loss, like), out

    return fn


# ---- nielsen -----------------------------------------------------------------------------------------------------


def _nielsen_supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss, spec.l2) != ("sigmoid", "sigmoid", "half_sse", 0.0):
        return "the nielsen layout is sigmoid -> sigmoid with the quadratic cost 1/2 |a - y|^2 (half_sse), no L2"
    return None


def nielsen(bound: Bound, options: Options) -> UserFn:
    """Network([D, H, C]) with our parameters as its column-vector lists; backprop per sample, summed."""
    network_class = bound.get("Network")

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        net = network_class([spec.D, spec.H, spec.C])

        def col(a: Tensor) -> np.ndarray:
            return a.detach().cpu().numpy().reshape(-1, 1).copy()

        net.biases = [col(params["b1"]), col(params["b2"])]
        net.weights = [params["W1"].detach().cpu().numpy().copy(), params["W2"].detach().cpu().numpy().copy()]
        xs, ts = x.detach().cpu().numpy(), t.detach().cpu().numpy()
        loss, sums = 0.0, None
        for xi, ti in zip(xs, ts, strict=True):
            a = net.feedforward(xi.reshape(-1, 1))
            loss += 0.5 * float(((a - ti.reshape(-1, 1)) ** 2).sum())
            nb, nw = net.backprop(xi.reshape(-1, 1), ti.reshape(-1, 1))
            part = [np.asarray(v) for v in (*nb, *nw)]
            sums = part if sums is None else [s + p for s, p in zip(sums, part, strict=True)]
        b1, b2, w1, w2 = sums
        for name, got, want in (("b1", b1, params["b1"]), ("b2", b2, params["b2"])):
            if got.shape not in ((want.numel(), 1), (want.numel(),)):
                raise LayoutMismatch(f"nabla_b for {name} came back {got.shape}, expected a column ({want.numel()}, 1)")
        like = params["W1"]
        grads = {"W1": _tensor(w1, like), "b1": _vector(b1, spec.H, like), "W2": _tensor(w2, like)}
        grads["b2"] = _vector(b2, spec.C, like)
        return _loss(loss, like), grads

    return fn


# ---- module ------------------------------------------------------------------------------------------------------


def _module_supports(spec: NetSpec) -> str | None:
    return "the module layout checks the model and loss as written: no L2 term (l2 = 0 only)" if spec.l2 else None


def module(bound: Bound, options: Options) -> UserFn:
    """The model's two nn.Linear layers take our parameters; loss_fn(model(x), t).backward() gives the gradients."""
    model, loss_fn = bound.get("model"), bound.get("loss_fn")

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        net = model if isinstance(model, torch.nn.Module) else _build_module(model, spec)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        if len(linears) != 2:
            raise LayoutMismatch(f"the module layout needs exactly two nn.Linear layers, found {len(linears)}")
        first, second = linears
        net = net.to(device=x.device, dtype=x.dtype)
        with torch.no_grad():
            for layer, w, b in ((first, "W1", "b1"), (second, "W2", "b2")):
                if layer.weight.shape != params[w].shape:
                    raise LayoutMismatch(
                        f"nn.Linear {w}: {tuple(layer.weight.shape)}, expected {tuple(params[w].shape)}"
                    )
                layer.weight.copy_(params[w])
                layer.bias.copy_(params[b])
        net.zero_grad(set_to_none=True)
        out = net(x)
        if spec.loss_fn.squared and isinstance(out, Tensor) and out.shape != t.shape and out.numel() == t.numel():
            out = out.reshape(t.shape)  # a (N,) output for C = 1 against (N, 1) targets: the same numbers
        loss = loss_fn(out, t)  # type: ignore[operator]
        loss.backward()
        grads = {"W1": first.weight.grad, "b1": first.bias.grad, "W2": second.weight.grad, "b2": second.bias.grad}
        return loss.detach(), {k: None if v is None else v.detach().clone() for k, v in grads.items()}

    return fn


def _build_module(model: object, spec: NetSpec) -> torch.nn.Module:
    """A model class or factory called with (D, H, C), or with nothing when it takes no sizes (a homework's MLP()
    hard-codes its 6-2-1: then only that size is its, the others unsupported)."""
    try:
        takes = len([p for p in inspect.signature(model).parameters.values() if p.default is p.empty])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        takes = 3
    if takes == 0:
        net = model()  # type: ignore[operator]
        shapes = [tuple(m.weight.shape) for m in net.modules() if isinstance(m, torch.nn.Linear)]
        want = [(spec.H, spec.D), (spec.C, spec.H)]
        if shapes != want and len(shapes) == 2:
            raise UnsupportedConfig(
                f"the model takes no sizes and is {shapes[0][1]}-{shapes[0][0]}-{shapes[1][0]}: "
                f"check it with sizes=[({shapes[0][1]}, {shapes[0][0]}, {shapes[1][0]})]"
            )
        return net
    return model(spec.D, spec.H, spec.C)  # type: ignore[operator]


# ---- epfl --------------------------------------------------------------------------------------------------------

EPFL_FORWARD = ("w1", "b1", "w2", "b2", "x")
EPFL_BACKWARD = ("w1", "b1", "w2", "b2", "t", "x", "s1", "x1", "s2", "x2", "dl_dw1", "dl_db1", "dl_dw2", "dl_db2")
EPFL_ACCUMULATORS = {"W1": "dl_dw1", "b1": "dl_db1", "W2": "dl_dw2", "b2": "dl_db2"}
REBOUND = (
    "{a} stayed zero: backward_pass rebinds it ({a} = ...) or writes elsewhere instead of accumulating into the "
    "tensor it is given ({a}.add_(...) or {a} += ...); the practical's loop reads that tensor"
)


def _epfl_supports(spec: NetSpec) -> str | None:
    if spec.loss != "sse" or spec.hidden != spec.output or spec.l2:
        return "the epfl layout is sigma in both layers (hidden = output activation), loss sum (x2 - t)^2, no L2"
    return None


def epfl(bound: Bound, options: Options) -> UserFn:
    """forward_pass and backward_pass per sample into four zeroed accumulators, as the practical's training loop
    calls them; the loss sum (x2 - t)^2 of what forward_pass returned."""
    forward = bound.call("forward_pass", EPFL_FORWARD)
    backward = bound.call("backward_pass", EPFL_BACKWARD)

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        w1, b1, w2, b2 = (params[k].detach().clone() for k in ("W1", "b1", "W2", "b2"))
        column, loss = None, torch.zeros((), dtype=x.dtype, device=x.device)
        acc: list[Tensor] = []
        for i in range(x.shape[0]):
            if column is None:
                column, outs = _epfl_first_forward(forward, w1, b1, w2, b2, x[i], spec)
                shape = (lambda v: v.reshape(-1, 1)) if column else (lambda v: v)
                bb1, bb2 = shape(b1), shape(b2)
                acc = [torch.zeros_like(w1), torch.zeros_like(bb1), torch.zeros_like(w2), torch.zeros_like(bb2)]
                form = "as a column (D, 1) with column biases" if column else "as a vector (D,)"
            else:
                outs = forward(w1, bb1, w2, bb2, shape(x[i]))
            _, s1, x1, s2, x2 = _five(outs)
            ti = shape(t[i])
            loss = loss + ((x2.reshape(-1) - ti.reshape(-1)) ** 2).sum()
            try:
                backward(w1, bb1, w2, bb2, ti, shape(x[i]), s1, x1, s2, x2, *acc)
            except Exception as exc:
                raise CaseError(f"backward_pass (x passed {form}, as its forward_pass takes it) raised "
                                f"{_crash(exc)}") from exc  # fmt: skip
        grads = {
            "W1": _tensor(acc[0], w1), "b1": _vector(acc[1], spec.H, w1),
            "W2": _tensor(acc[2], w1), "b2": _vector(acc[3], spec.C, w1),
        }  # fmt: skip
        untouched = [k for k, a in zip(EPFL_ACCUMULATORS, acc, strict=True) if not a.any()]
        hints = {k: REBOUND.format(a=EPFL_ACCUMULATORS[k]) for k in untouched}
        return loss, {**grads, HINTS: hints}

    return fn


def _five(outs: object) -> tuple[Tensor, ...]:
    if not (isinstance(outs, tuple | list) and len(outs) == 5):
        raise LayoutMismatch(
            f"forward_pass returned {type(outs).__name__}"
            + (f" of {len(outs)}" if isinstance(outs, tuple | list) else "")
            + ", expected (x0, s1, x1, s2, x2)"
        )
    return tuple(outs)  # type: ignore[return-value]


def _epfl_first_forward(
    forward: Callable[..., object], w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, xi: Tensor, spec: NetSpec
) -> tuple[bool, object]:
    """Whether the code takes x as a column, and its first forward: tried as a vector (w1.mv(x)), then as a
    column with column biases (w1.mm(x)); both failing is one line saying what each form gave."""
    tried = []
    for column in (False, True):
        args = (b1.reshape(-1, 1), b2.reshape(-1, 1), xi.reshape(-1, 1)) if column else (b1, b2, xi)
        try:
            outs = forward(w1, args[0], w2, args[1], args[2])
            x2 = _five(outs)[4]
        except Exception as exc:  # noqa: BLE001 - this form does not fit; the other may
            tried.append(_crash(exc))
            continue
        if isinstance(x2, Tensor) and x2.numel() == spec.C:
            return column, outs
        tried.append(f"x2 came back {tuple(x2.shape) if isinstance(x2, Tensor) else type(x2).__name__}")
    raise LayoutMismatch(
        f"forward_pass fits neither form: with x a vector (D,) {tried[0]}; with x a column (D, 1) and column "
        f"biases {tried[1]} (D={spec.D}, H={spec.H}, C={spec.C})"
    )


def _crash(exc: BaseException) -> str:
    from verification.runner import crash_line

    return crash_line(exc)


# ---- layers ------------------------------------------------------------------------------------------------------

ACTIVATION_CLASSES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": None}
_GRAD_NAMES = {
    "weight": ("weight_grad", "grad_weight", "dW", "dw", "grad_W", "W_grad"),
    "bias": ("bias_grad", "grad_bias", "db", "grad_b", "b_grad"),
}
_PARAM_NAMES = {"weight": ("weight", "W", "w"), "bias": ("bias", "b")}


def _layers_supports(spec: NetSpec) -> str | None:
    return "the layers layout has no L2 term (l2 = 0 only)" if spec.l2 else None


def _attr(obj: object, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if hasattr(obj, n)), None)


def layers(bound: Bound, options: Options) -> UserFn:
    """[Linear(D, H), act, Linear(H, C)] (+ the output activation's object), through Net(layers) where there is
    one; our parameters in the layers, dLoss/dy fed to backward, weight_grad/bias_grad read back."""
    linear_cls = bound.get("Linear")
    orientation: list[str] = []  # "in_out" (x @ W, the course's) or "out_in" (nn.Linear's), found once

    def oriented() -> str:
        if not orientation:
            probe = linear_cls(2, 3)  # type: ignore[operator]
            w = getattr(probe, _attr(probe, _PARAM_NAMES["weight"]) or "weight", None)
            shape = tuple(np.shape(w))
            if shape not in ((2, 3), (3, 2)):
                raise LayoutMismatch(f"Linear(2, 3)'s weight is {shape}: expected (2, 3) (in, out) or (3, 2) (out, in)")
            orientation.append("in_out" if shape == (2, 3) else "out_in")
        return orientation[0]

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        flip = oriented() == "in_out"
        acts = []
        for which in (spec.hidden, spec.output):
            name = ACTIVATION_CLASSES[which]
            if name is not None:
                if not bound.has(name):
                    raise UnsupportedConfig(f"no {name} class: the {which} cases need one")
                acts.append(bound.get(name)())  # type: ignore[operator]
            else:
                acts.append(None)
        first, second = linear_cls(spec.D, spec.H), linear_cls(spec.H, spec.C)  # type: ignore[operator]
        stack = [first, acts[0], second] + ([acts[1]] if acts[1] is not None else [])
        net = bound.get("Net")(stack) if bound.has("Net") else None  # type: ignore[operator]
        for layer, w, b in ((first, "W1", "b1"), (second, "W2", "b2")):  # after Net(), whose init may re-draw them
            weight = params[w].detach().clone()
            setattr(layer, _attr(layer, _PARAM_NAMES["weight"]) or "weight", weight.T.contiguous() if flip else weight)
            bname = _attr(layer, _PARAM_NAMES["bias"]) or "bias"
            old = getattr(layer, bname, None)
            bias = params[b].detach().clone()
            setattr(
                layer,
                bname,
                bias.reshape(old.shape) if isinstance(old, Tensor) and old.numel() == bias.numel() else bias,
            )
        xi = x.detach().clone()
        y = net.forward(xi) if net is not None else _chain_forward(stack, xi)
        if not isinstance(y, Tensor) or y.numel() != x.shape[0] * spec.C:
            raise LayoutMismatch(f"the net's forward returned {type(y).__name__} "
                                 f"{tuple(y.shape) if isinstance(y, Tensor) else ''}, expected (N, C)")  # fmt: skip
        y = y.reshape(x.shape[0], spec.C)
        loss, dup = _loss_and_upstream(y, t, spec)
        returned = net.backward(dup) if net is not None else _chain_backward(stack, dup)
        grads: dict[str, object] = {}
        hints = {}
        for layer, w, b, n in ((first, "W1", "b1", spec.H), (second, "W2", "b2", spec.C)):
            gw, gb = _layer_grads(layer, returned if layer is first and net is None else None)
            gw = _tensor(gw, params[w])
            if isinstance(gw, Tensor) and tuple(gw.shape) == (n, n) != tuple(params[w].shape):
                hints[w] = f"weight_grad is ({n}, {n}), (out, out): the layer cached its output instead of its input"
            if isinstance(gw, Tensor) and gw.dim() == 2 and flip:
                gw = gw.T
            grads[w], grads[b] = gw, _vector(gb, n, params[w])
        return loss, {**grads, HINTS: hints}

    return fn


def _chain_forward(stack: list[object], x: Tensor) -> object:
    for layer in stack:
        x = layer.forward(x)  # type: ignore[attr-defined]
    return x


def _chain_backward(stack: list[object], dup: Tensor) -> object:
    for layer in reversed(stack):
        dup = layer.backward(dup)  # type: ignore[attr-defined]
    return dup


def _layer_grads(layer: object, returned: object) -> tuple[object, object]:
    """A layer's (weight, bias) gradients: from its attributes (weight_grad, dW, a grads dict, weight.grad), or
    from a backward that returns (dx, [dW, db])."""
    w = _attr(layer, _GRAD_NAMES["weight"])
    b = _attr(layer, _GRAD_NAMES["bias"])
    if w and b and getattr(layer, w) is not None:
        return getattr(layer, w), getattr(layer, b)
    grads = getattr(layer, "grads", None)
    if isinstance(grads, Mapping):
        gw = next((grads[k] for k in ("weight", "W", "w", "dW") if k in grads), None)
        gb = next((grads[k] for k in ("bias", "b", "db") if k in grads), None)
        if gw is not None:
            return gw, gb
    weight = getattr(layer, _attr(layer, _PARAM_NAMES["weight"]) or "weight", None)
    if isinstance(weight, Tensor) and weight.grad is not None:
        bias = getattr(layer, _attr(layer, _PARAM_NAMES["bias"]) or "bias", None)
        return weight.grad, getattr(bias, "grad", None)
    if isinstance(returned, tuple | list) and len(returned) == 2 and isinstance(returned[1], tuple | list):
        return tuple(returned[1][:2])  # type: ignore[return-value]
    return None, None


def _loss_and_upstream(y: Tensor, t: Tensor, spec: NetSpec) -> tuple[Tensor, Tensor]:
    """The spec's loss of the net's output and its gradient dLoss/dy (the dupstream fed to backward), in torch."""
    scale = spec.loss_fn.scale(y.shape[0], spec.C)
    yd = y.detach()
    if spec.loss_fn.squared:
        r = yd - t
        return scale / 2 * (r**2).sum(), scale * r
    logp = torch.log_softmax(yd, dim=1)
    loss = -scale * logp[torch.arange(y.shape[0]), t].sum()
    dz = logp.exp()
    dz[torch.arange(y.shape[0]), t] -= 1
    return loss, scale * dz


LAYOUTS: dict[str, Layout] = {
    "linear": Layout(
        "linear", "fn(params, x, t, spec) -> (loss, grads), nn.Linear shapes", linear, (Role("fn"),)
    ),
    "cs231n": Layout(
        "cs231n", "TwoLayerNet(D, H, C).loss(X, y, reg), W1 (D, H); or nn_forward_backward(params, X, y, reg)",
        cs231n, (Role("TwoLayerNet", also=("nn_forward_backward",)),), _cs231n_supports,
        (("hidden", "relu"), ("output", "identity"), ("loss", "cross_entropy")),
    ),
    "nielsen": Layout(
        "nielsen", "Network([D, H, C]).backprop(x, y) per sample", nielsen, (Role("Network"),), _nielsen_supports,
        (("hidden", "sigmoid"), ("output", "sigmoid"), ("loss", "half_sse"), ("l2", "0")),
    ),
    "module": Layout(
        "module", "an nn.Module with two nn.Linear layers and a loss_fn", module,
        (Role("model"), Role("loss_fn", also=("criterion", "loss_function"))), _module_supports,
        asks=("hidden", "output", "loss"),
    ),
    "epfl": Layout(
        "epfl", "forward_pass(w1, b1, w2, b2, x) / backward_pass(..., dl_dw1, dl_db1, dl_dw2, dl_db2) per sample",
        epfl, (Role("forward_pass", args=EPFL_FORWARD), Role("backward_pass", args=EPFL_BACKWARD)), _epfl_supports,
        (("hidden", "tanh"), ("output", "tanh"), ("loss", "sse"), ("l2", "0")),
    ),
    "layers": Layout(
        "layers", "Linear(in, out) / ReLU() / Sigmoid() objects with forward/backward(dupstream), a Net(layers)",
        layers,
        (Role("Linear"), Role("ReLU", optional=True), Role("Sigmoid", optional=True), Role("Tanh", optional=True),
         Role("Net", optional=True)),
        _layers_supports,
        (("hidden", "sigmoid,relu"), ("output", "identity"), ("loss", "cross_entropy"), ("l2", "0")),
    ),
}  # fmt: skip


EVERY = {  # the options that choose which nets a check runs, and all their values (comma-separated, as typed)
    "hidden": ",".join(HIDDEN_ACTIVATIONS),
    "output": ",".join(OUTPUT_ACTIVATIONS),
    "loss": ",".join(LOSSES),
    "l2": "0,0.1",
}
CONFIGURATION = tuple(EVERY)


def configuration(layout: str, given: Mapping[str, str | None]) -> dict[str, str]:
    """The configuration a check runs: what was given, else the layout's usual one (code written for its course's
    net computes that net only: checking it on another is a false alarm), else every one (the linear layout's fn
    takes the spec). ValueError names what a layout that fixes it in the user's code with no usual value needs."""
    lay = LAYOUTS[layout]
    usual = dict(lay.usual)
    missing = [opt for opt in lay.asks if given.get(opt) is None]
    if missing:
        raise ValueError(
            f"the {layout} layout checks the model and loss as your code fixes them: say which with "
            f"{', '.join(f'--{opt}' for opt in missing)} (check_backprop: {', '.join(f'{opt}=' for opt in missing)}), "
            "e.g. --hidden relu --output identity --loss cross_entropy"
        )
    return {opt: usual.get(opt, every) if given.get(opt) is None else given[opt] for opt, every in EVERY.items()}


def usual_note(layout: str, given: Mapping[str, str | None]) -> str | None:
    """One line saying which of the layout's usual options a check assumed, when it assumed any."""
    assumed = [(opt, v) for opt, v in LAYOUTS[layout].usual if given.get(opt) is None]
    if not assumed:
        return None
    flags = " ".join(f"--{opt} {v}" for opt, v in assumed)
    return f"checked as the {layout} layout's usual net: {flags} (give these options to check another)"
