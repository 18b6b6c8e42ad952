"""Exact OCS circuit scheduling with CP-SAT (OR-Tools): optimal on small instances, with a proven gap.

Stage 4 of the pipeline (``ocsnet.schedule``).  :func:`solve_exact` builds a
CP-SAT model of the reference semantics (:mod:`.problem`), solves it under a
time limit, and reads the configurations back; the schedule it returns is
always re-timed by :func:`.timing.retime`, so the reported makespan is the
exact one, never the model's rounded value.

The models live in their own modules: one slot per phase (the threshold
model and the general table model, with the data and integer time units
both models share) in :mod:`.exact_one`, several slots per phase in
:mod:`.exact_multi`.  This module is the entry point: it checks the
parameters, picks the model, builds the hint, solves, reads the status,
bound and gap, and re-times the result.

Integer time.  CP-SAT is integer: times are counted in a unit ``q`` chosen
from the instance (``q = H / resolution``, ``H`` the hint's transfer time).
Every table value is rounded *up* and served bytes rounded *down*, so any
model solution is a valid schedule whose exact time is at most the model's;
conversely the model overestimates a schedule by at most a few ``q`` per
phase (``E`` in ``meta["rounding_s"]``).  So ``q * bound - E`` is a proven
lower bound on the optimum.  ``status="optimal"`` is reported only when the
proven gap, from CP-SAT's bound or from :func:`.bounds.lower_bound_s`, is at
most ``OPTIMAL_REL_GAP`` (1e-4); otherwise ``"time-limit"`` (CP-SAT stopped
early) or ``"feasible"`` (CP-SAT proved its integer model optimal, but the
rounding leaves more than that), always with ``lower_bound_s`` and ``gap``.

Status, bound and gap refer to schedules with at most
``max_slots_per_phase`` slots per phase; ``meta["general_lower_bound_s"]``
is the bound for any number of slots.

A hint (the heuristic's schedule, else the best configuration per phase)
is given to CP-SAT so a feasible solution exists from the start; if the
solver does not beat it within the time limit the hint is returned.
Determinism: with ``num_workers=1`` the same inputs give the same schedule;
with several workers CP-SAT's parallel search may pick another of equally
good solutions.

References
----------
OR-Tools CP-SAT, https://developers.google.com/optimization/cp/cp_solver
(model, solve, read back; always a time limit; status and objective bound).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from ortools.sat.python import cp_model

from ..errors import ScheduleError
from .exact_multi import build_multi_slot, hint_multi_slot, read_multi_slot
from .exact_one import (build_one_slot, build_thresholds, ModelData, hint_one_slot, hint_thresholds,
                        read_one_slot, read_thresholds, TimeUnits)
from .io import Schedule


__all__ = ["solve_exact", "OPTIMAL_REL_GAP"]

OPTIMAL_REL_GAP = 1e-4
# Integer time steps per the hint's transfer time: fine for the threshold and
# table models (their numbers only appear as coefficients), coarser for the
# several-slot model, whose products of circuits and hold times propagate
# poorly over huge domains.
_RESOLUTION = {"one": 1e8, "multi": 1e6}
# The threshold model is small and its linear relaxation is tight; CP-SAT's
# presolve (probing, symmetry detection) costs seconds on it and gains nothing
# on the traces measured in benchmarks/bench_schedule_exact.py.
_PLAIN_PARAMS = {"cp_model_presolve": False}
# The several-slot model's products need CP-SAT's full linearization; with the
# default level a single worker can stall on instances of a few variables.
_MULTI_PARAMS = {"linearization_level": 2}


# ---- hint ------------------------------------------------------------------------------------

def _hint(problem, slots: int):
    """A good schedule to start from: the heuristic's, else the best configuration of each phase."""
    try:
        from .heuristic import solve_heuristic
        h = solve_heuristic(problem, max_slots_per_phase=slots)
        if all(len(ph.slots) <= slots for ph in h.phases) and math.isfinite(h.makespan_s):
            return h
    except Exception:  # the hint is optional; any failure falls back  # noqa: BLE001
        pass
    try:
        from .matching import best_config
        cfgs = []
        for D in problem.demand:
            C, _ = best_config(D, problem.free_out, problem.circuit_Bps, col_ports=problem.free_in,
                               base=problem.reserved if problem.reserved.nnz else None, allowed=problem.allowed)
            cfgs.append([C])
        h = Schedule.from_configs(problem, cfgs, method="hint")
        return h if math.isfinite(h.makespan_s) else None
    except Exception:  # noqa: BLE001
        return None


def _needs_slots(problem, data: ModelData) -> int:
    """Fewest slots some phase needs when every circuit-only pair must get a circuit (0 if packets)."""
    if problem.packet_Bps > 0:
        return 1
    need = 1
    for (r, c, dem, u, Rv) in data.phase:
        m = (Rv == 0)
        if not m.any():
            continue
        out = np.bincount(r[m], minlength=problem.N)
        inn = np.bincount(c[m], minlength=problem.N)
        with np.errstate(divide="ignore"):
            a = np.where(out > 0, np.ceil(out / np.maximum(problem.free_out, 1e-300)), 0)
            b = np.where(inn > 0, np.ceil(inn / np.maximum(problem.free_in, 1e-300)), 0)
        need = max(need, int(max(a.max(), b.max())))
    return need


# ---- driver ----------------------------------------------------------------------------------

_STATUS = {cp_model.OPTIMAL: "OPTIMAL", cp_model.FEASIBLE: "FEASIBLE", cp_model.INFEASIBLE: "INFEASIBLE",
           cp_model.UNKNOWN: "UNKNOWN", cp_model.MODEL_INVALID: "MODEL_INVALID"}


def solve_exact(problem, time_limit_s: float = 10.0, max_slots_per_phase: int = 1, num_workers: int | None = None,
                *, resolution: float | None = None, hint: bool = True, seed: int = 0,
                log: bool = False, parameters: dict | None = None) -> Schedule:
    """The optimal schedule of a small OCS problem, or the best found with its proven gap.

    Parameters
    ----------
    problem : OCSProblem
    time_limit_s : float
        CP-SAT wall-time limit, > 0.
    max_slots_per_phase : int
        Most slots a phase may use, >= 1.  ``1`` gives the reference one-slot
        model; more lets a phase that no single configuration serves well
        (all-to-all) split into several configurations.
    num_workers : int, optional
        CP-SAT search workers (default: the machine's cores, at most 8).
    resolution : float, optional
        Integer time steps per the hint's transfer time (sets ``q``); default
        1e8 with one slot per phase, 1e6 with several.
    hint : bool
        Start CP-SAT from the heuristic's schedule.
    seed : int
        CP-SAT random seed.
    log : bool
        Print CP-SAT's search log.
    parameters : dict, optional
        Extra CP-SAT parameters by name (e.g. ``{"symmetry_level": 0}``).

    Returns
    -------
    Schedule
        ``method="exact"``; ``status`` ``"optimal"`` (proven), ``"feasible"``
        or ``"time-limit"``; ``lower_bound_s`` the best proven bound and
        ``gap`` relative to it; ``meta`` has the CP-SAT status, objective and
        bound in seconds, the time unit ``q_s``, ``rounding_s`` and
        ``general_lower_bound_s``; ``timings`` the wall times of the hint,
        the model build and CP-SAT (left out of ``to_json()``).

    Raises
    ------
    ScheduleError
        A parameter is out of range; no schedule exists with
        ``max_slots_per_phase`` slots (a phase needs more circuits at a GPU
        than fit); partial reconfiguration with several slots; or CP-SAT
        found no schedule and there is no hint.

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.schedule.problem import OCSProblem
    >>> a = np.zeros((3, 3)); a[0, 1] = a[1, 2] = 1e9
    >>> b = np.zeros((3, 3)); b[0, 2] = 2e9
    >>> prob = OCSProblem([a, b], [0.0, 0.0], ports=1, circuit_Bps=1e9, reconfig_delay_s=0.5)
    >>> s = solve_exact(prob, time_limit_s=5, num_workers=1)
    >>> s.status, round(s.makespan_s, 9), s.n_reconfigurations      # 1 s, then 0.5 s change + 2 s
    ('optimal', 3.5, 1)
    """
    from .bounds import lower_bound_s as general_bound
    from .validate import validate

    t0 = time.perf_counter()
    try:
        time_limit_s = float(time_limit_s)
    except (TypeError, ValueError):
        raise ScheduleError(f"time_limit_s: expected a number, got {time_limit_s!r}") from None
    if not (time_limit_s > 0 and math.isfinite(time_limit_s)):
        raise ScheduleError(f"time_limit_s: {time_limit_s!r} is out of range, allowed (0, inf)")
    if isinstance(max_slots_per_phase, bool) or int(max_slots_per_phase) != max_slots_per_phase \
            or max_slots_per_phase < 1:
        raise ScheduleError(f"max_slots_per_phase: {max_slots_per_phase!r} is out of range, allowed integers [1, inf)")
    S = int(max_slots_per_phase)
    if S > 1 and problem.partial_reconfig:
        raise ScheduleError("partial_reconfig: the exact solver models it with max_slots_per_phase = 1 only")
    workers = int(num_workers) if num_workers is not None else max(1, min(8, os.cpu_count() or 1))
    if workers < 1:
        raise ScheduleError(f"num_workers: {num_workers!r} is out of range, allowed [1, inf)")
    data = ModelData(problem)
    need = _needs_slots(problem, data)
    if need > S:
        raise ScheduleError(f"max_slots_per_phase: {S} is too few, some phase needs at least {need} slots "
                            "(a GPU has more partners than ports)")
    general = general_bound(problem)
    bound_s = general_bound(problem, max_slots_per_phase=S)
    gsum = float(problem.gap_s.sum())

    # 1. hint and time unit
    t_hint = time.perf_counter()
    h_sched = _hint(problem, S) if hint else None
    t_hint = time.perf_counter() - t_hint
    if h_sched is not None and math.isfinite(h_sched.makespan_s) and h_sched.makespan_s - gsum > 0:
        H = h_sched.makespan_s - gsum
    else:
        b = problem.circuit_Bps
        H = float(sum(data.X) + sum((D.data.max() / b if D.nnz else 0.0) for D in problem.demand))
        if problem.packet_Bps > 0:
            H += float(np.maximum(problem.row_sums(), problem.col_sums()).max(axis=1).sum() / problem.packet_Bps)
        H = max(H, problem.reconfig_delay_s * problem.P * S, 1e-30)
    if resolution is None:
        resolution = _RESOLUTION["one" if S == 1 else "multi"]
    if not (float(resolution) >= 1):
        raise ScheduleError(f"resolution: {resolution!r} is out of range, allowed [1, inf)")
    un = TimeUnits(H / float(resolution))
    # horizon: any solution at least as good as the hint fits (plus rounding slack per phase)
    horizon = int(math.ceil(H / un.q)) + 8 * S * problem.P + 8 if h_sched is not None else int(
        math.ceil(4 * H / un.q)) + 8 * S * problem.P + 8

    # 2. build
    plain = problem.reserved.nnz == 0 and not problem.partial_reconfig and problem.packet_Bps <= 0
    if S == 1 and plain:
        model, v = build_thresholds(problem, data, un, horizon)
        if h_sched is not None:
            hint_thresholds(model, v, data, h_sched, problem)
    elif S == 1:
        model, v = build_one_slot(problem, data, un, horizon)
        if h_sched is not None:
            hint_one_slot(model, v, data, h_sched)
    else:
        model, v = build_multi_slot(problem, data, un, horizon, S)
        if h_sched is not None:
            hint_multi_slot(model, v, data, h_sched, un, problem)
    # a proven bound helps CP-SAT stop as soon as it reaches it (the model never undercuts a true time)
    if math.isfinite(bound_s) and bound_s - gsum > 0:
        model.add(v["objective"] >= un.down(bound_s - gsum))
    t_build = time.perf_counter() - t0

    # 3. solve
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, float(time_limit_s) - t_build)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = int(seed)
    solver.parameters.log_search_progress = bool(log)
    params = dict(_PLAIN_PARAMS) if (S == 1 and plain) else dict(_MULTI_PARAMS) if S > 1 else {}
    if S > 1:
        # the several-slot model is only accurate to its rounding slack: stop within it
        params["absolute_gap_limit"] = 2.0 * float(v["err"].sum())
    params.update(parameters or {})
    for key, val in params.items():
        try:
            setattr(solver.parameters, key, val)
        except (AttributeError, TypeError, ValueError) as e:
            raise ScheduleError(f"parameters: CP-SAT has no parameter {key!r} = {val!r} ({e})") from None
    code = solver.solve(model)
    name = _STATUS.get(code, str(code))

    # 4. read back and re-time
    E = float(un.q * v["err"].sum())
    meta = {"cp_sat_status": name, "q_s": un.q, "rounding_s": E, "slots_per_phase": S,
            "general_lower_bound_s": general, "num_workers": workers,
            "hint_makespan_s": None if h_sched is None else h_sched.makespan_s,
            "n_pairs": int(len(data.keys)), "n_variables": len(model.proto.variables),
            "n_constraints": len(model.proto.constraints)}
    sched = None
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if S == 1 and plain:
            per_phase, durs = read_thresholds(solver, v, data, problem.N)
        elif S == 1:
            per_phase, durs = read_one_slot(solver, v, data, problem.N)
        else:
            per_phase, durs = read_multi_slot(solver, v, data, problem.N, un)
        sched = Schedule.from_configs(problem, per_phase, durations=durs, method="exact", lower_bound_s=0.0)
        if durs is not None:
            # the model's slot times are rounded up; the LP split for the same configurations is exact
            lp = Schedule.from_configs(problem, per_phase, method="exact", lower_bound_s=0.0)
            if validate(problem, lp).ok and lp.makespan_s < sched.makespan_s:
                sched = lp
        meta["objective_s"] = gsum + un.q * solver.objective_value
        meta["objective_bound_s"] = gsum + un.q * solver.best_objective_bound
        if not validate(problem, sched).ok:    # cannot happen if the model is right; never return it
            meta["model_schedule_invalid"] = True
            sched = None
    elif code == cp_model.INFEASIBLE:
        raise ScheduleError(f"max_slots_per_phase: no schedule with {S} slot(s) per phase exists")
    elif code == cp_model.MODEL_INVALID:  # pragma: no cover - a bug in the model
        raise ScheduleError(f"exact: CP-SAT rejected the model ({model.validate()})")
    bound_model = -math.inf
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound_model = gsum + un.q * solver.best_objective_bound - E
    elif code == cp_model.UNKNOWN and math.isfinite(solver.best_objective_bound):
        bound_model = gsum + un.q * solver.best_objective_bound - E
    if sched is None or (h_sched is not None and h_sched.makespan_s < sched.makespan_s):
        if h_sched is None:
            raise ScheduleError(f"exact: CP-SAT found no schedule within time_limit_s = {time_limit_s} "
                                f"(status {name}) and there is no hint")
        sched = Schedule.from_configs(problem, [[h_sched.configs[s.config] for s in ph.slots] for ph in h_sched.phases],
                                      durations=[[s.duration_s for s in ph.slots] for ph in h_sched.phases],
                                      method="exact", lower_bound_s=0.0)
        meta["from_hint"] = True
    lb = max(bound_s, bound_model)
    lb = min(lb, sched.makespan_s)
    sched.lower_bound_s = lb
    if sched.gap <= OPTIMAL_REL_GAP:
        sched.status = "optimal"          # proven by CP-SAT's bound or by bounds.py
    elif code == cp_model.OPTIMAL:
        sched.status = "feasible"         # CP-SAT optimal, but the time unit's rounding leaves a gap
    else:
        sched.status = "time-limit"
    sched.solve_time_s = time.perf_counter() - t0
    sched.meta = meta
    # wall times differ between runs: kept out of meta (and of to_json())
    sched.timings = {"hint_time_s": t_hint, "build_time_s": t_build - t_hint, "cp_sat_time_s": solver.wall_time}
    return sched
