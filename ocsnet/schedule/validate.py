"""Check a schedule against its problem, re-timing it from the reference semantics.

Stage 4 of the pipeline (``ocsnet.schedule``; docs/design.md, "The OCS
schedule").  :func:`validate` checks every circuit matrix and recomputes
every time with :func:`.timing.retime`, the one implementation of the timing
rules written in :mod:`.problem`'s docstring, trusting none of the
schedule's numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from .configs import canonical_config
from .timing import REL_TOL, Timing, retime, stored_entries

__all__ = ["validate", "ValidationResult"]


@dataclass
class ValidationResult:
    """Outcome of :func:`validate`.

    ``ok`` is true when there is no violation; ``makespan_s`` is recomputed
    (infinite when demand is left unserved); each violation names the phase,
    slot, configuration, row or column concerned.
    """

    ok: bool
    makespan_s: float
    violations: list[str]
    timing: Timing | None = None

    @property
    def n_reconfigurations(self) -> int:
        return 0 if self.timing is None else sum(sum(r) for r in self.timing.reconfig)

    def raise_if_invalid(self) -> None:
        """Raise :class:`ScheduleError` listing the first violations."""
        if not self.ok:
            more = f" (and {len(self.violations) - 5} more)" if len(self.violations) > 5 else ""
            raise ScheduleError("schedule is invalid: " + "; ".join(self.violations[:5]) + more)


def _check_config(problem, c: int, C, where: str, viol: list[str]) -> bool:
    N, d = problem.N, problem.ports
    if not sp.issparse(C):
        C = sp.csr_matrix(np.asarray(C))
    if C.shape != (N, N):
        viol.append(f"config {c} ({where}): shape {C.shape}, expected {(N, N)}")
        return False
    C = sp.csr_matrix(C, dtype=np.float64)
    C.sum_duplicates()
    rows, cols, _, v = stored_entries(C)
    ok = True
    bad = np.flatnonzero(~np.isfinite(v) | (v != np.round(v)))
    for k in bad[:3]:
        viol.append(f"config {c} ({where}): row {rows[k]} col {cols[k]} holds {float(v[k])!r} circuits, not an integer")
        ok = False
    bad = np.flatnonzero(v < 0)
    for k in bad[:3]:
        viol.append(f"config {c} ({where}): row {rows[k]} col {cols[k]} holds {v[k]:g} circuits, allowed >= 0")
        ok = False
    bad = np.flatnonzero((rows == cols) & (v != 0))
    for k in bad[:3]:
        viol.append(f"config {c} ({where}): row {rows[k]} col {cols[k]} is on the diagonal (a GPU to itself)")
        ok = False
    if problem.allowed is not None:
        bad = np.flatnonzero((v != 0) & ~problem.allowed[rows, cols])
        for k in bad[:3]:
            viol.append(f"config {c} ({where}): row {rows[k]} col {cols[k]} is not an allowed pair")
            ok = False
    rs = np.bincount(rows, np.maximum(v, 0), minlength=N) + problem.reserved_out
    cs = np.bincount(cols, np.maximum(v, 0), minlength=N) + problem.reserved_in
    pc = problem.port_counts

    def lost(i):
        k = int(d - pc[i])
        return f"; GPU {i} lost {k} of its {d} ports" if k > 0 else ""

    for i in np.flatnonzero(rs > pc)[:3]:
        viol.append(f"config {c} ({where}): row {i} uses {rs[i]:g} transmit ports "
                    f"({problem.reserved_out[i]} reserved), allowed at most {int(pc[i])} for GPU {i}{lost(i)}")
        ok = False
    for j in np.flatnonzero(cs > pc)[:3]:
        viol.append(f"config {c} ({where}): col {j} uses {cs[j]:g} receive ports "
                    f"({problem.reserved_in[j]} reserved), allowed at most {int(pc[j])} for GPU {j}{lost(j)}")
        ok = False
    return ok


def _close(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + 1e-12


def validate(problem, schedule) -> ValidationResult:
    """Check a schedule against its problem, recomputing every time.

    Checks: one phase schedule per phase, every phase with a slot, config
    indices in range, every circuit matrix (integer, >= 0, zero diagonal,
    inside ``allowed``, row and column sums plus the reserved circuits <=
    ports), slot durations (finite, >= the exposed reconfiguration), that
    every byte of demand is served, and that the schedule's reported times
    (slot durations, change flags and exposures, phase start and end,
    makespan) match the re-timed ones and its lower bound does not exceed
    the makespan.

    Parameters
    ----------
    problem : OCSProblem
    schedule : Schedule

    Returns
    -------
    ValidationResult

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.schedule.problem import OCSProblem
    >>> from ocsnet.schedule.io import Schedule
    >>> D = np.array([[0, 4e9], [2e9, 0]])
    >>> prob = OCSProblem([D], [0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=0.0)
    >>> sched = Schedule.from_configs(prob, [[np.array([[0, 2], [1, 0]])]])
    >>> r = validate(prob, sched); r.ok, r.makespan_s
    (True, 2.0)
    """
    viol: list[str] = []
    if len(schedule.phases) != problem.P:
        viol.append(f"phases: the schedule has {len(schedule.phases)}, the problem {problem.P}")
        return ValidationResult(False, math.inf, viol)
    nC = len(schedule.configs)
    seq, dur = [], []
    used: dict[int, str] = {}
    for p, ph in enumerate(schedule.phases):
        if not ph.slots:
            viol.append(f"phase {p}: has no slot")
            continue
        for k, s in enumerate(ph.slots):
            if not (0 <= int(s.config) < nC):
                viol.append(f"phase {p} slot {k}: config index {s.config} out of range [0, {nC - 1}]")
            else:
                used.setdefault(int(s.config), f"phase {p} slot {k}")
        seq.append([int(s.config) for s in ph.slots])
        dur.append([float(s.duration_s) for s in ph.slots])
    if viol:
        return ValidationResult(False, math.inf, viol)
    good = True
    for c, C in enumerate(schedule.configs):
        good &= _check_config(problem, c, C, used.get(c, "unused"), viol)
    if not good:
        return ValidationResult(False, math.inf, viol)
    configs = [canonical_config(C) for C in schedule.configs]
    t = retime(problem, configs, seq, dur)
    viol.extend(t.violations)
    for p, ph in enumerate(schedule.phases):
        last = len(ph.slots) - 1
        for k, s in enumerate(ph.slots):
            if bool(s.reconfig) != bool(t.reconfig[p][k]):
                viol.append(f"phase {p} slot {k}: reconfig flag {bool(s.reconfig)} but the configuration "
                            f"{'changes' if t.reconfig[p][k] else 'does not change'}")
            if not _close(float(s.exposed_s), float(t.exposed_s[p][k])):
                viol.append(f"phase {p} slot {k}: exposed_s {s.exposed_s:.9g}, recomputed {t.exposed_s[p][k]:.9g}")
        need = t.duration_s[p][last]
        if math.isfinite(need) and float(ph.slots[last].duration_s) < need * (1 - REL_TOL) - 1e-12:
            viol.append(f"phase {p} slot {last}: duration_s {ph.slots[last].duration_s:.9g} too short to serve "
                        f"the phase's demand, needs {need:.9g}")
        if not _close(float(ph.start_s), float(t.start_s[p])):
            viol.append(f"phase {p}: start_s {ph.start_s:.9g}, recomputed {t.start_s[p]:.9g}")
        if not _close(float(ph.end_s), float(t.end_s[p])):
            viol.append(f"phase {p}: end_s {ph.end_s:.9g}, recomputed {t.end_s[p]:.9g}")
    if not _close(float(schedule.makespan_s), t.makespan_s):
        viol.append(f"makespan_s: reported {schedule.makespan_s:.9g}, recomputed {t.makespan_s:.9g}")
    if schedule.lower_bound_s > t.makespan_s * (1 + REL_TOL) + 1e-12:
        viol.append(f"lower_bound_s: {schedule.lower_bound_s:.9g} exceeds the recomputed makespan "
                    f"{t.makespan_s:.9g}")
    return ValidationResult(not viol, t.makespan_s, viol, t)
