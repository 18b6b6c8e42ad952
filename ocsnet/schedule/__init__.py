"""OCS circuit scheduling: which circuits the OCS holds in each phase, and when it changes them.

Stage 4 of the pipeline: a :class:`OCSProblem` (a trace's demand per phase on
an OCS fabric) goes in, a :class:`Schedule` comes out, and :func:`validate`
re-times it from the reference semantics alone.  :func:`solve` picks a
method by name:

``exact``
    CP-SAT model, provably optimal on small instances (:mod:`.exact`).
``heuristic``
    Candidate configurations plus an exact dynamic program over them; scales
    to thousands of GPUs and phases (:mod:`.heuristic`).
``static``, ``per-phase``, ``bvn``, ``solstice``
    Baselines (:mod:`.baselines`).
``auto``
    ``exact`` for tiny instances (keeping the heuristic's answer if exact
    stops at its time limit with a worse one), ``heuristic`` otherwise.

Examples
--------
>>> import numpy as np
>>> from ocsnet.schedule import OCSProblem, solve, validate
>>> ring = np.roll(np.eye(8), 1, axis=1) * 1e9          # i -> i+1, 1 GB
>>> prob = OCSProblem([ring, ring.T], [1e-3, 1e-3], ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-2)
>>> s = solve(prob, method="heuristic")      # 0.5 s per ring on 2 circuits; switching costs 9 ms
>>> validate(prob, s).ok, s.n_reconfigurations, round(s.makespan_s, 3)
(True, 1, 1.011)
"""

from __future__ import annotations

import time

from .. import checks
from ..errors import ScheduleError
from .io import PhaseSchedule, Schedule, Slot
from .problem import OCSProblem
from .validate import ValidationResult, validate

__all__ = ["OCSProblem", "Schedule", "PhaseSchedule", "Slot", "validate", "ValidationResult", "solve",
           "METHODS", "TINY"]

METHODS = ("auto", "exact", "heuristic", "static", "per-phase", "bvn", "solstice")

# ``auto`` calls the exact solver when N * N * P is at most this (e.g. 8 GPUs x 8 phases).
TINY = 512
_EXACT_DEFAULT_LIMIT_S = 10.0


def _exact(problem, time_limit_s, max_slots_per_phase):
    try:
        from .exact import solve_exact
    except ImportError as e:  # pragma: no cover - only while the exact solver is missing
        raise ScheduleError(f"method: 'exact' is not available ({e})") from None
    kw = {}
    if max_slots_per_phase is not None:
        kw["max_slots_per_phase"] = max_slots_per_phase
    return solve_exact(problem, time_limit_s=time_limit_s if time_limit_s is not None else _EXACT_DEFAULT_LIMIT_S,
                       **kw)


def solve(problem: OCSProblem, method: str = "auto", time_limit_s: float | None = None,
          max_slots_per_phase: int | None = None, *, bound: str = "best") -> Schedule:
    """Schedule the circuits of an OCS problem with the named method.

    Parameters
    ----------
    problem : OCSProblem
    method : str
        One of :data:`METHODS`.
    time_limit_s : float, optional
        Wall-time budget.  ``exact`` returns its best schedule so far with
        status ``"time-limit"``; the heuristic stops adding optional
        candidates.  Default: none (``exact``: 10 s).
    max_slots_per_phase : int, optional
        Most slots (configurations) a phase may use.
    bound : {"best", "design"}
        Lower bound the heuristic reports: the tightest of
        :mod:`ocsnet.schedule.bounds`, or the DESIGN.md bound alone (cheap on
        very long traces), for the heuristic and the baselines; ``exact``
        always reports its proven bound.

    Returns
    -------
    Schedule
        Re-timed by the reference semantics, with the lower bound and gap.

    Raises
    ------
    ScheduleError
        Unknown method, a negative time limit, or no schedule within the
        limits (e.g. ``static`` for an all-to-all wider than the ports).
    """
    if not isinstance(problem, OCSProblem):
        raise ScheduleError(f"problem: expected an OCSProblem, got {type(problem).__name__}")
    checks.choice("method", method, METHODS, error=ScheduleError)
    checks.choice("bound", bound, ("best", "design"), error=ScheduleError)
    if time_limit_s is not None:
        checks.positive("time_limit_s", time_limit_s, error=ScheduleError)
    if max_slots_per_phase is not None:
        checks.integer("max_slots_per_phase", max_slots_per_phase, lo=1, error=ScheduleError)
    if method == "heuristic":
        from .heuristic import solve_heuristic
        return solve_heuristic(problem, time_limit_s=time_limit_s, max_slots_per_phase=max_slots_per_phase,
                               bound=bound)
    if method == "exact":
        return _exact(problem, time_limit_s, max_slots_per_phase)
    if method == "auto":
        return _auto(problem, time_limit_s, max_slots_per_phase, bound)
    from .baselines import solve_baseline
    return solve_baseline(problem, method, time_limit_s=time_limit_s, max_slots_per_phase=max_slots_per_phase,
                          bound=bound)


def _auto(problem, time_limit_s, max_slots_per_phase, bound) -> Schedule:
    from .heuristic import solve_heuristic

    t0 = time.perf_counter()
    heur = solve_heuristic(problem, time_limit_s=time_limit_s, max_slots_per_phase=max_slots_per_phase, bound=bound)
    if problem.N * problem.N * problem.P > TINY or heur.status == "optimal":
        heur.meta["auto"] = "heuristic"
        return heur
    left = None if time_limit_s is None else max(time_limit_s - (time.perf_counter() - t0), 0.1)
    # Give the exact model at least as many slots as the heuristic used, so it
    # can reproduce (and start from) the heuristic's schedule.
    slots = max_slots_per_phase if max_slots_per_phase is not None else max(len(ph.slots) for ph in heur.phases)
    try:
        ex = _exact(problem, left, slots)
    except ScheduleError as e:
        heur.meta["auto"] = f"heuristic (exact failed: {e})"
        return heur
    if ex.status == "optimal" or ex.makespan_s <= heur.makespan_s:
        ex.meta["auto"] = "exact"
        ex.meta["heuristic_makespan_s"] = heur.makespan_s
        return ex
    heur.meta["auto"] = "heuristic (exact stopped at its time limit with a worse schedule)"
    heur.meta["exact_makespan_s"] = ex.makespan_s
    return heur
