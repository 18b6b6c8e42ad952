"""The CP-SAT models with one slot per phase, and the data both exact models share.

Stage 4 of the pipeline (``ocsnet.schedule``), part of the exact solver
(:func:`~ocsnet.schedule.exact.solve_exact` builds, solves and reads back):

* :class:`ModelData` (circuit pairs, per-phase demanded entries, exposures),
  :class:`TimeUnits` (seconds to integer model units), :func:`_pair_time` and
  :func:`add_ports` (port budgets), shared with :mod:`.exact_multi`;
* the plain threshold model (:func:`build_thresholds`: no reserved
  circuits, packet network or partial reconfiguration) and the general
  one-slot table model (:func:`build_one_slot`), each with its hint and
  read-back functions.

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

The threshold model
-------------------
Without extensions, a phase's transfer time is one of the values
``D_pu / (k b)``; order literals over the sorted candidates give each pair
its circuit count (see :func:`build_thresholds`).

References
----------
OR-Tools CP-SAT, https://developers.google.com/optimization/cp/cp_solver
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from .io import Schedule


# ---- data preparation ------------------------------------------------------------------------

class ModelData:
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


class TimeUnits:
    """Seconds <-> integer model units of ``q`` seconds."""

    def __init__(self, q: float):
        self.q = q

    def up(self, t: float) -> int:
        return int(math.ceil(t / self.q - 1e-9)) if t > 0 else 0

    def down(self, t: float) -> int:
        return int(math.floor(t / self.q + 1e-9)) if t > 0 else 0


# ---- one slot per phase ----------------------------------------------------------------------

def add_ports(m, problem, data: ModelData, cnt) -> None:
    """Row and column sums of one configuration within the free ports."""
    for axis, gpus, free in ((0, data.rows, problem.free_out), (1, data.cols, problem.free_in)):
        order = np.argsort(gpus, kind="stable")
        bounds = np.flatnonzero(np.diff(gpus[order])) + 1
        for grp in np.split(order, bounds):
            if len(grp) == 0:
                continue
            g = int(gpus[grp[0]])
            if int(data.cmax[grp].sum()) > int(free[g]):
                m.add(sum(cnt[u] for u in grp) <= int(free[g]))

def build_one_slot(problem, data: ModelData, un: TimeUnits, horizon: int):
    P, b, pb = problem.P, problem.circuit_Bps, problem.packet_Bps
    nU = len(data.keys)
    m = cp_model.CpModel()
    e = [[[m.new_bool_var(f"e{p}_{u}_{k}") for k in range(data.cmax[u] + 1)] for u in range(nU)] for p in range(P)]
    cnt = [[sum(k * e[p][u][k] for k in range(1, data.cmax[u] + 1)) for u in range(nU)] for p in range(P)]
    for p in range(P):
        for u in range(nU):
            m.add_exactly_one(e[p][u])
        add_ports(m, problem, data, cnt[p])
    lb_units = [un.down(x) for x in problem.phase_lower_bounds_s()]
    T = [m.new_int_var(lb_units[p], max(horizon, lb_units[p]), f"T{p}") for p in range(P)]
    z = [None] + [m.new_bool_var(f"z{p}") for p in range(1, P)]
    err = np.zeros(P)                        # rounding: most units the model may overstate phase p
    for p in range(1, P):
        for u in range(nU):
            m.add(cnt[p][u] == cnt[p - 1][u]).only_enforce_if(~z[p])
        Xq = un.up(data.X[p])
        if Xq > 0:
            m.add(T[p] >= Xq * z[p])
    for p, (r, c, dem, uu, Rv) in enumerate(data.phase):
        x = float(data.X[p])
        Xq = un.up(x)
        packet_terms = {}                     # (axis, gpu) -> list of (coef, literal or None)
        for k_, (i, j, D, u, R) in enumerate(zip(r, c, dem, uu, Rv)):
            if u < 0:                         # no circuit possible: reserved or packet only
                if R > 0:
                    m.add(T[p] >= un.up(D / (R * b)))
                else:
                    packet_terms.setdefault((0, i), []).append((D, None))
                    packet_terms.setdefault((1, j), []).append((D, None))
                continue
            K = data.cmax[u]
            ev = e[p][u]
            if R == 0 and pb <= 0:
                m.add(ev[0] == 0)             # must hold a circuit
            if R == 0 and pb > 0:
                packet_terms.setdefault((0, i), []).append((D, ev[0]))
                packet_terms.setdefault((1, j), []).append((D, ev[0]))
            t0 = [0.0 if (R + k == 0) else _pair_time(D, R, R + k, R + k, 0.0, b) for k in range(K + 1)]
            if p == 0 or x <= 0:
                m.add(T[p] >= sum(un.up(t0[k]) * ev[k] for k in range(K + 1) if t0[k] > 0))
                continue
            if problem.partial_reconfig:
                prev = e[p - 1][u]
                f = {}
                for a in range(K + 1):
                    for k in range(K + 1):
                        f[a, k] = m.new_bool_var(f"f{p}_{u}_{a}_{k}")
                for a in range(K + 1):
                    m.add(sum(f[a, k] for k in range(K + 1)) == prev[a])
                for k in range(K + 1):
                    m.add(sum(f[a, k] for a in range(K + 1)) == ev[k])
                terms = []
                for (a, k), fv in f.items():
                    t = 0.0 if R + k == 0 else (t0[k] if a == k else _pair_time(D, R, R + k, R + min(a, k), x, b))
                    if t > 0:
                        terms.append(un.up(t) * fv)
                if terms:
                    m.add(T[p] >= sum(terms))
            elif R == 0:
                # change: x + D/(k b); no change: D/(k b)  ->  T >= Xq z + table
                m.add(T[p] >= Xq * z[p] + sum(un.up(t0[k]) * ev[k] for k in range(1, K + 1)))
                err[p] = max(err[p], 2)
            else:
                tx = [0.0 if R + k == 0 else _pair_time(D, R, R + k, R, x, b) for k in range(K + 1)]
                m.add(T[p] >= sum(un.up(t0[k]) * ev[k] for k in range(K + 1) if t0[k] > 0))
                m.add(T[p] >= sum(un.up(tx[k]) * ev[k] for k in range(K + 1) if tx[k] > 0)).only_enforce_if(z[p])
        for terms in packet_terms.values():
            const = sum(D for D, lit in terms if lit is None)
            var = [(un.up(D / pb), lit) for D, lit in terms if lit is not None]
            m.add(T[p] >= un.up(const / pb) + sum(cf * lit for cf, lit in var))
            err[p] = max(err[p], 1 + len(var))
        err[p] = max(err[p], 1)
    m.minimize(sum(T))
    return m, {"e": e, "z": z, "T": T, "err": err, "objective": sum(T)}


def build_thresholds(problem, data: ModelData, un: TimeUnits, horizon: int):
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
    c = [[m.new_int_var(0, int(data.cmax[u]), f"c{p}_{u}") for u in range(nU)] for p in range(P)]
    z = [None] + [m.new_bool_var(f"z{p}") for p in range(1, P)]
    lbp = problem.phase_lower_bounds_s()
    obj, theta, order = [], [], []
    for p in range(P):
        add_ports(m, problem, data, c[p])
        if p > 0:
            for u in range(nU):
                m.add(c[p][u] == c[p - 1][u]).only_enforce_if(~z[p])
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
        a = [m.new_bool_var(f"a{p}_{j}") for j in range(len(th))]
        m.add(a[-1] == 1)
        for j in range(len(th) - 1):
            m.add_implication(a[j], a[j + 1])
        thq = [un.up(t) for t in th]
        obj.append(thq[0])
        obj.extend((thq[j + 1] - thq[j]) * ~a[j] for j in range(len(th) - 1) if thq[j + 1] > thq[j])
        for u, D in zip(uu, dem):
            lits = []
            for k in range(1, int(data.cmax[u])):
                # t_p < D / (k b)  <=>  t_p <= the largest candidate below it
                j = int(np.searchsorted(th, D / (k * b) * (1 - 1e-12), side="left")) - 1
                if j >= 0:
                    lits.append(a[j])
            m.add(c[p][u] >= 1 + sum(lits))
        theta.append(th)
        order.append(a)
    m.minimize(sum(obj))
    return m, {"c": c, "z": z, "a": order, "theta": theta, "err": np.full(P, 2.0), "objective": sum(obj)}


def hint_thresholds(m, v, data: ModelData, hint: Schedule, problem):
    prev = None
    for p, ph in enumerate(hint.phases):
        C = hint.configs[ph.slots[0].config]
        vals = np.asarray(C[data.rows, data.cols]).ravel().astype(int) if len(data.rows) else np.zeros(0, int)
        vals = np.minimum(vals, data.cmax)
        for u, val in enumerate(vals):
            m.add_hint(v["c"][p][u], int(val))
        if p > 0:
            m.add_hint(v["z"][p], int(not np.array_equal(vals, prev)))
        prev = vals
        r, cc, dem, uu, Rv = data.phase[p]
        if len(dem):
            t = float((dem / (np.maximum(vals[uu], 1) * problem.circuit_Bps)).max())
            for j, lit in enumerate(v["a"][p]):
                m.add_hint(lit, int(t <= v["theta"][p][j] * (1 + 1e-12)))


def read_thresholds(solver, v, data: ModelData, N: int):
    per_phase = []
    for cp in v["c"]:
        vals = np.array([solver.value(x) for x in cp], dtype=int)
        nz = vals > 0
        per_phase.append([sp.csr_matrix((vals[nz], (data.rows[nz], data.cols[nz])), shape=(N, N))])
    return per_phase, None


def hint_one_slot(m, v, data: ModelData, hint: Schedule):
    P = len(v["e"])
    prev = None
    for p in range(P):
        C = hint.configs[hint.phases[p].slots[0].config]
        vals = np.asarray(C[data.rows, data.cols]).ravel().astype(int) if len(data.rows) else np.zeros(0, int)
        vals = np.minimum(vals, data.cmax)
        for u, val in enumerate(vals):
            for k, lit in enumerate(v["e"][p][u]):
                m.add_hint(lit, int(k == val))
        if p > 0:
            m.add_hint(v["z"][p], int(not np.array_equal(vals, prev)))
        prev = vals


def read_one_slot(solver, v, data: ModelData, N: int):
    per_phase = []
    for ep in v["e"]:
        vals = np.array([next(k for k, lit in enumerate(eu) if solver.boolean_value(lit)) for eu in ep], dtype=int)
        nz = vals > 0
        per_phase.append([sp.csr_matrix((vals[nz], (data.rows[nz], data.cols[nz])), shape=(N, N))])
    return per_phase, None
