"""Pick a circuit-scheduling method by name and run it (:func:`solve`).

Stage 4 of the pipeline (``ocsnet.schedule``; docs/design.md, "The OCS
schedule").  The solvers load when called: importing this module is cheap.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import checks
from ..errors import ScheduleError

if TYPE_CHECKING:
    from .io import Schedule
    from .problem import OCSProblem

__all__ = ["solve", "METHODS", "TINY", "EXACT_DEFAULT_LIMIT_S"]

METHODS = ("auto", "exact", "heuristic", "static", "per-phase", "bvn", "solstice")

# ``auto`` calls the exact solver when N * N * P is at most this (e.g. 8 GPUs x 8 phases).
TINY = 512
EXACT_DEFAULT_LIMIT_S = 10.0


def _exact(problem, time_limit_s, max_slots_per_phase):
    from .exact import solve_exact

    kw = {}
    if max_slots_per_phase is not None:
        kw["max_slots_per_phase"] = max_slots_per_phase
    return solve_exact(problem, time_limit_s=time_limit_s if time_limit_s is not None else EXACT_DEFAULT_LIMIT_S,
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
        :mod:`ocsnet.schedule.bounds`, or the docs/design.md bound alone (cheap on
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
    from .problem import OCSProblem

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
