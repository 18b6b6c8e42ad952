"""Exact OCS circuit scheduling with CP-SAT (OR-Tools): optimal on small instances, with a proven gap.

Stage 4 of the pipeline (``ocsnet.schedule``).  :func:`solve_exact` builds a
CP-SAT model of the reference semantics (:mod:`.problem`), solves it under a
time limit, and reads the configurations back; the schedule it returns is
always re-timed by :func:`.validate.retime`, so the reported makespan is the
exact one, never the model's rounded value.

Model with one slot per phase (``max_slots_per_phase=1``)
---------------------------------------------------------
* Only pairs demanded in some phase get variables (circuits elsewhere serve
  nothing and cost ports).  For pair ``u`` and phase ``p`` a one-hot vector
  ``e[p,u,k]``, ``k = 0..cmax_u``, says how many circuits it holds, where
  ``cmax_u = min(free ports of i, free ports of j)``.
* One-slot pair times take only ``cmax_u`` distinct values, so each phase
  time obeys ``T_p >= sum_k t_pu(k) e[p,u,k]`` with the table ``t_pu``
  precomputed: exact and with a tight linear relaxation.  ``z_p`` marks a
  change at phase ``p``: ``not z_p`` forces equal circuit counts on every
  pair, and ``z_p`` adds the exposed delay ``max(0, delta - g_p)`` (for
  pairs with reserved circuits, and under partial reconfiguration where the
  table depends on the circuits before and after, the tables of the changed
  case are separate, enforced by ``z_p`` or indexed by both counts).
* Packet fallback: ``e[p,u,0]`` means the pair goes on the packet network;
  every GPU's packet bytes bound ``T_p`` from below.
* Objective: ``sum_p T_p`` (the gaps are constant).

Model with several slots per phase
----------------------------------
Slot ``s`` of phase ``p`` holds integer circuits ``c[p,s,u]`` for its hold
time ``h[p,s]`` after its exposed delay; the bytes a slot serves on a pair
are a decision variable ``m = (R_u + c) h`` (a CP-SAT product), and the
slots of a phase must serve its demand.  Valid cuts ``sum_j m[i,j] <= d h``
per GPU give the solver the DESIGN bound.  Unused slots come last and take
no time (symmetry breaking).  Partial reconfiguration is not modelled here.

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
import scipy.sparse as sp
from ortools.sat.python import cp_model

from ..errors import ScheduleError
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


# ---- data preparation ------------------------------------------------------------------------

class _Data:
    """Arrays the models need: circuit pairs, per-phase demanded entries, exposures."""

    def __init__(self, problem):
        self.problem = problem
        N = problem.N
        rows, cols = problem.support()
        R = problem.reserved
        cmax = np.minimum(problem.free_out[rows], problem.free_in[cols]).clip(min=0)
        cmax = np.where(problem.is_allowed(rows, cols), cmax, 0)
        keep = cmax > 0
        self.rows, self.cols, self.cmax = rows[keep], cols[keep], cmax[keep].astype(int)
        self.keys = self.rows * N + self.cols
        self.Ru = np.asarray(R[self.rows, self.cols]).ravel().astype(int) if len(self.rows) else np.zeros(0, int)
        self.X = np.maximum(0.0, problem.reconfig_delay_s - problem.gap_s)
        self.phase = []
        for D in problem.demand:
            r = np.repeat(np.arange(N), np.diff(D.indptr))
            c = D.indices.astype(np.int64)
            k = r * N + c
            if len(self.keys) and len(k):
                pos = np.minimum(np.searchsorted(self.keys, k), len(self.keys) - 1)
                u = np.where(self.keys[pos] == k, pos, -1)
            else:
                u = np.full(len(k), -1)
            Rv = np.asarray(R[r, c]).ravel().astype(int) if len(k) else np.zeros(0, int)
            self.phase.append((r, c, D.data.astype(float), u.astype(int), Rv))


def _pair_time(D, R, A, L, x, b):
    """Time for D bytes with L circuits lit during the exposed delay x and A after (inf if impossible)."""
    if D <= 0:
        return 0.0
    if L > 0 and D <= L * b * x:
        return D / (L * b)
    if A <= 0:
        return math.inf
    return x + (D - L * b * x) / (A * b)


class _Units:
    """Seconds <-> integer model units of ``q`` seconds."""

    def __init__(self, q: float):
        self.q = q

    def up(self, t: float) -> int:
        return int(math.ceil(t / self.q - 1e-9)) if t > 0 else 0

    def down(self, t: float) -> int:
        return int(math.floor(t / self.q + 1e-9)) if t > 0 else 0


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


def _needs_slots(problem, data: _Data) -> int:
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


# ---- one slot per phase ----------------------------------------------------------------------

def _add_ports(m, problem, data: _Data, cnt) -> None:
    """Row and column sums of one configuration within the free ports."""
    for axis, gpus, free in ((0, data.rows, problem.free_out), (1, data.cols, problem.free_in)):
        order = np.argsort(gpus, kind="stable")
        bounds = np.flatnonzero(np.diff(gpus[order])) + 1
        for grp in np.split(order, bounds):
            if len(grp) == 0:
                continue
            g = int(gpus[grp[0]])
            if int(data.cmax[grp].sum()) > int(free[g]):
                m.Add(sum(cnt[u] for u in grp) <= int(free[g]))

def _build_one_slot(problem, data: _Data, un: _Units, horizon: int):
    P, b, pb = problem.P, problem.circuit_Bps, problem.packet_Bps
    nU = len(data.keys)
    m = cp_model.CpModel()
    e = [[[m.NewBoolVar(f"e{p}_{u}_{k}") for k in range(data.cmax[u] + 1)] for u in range(nU)] for p in range(P)]
    cnt = [[sum(k * e[p][u][k] for k in range(1, data.cmax[u] + 1)) for u in range(nU)] for p in range(P)]
    for p in range(P):
        for u in range(nU):
            m.AddExactlyOne(e[p][u])
        _add_ports(m, problem, data, cnt[p])
    lb_units = [un.down(x) for x in problem.phase_lower_bounds_s()]
    T = [m.NewIntVar(lb_units[p], max(horizon, lb_units[p]), f"T{p}") for p in range(P)]
    z = [None] + [m.NewBoolVar(f"z{p}") for p in range(1, P)]
    err = np.zeros(P)                        # rounding: most units the model may overstate phase p
    for p in range(1, P):
        for u in range(nU):
            m.Add(cnt[p][u] == cnt[p - 1][u]).OnlyEnforceIf(z[p].Not())
        Xq = un.up(data.X[p])
        if Xq > 0:
            m.Add(T[p] >= Xq * z[p])
    for p, (r, c, dem, uu, Rv) in enumerate(data.phase):
        x = float(data.X[p])
        Xq = un.up(x)
        packet_terms = {}                     # (axis, gpu) -> list of (coef, literal or None)
        for k_, (i, j, D, u, R) in enumerate(zip(r, c, dem, uu, Rv)):
            if u < 0:                         # no circuit possible: reserved or packet only
                if R > 0:
                    m.Add(T[p] >= un.up(D / (R * b)))
                else:
                    packet_terms.setdefault((0, i), []).append((D, None))
                    packet_terms.setdefault((1, j), []).append((D, None))
                continue
            K = data.cmax[u]
            ev = e[p][u]
            if R == 0 and pb <= 0:
                m.Add(ev[0] == 0)             # must hold a circuit
            if R == 0 and pb > 0:
                packet_terms.setdefault((0, i), []).append((D, ev[0]))
                packet_terms.setdefault((1, j), []).append((D, ev[0]))
            t0 = [0.0 if (R + k == 0) else _pair_time(D, R, R + k, R + k, 0.0, b) for k in range(K + 1)]
            if p == 0 or x <= 0:
                m.Add(T[p] >= sum(un.up(t0[k]) * ev[k] for k in range(K + 1) if t0[k] > 0))
                continue
            if problem.partial_reconfig:
                prev = e[p - 1][u]
                f = {}
                for a in range(K + 1):
                    for k in range(K + 1):
                        f[a, k] = m.NewBoolVar(f"f{p}_{u}_{a}_{k}")
                for a in range(K + 1):
                    m.Add(sum(f[a, k] for k in range(K + 1)) == prev[a])
                for k in range(K + 1):
                    m.Add(sum(f[a, k] for a in range(K + 1)) == ev[k])
                terms = []
                for (a, k), fv in f.items():
                    t = 0.0 if R + k == 0 else (t0[k] if a == k else _pair_time(D, R, R + k, R + min(a, k), x, b))
                    if t > 0:
                        terms.append(un.up(t) * fv)
                if terms:
                    m.Add(T[p] >= sum(terms))
            elif R == 0:
                # change: x + D/(k b); no change: D/(k b)  ->  T >= Xq z + table
                m.Add(T[p] >= Xq * z[p] + sum(un.up(t0[k]) * ev[k] for k in range(1, K + 1)))
                err[p] = max(err[p], 2)
            else:
                tx = [0.0 if R + k == 0 else _pair_time(D, R, R + k, R, x, b) for k in range(K + 1)]
                m.Add(T[p] >= sum(un.up(t0[k]) * ev[k] for k in range(K + 1) if t0[k] > 0))
                m.Add(T[p] >= sum(un.up(tx[k]) * ev[k] for k in range(K + 1) if tx[k] > 0)).OnlyEnforceIf(z[p])
        for terms in packet_terms.values():
            const = sum(D for D, lit in terms if lit is None)
            var = [(un.up(D / pb), lit) for D, lit in terms if lit is not None]
            m.Add(T[p] >= un.up(const / pb) + sum(cf * lit for cf, lit in var))
            err[p] = max(err[p], 1 + len(var))
        err[p] = max(err[p], 1)
    m.Minimize(sum(T))
    return m, {"e": e, "z": z, "T": T, "err": err, "objective": sum(T)}


def _build_thresholds(problem, data: _Data, un: _Units, horizon: int):
    """One slot per phase without extensions: phase transfer times as thresholds.

    The transfer time of phase ``p`` is one of the values ``D_pu / (k b)``;
    sorted candidates ``theta_j`` get order literals ``a_j = [t_p <= theta_j]``
    and pair ``u`` needs ``c_pu >= 1 + sum_k a_{j(u,k)}`` circuits, one term per
    breakpoint ``D_pu / (k b)`` of the pair.  Candidates below the phase's
    DESIGN bound or above its one-circuit-per-pair time cannot be optimal
    and are left out.
    """
    P, b = problem.P, problem.circuit_Bps
    nU = len(data.keys)
    m = cp_model.CpModel()
    c = [[m.NewIntVar(0, int(data.cmax[u]), f"c{p}_{u}") for u in range(nU)] for p in range(P)]
    z = [None] + [m.NewBoolVar(f"z{p}") for p in range(1, P)]
    lbp = problem.phase_lower_bounds_s()
    obj, theta, order = [], [], []
    for p in range(P):
        _add_ports(m, problem, data, c[p])
        if p > 0:
            for u in range(nU):
                m.Add(c[p][u] == c[p - 1][u]).OnlyEnforceIf(z[p].Not())
            Xq = un.up(float(data.X[p]))
            if Xq > 0:
                obj.append(Xq * z[p])
        r, cc, dem, uu, Rv = data.phase[p]
        if len(dem) == 0:
            theta.append(np.zeros(0))
            order.append([])
            continue
        K = data.cmax[uu]
        cand = np.concatenate([dem / (k * b) for k in range(1, int(K.max()) + 1)])
        kk = np.concatenate([np.full(len(dem), k) for k in range(1, int(K.max()) + 1)])
        cand = cand[kk <= np.repeat(K[None, :], int(K.max()), axis=0).ravel()]
        lo = max(float(lbp[p]), float((dem / (K * b)).max()))
        hi = float(dem.max() / b)
        th = np.unique(cand[(cand >= lo * (1 - 1e-12)) & (cand <= hi * (1 + 1e-12))])
        a = [m.NewBoolVar(f"a{p}_{j}") for j in range(len(th))]
        m.Add(a[-1] == 1)
        for j in range(len(th) - 1):
            m.AddImplication(a[j], a[j + 1])
        thq = [un.up(t) for t in th]
        obj.append(thq[0])
        obj.extend((thq[j + 1] - thq[j]) * a[j].Not() for j in range(len(th) - 1) if thq[j + 1] > thq[j])
        for u, D in zip(uu, dem):
            lits = []
            for k in range(1, int(data.cmax[u])):
                # t_p < D / (k b)  <=>  t_p <= the largest candidate below it
                j = int(np.searchsorted(th, D / (k * b) * (1 - 1e-12), side="left")) - 1
                if j >= 0:
                    lits.append(a[j])
            m.Add(c[p][u] >= 1 + sum(lits))
        theta.append(th)
        order.append(a)
    m.Minimize(sum(obj))
    return m, {"c": c, "z": z, "a": order, "theta": theta, "err": np.full(P, 2.0), "objective": sum(obj)}


def _hint_thresholds(m, v, data: _Data, hint: Schedule, problem):
    prev = None
    for p, ph in enumerate(hint.phases):
        C = hint.configs[ph.slots[0].config]
        vals = np.asarray(C[data.rows, data.cols]).ravel().astype(int) if len(data.rows) else np.zeros(0, int)
        vals = np.minimum(vals, data.cmax)
        for u, val in enumerate(vals):
            m.AddHint(v["c"][p][u], int(val))
        if p > 0:
            m.AddHint(v["z"][p], int(not np.array_equal(vals, prev)))
        prev = vals
        r, cc, dem, uu, Rv = data.phase[p]
        if len(dem):
            t = float((dem / (np.maximum(vals[uu], 1) * problem.circuit_Bps)).max())
            for j, lit in enumerate(v["a"][p]):
                m.AddHint(lit, int(t <= v["theta"][p][j] * (1 + 1e-12)))


def _read_thresholds(solver, v, data: _Data, N: int):
    per_phase = []
    for cp in v["c"]:
        vals = np.array([solver.Value(x) for x in cp], dtype=int)
        nz = vals > 0
        per_phase.append([sp.csr_matrix((vals[nz], (data.rows[nz], data.cols[nz])), shape=(N, N))])
    return per_phase, None


def _hint_one_slot(m, v, data: _Data, hint: Schedule):
    P = len(v["e"])
    prev = None
    for p in range(P):
        C = hint.configs[hint.phases[p].slots[0].config]
        vals = np.asarray(C[data.rows, data.cols]).ravel().astype(int) if len(data.rows) else np.zeros(0, int)
        vals = np.minimum(vals, data.cmax)
        for u, val in enumerate(vals):
            for k, lit in enumerate(v["e"][p][u]):
                m.AddHint(lit, int(k == val))
        if p > 0:
            m.AddHint(v["z"][p], int(not np.array_equal(vals, prev)))
        prev = vals


def _read_one_slot(solver, v, data: _Data, N: int):
    per_phase = []
    for ep in v["e"]:
        vals = np.array([next(k for k, lit in enumerate(eu) if solver.BooleanValue(lit)) for eu in ep], dtype=int)
        nz = vals > 0
        per_phase.append([sp.csr_matrix((vals[nz], (data.rows[nz], data.cols[nz])), shape=(N, N))])
    return per_phase, None


# ---- several slots per phase -----------------------------------------------------------------

def _build_multi_slot(problem, data: _Data, un: _Units, horizon: int, S: int):
    P, b, pb, d = problem.P, problem.circuit_Bps, problem.packet_Bps, problem.ports
    nU = len(data.keys)
    m = cp_model.CpModel()
    c = [[[m.NewIntVar(0, int(data.cmax[u]), f"c{p}_{s}_{u}") for u in range(nU)] for s in range(S)]
         for p in range(P)]
    z = [[None if (p == 0 and s == 0) else m.NewBoolVar(f"z{p}_{s}") for s in range(S)] for p in range(P)]
    tau = [[m.NewIntVar(0, horizon, f"tau{p}_{s}") for s in range(S)] for p in range(P)]
    h = [[m.NewIntVar(0, horizon, f"h{p}_{s}") for s in range(S)] for p in range(P)]
    lb_units = [un.down(x) for x in problem.phase_lower_bounds_s()]
    T = [m.NewIntVar(lb_units[p], max(horizon, lb_units[p]), f"T{p}") for p in range(P)]
    err = np.zeros(P)
    delta = problem.reconfig_delay_s
    prods = [[[] for _ in range(S)] for _ in range(P)]
    wvars = [{} for _ in range(P)]
    for p in range(P):
        for s in range(S):
            _add_ports(m, problem, data, c[p][s])
            x = float(data.X[p]) if s == 0 else delta
            zz = z[p][s]
            prev = None if zz is None else (c[p][s - 1] if s > 0 else c[p - 1][S - 1])
            if zz is None:
                m.Add(tau[p][s] == h[p][s])
            else:
                m.Add(tau[p][s] == h[p][s] + un.up(x) * zz)
                for u in range(nU):
                    m.Add(c[p][s][u] == prev[u]).OnlyEnforceIf(zz.Not())
            if s > 0:
                # unused slots come last and take no time
                m.Add(tau[p][s] == 0).OnlyEnforceIf(z[p][s].Not())
                if s + 1 < S:
                    m.AddImplication(z[p][s + 1], z[p][s])
        m.Add(T[p] >= sum(tau[p]))
        r, cc, dem, uu, Rv = data.phase[p]
        rowm = {}                                 # gpu -> list of (slot, product var)
        colm = {}
        packet_terms = {}
        for i, j, D, u, R in zip(r, cc, dem, uu, Rv):
            if u < 0:
                if R > 0:                         # only reserved circuits, all the time
                    m.Add(T[p] >= un.up(D / (R * b)))
                else:
                    packet_terms.setdefault((0, i), []).append((D, None))
                    packet_terms.setdefault((1, j), []).append((D, None))
                continue
            K = int(data.cmax[u])
            served = []
            for s in range(S):
                prod = m.NewIntVar(0, (R + K) * horizon, f"m{p}_{s}_{u}")
                m.AddMultiplicationEquality(prod, [c[p][s][u] + R, h[p][s]])
                prods[p][s].append((u, prod))
                served.append(prod)
                rowm.setdefault(i, []).append((s, prod))
                colm.setdefault(j, []).append((s, prod))
                if R > 0 and z[p][s] is not None:   # reserved circuits carry during the change too
                    xd = un.down(float(data.X[p]) if s == 0 else delta)
                    if xd > 0:
                        served.append(R * xd * z[p][s])
            need = int(math.ceil(D / (b * un.q) - 1e-9))
            if pb > 0 and R == 0:
                w = m.NewBoolVar(f"w{p}_{u}")
                wvars[p][u] = w
                for s in range(S):
                    m.Add(c[p][s][u] == 0).OnlyEnforceIf(w)
                m.Add(sum(served) >= need).OnlyEnforceIf(w.Not())
                packet_terms.setdefault((0, i), []).append((D, w))
                packet_terms.setdefault((1, j), []).append((D, w))
            else:
                m.Add(sum(served) >= need)
        for s in range(S):                        # cuts: a GPU's circuits carry at most d b per second
            for group in (rowm, colm):
                for g, lst in group.items():
                    grp_prods = [pv for (ss, pv) in lst if ss == s]
                    if len(grp_prods) > 1:
                        m.Add(sum(grp_prods) <= d * h[p][s])
        for terms in packet_terms.values():
            const = sum(D for D, lit in terms if lit is None)
            var = [(un.up(D / pb), lit) for D, lit in terms if lit is not None]
            m.Add(T[p] >= un.up(const / pb) + sum(cf * lit for cf, lit in var))
            err[p] = max(err[p], 1 + len(var))
        err[p] = max(err[p], 3 * S)
    m.Minimize(sum(T))
    return m, {"c": c, "z": z, "tau": tau, "h": h, "T": T, "err": err, "prod": prods, "w": wvars,
               "objective": sum(T)}


def _hint_multi_slot(m, v, data: _Data, hint: Schedule, un: _Units, problem):
    """A complete hint: circuits, changes, slot and hold times (rounded up with margin), products."""
    S = len(v["c"][0])
    b, pb = problem.circuit_Bps, problem.packet_Bps
    delta = problem.reconfig_delay_s
    margin = 2 if problem.reserved.nnz else 1
    for p, ph in enumerate(hint.phases):
        slots = ph.slots
        vals_s, taus = [], []
        for s in range(S):
            used = s < len(slots)
            sl = slots[min(s, len(slots) - 1)]
            C = hint.configs[sl.config]
            vals = np.asarray(C[data.rows, data.cols]).ravel().astype(int) if len(data.rows) else np.zeros(0, int)
            vals = np.minimum(vals, data.cmax)
            zz = v["z"][p][s]
            if s == 0:
                zval = int(bool(sl.reconfig)) if zz is not None else 0
            else:
                zval = int(used)
            x = float(data.X[p]) if s == 0 else delta
            xq = un.up(x) * zval
            # one unit more covers the rounded-up demand; reserved circuits lose up to one more
            # unit in the rounded-down exposure
            hold = un.up(max(0.0, sl.duration_s - sl.exposed_s)) + margin if used else 0
            for u, val in enumerate(vals):
                m.AddHint(v["c"][p][s][u], int(val))
            if zz is not None:
                m.AddHint(zz, zval)
            m.AddHint(v["h"][p][s], hold)
            m.AddHint(v["tau"][p][s], hold + xq)
            vals_s.append(vals)
            taus.append(hold + xq)
            for (u, prod) in v["prod"][p][s]:
                m.AddHint(prod, int((data.Ru[u] + vals[u]) * hold))
        total = sum(taus)
        if pb > 0:
            # packet-carried pairs: no circuit in any slot
            anyc = np.any(np.stack(vals_s), axis=0)
            for u, w in v["w"][p].items():
                m.AddHint(w, int(not anyc[u]))
            r, cc, dem, uu, Rv = data.phase[p]
            held = anyc[np.maximum(uu, 0)] if len(anyc) else np.zeros(len(uu), dtype=bool)
            pk = (Rv == 0) & ((uu < 0) | ~held)
            if pk.any():
                load = max(np.bincount(r[pk], dem[pk], minlength=problem.N).max(),
                           np.bincount(cc[pk], dem[pk], minlength=problem.N).max())
                total = max(total, un.up(load / pb) + int(pk.sum()) + 1)
        m.AddHint(v["T"][p], int(total))


def _read_multi_slot(solver, v, data: _Data, N: int, un: _Units):
    per_phase, durations = [], []
    for p in range(len(v["c"])):
        cfgs, durs = [], []
        S = len(v["c"][p])
        for s in range(S):
            zz = v["z"][p][s]
            if s > 0 and not solver.BooleanValue(zz):
                break
            vals = np.array([solver.Value(x) for x in v["c"][p][s]], dtype=int)
            tau = solver.Value(v["tau"][p][s])
            nz = vals > 0
            cfgs.append(sp.csr_matrix((vals[nz], (data.rows[nz], data.cols[nz])), shape=(N, N)))
            durs.append(tau * un.q)
        # a zero-length slot serves nothing; dropping it only removes a change
        keep = [k for k in range(len(cfgs)) if durs[k] > 0] or [len(cfgs) - 1]
        cfgs = [cfgs[k] for k in keep]
        durs = [durs[k] for k in keep]
        durs[-1] = None
        per_phase.append(cfgs)
        durations.append(durs)
    return per_phase, durations


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
        ``general_lower_bound_s``.

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
    data = _Data(problem)
    need = _needs_slots(problem, data)
    if need > S:
        raise ScheduleError(f"max_slots_per_phase: {S} is too few, some phase needs at least {need} slots "
                            "(a GPU has more partners than ports)")
    general = general_bound(problem)
    bound_s = general_bound(problem, max_slots_per_phase=S)
    gsum = float(problem.gap_s.sum())

    # 1. hint and time unit
    h_sched = _hint(problem, S) if hint else None
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
    un = _Units(H / float(resolution))
    # horizon: any solution at least as good as the hint fits (plus rounding slack per phase)
    horizon = int(math.ceil(H / un.q)) + 8 * S * problem.P + 8 if h_sched is not None else int(
        math.ceil(4 * H / un.q)) + 8 * S * problem.P + 8

    # 2. build
    plain = problem.reserved.nnz == 0 and not problem.partial_reconfig and problem.packet_Bps <= 0
    if S == 1 and plain:
        model, v = _build_thresholds(problem, data, un, horizon)
        if h_sched is not None:
            _hint_thresholds(model, v, data, h_sched, problem)
    elif S == 1:
        model, v = _build_one_slot(problem, data, un, horizon)
        if h_sched is not None:
            _hint_one_slot(model, v, data, h_sched)
    else:
        model, v = _build_multi_slot(problem, data, un, horizon, S)
        if h_sched is not None:
            _hint_multi_slot(model, v, data, h_sched, un, problem)
    # a proven bound helps CP-SAT stop as soon as it reaches it (the model never undercuts a true time)
    if math.isfinite(bound_s) and bound_s - gsum > 0:
        model.Add(v["objective"] >= un.down(bound_s - gsum))
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
    code = solver.Solve(model)
    name = _STATUS.get(code, str(code))

    # 4. read back and re-time
    E = float(un.q * v["err"].sum())
    meta = {"cp_sat_status": name, "q_s": un.q, "rounding_s": E, "slots_per_phase": S,
            "general_lower_bound_s": general, "num_workers": workers,
            "hint_makespan_s": None if h_sched is None else h_sched.makespan_s,
            "n_pairs": int(len(data.keys)), "n_variables": len(model.Proto().variables),
            "n_constraints": len(model.Proto().constraints)}
    sched = None
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if S == 1 and plain:
            per_phase, durs = _read_thresholds(solver, v, data, problem.N)
        elif S == 1:
            per_phase, durs = _read_one_slot(solver, v, data, problem.N)
        else:
            per_phase, durs = _read_multi_slot(solver, v, data, problem.N, un)
        sched = Schedule.from_configs(problem, per_phase, durations=durs, method="exact", lower_bound_s=0.0)
        if durs is not None:
            # the model's slot times are rounded up; the LP split for the same configurations is exact
            lp = Schedule.from_configs(problem, per_phase, method="exact", lower_bound_s=0.0)
            if validate(problem, lp).ok and lp.makespan_s < sched.makespan_s:
                sched = lp
        meta["objective_s"] = gsum + un.q * solver.ObjectiveValue()
        meta["objective_bound_s"] = gsum + un.q * solver.BestObjectiveBound()
        if not validate(problem, sched).ok:    # cannot happen if the model is right; never return it
            meta["model_schedule_invalid"] = True
            sched = None
    elif code == cp_model.INFEASIBLE:
        raise ScheduleError(f"max_slots_per_phase: no schedule with {S} slot(s) per phase exists")
    elif code == cp_model.MODEL_INVALID:  # pragma: no cover - a bug in the model
        raise ScheduleError(f"exact: CP-SAT rejected the model ({model.Validate()})")
    bound_model = -math.inf
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound_model = gsum + un.q * solver.BestObjectiveBound() - E
    elif code == cp_model.UNKNOWN and math.isfinite(solver.BestObjectiveBound()):
        bound_model = gsum + un.q * solver.BestObjectiveBound() - E
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
    return sched
