"""Running the validation groups: ``ocsnet validate``.

Stage: validation (see docs/design.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import SpecError

from .check import Check, ValidationReport

__all__ = ["GROUPS", "run"]

#: Check groups in the order they run, and the module that computes each.
GROUPS: dict[str, str] = {
    "collectives": "network:collective_checks",
    "flow": "network:flow_checks",
    "schedule": "network:schedule_checks",
    "flops": "models:flops_checks",
    "astra": "topology:astra_checks",
    "fat-tree": "topology:fat_tree_checks",
    "literature": "models:literature_checks",
    "silicon": "silicon:silicon_checks",
    "queueing": "serving:queueing_checks",
    "memory": "memory:memory_checks",
    "measured": "measured:measured_checks",
}
#: Groups that run only when asked for (``--measured`` or ``--only measured``).
OPT_IN = ("measured",)

#: How ocsnet's number must relate to the reference: equal within the relative

def _group_function(group: str) -> Callable[..., Iterator[Check]]:
    mod, fn = GROUPS[group].split(":")
    return getattr(importlib.import_module(f"{__package__}.{mod}"), fn)


def _error_check(group: str, name: str, exc: BaseException) -> Check:
    return Check(name=name, group=group, what=f"the {group} checks", quantity="value", ocsnet=math.nan,
                 reference=math.nan, source="-", tolerance=0.0,
                 error=f"{type(exc).__name__}: {exc}".splitlines()[0])


def run(quick: bool = False, *, groups: Sequence[str] | None = None, seed: int = 0) -> ValidationReport:
    """Run the validation checks.

    Parameters
    ----------
    quick : bool
        Run every check on its smallest instance (a few seconds in all);
        otherwise on several sizes (under about a minute).
    groups : sequence of str, optional
        Only these groups of :data:`GROUPS` (default all, in that order).
    seed : int
        Seed of the random instances (flow, schedule); the same seed gives
        the same checks and the same JSON.

    Returns
    -------
    ValidationReport

    Raises
    ------
    SpecError
        An unknown group name, or a negative seed.

    References
    ----------
    See the group functions in :mod:`ocsnet.validation.network`,
    :mod:`ocsnet.validation.topology` and :mod:`ocsnet.validation.models` for
    the source of every reference number.
    """
    names = [g for g in GROUPS if g not in OPT_IN] if groups is None else list(groups)
    for g in names:
        if g not in GROUPS:
            raise SpecError(f"groups: {g!r} is not a validation group, expected some of {', '.join(GROUPS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"seed: {seed!r} is out of range, allowed integers [0, inf)")
    checks: list[Check] = []
    for g in names:
        t0 = time.perf_counter()
        try:
            for c in _group_function(g)(quick=bool(quick), seed=int(seed)):
                t1 = time.perf_counter()
                checks.append(dataclasses.replace(c, group=g, time_s=t1 - t0))
                t0 = t1
        except Exception as e:  # noqa: BLE001 - a crash is reported as a failed check, not hidden
            checks.append(dataclasses.replace(_error_check(g, f"{g} checks raised", e),
                                              time_s=time.perf_counter() - t0))
    return ValidationReport(checks, quick=quick)
