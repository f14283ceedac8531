"""Registry of implementations: @register("name") on an Implementation subclass; every module here is discovered."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from impls.base import SGD, CompileError, Implementation, ManualSGD, UnsupportedConfig
from impls.spec import InputError, NetSpec, SpecError, check_inputs, init_params, make_batch

__all__ = [
    "SGD",
    "CompileError",
    "Implementation",
    "InputError",
    "ManualSGD",
    "NetSpec",
    "SpecError",
    "UnknownImplementation",
    "UnsupportedConfig",
    "check_inputs",
    "get",
    "init_params",
    "make_batch",
    "names",
    "register",
]

_REGISTRY: dict[str, type[Implementation]] = {}
_NOT_IMPLS = {"base", "spec", "functional", "precision", "many_triton"}  # many_triton: a study engine


class UnknownImplementation(KeyError):
    """A name that no module registered; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str) -> Callable[[type[Implementation]], type[Implementation]]:
    """Class decorator: make the implementation available everywhere under `name`."""

    def deco(cls: type[Implementation]) -> type[Implementation]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"implementation name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _discover() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in _NOT_IMPLS and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def names() -> list[str]:
    """Every registered implementation, sorted by name (module discovery is alphabetical)."""
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> type[Implementation]:
    """The implementation class registered as `name`; UnknownImplementation lists the known ones."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownImplementation(f"unknown implementation {name!r}; known: {', '.join(_REGISTRY)}") from None
