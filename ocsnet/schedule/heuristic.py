"""The scalable OCS schedule heuristic: candidate configurations, then an exact choice.

Stage 4 of the pipeline (``ocsnet.schedule``).  :func:`solve_heuristic` is
the solver; its steps live in their own modules:

1. **Candidates** (:mod:`.candidates`, several-slot ones in :mod:`.options`):
   per distinct demand, its best one-slot configuration, configurations for
   the merged demand of windows of consecutive phases, and several-slot
   decompositions and chains for demands no single configuration serves at
   their bound.
2. **Exact choice over the candidates** (:mod:`.dp`): dynamic programming
   over phases, the state being the configuration held, with periodic traces
   extrapolated exactly once a period repeats.
3. **Schedule assembly** (here): the chosen plan is turned into a
   :class:`~ocsnet.schedule.io.Schedule` re-timed by the reference semantics
   (:func:`assemble`, :func:`schedule_from_plan`), with the lower bound and gap.

The result is optimal over the candidate set.  The names of the steps
(``build_candidates``, ``choose``, ``Candidates``, ``ConfigSet``,
``PhaseTimes``, ``unique_demands``, ...) stay importable from here.

References
----------
DESIGN.md, "The OCS scheduling problem" (reference semantics, lower bound).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from .candidates import _WINDOWS, Candidates, ConfigSet, build_candidates, unique_demands
from .dp import PhaseTimes, choose
from .options import Option

__all__ = ["solve_heuristic", "Candidates", "build_candidates", "choose", "ConfigSet", "PhaseTimes", "Option",
           "unique_demands", "assemble", "schedule_from_plan", "design_bound_s"]


def assemble(problem, configs: list[sp.csr_matrix], seq: list[list[int]], durations: list, *, method: str,
             status: str = "feasible", solve_time_s: float = 0.0, meta: dict | None = None,
             lower_bound_s: float | None = None):
    """A :class:`~ocsnet.schedule.io.Schedule` from distinct configurations and per-phase slot indices.

    Times come from :func:`ocsnet.schedule.validate.retime` (the reference
    semantics): ``durations[p]`` is None for a one-slot phase, else the slot
    durations with the last one None (re-timed).  Only the configurations
    used are kept, in order of first use.  Unlike ``Schedule.from_configs``
    this does not re-hash every phase's matrices, which matters at 7,560 phases.
    """
    from .bounds import lower_bound_s as _lb
    from .io import Schedule, phases_from_timing
    from .validate import retime

    order: dict[int, int] = {}
    for row in seq:
        for c in row:
            order.setdefault(c, len(order))
    used = [configs[c] for c in order]
    seq2 = [[order[c] for c in row] for row in seq]
    dur = [[None] * len(row) if d is None else list(d) for row, d in zip(seq2, durations)]
    t = retime(problem, used, seq2, dur)
    phases = phases_from_timing(seq2, t)
    if t.violations:
        raise ScheduleError(f"{method}: internal error, the schedule does not serve the demand: {t.violations[0]}")
    return Schedule(used, phases, makespan_s=t.makespan_s,
                    lower_bound_s=_lb(problem) if lower_bound_s is None else lower_bound_s,
                    status=status, method=method, solve_time_s=solve_time_s,
                    reconfig_delay_s=problem.reconfig_delay_s, meta=meta)


def schedule_from_plan(problem, cand: Candidates, plan, exposed_s: np.ndarray, *, method: str,
                       status: str = "feasible", solve_time_s: float = 0.0, meta: dict | None = None,
                       lower_bound_s: float | None = None):
    """Turn a plan (option, config, previous config per phase) into a re-timed :class:`Schedule`.

    One-slot phases get the closed-form duration; several-slot phases their
    hold times plus each slot's exposed delay (the last slot is re-timed).
    """
    delta = problem.reconfig_delay_s
    seq, durations = [], []
    for p, (o, k, prev) in enumerate(plan):
        if o < 0:
            seq.append([k])
            durations.append(None)
            continue
        op = cand.options[cand.uid[p]][o]
        first = op.configs[0]
        x0 = float(exposed_s[p]) if (p > 0 and prev != first) else 0.0
        seq.append(list(op.configs))
        d = [x0 + float(op.hold_s[0])] + [delta + float(h) for h in op.hold_s[1:]]
        d[-1] = None
        durations.append(d)
    return assemble(problem, cand.configs.configs, seq, durations, method=method, status=status,
                    solve_time_s=solve_time_s, meta=meta, lower_bound_s=lower_bound_s)


def design_bound_s(problem, demands: list, uid: np.ndarray) -> float:
    """The DESIGN.md lower bound computed once per distinct demand (gaps plus, per phase, the
    worst GPU's bytes over its ``d_i b + packet``)."""
    peak = np.array([problem.peak_time_s(D) if D.nnz else 0.0 for D in demands])
    return float(problem.gap_s.sum() + peak[uid].sum())


def solve_heuristic(problem, time_limit_s: float | None = None, max_slots_per_phase: int | None = None,
                    *, windows=_WINDOWS, decompositions=("min-slots", "bvn"), bound: str = "best"):
    """Schedule a large OCS problem: candidate configurations, then an exact choice.

    Parameters
    ----------
    problem : OCSProblem
    time_limit_s : float, optional
        Budget for optional candidates; the schedule is always returned
        (status ``"time-limit"`` if candidates were cut short).
    max_slots_per_phase : int, optional
        Largest number of slots a phase may use (default: no limit).
    windows : sequence of int
        Lengths of the windows of consecutive phases whose merged demand
        gets its own candidate configuration.
    decompositions : sequence of str
        Several-slot decompositions tried for phases no single configuration
        serves at their bound (see :func:`~ocsnet.schedule.decompose.decompose`).
    bound : {"best", "design"}
        ``best``: the tightest bound of :mod:`ocsnet.schedule.bounds`;
        ``design``: the DESIGN.md bound only, computed per distinct demand
        (for very long traces where the tighter bounds cost more than the solve).

    Returns
    -------
    Schedule
        Optimal over the candidates, re-timed by the reference semantics,
        with the lower bound and gap.  ``meta`` holds candidate counts and the
        dynamic program's own makespan (``dp_makespan_s``, equal to the
        re-timed one up to the lit circuits the DP does not credit inside
        several-slot phases).  Wall times of the steps (``candidate_time_s``,
        ``dp_time_s``, ``retime_time_s``) are in ``timings``, not ``meta``,
        so ``to_json()`` is the same on every run.

    Raises
    ------
    ScheduleError
        If some phase cannot be served within ``max_slots_per_phase``.

    Examples
    --------
    A ring step repeated with a short gap: one configuration is held throughout.

    >>> import numpy as np
    >>> from ocsnet.schedule.problem import OCSProblem
    >>> ring = np.roll(np.eye(4), 1, axis=1) * 4e9
    >>> prob = OCSProblem([ring] * 3, [1e-3] * 3, ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-2)
    >>> s = solve_heuristic(prob)
    >>> round(s.makespan_s, 6), s.n_reconfigurations, s.gap
    (6.003, 0, 0.0)
    """
    if max_slots_per_phase is not None and int(max_slots_per_phase) < 1:
        raise ScheduleError(f"max_slots_per_phase: {max_slots_per_phase!r} is out of range, allowed [1, inf)")
    if bound not in ("best", "design"):
        raise ScheduleError(f"bound: {bound!r} is not one of 'best', 'design'")
    t0 = time.perf_counter()
    cand = build_candidates(problem, time_limit_s=time_limit_s, max_slots_per_phase=max_slots_per_phase,
                            windows=windows, decompositions=decompositions, t0=t0)
    exposed = np.maximum(0.0, problem.reconfig_delay_s - problem.gap_s)
    t1 = time.perf_counter()
    total, plan, dstats = choose(cand, exposed, problem.period)
    t2 = time.perf_counter()
    # Deterministic facts only (the JSON must not change between runs); wall
    # times of the steps go to ``timings``, which to_json() leaves out.
    meta = {"candidates": cand.stats, "dp_makespan_s": float(problem.gap_s.sum() + total),
            "periods_solved": dstats["periods_solved"]}
    meta["bound"] = bound
    sched = schedule_from_plan(problem, cand, plan, exposed, method="heuristic",
                               status="time-limit" if cand.truncated else "feasible", meta=meta,
                               lower_bound_s=design_bound_s(problem, cand.demands, cand.uid) if bound == "design" else None)
    t3 = time.perf_counter()
    sched.solve_time_s = t3 - t0
    sched.timings = {"candidate_time_s": t1 - t0, "dp_time_s": t2 - t1, "retime_time_s": t3 - t2}
    if sched.status == "feasible" and sched.makespan_s <= sched.lower_bound_s * (1 + 1e-9):
        sched.status = "optimal"          # meets a proven lower bound
    return sched
