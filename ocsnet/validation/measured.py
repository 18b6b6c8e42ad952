"""Validation checks against measured systems (group ``measured``, ``ocsnet validate --measured``).

Part of :mod:`ocsnet.validation`.  The cases, the predictions and the table
live in :mod:`ocsnet.evaluation.measured`; here each case becomes a
:class:`Check` (its absolute relative error within
:data:`~ocsnet.evaluation.measured.GOAL_MAX`) and the median error a last one
(within :data:`~ocsnet.evaluation.measured.GOAL_MEDIAN`).
"""

from __future__ import annotations

from typing import Iterator

from .. import units
from ..evaluation.measured import GOAL_MAX, GOAL_MEDIAN, measured_table, summary
from .check import Check

__all__ = ["measured_checks"]


def measured_checks(quick: bool = False, seed: int = 0, calibration="measured") -> Iterator[Check]:
    """One check per measured case, then the median |error| against its goal."""
    rows = measured_table(calibration)
    for r in rows:
        unit = r["quantity"]
        si = (lambda v: v) if unit == "tokens_per_s_per_gpu" else (lambda v, u=unit: units.to_si(u, v))
        yield Check(name=r["name"], group="measured", what=f"{r['config']} on {r['system']}", quantity=unit,
                    ocsnet=si(r["predicted"]), reference=si(r["measured"]), source=r["source"],
                    tolerance=GOAL_MAX, note=f"error {100 * r['error']:+.1f}%")
    s = summary(rows)
    yield Check(name="median |error| over the measured cases", group="measured",
                what=f"median absolute relative error of the {s['cases']} measured cases", quantity="error",
                ocsnet=s["median_abs_error"], reference=GOAL_MEDIAN, relation="<=", tolerance=0.0,
                source="issue 15 goal (Vidur reports under 9%, ASTRA-sim 17% geometric mean)")
