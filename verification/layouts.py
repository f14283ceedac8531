"""The ways people write a two-layer net, each adapted to the checker's one signature fn(params, x, t, spec) ->
(loss, grads) in the nn.Linear layout (W1 (H, D), b1 (H,), W2 (C, H), b2 (C,)).

- linear: that signature itself (python -m verification's plug-ins).
- cs231n: a class TwoLayerNet(input_size, hidden_size, output_size) with `params` W1 (D, H), b1 (H,), W2 (H, C),
  b2 (C,) -- NumPy or torch -- and loss(X, y, reg) -> (loss, grads dict); ReLU, softmax cross-entropy,
  reg * (|W1|^2 + |W2|^2) (the project's L2 convention too).
- nielsen: a class Network(sizes) with `biases` [(H, 1), (C, 1)] and `weights` [(H, D), (C, H)] NumPy arrays,
  backprop(x, y) -> (nabla_b, nabla_w) for one sample as column vectors, and feedforward(a); sigmoid, the
  quadratic cost 1/2 |a - y|^2 per sample; the batch gradient is the sum over samples (half_sse here).
- module: an nn.Module (or a function building one from D, H, C) with two nn.Linear layers, and a loss callable
  loss_fn(output, t): the gradients autograd gives through them are checked (a detached tensor or a wrong loss
  shows), no L2 of its own.

Arrays come back as tensors; a gradient that fits another layout's shapes (cs231n's W1 (D, H) from a linear-layout
function, say) is named in one line as a layout mismatch, not reported as wrong numbers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from impls.base import UnsupportedConfig
from impls.spec import NetSpec
from verification.runner import CaseError

UserFn = Callable[[dict[str, Tensor], Tensor, Tensor, NetSpec], tuple[object, dict[str, object]]]


class LayoutMismatch(CaseError):
    """The user's code returned shapes of another layout than the one asked for (one clear line)."""


@dataclass(frozen=True)
class Layout:
    """One way of writing the net: what it supports, and how its code is called in the linear layout."""

    name: str
    summary: str
    adapt: Callable[..., UserFn]  # (the user's object, **options) -> fn(params, x, t, spec)
    supports: Callable[[NetSpec], str | None] = lambda spec: None  # None, or why a spec is not this layout's

    def user_fn(self, obj: object, *options: object) -> UserFn:
        """The user's object as fn(params, x, t, spec); a spec this layout does not cover raises UnsupportedConfig
        (reported as unsupported, not failed) before the user's code runs."""
        adapted = self.adapt(obj, *options)

        def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
            reason = self.supports(spec)
            if reason:
                raise UnsupportedConfig(reason)
            return adapted(params, x, t, spec)

        return fn


def _tensor(value: object, like: Tensor) -> object:
    """A NumPy array or scalar as a tensor on like's device (its dtype kept: a float64 gradient stays visible);
    anything else unchanged."""
    if isinstance(value, np.ndarray | np.generic):
        return torch.as_tensor(np.asarray(value)).to(like.device)
    return value


def _loss(value: object, like: Tensor) -> object:
    """The loss as a 0-dim tensor of the parameters' dtype: NumPy returns Python or NumPy scalars of its own choosing
    (the gradients' dtypes are checked as they come)."""
    if isinstance(value, float | int | np.generic | np.ndarray):
        return torch.tensor(float(np.asarray(value)), dtype=like.dtype, device=like.device)
    return value


def linear(fn: UserFn) -> UserFn:
    """The checker's own signature: fn itself. A class here is the commonest slip (a TwoLayerNet or an nn.Module
    given without its layout): said in one line, not as a TypeError in every case."""
    if inspect.isclass(fn):
        raise ValueError(
            f"{fn.__name__} is a class; the linear layout takes a function fn(params, x, t, spec) -> (loss, grads). "
            "For a class give its layout (--layout, or layout= in check_backprop): "
            "cs231n (TwoLayerNet(D, H, C).loss(X, y, reg)), nielsen (Network([D, H, C]).backprop(x, y)) "
            "or module (an nn.Module, with a loss_fn)"
        )
    return fn


# ---- cs231n ------------------------------------------------------------------------------------------------------


def _cs231n_supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss) != ("relu", "identity", "cross_entropy"):
        return "the cs231n layout is ReLU -> softmax cross-entropy (TwoLayerNet.loss) only"
    return None


def cs231n(net_class: Callable[..., object]) -> UserFn:
    """TwoLayerNet(D, H, C) with our parameters in its params dict (W transposed), loss(X, y, reg) called."""

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        net = net_class(spec.D, spec.H, spec.C)
        numpy = not isinstance(getattr(net, "params", {}).get("W1"), Tensor)  # a fresh net's W1 tells its library

        def conv(a: Tensor) -> object:
            return a.detach().cpu().numpy().copy() if numpy else a.detach().clone()

        net.params = {"W1": conv(params["W1"].T), "b1": conv(params["b1"]), "W2": conv(params["W2"].T)}
        net.params["b2"] = conv(params["b2"])
        loss, grads = net.loss(conv(x), y=conv(t), reg=spec.l2)
        out = {k: _tensor(v, params["W1"]) for k, v in dict(grads).items()}
        for k in ("W1", "W2"):
            g = out.get(k)
            if isinstance(g, Tensor) and g.shape == params[k].shape and g.shape != params[k].T.shape:
                raise LayoutMismatch(
                    f"{k} came back {tuple(g.shape)}, the nn.Linear layout's shape; the cs231n layout's is "
                    f"{tuple(params[k].T.shape)} (use layout='linear' for nn.Linear-shaped code)"
                )
            if isinstance(g, Tensor):
                out[k] = g.T if g.dim() == 2 else g
        return _loss(loss, params["W1"]), out

    return fn


# ---- nielsen -----------------------------------------------------------------------------------------------------


def _nielsen_supports(spec: NetSpec) -> str | None:
    if (spec.hidden, spec.output, spec.loss, spec.l2) != ("sigmoid", "sigmoid", "half_sse", 0.0):
        return "the nielsen layout is sigmoid -> sigmoid with the quadratic cost 1/2 |a - y|^2 (half_sse), no L2"
    return None


def nielsen(network_class: Callable[..., object]) -> UserFn:
    """Network([D, H, C]) with our parameters as its column-vector lists; backprop per sample, summed."""

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
        grads = {"W1": _tensor(w1, like), "b1": _tensor(b1.reshape(-1), like), "W2": _tensor(w2, like)}
        grads["b2"] = _tensor(b2.reshape(-1), like)
        return _loss(loss, like), grads

    return fn


# ---- module ------------------------------------------------------------------------------------------------------


def _module_supports(spec: NetSpec) -> str | None:
    return "the module layout checks the model and loss as written: no L2 term (l2 = 0 only)" if spec.l2 else None


def module(model: object, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> UserFn:
    """The model's two nn.Linear layers take our parameters; loss_fn(model(x), t).backward() gives the gradients."""

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        net = model if isinstance(model, torch.nn.Module) else model(spec.D, spec.H, spec.C)
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
        loss = loss_fn(net(x), t)
        loss.backward()
        grads = {"W1": first.weight.grad, "b1": first.bias.grad, "W2": second.weight.grad, "b2": second.bias.grad}
        return loss.detach(), {k: None if v is None else v.detach().clone() for k, v in grads.items()}

    return fn


LAYOUTS: dict[str, Layout] = {
    "linear": Layout("linear", "fn(params, x, t, spec) -> (loss, grads), nn.Linear shapes", linear),
    "cs231n": Layout("cs231n", "TwoLayerNet(D, H, C).loss(X, y, reg), W1 (D, H)", cs231n, _cs231n_supports),
    "nielsen": Layout("nielsen", "Network([D, H, C]).backprop(x, y) per sample", nielsen, _nielsen_supports),
    "module": Layout("module", "an nn.Module with two nn.Linear layers and a loss_fn", module, _module_supports),
}
