"""Example budgets of the property tests, scaled by the hypothesis profile (see conftest.py).

A test asks for ``@examples(n)``: ``n`` examples under the ``ci`` profile (the
default), ``n * 10`` under ``thorough``, a quarter under ``quick``.  Deadlines
and health checks come from the profile, not from each test.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE_ENV = "OCSNET_HYPOTHESIS_PROFILE"
SCALE = {"ci": 1.0, "thorough": 10.0, "quick": 0.25}


def profile() -> str:
    return os.environ.get(PROFILE_ENV, "ci")


def examples(n: int) -> settings:
    """Settings with ``n`` examples scaled by the active profile (the profile supplies the rest)."""
    return settings(max_examples=max(1, int(round(n * SCALE.get(profile(), 1.0)))))
