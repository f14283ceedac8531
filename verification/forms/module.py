"""module: an nn.Module (or a function building one from D, H, C) with two nn.Linear layers, and a loss callable
loss_fn(output, t): the gradients autograd gives through them are checked (a detached tensor or a wrong loss shows),
no L2 of its own. Recognised only when no course's form is (a notebook that writes layer objects first and an
nn.Module after is that course's form)."""

from __future__ import annotations

import inspect

import torch
from torch import Tensor

from impls.base import UnsupportedConfig
from impls.spec import NetSpec
from verification.forms.core import Bound, Form, LayoutMismatch, Options, Role, UserFn, register
from verification.sources import Defined


def _supports(spec: NetSpec) -> str | None:
    return "the module form checks the model and loss as written: no L2 term (l2 = 0 only)" if spec.l2 else None


def module(bound: Bound, options: Options) -> UserFn:
    """The model's two nn.Linear layers take our parameters; loss_fn(model(x), t).backward() gives the gradients."""
    model, loss_fn = bound.get("model"), bound.get("loss_fn")

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        net = model if isinstance(model, torch.nn.Module) else _build_module(model, spec)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        if len(linears) != 2:
            raise LayoutMismatch(f"the module form needs exactly two nn.Linear layers, found {len(linears)}")
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
        if not spec.loss_fn.labels and isinstance(out, Tensor) and out.shape != t.shape and out.numel() == t.numel():
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


def _recognise(defined: Defined) -> str | None:
    """an `nn.Module` subclass, when no other form fits"""
    models = [name for name, c in defined.classes.items() if "Module" in c.bases]
    return f"defines class {models[0]}(nn.Module)" if models else None


FORM = register(
    Form(
        "module",
        "a function or class `(D, H, C) -> nn.Module` with two `nn.Linear`, and your loss (`--loss-fn FILE.py:FN`): "
        "autograd's gradients through your model and loss",
        module,
        (Role("model"), Role("loss_fn", also=("criterion", "loss_function"))),
        _supports,
        asks=("hidden", "output", "loss"),
        recognise=_recognise,
        fallback=True,
        course="Rumelhart / Lab 2 homework in torch",
    )
)
