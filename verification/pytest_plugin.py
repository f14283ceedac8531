"""The pytest plugin (entry point pytest11 "twolayer"): a fixture that checks a backprop in one line of a user's test.

    def test_my_net(check_backprop):
        check_backprop(TwoLayerNet, layout="cs231n")

The fixture is verification.api.check_backprop itself: it raises an AssertionError whose message is the
per-parameter table when a gradient is wrong, and returns the Report when everything matches.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def check_backprop() -> Callable[..., object]:
    """verification.api.check_backprop: check a two-layer net's gradients against the float64 oracle."""
    from verification.api import check_backprop as check

    return check
