"""The source experiments, reproduced with the registered implementations: `python -m verification.reproduce NAME`."""

from __future__ import annotations

import importlib
from types import ModuleType

#: experiment name -> module (each defines NAME, TITLE, SOURCE and run(opts) -> Result)
EXPERIMENTS = ("rumelhart", "epfl", "umons", "cs231n", "lab2")


def module(name: str) -> ModuleType:
    """The experiment's module; KeyError lists the known names."""
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}, all")
    return importlib.import_module(f"verification.reproduce.{name}")
