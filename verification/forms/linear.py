"""linear: the checker's own signature fn(params, x, t, spec) -> (loss, grads), torch tensors in nn.Linear shapes
(python -m verification's plug-ins); a function written for some configurations raises NotImplementedError for the
others, reported as unsupported."""

from __future__ import annotations

from verification.forms.core import Bound, Form, Options, Role, UserFn, register
from verification.sources import Defined

SIGNATURE = ("params", "x", "t", "spec")


def linear(bound: Bound, options: Options) -> UserFn:
    """The checker's own signature: fn itself."""
    return bound.get("fn")  # type: ignore[return-value]


def _recognise(defined: Defined) -> str | None:
    """a function `(params, x, t, spec)`"""
    named = [name for name, args in defined.functions.items() if args == SIGNATURE]
    return f"defines {named[0]}(params, x, t, spec)" if named else None


FORM = register(
    Form(
        "linear",
        "`fn(params, x, t, spec) -> (loss, grads)`, torch tensors, `nn.Linear` shapes",
        linear,
        (Role("fn"),),
        recognise=_recognise,
        course="this project's own",
    )
)
