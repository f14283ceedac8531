"""epfl (EPFL deep learning, practical 3): forward_pass(w1, b1, w2, b2, x) -> (x0, s1, x1, s2, x2) for one sample,
w1 (H, D), and backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2) accumulating into
the four tensors in place; called per sample as the practical's loop does, x as a vector (D,) or, when the code
takes it so, a column (D, 1) with column biases, or a row (1, D) with column biases; sigma both layers, loss
sum (x2 - t)^2."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from impls.spec import NetSpec
from verification.forms.core import (
    HINTS,
    Bound,
    Form,
    LayoutMismatch,
    Options,
    Role,
    UserFn,
    as_tensor,
    as_vector,
    crash,
    defines,
    register,
)
from verification.runner import CaseError
from verification.sources import Defined

EPFL_FORWARD = ("w1", "b1", "w2", "b2", "x")
EPFL_BACKWARD = ("w1", "b1", "w2", "b2", "t", "x", "s1", "x1", "s2", "x2", "dl_dw1", "dl_db1", "dl_dw2", "dl_db2")
EPFL_ACCUMULATORS = {"W1": "dl_dw1", "b1": "dl_db1", "W2": "dl_dw2", "b2": "dl_db2"}
REBOUND = (
    "{a} stayed zero: backward_pass rebinds it ({a} = ...) or writes elsewhere instead of accumulating into the "
    "tensor it is given ({a}.add_(...) or {a} += ...); the practical's loop reads that tensor"
)


def _supports(spec: NetSpec) -> str | None:
    if spec.loss != "sse" or spec.hidden != spec.output or spec.l2:
        return "the epfl form is sigma in both layers (hidden = output activation), loss sum (x2 - t)^2, no L2"
    return None


def _vector(v: Tensor) -> Tensor:
    return v.reshape(-1)


def _column(v: Tensor) -> Tensor:
    return v.reshape(-1, 1)


def _row(v: Tensor) -> Tensor:
    return v.reshape(1, -1)


#: the ways the practical's students pass one sample: (x, the biases, the target) as vectors (w1.mv(x)), columns
#: (w1.mm(x)), or x a row (1, D) with column biases (w1.mm(x.T)), its target a vector as their loop's train_target[n]
WAYS = {
    "as a vector (D,)": (_vector, _vector, _vector),
    "as a column (D, 1) with column biases": (_column, _column, _column),
    "as a row (1, D) with column biases": (_row, _column, _vector),
}


def epfl(bound: Bound, options: Options) -> UserFn:
    """forward_pass and backward_pass per sample into four zeroed accumulators, as the practical's training loop
    calls them; the loss sum (x2 - t)^2 of what forward_pass returned."""
    forward = bound.call("forward_pass", EPFL_FORWARD)
    backward = bound.call("backward_pass", EPFL_BACKWARD)

    def fn(params: dict[str, Tensor], x: Tensor, t: Tensor, spec: NetSpec) -> tuple[object, dict[str, object]]:
        w1, b1, w2, b2 = (params[k].detach().clone() for k in ("W1", "b1", "W2", "b2"))
        way, loss = None, torch.zeros((), dtype=x.dtype, device=x.device)
        acc: list[Tensor] = []
        for i in range(x.shape[0]):
            if way is None:
                way, outs = _epfl_first_forward(forward, w1, b1, w2, b2, x[i], spec)
                sx, sb, st = WAYS[way]
                bb1, bb2 = sb(b1), sb(b2)
                acc = [torch.zeros_like(w1), torch.zeros_like(bb1), torch.zeros_like(w2), torch.zeros_like(bb2)]
            else:
                outs = forward(w1, bb1, w2, bb2, sx(x[i]))
            _, s1, x1, s2, x2 = _five(outs)
            ti = st(t[i])
            loss = loss + ((x2.reshape(-1) - ti.reshape(-1)) ** 2).sum()
            try:
                backward(w1, bb1, w2, bb2, ti, sx(x[i]), s1, x1, s2, x2, *acc)
            except Exception as exc:
                raise CaseError(f"backward_pass (x passed {way}, as its forward_pass takes it) raised "
                                f"{crash(exc)}") from exc  # fmt: skip
        grads = {
            "W1": as_tensor(acc[0], w1), "b1": as_vector(acc[1], spec.H, w1),
            "W2": as_tensor(acc[2], w1), "b2": as_vector(acc[3], spec.C, w1),
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
) -> tuple[str, object]:
    """How the code takes a sample (WAYS), and its first forward: each way tried in turn; none fitting is one line
    saying what each gave."""
    tried = []
    for way, (sx, sb, _) in WAYS.items():
        try:
            outs = forward(w1, sb(b1), w2, sb(b2), sx(xi))
            x2 = _five(outs)[4]
        except Exception as exc:  # noqa: BLE001 - this way does not fit; another may
            tried.append(f"with x {way}: {crash(exc)}")
            continue
        if isinstance(x2, Tensor) and x2.numel() == spec.C:
            return way, outs
        tried.append(f"with x {way}: x2 came back {tuple(x2.shape) if isinstance(x2, Tensor) else type(x2).__name__}")
    raise LayoutMismatch(
        f"forward_pass fits none of the ways a sample is passed: {'; '.join(tried)} "
        f"(D={spec.D}, H={spec.H}, C={spec.C})"
    )


def _recognise(defined: Defined) -> str | None:
    """functions `forward_pass` and `backward_pass`"""
    return defines(defined, "forward_pass", "backward_pass")


FORM = register(
    Form(
        "epfl",
        "`forward_pass(w1, b1, w2, b2, x)` and `backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, "
        "dl_dw2, dl_db2)` accumulating in place, one sample at a time (x a vector, a column or a row)",
        epfl,
        (Role("forward_pass", args=EPFL_FORWARD), Role("backward_pass", args=EPFL_BACKWARD)),
        _supports,
        (("hidden", "tanh"), ("output", "tanh"), ("loss", "sse"), ("l2", "0")),
        recognise=_recognise,
        course="EPFL deep learning, practical 3",
    )
)
