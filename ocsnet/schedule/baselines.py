"""Baseline OCS schedulers to compare the heuristic against, selectable by name.

Stage 4 of the pipeline (``ocsnet.schedule``).  Each baseline returns a
:class:`~ocsnet.schedule.io.Schedule` re-timed by the reference semantics:

``static``
    One configuration for the whole trace: the best one-slot configuration
    for the summed demand of all phases (what a slow, rarely reconfigured OCS
    such as a datacentre spine OCS does).
``per-phase``
    Reconfigure at every phase to the phase's best one-slot configuration
    (the phase's best b-matching); a phase no single configuration can serve
    gets the fewest slots that give every pair a circuit.
``bvn``
    Every phase decomposed into Birkhoff-von Neumann terms (Chang et al. 2000),
    ``d`` terms per slot, as in c-Through/Helios-era circuit scheduling.
``solstice``
    Every phase decomposed by Solstice's stuffing and power-of-two
    thresholded slicing (Liu et al. 2015), ``d`` terms per slot.

Work is done once per distinct demand matrix, so a 7,560-phase trace with a
handful of distinct phases costs a handful of decompositions.

References
----------
C.-S. Chang, W.-J. Chen, H.-Y. Huang, "Birkhoff-von Neumann input buffered
crossbar switches", INFOCOM 2000.

H. Liu et al., "Scheduling techniques for hybrid circuit/packet networks",
CoNEXT 2015.

N. Farrington et al., "Helios", SIGCOMM 2010; G. Wang et al., "c-Through",
SIGCOMM 2010.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from . import matching
from .decompose import decompose
from .candidates import ConfigSet, unique_demands
from .heuristic import design_bound_s
from ..errors import ScheduleError
from ..sparse import canonical, digest

__all__ = ["BASELINES", "solve_baseline", "solve_static", "solve_per_phase", "solve_bvn", "solve_solstice"]


def _kw(problem) -> dict:
    return dict(col_ports=problem.free_in, base=problem.reserved if problem.reserved.nnz else None,
                allowed=problem.allowed)


def _packet_subset_config(problem, D: sp.csr_matrix) -> sp.csr_matrix | None:
    """With a packet network: the best configuration for the largest pairs that fit one slot."""
    if problem.packet_Bps <= 0 or D.nnz == 0:
        return None
    for q in (0.5, 0.75, 0.9, 0.99):
        Dk = D.copy()
        Dk.data = np.where(D.data >= np.quantile(D.data, q), D.data, 0.0)
        C, t = matching.best_config(Dk, problem.free_out, problem.circuit_Bps, **_kw(problem))
        if np.isfinite(t):
            return C
    return sp.csr_matrix(D.shape, dtype=np.int64)           # everything on the packet network


def _build(problem, uid, per_u, *, method: str, t0: float, bound: str = "best", demands=None,
           meta: dict | None = None):
    """Schedule from per-distinct-demand slot lists ``[(configs, hold_s or None)]``.

    One-slot phases are timed in closed form by the re-timing; several-slot
    phases get their hold times plus each slot's exposed delay, computed here
    the way :func:`ocsnet.schedule.validate.retime` counts changes.
    """
    from .io import Schedule

    cs = ConfigSet(problem.N)
    ids = [[cs.add(C) for C in cfgs] for cfgs, _ in per_u]
    keys = [digest(canonical(C, dtype=np.int64)) for C in cs.configs]
    delta = problem.reconfig_delay_s
    per_phase, durations = [], []
    prev = None
    for p, u in enumerate(uid):
        row = ids[u]
        per_phase.append([cs.configs[c] for c in row])
        hold = per_u[u][1]
        if len(row) == 1:
            durations.append(None)
        else:
            d = []
            for k, c in enumerate(row):
                changed = prev is not None and keys[c] != keys[prev]
                x = 0.0 if not changed else (max(0.0, delta - float(problem.gap_s[p])) if k == 0 else delta)
                d.append(x + float(hold[k]))
                prev = c
            d[-1] = None
            durations.append(d)
        prev = row[-1]
    lb = None
    if bound == "design":
        demands, duid = (demands, uid) if demands is not None else unique_demands(problem.demand)
        lb = design_bound_s(problem, demands, duid)
    elif bound != "best":
        raise ScheduleError(f"bound: {bound!r} is not one of 'best', 'design'")
    s = Schedule.from_configs(problem, per_phase, durations=durations, method=method, status="feasible",
                              meta=meta, lower_bound_s=lb)
    s.solve_time_s = time.perf_counter() - t0
    return s


def solve_static(problem, time_limit_s: float | None = None, max_slots_per_phase: int | None = None, *,
                 bound: str = "best"):
    """One configuration for the whole trace: the best one for the summed demand.

    Raises
    ------
    ScheduleError
        If no single configuration gives every demanded pair a circuit and
        there is no packet network (an all-to-all wider than the ports).
    """
    t0 = time.perf_counter()
    demands, uid = unique_demands(problem.demand)
    counts = np.bincount(uid, minlength=len(demands))
    total = sum(D * float(c) for D, c in zip(demands, counts))
    C, t = matching.best_config(total, problem.free_out, problem.circuit_Bps, **_kw(problem))
    if not np.isfinite(t):
        C = _packet_subset_config(problem, canonical(total))
        if C is None:
            raise ScheduleError("static: no single configuration gives every demanded pair a circuit "
                                f"with ports = {problem.ports}; use a packet network or another method")
    return _build(problem, np.zeros(problem.P, np.int64), [([C], None)], method="static", t0=t0, bound=bound)


def _per_demand(problem, demands, slots_of, max_slots_per_phase):
    out = []
    for u, D in enumerate(demands):
        cfgs, hold = slots_of(D)
        if not cfgs:
            C = _packet_subset_config(problem, D)
            cfgs, hold = [C if C is not None else sp.csr_matrix(D.shape, dtype=np.int64)], None
        if max_slots_per_phase is not None and len(cfgs) > max_slots_per_phase:
            raise ScheduleError(f"max_slots_per_phase: a phase needs {len(cfgs)} slots with this method, "
                                f"allowed {max_slots_per_phase}")
        out.append((cfgs, hold))
    return out


def solve_per_phase(problem, time_limit_s: float | None = None, max_slots_per_phase: int | None = None, *,
                    bound: str = "best"):
    """Reconfigure to every phase's best one-slot configuration (fewest slots where none serves it)."""
    t0 = time.perf_counter()
    demands, uid = unique_demands(problem.demand)
    b, kw = problem.circuit_Bps, _kw(problem)

    def slots_of(D):
        C, t = matching.best_config(D, problem.free_out, b, **kw)
        if np.isfinite(t) or D.nnz == 0:
            return [C], None
        cfgs, hold = decompose(D, problem.free_out, b, method="min-slots", **kw)
        return (cfgs, hold) if len(cfgs) != 1 else (cfgs, None)

    return _build(problem, uid, _per_demand(problem, demands, slots_of, max_slots_per_phase),
                  method="per-phase", t0=t0, bound=bound, demands=demands)


def _decomposed(problem, method: str, time_limit_s, max_slots_per_phase, bound):
    t0 = time.perf_counter()
    demands, uid = unique_demands(problem.demand)
    b, kw = problem.circuit_Bps, _kw(problem)

    def slots_of(D):
        if D.nnz == 0:
            return [sp.csr_matrix(D.shape, dtype=np.int64)], None
        cfgs, hold = decompose(D, problem.free_out, b, method=method, **kw)
        return (cfgs, hold) if len(cfgs) != 1 else (cfgs, None)

    return _build(problem, uid, _per_demand(problem, demands, slots_of, max_slots_per_phase),
                  method=method, t0=t0, bound=bound, demands=demands)


def solve_bvn(problem, time_limit_s: float | None = None, max_slots_per_phase: int | None = None, *,
              bound: str = "best"):
    """Birkhoff-von Neumann decomposition of every phase, ``d`` terms per slot."""
    return _decomposed(problem, "bvn", time_limit_s, max_slots_per_phase, bound)


def solve_solstice(problem, time_limit_s: float | None = None, max_slots_per_phase: int | None = None, *,
                   bound: str = "best"):
    """Solstice stuffing and thresholded slicing of every phase, ``d`` terms per slot."""
    return _decomposed(problem, "solstice", time_limit_s, max_slots_per_phase, bound)


BASELINES = {"static": solve_static, "per-phase": solve_per_phase, "bvn": solve_bvn, "solstice": solve_solstice}


def solve_baseline(problem, name: str, time_limit_s: float | None = None, max_slots_per_phase: int | None = None,
                   *, bound: str = "best"):
    """Run the baseline called ``name`` (one of :data:`BASELINES`); ``bound`` as in :func:`ocsnet.schedule.solve`."""
    try:
        fn = BASELINES[name]
    except KeyError:
        raise ScheduleError(f"method: {name!r} is not a baseline; known: {', '.join(BASELINES)}") from None
    return fn(problem, time_limit_s=time_limit_s, max_slots_per_phase=max_slots_per_phase, bound=bound)
