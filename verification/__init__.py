"""Gradient-equality checks of every implementation (or a user's function) against a float64 oracle.

`from verification import check_backprop` is the Python API (verification.api); the pytest plugin
(verification.pytest_plugin) gives it to a user's tests as the fixture `check_backprop`.
"""

from __future__ import annotations


def __getattr__(name: str) -> object:
    """check_backprop and its report, imported when first asked for (verification.oracle etc. stay light)."""
    if name in ("check_backprop", "Report", "BackpropMismatch"):
        from verification import api

        return getattr(api, name)
    raise AttributeError(f"module 'verification' has no attribute {name!r}")
