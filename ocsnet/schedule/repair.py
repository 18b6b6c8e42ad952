"""Re-solving an OCS schedule after a fault, warm-started from the schedule in place.

Stage 4 of the pipeline (``ocsnet.schedule``).  When a GPU loses optical
ports (a dead transceiver, a failed OCS plane: :func:`ocsnet.faults.ocs_ports`)
the schedule running on the OCS may use ports that no longer exist.
:func:`resolve_after_fault` repairs it instead of solving from scratch:

1. every configuration of the old schedule is *clipped* to the new port
   budgets: on a GPU over its budget the circuits of pairs holding several
   are dropped first (the pair keeps a circuit), then those of single-circuit
   pairs, largest partner index first (deterministic);
2. a phase in which some demanded pair is left with no circuit in any slot
   (and no packet network) is solved again on its own, with the best one-slot
   configuration under the new budgets, or the fewest slots when one does not
   serve it (:mod:`ocsnet.schedule.matching`); every other phase keeps its
   configurations, so no change is added where none was;
3. the result is re-timed by the reference semantics
   (:meth:`Schedule.from_configs`) and compared with the old makespan.

With ``compare=True`` the heuristic also solves the new problem from scratch
and the better schedule is returned (both makespans and times are reported),
which is what ``benchmarks/bench_faults.py`` measures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from .io import Schedule
from .problem import OCSProblem

__all__ = ["FaultResolve", "resolve_after_fault", "clip_config"]


@dataclass
class FaultResolve:
    """A schedule re-solved after a fault.

    Attributes
    ----------
    schedule : Schedule
        The repaired schedule (or the from-scratch one, if better and compared).
    old_makespan_s, makespan_s : float
        Makespan of the old schedule on the old problem, and of the new one.
    phases_resolved : list of int
        Phases whose configurations were computed again (the others were clipped at most).
    configs_clipped : int
        Configurations of the old schedule that used a lost port.
    repair_time_s : float
        Wall time of the repair (clipping, phase re-solves, re-timing).
    scratch_makespan_s, scratch_time_s : float or None
        The heuristic from scratch, with ``compare=True``.
    repair_makespan_s : float
        Makespan of the repaired schedule (whichever is returned).
    source : str
        ``"repair"`` or ``"scratch"``: which schedule is returned.
    """

    schedule: Schedule
    old_makespan_s: float
    makespan_s: float
    phases_resolved: list = field(default_factory=list)
    configs_clipped: int = 0
    repair_time_s: float = 0.0
    scratch_makespan_s: float | None = None
    scratch_time_s: float | None = None
    source: str = "repair"
    repair_makespan_s: float | None = None

    @property
    def change_s(self) -> float:
        """Makespan after minus before (positive: the fault costs time)."""
        return self.makespan_s - self.old_makespan_s

    def summary(self) -> dict:
        return {"old_makespan_s": self.old_makespan_s, "makespan_s": self.makespan_s,
                "change_s": self.change_s, "phases_resolved": len(self.phases_resolved),
                "configs_clipped": self.configs_clipped, "repair_time_s": self.repair_time_s,
                "repair_makespan_s": self.repair_makespan_s,
                "scratch_makespan_s": self.scratch_makespan_s, "scratch_time_s": self.scratch_time_s,
                "source": self.source}


def clip_config(C: sp.csr_matrix, row_budget: np.ndarray, col_budget: np.ndarray) -> sp.csr_matrix:
    """``C`` with circuits dropped until every row and column fits its budget (see the module docstring)."""
    C = sp.csr_matrix(C, dtype=np.int64)
    C.sum_duplicates()
    for axis in (0, 1):
        M = C if axis == 0 else C.T.tocsr()
        budget = row_budget if axis == 0 else col_budget
        sums = np.asarray(M.sum(axis=1)).ravel()
        over = np.flatnonzero(sums > budget)
        if len(over):
            M = M.tolil()
            for i in over:                    # only GPUs that lost ports: a short loop
                cols = np.asarray(M.rows[i], dtype=np.int64)
                vals = np.asarray(M.data[i], dtype=np.int64)
                excess = int(sums[i] - budget[i])
                extra = np.minimum(vals - 1, excess)            # drop second circuits first
                order = np.argsort(-vals, kind="stable")
                take = np.zeros(len(vals), dtype=np.int64)
                left = excess
                for k in order:
                    t = min(int(extra[k]), left)
                    take[k] += t
                    left -= t
                for k in np.argsort(-cols, kind="stable"):       # then whole pairs, largest index first
                    if left <= 0:
                        break
                    t = min(int(vals[k] - take[k]), left)
                    take[k] += t
                    left -= t
                for k in np.flatnonzero(take):
                    M[i, int(cols[k])] = int(vals[k] - take[k])
            M = sp.csr_matrix(M, dtype=np.int64)
            M.eliminate_zeros()
        C = M if axis == 0 else M.T.tocsr()
    return C


def _unserved(problem: OCSProblem, p: int, cfgs) -> bool:
    if problem.packet_Bps > 0:
        return False
    D = problem.demand[p]
    if D.nnz == 0:
        return False
    have = problem.reserved.copy().astype(np.int64)
    for C in cfgs:
        have = have + C
    rows = np.repeat(np.arange(problem.N), np.diff(D.indptr))
    return bool((np.asarray(have[rows, D.indices]).ravel() <= 0).any())


def _phase_configs(problem: OCSProblem, p: int) -> list:
    from . import matching
    from .decompose import decompose
    kw = dict(col_ports=problem.free_in, base=problem.reserved if problem.reserved.nnz else None,
              allowed=problem.allowed)
    D = problem.demand[p]
    C, t = matching.best_config(D, problem.free_out, problem.circuit_Bps, **kw)
    if np.isfinite(t):
        return [C]
    cfgs, _ = decompose(D, problem.free_out, problem.circuit_Bps, method="min-slots", **kw)
    return list(cfgs)


def resolve_after_fault(old: Schedule, problem: OCSProblem, *, old_problem: OCSProblem | None = None,
                        compare: bool = False, time_limit_s: float | None = None) -> FaultResolve:
    """Repair ``old`` for ``problem`` (the same trace with fewer ports), warm-started.

    Parameters
    ----------
    old : Schedule
        The schedule in place before the fault.
    problem : OCSProblem
        The problem after the fault, e.g. ``old_problem.replace(ports=ocs_ports(fabric, faults))``.
    old_problem : OCSProblem, optional
        Only for the record: ``old.makespan_s`` is the old makespan.
    compare : bool
        Also solve ``problem`` from scratch with the heuristic and return the better.
    time_limit_s : float, optional
        For the from-scratch heuristic.

    Returns
    -------
    FaultResolve

    Raises
    ------
    ScheduleError
        The schedule and the problem disagree on the number of phases or GPUs.

    Examples
    --------
    A ring on 4 GPUs with 2 ports each; GPU 0 loses a port.

    >>> import numpy as np
    >>> from ocsnet.schedule import OCSProblem, solve
    >>> ring = np.roll(np.eye(4), 1, axis=1) * 8e6
    >>> prob = OCSProblem([ring], [0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-3)
    >>> old = solve(prob, "per-phase")
    >>> r = resolve_after_fault(old, prob.replace(ports=[1, 2, 2, 2]))
    >>> round(old.makespan_s * 1e3, 3), round(r.makespan_s * 1e3, 3)
    (4.0, 8.0)
    """
    if len(old.phases) != problem.P:
        raise ScheduleError(f"schedule: has {len(old.phases)} phases, the problem {problem.P}")
    if old.n_gpus and old.n_gpus != problem.N:
        raise ScheduleError(f"schedule: has {old.n_gpus} GPUs, the problem {problem.N}")
    t0 = time.perf_counter()
    fo, fi = problem.free_out, problem.free_in
    clipped, n_clipped = [], 0
    for C in old.configs:
        rs = np.asarray(C.sum(axis=1)).ravel()
        cs = np.asarray(C.sum(axis=0)).ravel()
        if (rs > fo).any() or (cs > fi).any():
            clipped.append(clip_config(C, fo, fi))
            n_clipped += 1
        else:
            clipped.append(C)
    per_phase, redo = [], []
    _, didx = problem.distinct()
    solved: dict[int, list] = {}                 # phases with one demand matrix share a re-solve
    for p, ph in enumerate(old.phases):
        cfgs = [clipped[s.config] for s in ph.slots]
        touched = any(clipped[s.config] is not old.configs[s.config] for s in ph.slots)
        if touched and _unserved(problem, p, cfgs):
            u = int(didx[p])
            if u not in solved:
                solved[u] = _phase_configs(problem, p)
            cfgs = solved[u]
            redo.append(p)
        per_phase.append(cfgs)
    sched = Schedule.from_configs(problem, per_phase, method="repair", status="feasible",
                                  meta={"repaired_from": old.method})
    rt = time.perf_counter() - t0
    out = FaultResolve(sched, float(old.makespan_s), float(sched.makespan_s), redo, n_clipped, rt,
                       repair_makespan_s=float(sched.makespan_s))
    if compare:
        from .heuristic import solve_heuristic
        t1 = time.perf_counter()
        scratch = solve_heuristic(problem, time_limit_s=time_limit_s)
        out.scratch_time_s = time.perf_counter() - t1
        out.scratch_makespan_s = float(scratch.makespan_s)
        if scratch.makespan_s < sched.makespan_s:
            out.schedule, out.makespan_s, out.source = scratch, float(scratch.makespan_s), "scratch"
    return out
