"""Brute force for tiny OCS scheduling problems with one slot per phase: exact by construction.

Stage 4 of the pipeline (``ocsnet.schedule``).  This is the independent truth
the CP-SAT model (:mod:`.exact`) and the bounds (:mod:`.bounds`) are tested
against, so it shares no timing code with them or with :mod:`.validate`.

Method.  Every valid configuration is enumerated: every integer matrix over
the pairs demanded in some phase (circuits on other pairs serve nothing,
cost ports, and dropping them from every phase never adds a change), with
row and column sums, reserved circuits included, at most ``d`` and only
allowed pairs.  For every phase and configuration the one-slot phase time is
computed in closed form (vectorized over configurations), with and without
a change at the phase start.  The best sequence over all ``|C|**P``
sequences is found by dynamic programming over phases (the end time of
phase ``p`` depends on the past only through phase ``p-1``'s end time and
configuration, so the recursion enumerates every sequence implicitly).
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError

__all__ = ["enumerate_configs", "phase_times", "brute_force", "brute_force_two_slots"]


def enumerate_configs(problem, *, limit: int = 5_000_000):
    """Every valid configuration over the union of demanded pairs.

    Returns
    -------
    rows, cols : arrays of int (pairs)
    counts : int array (K, pairs)
        One row per valid configuration (circuits on each pair).

    Raises
    ------
    ScheduleError
        If more than ``limit`` candidate matrices would have to be examined.
    """
    rows, cols = problem.support()
    ok = problem.is_allowed(rows, cols)
    rows, cols = rows[ok], cols[ok]
    cap = np.minimum(problem.free_out[rows], problem.free_in[cols]).clip(min=0)
    total = math.prod(int(c) + 1 for c in cap)
    if total > limit:
        raise ScheduleError(f"brute force: {total} candidate configurations exceed limit = {limit}; "
                            "use ocsnet.schedule.exact for this size")
    grids = np.meshgrid(*[np.arange(int(c) + 1, dtype=np.int16) for c in cap], indexing="ij") if len(cap) else []
    counts = (np.stack([g.ravel() for g in grids], axis=1) if len(cap)
              else np.zeros((1, 0), dtype=np.int16))
    N = problem.N
    keep = np.ones(len(counts), dtype=bool)
    for i in range(N):          # N <= a handful here: a loop over GPUs is clearer than a scatter
        out = counts[:, rows == i].sum(axis=1)
        inn = counts[:, cols == i].sum(axis=1)
        keep &= (out <= problem.free_out[i]) & (inn <= problem.free_in[i])
    return rows, cols, counts[keep].astype(np.int64)


def phase_times(problem, p: int, rows, cols, counts, prev_counts=None, changed: bool = False) -> np.ndarray:
    """One-slot time of phase ``p`` (from its ready time) under every configuration.

    ``changed`` applies the exposed delay ``max(0, delta - g_p)``; under
    partial reconfiguration ``prev_counts`` (same shape as ``counts``, or one
    row broadcast) are the circuits before the change.
    """
    b, pb = problem.circuit_Bps, problem.packet_Bps
    D = problem.demand[p].toarray()
    R = problem.reserved.toarray()
    x = max(0.0, problem.reconfig_delay_s - float(problem.gap_s[p])) if changed else 0.0
    K = len(counts)
    full = np.zeros((K, problem.N, problem.N))
    full[:, rows, cols] = counts
    A = full + R[None]
    if changed and problem.partial_reconfig:
        pf = np.zeros((K if np.ndim(prev_counts) == 2 and len(prev_counts) == K else 1, problem.N, problem.N))
        pf[:, rows, cols] = prev_counts
        L = R[None] + np.minimum(pf, full)
    else:
        L = np.broadcast_to(R[None], A.shape)
    dem = np.broadcast_to(D[None], A.shape)
    on_packet = (dem > 0) & (A == 0) & (pb > 0)
    circ = (dem > 0) & ~on_packet
    with np.errstate(divide="ignore", invalid="ignore"):
        early = dem <= L * b * x
        t_early = dem / (L * b)
        t_late = np.where(A > 0, x + (dem - L * b * x) / (A * b), np.inf)
        t = np.where(circ, np.where(early & (L > 0), t_early, t_late), 0.0)
    T = np.maximum(t.reshape(K, -1).max(axis=1) if problem.N else np.zeros(K), x)
    if pb > 0:
        pd = np.where(on_packet, dem, 0.0)
        pk = np.maximum(pd.sum(axis=2).max(axis=1), pd.sum(axis=1).max(axis=1)) / pb
        T = np.maximum(T, pk)
    return T


def _two_slot_lp(a: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``min h1 + h2`` s.t. ``a_u h1 + c_u h2 >= r_u``, ``h >= 0``, for many (a, c) rows at once.

    ``a``, ``c``: (M, U) circuit counts of the two slots on the U demanded
    pairs; ``r``: (U,) circuit-seconds each pair needs.  A two-variable LP is
    optimal at a vertex, so every vertex (each axis with each constraint,
    each pair of constraints) is tried and the feasible ones compared.  Written
    by hand, vectorized over the M configuration pairs, so that the brute
    force shares nothing with the HiGHS LP used to time schedules.
    """
    M, U = a.shape
    cands = []
    with np.errstate(divide="ignore", invalid="ignore"):
        cands.append((np.zeros(M), np.where(c > 0, r / c, np.where(r > 0, np.inf, 0)).max(axis=1, initial=0.0)))
        cands.append((np.where(a > 0, r / a, np.where(r > 0, np.inf, 0)).max(axis=1, initial=0.0), np.zeros(M)))
        for u in range(U):
            for v in range(u + 1, U):
                det = a[:, u] * c[:, v] - a[:, v] * c[:, u]
                h1 = (r[u] * c[:, v] - r[v] * c[:, u]) / det
                h2 = (a[:, u] * r[v] - a[:, v] * r[u]) / det
                ok = (det != 0) & (h1 >= 0) & (h2 >= 0)
                cands.append((np.where(ok, h1, np.inf), np.where(ok, h2, np.inf)))
    best = np.full(M, np.inf)
    for h1, h2 in cands:
        h1 = np.where(np.isfinite(h1), h1, np.inf)
        h2 = np.where(np.isfinite(h2), h2, np.inf)
        with np.errstate(invalid="ignore"):
            served = a * h1[:, None] + c * h2[:, None]
            feas = np.all((served >= r * (1 - 1e-12)) | (r <= 0), axis=1) & np.isfinite(h1) & np.isfinite(h2)
        best = np.where(feas, np.minimum(best, h1 + h2), best)
    return best


def brute_force_two_slots(problem, *, limit: int = 200_000) -> float:
    """The optimal makespan over schedules with at most two slots per phase (plain problems only).

    All-stop, no reserved circuits, no packet network.  A phase held by
    ``c1`` then ``c2 != c1`` costs ``delta`` (the change inside it) plus the
    least total hold time of the two slots, a two-variable LP solved at its
    vertices (:func:`_two_slot_lp`); a dynamic program over phases on the
    last configuration enumerates every sequence.

    Returns
    -------
    float
        The optimal makespan, seconds (``inf`` if none serves every phase).

    Raises
    ------
    ScheduleError
        Extensions are on, or ``|C|**2`` exceeds ``limit``.
    """
    if problem.reserved.nnz or problem.partial_reconfig or problem.packet_Bps > 0:
        raise ScheduleError("brute force with two slots: only for all-stop problems without "
                            "reserved circuits or packet network")
    rows, cols, counts = enumerate_configs(problem)
    K = len(counts)
    if K * K > limit:
        raise ScheduleError(f"brute force: {K}**2 configuration pairs exceed limit = {limit}")
    b, delta, g = problem.circuit_Bps, problem.reconfig_delay_s, problem.gap_s
    keys = rows * problem.N + cols
    cost = None
    ia, ib = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")
    ia, ib = ia.ravel(), ib.ravel()
    for p in range(problem.P):
        D = problem.demand[p].tocoo()
        dk = D.row.astype(np.int64) * problem.N + D.col
        pos = np.searchsorted(keys, dk)
        r = D.data / b
        one = phase_times(problem, p, rows, cols, counts)                 # one slot, no change
        a = counts[ia][:, pos].astype(float)
        c = counts[ib][:, pos].astype(float)
        two = (_two_slot_lp(a, c, r) + delta).reshape(K, K)              # [c1, c2]
        two[np.arange(K), np.arange(K)] = np.inf
        if cost is None:                      # first phase: the first configuration is free
            enter = np.zeros(K)
        else:
            w = max(0.0, delta - float(g[p]))
            enter = np.minimum(cost, cost.min() + w)
        cost = g[p] + np.minimum(enter + one, (enter[:, None] + two).min(axis=0))
    return float(cost.min())


def brute_force(problem, *, limit: int = 5_000_000):
    """The optimal one-slot-per-phase schedule of a tiny problem, by enumeration.

    Parameters
    ----------
    problem : OCSProblem
        Tiny: the number of candidate matrices, the product over demanded
        pairs of (max circuits + 1), must not exceed ``limit``; under partial
        reconfiguration the square of the number of valid configurations
        must not exceed it either.
    limit : int

    Returns
    -------
    Schedule
        ``status="optimal"`` (over schedules with one slot per phase),
        ``method="brute"``; ``lower_bound_s`` equals the makespan.

    Raises
    ------
    ScheduleError
        The instance is too large, or no one-slot schedule serves it (some
        phase needs more circuits at a GPU than it has ports).

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.schedule.problem import OCSProblem
    >>> a = np.array([[0, 1e9, 0], [0, 0, 0], [0, 0, 0]]); b = a.T.copy()
    >>> prob = OCSProblem([a, b], [0.0, 0.0], ports=1, circuit_Bps=1e9, reconfig_delay_s=0.5)
    >>> brute_force(prob).makespan_s       # one config {0->1, 1->0} serves both: 1 s + 1 s
    2.0
    """
    from .io import Schedule

    t0 = time.perf_counter()
    rows, cols, counts = enumerate_configs(problem, limit=limit)
    K, P = len(counts), problem.P
    if problem.partial_reconfig and K * K > limit:
        raise ScheduleError(f"brute force: {K}**2 configuration pairs exceed limit = {limit}")
    g = problem.gap_s
    cost = g[0] + phase_times(problem, 0, rows, cols, counts)
    back = []
    for p in range(1, P):
        stay = phase_times(problem, p, rows, cols, counts)
        if problem.partial_reconfig:
            # trans[a, c]: time of phase p under c after a change from a
            trans = np.stack([phase_times(problem, p, rows, cols, counts, counts[a], changed=True)
                              for a in range(K)])
            trans[np.arange(K), np.arange(K)] = stay
            tot = cost[:, None] + trans
            arg = np.argmin(tot, axis=0)
            new = tot[arg, np.arange(K)]
        else:
            move = phase_times(problem, p, rows, cols, counts, changed=True)
            # best predecessor other than c itself: the best, or the second best where c is the best
            order = np.argsort(cost, kind="stable")
            best, second = order[0], (order[1] if K > 1 else order[0])
            other = np.where(np.arange(K) == best, second, best)
            via_other = cost[other] + move
            via_self = cost + stay
            use_self = via_self <= via_other
            arg = np.where(use_self, np.arange(K), other)
            new = np.where(use_self, via_self, via_other)
            if K == 1:
                arg, new = np.zeros(1, dtype=np.int64), via_self
        back.append(arg)
        cost = g[p] + new
    last = int(np.argmin(cost))
    best_cost = float(cost[last])
    if not math.isfinite(best_cost):
        raise ScheduleError("max_slots_per_phase: no schedule with one slot per phase serves every phase "
                            "(some GPU needs more circuits than it has ports); allow more slots")
    seq = [last]
    for arg in reversed(back):
        seq.append(int(arg[seq[-1]]))
    seq.reverse()
    N = problem.N
    cfgs = [sp.csr_matrix((counts[k], (rows, cols)), shape=(N, N)) for k in seq]
    sched = Schedule.from_configs(problem, [[C] for C in cfgs], method="brute", status="optimal",
                                  lower_bound_s=best_cost, solve_time_s=time.perf_counter() - t0,
                                  meta={"slots_per_phase": 1, "n_configs_enumerated": int(K),
                                        "dp_makespan_s": best_cost})
    return sched
