"""Check a schedule against its problem and re-time it from the reference semantics.

Stage 4 of the pipeline (``ocsnet.schedule``).  :func:`retime` is the one
implementation of the timing rules written in :mod:`.problem`'s docstring;
:func:`validate` checks every circuit matrix and recomputes every time with
it, trusting none of the schedule's numbers.  Per phase the work is
vectorized over the demanded pairs; the loop runs over phases and slots only
(each slot's start depends on the one before it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ..errors import ScheduleError
from ..sparse import digest

__all__ = ["validate", "retime", "slot_durations_lp", "Timing", "ValidationResult", "REL_TOL"]

# Relative tolerance on bytes served and on reported times.
REL_TOL = 1e-6
_BYTES_TOL = 1e-9


def _entries(D: sp.csr_matrix):
    rows = np.repeat(np.arange(D.shape[0], dtype=np.int64), np.diff(D.indptr))
    cols = D.indices.astype(np.int64)
    return rows, cols, rows * D.shape[1] + cols, D.data.astype(np.float64)


def _values_at(M: sp.csr_matrix | None, keys: np.ndarray) -> np.ndarray:
    """Entries of a canonical CSR matrix at pair keys ``i * N + j`` (0 where none is stored)."""
    if M is None or M.nnz == 0 or len(keys) == 0:
        return np.zeros(len(keys))
    _, _, mk, data = _entries(M)
    pos = np.minimum(np.searchsorted(mk, keys), len(mk) - 1)
    return np.where(mk[pos] == keys, data[pos], 0.0)


@dataclass
class Timing:
    """Times recomputed by :func:`retime` (seconds)."""

    start_s: np.ndarray
    end_s: np.ndarray
    duration_s: list[list[float]]
    exposed_s: list[list[float]]
    reconfig: list[list[bool]]
    packet_s: np.ndarray
    makespan_s: float
    violations: list[str] = field(default_factory=list)


def _exposures(problem, configs, seq):
    """Per slot: changed?, exposed delay x, and the index of the configuration before it."""
    keys = [digest(C) for C in configs]
    delta = problem.reconfig_delay_s
    changed, exposed, before = [], [], []
    prev = None
    for p, row in enumerate(seq):
        ch, ex, bf = [], [], []
        for k, c in enumerate(row):
            chg = prev is not None and keys[c] != keys[prev]
            ch.append(chg)
            ex.append(0.0 if not chg else (max(0.0, delta - float(problem.gap_s[p])) if k == 0 else delta))
            bf.append(prev)
            prev = c
        changed.append(ch)
        exposed.append(ex)
        before.append(bf)
    return changed, exposed, before


def _phase_pairs(problem, configs, p, row, before):
    """Demanded pairs of phase p: keys, bytes, reserved, circuits per slot, packet mask, lit per slot."""
    D = problem.demand[p]
    rows, cols, keys, dem = _entries(D)
    Rv = _values_at(problem.reserved, keys)
    cv = np.stack([_values_at(configs[c], keys) for c in row]) if len(keys) else np.zeros((len(row), 0))
    if problem.packet_Bps > 0:
        pk = (Rv == 0) & (cv.sum(axis=0) == 0)
    else:
        pk = np.zeros(len(keys), dtype=bool)
    lit = []
    for k, c in enumerate(row):
        if problem.partial_reconfig and before[k] is not None:
            lit.append(Rv + np.minimum(_values_at(configs[before[k]], keys), cv[k]))
        else:
            lit.append(Rv)
    return rows, cols, dem, Rv, cv, pk, lit


def _packet_time(problem, rows, cols, dem, pk) -> float:
    if not pk.any():
        return 0.0
    N = problem.N
    out = np.bincount(rows[pk], dem[pk], minlength=N)
    inn = np.bincount(cols[pk], dem[pk], minlength=N)
    return float(max(out.max(), inn.max()) / problem.packet_Bps)


def retime(problem, configs: Sequence[sp.csr_matrix], seq: Sequence[Sequence[int]],
           durations: Sequence[Sequence[float | None]] | None = None) -> Timing:
    """Time a sequence of slots by the reference semantics.

    Parameters
    ----------
    problem : OCSProblem
    configs : list of canonical integer CSR matrices
    seq : list (per phase) of lists of config indices (one per slot)
    durations : list (per phase) of lists of seconds, optional
        Durations of the slots; the last slot of each phase is always
        recomputed (served until the demand is done), and a missing duration
        of another slot means its exposed delay only.

    Returns
    -------
    Timing
        Phase ready and end times, slot durations, exposures, change flags,
        packet times and the makespan; ``violations`` lists slots shorter than
        their reconfiguration and demand that cannot be served (the makespan
        is then infinite).
    """
    b = problem.circuit_Bps
    changed, exposed, before = _exposures(problem, configs, seq)
    P = problem.P
    start, end, pkt = np.zeros(P), np.zeros(P), np.zeros(P)
    out_dur: list[list[float]] = []
    viol: list[str] = []
    t = 0.0
    for p, row in enumerate(seq):
        ready = t + problem.gap_s[p]
        rows, cols, dem, Rv, cv, pk, lit = _phase_pairs(problem, configs, p, row, before[p])
        if problem.packet_Bps <= 0:
            none = (Rv == 0) & (cv.sum(axis=0) == 0) if len(dem) else np.zeros(0, bool)
            for k in np.flatnonzero(none)[:3]:
                viol.append(f"phase {p}: pair ({rows[k]}, {cols[k]}) has demand but no circuit in any slot "
                            "and there is no packet network")
        rem = np.where(pk, 0.0, dem)
        durs = []
        K = len(row)
        for k in range(K):
            x = exposed[p][k]
            A = Rv + cv[k]
            L = lit[k]
            if k < K - 1:
                tau = None if durations is None else durations[p][k]
                tau = x if tau is None else float(tau)
                if not (math.isfinite(tau) and tau >= 0):
                    viol.append(f"phase {p} slot {k}: duration_s {tau!r} is not a finite time >= 0")
                    tau = x
                if tau < x * (1 - REL_TOL) - 1e-15:
                    viol.append(f"phase {p} slot {k}: duration_s {tau:.9g} is shorter than its "
                                f"reconfiguration ({x:.9g} s exposed)")
                served = L * b * min(tau, x) + A * b * max(0.0, tau - x)
                rem = np.maximum(rem - served, 0.0)
                rem[rem <= _BYTES_TOL * dem] = 0.0
            else:
                need = np.zeros(len(rem))
                act = rem > 0
                Lb = L * b
                early = act & (rem <= Lb * x)
                with np.errstate(divide="ignore", invalid="ignore"):
                    need[early] = rem[early] / Lb[early]
                    late = act & ~early
                    need[late] = np.where(A[late] > 0, x + (rem[late] - Lb[late] * x) / (A[late] * b), np.inf)
                tau = max(x, float(need.max()) if len(need) else 0.0)
                if not math.isfinite(tau):
                    k0 = int(np.flatnonzero(~np.isfinite(need))[0])
                    viol.append(f"phase {p}: pair ({rows[k0]}, {cols[k0]}) is not fully served: "
                                f"{rem[k0]:.6g} bytes left and no circuit in the last slot")
            durs.append(float(tau))
        pkt[p] = _packet_time(problem, rows, cols, dem, pk)
        start[p] = ready
        end[p] = ready + max(sum(durs), pkt[p])
        t = end[p]
        out_dur.append(durs)
    return Timing(start_s=start, end_s=end, duration_s=out_dur, exposed_s=exposed, reconfig=changed,
                  packet_s=pkt, makespan_s=float(end[-1]) if P else 0.0, violations=viol)


def slot_durations_lp(problem, configs, seq, phases: Sequence[int]) -> dict[int, list[float]]:
    """Slot durations that minimize each listed phase's time, by a linear program.

    For phase ``p`` with slots ``k`` the hold times ``h_k = duration_k - x_k
    >= 0`` minimize ``sum h_k`` subject to ``sum_k A_k b h_k >= D - sum_k
    L_k b x_k`` for every circuit-carried pair (``A`` all circuits, ``L`` the
    ones lit during the exposed delay ``x``).  Solved with HiGHS through
    ``scipy.optimize.linprog``; an infeasible phase (a pair with no circuit)
    gets its exposed delays only, and :func:`retime` reports it.

    Returns
    -------
    dict phase -> list of durations (seconds), one per slot.
    """
    b = problem.circuit_Bps
    _, exposed, before = _exposures(problem, configs, seq)
    out = {}
    for p in phases:
        row = seq[p]
        K = len(row)
        x = np.asarray(exposed[p], dtype=float)
        rows, cols, dem, Rv, cv, pk, lit = _phase_pairs(problem, configs, p, row, before[p])
        A = (Rv[None, :] + cv)[:, ~pk]                       # (K, pairs)
        Lx = sum(lit[k][~pk] * x[k] for k in range(K)) if K else 0.0
        rhs = dem[~pk] / b - Lx                                # circuit-seconds still needed
        need = rhs > 0
        h = np.zeros(K)
        if need.any():
            A, rhs = A[:, need], rhs[need]
            if np.any(A.sum(axis=0) == 0):
                out[p] = x.tolist()
                continue
            scale = float(rhs.max())
            res = linprog(np.ones(K), A_ub=-A.T, b_ub=-rhs / scale, bounds=[(0, None)] * K, method="highs")
            if res.status != 0:
                raise ScheduleError(f"phase {p}: slot timing LP failed ({res.message})")
            h = np.maximum(res.x, 0.0) * scale
        out[p] = (x + h).tolist()
    return out


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
    rows, cols, _, v = _entries(C)
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
    from .io import canonical_config
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
