"""The CP-SAT model with several slots per phase (stage 4, ``ocsnet.schedule``).

Part of the exact solver (:func:`~ocsnet.schedule.exact.solve_exact` builds,
solves and reads back): :func:`_build_multi_slot` builds the model,
:func:`_hint_multi_slot` starts it from a given schedule and
:func:`_read_multi_slot` reads the slots back.  The data and time units are
those of :mod:`.exact_one`.

Model with several slots per phase
----------------------------------
Slot ``s`` of phase ``p`` holds integer circuits ``c[p,s,u]`` for its hold
time ``h[p,s]`` after its exposed delay; the bytes a slot serves on a pair
are a decision variable ``m = (R_u + c) h`` (a CP-SAT product), and the
slots of a phase must serve its demand.  Valid cuts ``sum_j m[i,j] <= d h``
per GPU give the solver the DESIGN bound.  Unused slots come last and take
no time (symmetry breaking).  Partial reconfiguration is not modelled here.

References
----------
OR-Tools CP-SAT, https://developers.google.com/optimization/cp/cp_solver
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from .exact_one import _add_ports, _Data, _Units
from .io import Schedule


def _build_multi_slot(problem, data: _Data, un: _Units, horizon: int, S: int):
    P, b, pb = problem.P, problem.circuit_Bps, problem.packet_Bps
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
        for s in range(S):                        # cuts: GPU g's circuits carry at most d_g b per second
            for group in (rowm, colm):
                for g, lst in group.items():
                    grp_prods = [pv for (ss, pv) in lst if ss == s]
                    if len(grp_prods) > 1:
                        m.Add(sum(grp_prods) <= int(problem.port_counts[g]) * h[p][s])
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
