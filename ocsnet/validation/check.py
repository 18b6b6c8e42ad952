"""Validation checks: one :class:`Check` per comparison and the :class:`ValidationReport`.

Stage: validation (see docs/design.md).  The check groups (:mod:`.network`,
:mod:`.topology`, :mod:`.models`) build :class:`Check` objects; :mod:`.run`
runs them.
"""

import json
import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .. import units
from ..errors import SpecError, UnitError
from ..tables import format_table

__all__ = ["Check", "ValidationReport", "RELATIONS", "worst_pair", "worst_check"]

#: tolerance, or at least / at most the reference (with the tolerance as slack).
RELATIONS = ("==", ">=", "<=")

FORMAT = "ocsnet-validation"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Check:
    """One comparison of an ocsnet number with an independent one.

    Attributes
    ----------
    name : str
        Short label, unique in a report (e.g. ``"ring all-reduce on a ring"``).
    group : str
        One of :data:`GROUPS`.
    what : str
        What is compared, in a sentence (sizes, fabric, method).
    quantity : str
        Name of the compared quantity with its display unit as suffix
        (``"time_us"``, ``"rate_GBps"``); a name without a known unit suffix
        is dimensionless.  Values are stored in SI and converted only for
        display (:mod:`ocsnet.units`).
    ocsnet, reference : float
        ocsnet's number and the independent number, SI units.
    source : str
        Where the reference comes from (closed form, LP, brute force, paper).
    tolerance : float
        Allowed relative difference (``==``) or relative slack (``>=``, ``<=``).
    relation : {"==", ">=", "<="}
        ``==``: ``|ocsnet - reference| <= tolerance * |reference|``;
        ``>=``: ``ocsnet >= reference (1 - tolerance)``; ``<=``:
        ``ocsnet <= reference (1 + tolerance)``.
    note : str
        How the instance was chosen, which case is shown when several were
        compared (the worst), or why the check failed.
    error : str
        Why the check fails whatever the numbers: computing it raised, or
        ocsnet's own output contradicts itself (e.g. a roofline label).
    time_s : float
        Wall time spent computing the check (not part of the JSON by default).
    """

    name: str
    group: str
    what: str
    quantity: str
    ocsnet: float
    reference: float
    source: str
    tolerance: float
    relation: str = "=="
    note: str = ""
    error: str = ""
    time_s: float = 0.0

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise SpecError(f"relation: {self.relation!r} is not one of {', '.join(RELATIONS)}")
        if not (isinstance(self.tolerance, (int, float)) and self.tolerance >= 0):
            raise SpecError(f"tolerance: {self.tolerance!r} is out of range, allowed [0, inf)")
        object.__setattr__(self, "ocsnet", float(self.ocsnet))
        object.__setattr__(self, "reference", float(self.reference))

    @property
    def rel_diff(self) -> float:
        """``(ocsnet - reference) / |reference|``; ``nan`` when either is not finite."""
        o, r = self.ocsnet, self.reference
        if not (math.isfinite(o) and math.isfinite(r)):
            return math.nan
        if r == 0:
            return 0.0 if o == 0 else math.copysign(math.inf, o)
        return (o - r) / abs(r)

    @property
    def passed(self) -> bool:
        """True if the numbers agree under :attr:`relation` and nothing raised."""
        if self.error:
            return False
        d = self.rel_diff
        if math.isnan(d):
            return False
        if self.relation == "==":
            return abs(d) <= self.tolerance
        if self.relation == ">=":
            return d >= -self.tolerance
        return d <= self.tolerance

    def criterion(self) -> str:
        """The pass criterion as text, e.g. ``"|rel|<=1e-09"`` or ``">=ref-1%"``."""
        if self.relation == "==":
            return f"|rel|<={self.tolerance:.0e}"
        sign = "-" if self.relation == ">=" else "+"
        slack = f"{sign}{self.tolerance:.0%}" if self.tolerance else ""
        return f"{self.relation}ref{slack}"

    def display(self, value: float) -> float:
        """A value of this check in the unit its :attr:`quantity` names."""
        return _from_si(self.quantity, value)

    def to_dict(self, *, timing: bool = False) -> dict:
        """JSON-ready dict; numbers in the unit of ``quantity``, non-finite numbers as ``None``."""
        out = {"name": self.name, "group": self.group, "what": self.what, "quantity": self.quantity,
               "ocsnet": _finite(self.display(self.ocsnet)), "reference": _finite(self.display(self.reference)),
               "rel_diff": _finite(self.rel_diff), "relation": self.relation, "tolerance": self.tolerance,
               "passed": self.passed, "source": self.source, "note": self.note, "error": self.error}
        if timing:
            out["time_ms"] = units.from_si("time_ms", self.time_s)
        return out


def _from_si(quantity: str, value: float) -> float:
    try:
        return units.from_si(quantity, value)
    except UnitError:
        return float(value)          # dimensionless (a count, a factor, a ratio)


def _finite(x: float):
    return float(x) if math.isfinite(x) else None


def worst_pair(ocsnet, reference) -> tuple[float, float, int]:
    """The element where two arrays differ most relative to the reference.

    Returns ``(ocsnet[i], reference[i], i)``.  A non-finite or mismatched
    element counts as the worst (so it is what a check shows).

    Examples
    --------
    >>> worst_pair([1.0, 2.2, 3.0], [1.0, 2.0, 3.0])
    (2.2, 2.0, 1)
    """
    o = np.asarray(ocsnet, dtype=float).ravel()
    r = np.asarray(reference, dtype=float).ravel()
    if o.shape != r.shape or not len(o):
        raise SpecError(f"worst_pair: ocsnet has {o.size} values, reference {r.size}; expected the same, at least 1")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(o - r) / np.abs(r)
    d = np.where(o == r, 0.0, d)
    d = np.where(np.isfinite(d), d, np.inf)
    i = int(np.argmax(d))
    return float(o[i]), float(r[i]), i


def worst_check(cases, **fields) -> Check:
    """One :class:`Check` from several ``(ocsnet, reference, label)`` cases, showing the worst.

    ``fields`` are the other :class:`Check` fields; a ``note`` given there is
    put before the label of the case shown.

    Examples
    --------
    >>> c = worst_check([(1.0, 1.0, "small"), (2.1, 2.0, "large")], name="x", group="flow", what="w",
    ...                 quantity="time_s", source="s", tolerance=0.01)
    >>> c.ocsnet, c.note, c.passed
    (2.1, 'worst of 2: large', False)
    """
    o, r, i = worst_pair([c[0] for c in cases], [c[1] for c in cases])
    label = cases[i][2]
    note = f"worst of {len(cases)}: {label}" if len(cases) > 1 else label
    if fields.get("note"):
        note = fields.pop("note") + "; " + note
    return Check(ocsnet=o, reference=r, note=note, **fields)


class ValidationReport:
    """The checks of one validation run.

    Attributes
    ----------
    checks : list of Check
    quick : bool
        Whether every check ran on its smallest instance.
    """

    HEADER = ("check", "quantity", "ocsnet", "reference", "rel_diff", "criterion", "result", "time_ms", "source")

    def __init__(self, checks: Iterable[Check], *, quick: bool = False):
        self.checks: list[Check] = list(checks)
        self.quick = bool(quick)

    def __len__(self) -> int:
        return len(self.checks)

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __repr__(self) -> str:
        return f"ValidationReport({self.summary()!r})"

    @property
    def ok(self) -> bool:
        """True when every check agrees (and there is at least one)."""
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def n_agree(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def n_disagree(self) -> int:
        return len(self.checks) - self.n_agree

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line, e.g. ``"validation: 30 checks, 30 agree, 0 disagree"``."""
        return (f"validation: {len(self.checks)} checks, {self.n_agree} agree, {self.n_disagree} disagree"
                + (" (quick)" if self.quick else ""))

    def rows(self) -> list[list[str]]:
        """Table rows under :attr:`HEADER`, formatted."""
        out = []
        for c in self.checks:
            d = c.rel_diff
            out.append([f"{c.group}: {c.name}", c.quantity, _num(c.display(c.ocsnet)), _num(c.display(c.reference)),
                        "nan" if math.isnan(d) else f"{d:+.1e}", c.criterion(),
                        "agree" if c.passed else "DISAGREE", f"{units.from_si('time_ms', c.time_s):.0f}", c.source])
        return out

    def table(self, *, verbose: bool = False) -> str:
        """The checks as aligned text; ``verbose`` adds what each compares and its note below it."""
        rows = self.rows()
        align = "".join("r" if i in (2, 3, 4, 7) else "l" for i in range(len(self.HEADER)))
        text = format_table(self.HEADER, rows, align=align, rule=True, free_last=True).splitlines()
        lines = text[:2]
        for c, row_text in zip(self.checks, text[2:]):
            lines.append(row_text)
            if verbose or not c.passed:
                for label, text in (("what", c.what if verbose else ""), ("note", c.note), ("error", c.error)):
                    if text:
                        lines.append(f"    {label}: {text}")
        return "\n".join(lines)

    def to_dict(self, *, timing: bool = False) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "quick": self.quick, "ok": self.ok,
                "n_checks": len(self.checks), "n_agree": self.n_agree, "n_disagree": self.n_disagree,
                "checks": [c.to_dict(timing=timing) for c in self.checks]}

    def to_json(self, *, timing: bool = False) -> str:
        """The report as JSON: byte-identical for the same run unless ``timing`` adds wall times."""
        return json.dumps(self.to_dict(timing=timing), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-3):
        return f"{x:.6e}"
    return f"{x:.7g}"


