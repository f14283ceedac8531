"""The forms people write a two-layer net in -- one module each, registered by name (as impls/ registers
implementations), its recognition rule beside it; the machinery they share is verification.forms.core.

    from verification.forms import FORMS, recognise
    form, why = recognise(scan(Path("hw.ipynb")))     # the coursera form: "defines forward_propagation(...) and ..."

Adding a form is one module here (an adapter to fn(params, x, t, spec), its roles, its usual net, its rule), its
test, and its row of the generated table in docs/ (python -m verification.forms prints it).
"""

from __future__ import annotations

import importlib
import pkgutil

from verification.forms.core import (
    CONFIGURATION,
    EVERY,
    FORMS,
    HINTS,
    L2_CHOICES,
    L2_CONVENTIONS,
    Bound,
    Form,
    LayoutMismatch,
    Options,
    Role,
    Unrecognised,
    configuration,
    parse_bind,
    recognise,
    register,
    usual_note,
)

__all__ = [
    "CONFIGURATION",
    "EVERY",
    "FORMS",
    "HINTS",
    "L2_CHOICES",
    "L2_CONVENTIONS",
    "Bound",
    "Form",
    "LayoutMismatch",
    "Options",
    "Role",
    "Unrecognised",
    "configuration",
    "parse_bind",
    "recognise",
    "register",
    "table",
    "usual_note",
]

#: the order forms are listed in (--layout's choices, the docs' table); a new module not named here comes after
ORDER = ("linear", "cs231n", "coursera", "nnfs", "epfl", "layers", "nielsen", "module")


def _discover() -> None:
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: (*ORDER, m.name).index(m.name)):
        if mod.name not in ("core", "__main__") and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_discover()


def table() -> str:
    """The docs' table of forms (docs/generated/forms.md, included by docs/check.md), generated from the registry."""
    rows = ["| form (`--layout`) | what it expects | recognised by | usual net | course |", "|---|---|---|---|---|"]
    for f in FORMS.values():
        usual = ("`" + " ".join(f"--{k} {v}" for k, v in f.usual) + "`" if f.usual else "") or (
            f"asks {', '.join(f'`--{a}`' for a in f.asks)}" if f.asks else "every configuration (fn gets the spec)"
        )
        rule = f.rule
        rows.append(f"| `{f.name}` | {f.summary} | {rule} | {usual} | {f.course} |")
    return "\n".join(rows) + "\n"
