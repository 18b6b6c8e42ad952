"""Phase timing and the exact choice over phases: the dynamic program of the OCS heuristic.

Stage 4 of the pipeline (``ocsnet.schedule``), the heuristic's second step:

* :class:`PhaseTimes` -- one-slot phase times of every distinct demand under
  every candidate configuration, vectorized over configurations, with the
  exposed delay of a change at the phase start (and, under partial
  reconfiguration, the circuits that stay lit through it);
* :func:`choose` -- dynamic programming over phases; the state is the
  configuration held; holding costs nothing, switching at the start of phase
  ``p`` costs the exposed ``max(0, delta - g_p)``; a phase costs its duration
  under the chosen configuration (or several-slot option, with its fully
  exposed internal changes).  Switching cost does not depend on the
  configuration left (except under partial reconfiguration, where circuits
  kept by both stay lit: O(K^2) then), so a phase costs O(K) for K
  candidates.  A periodic trace is solved period by period until the cost
  vector advances by the same constant for every state; from then on every
  period makes the same choices (min-plus linearity), so the rest is
  extrapolated exactly, boundaries between repeats included.

The DP is written by hand: it is a shortest path in a layered graph of
P x K states, but its edges are implicit (every state to every state, with
cost depending only on the entered state) and materializing them for
networkx or ``scipy.sparse.csgraph`` would cost O(P K^2) memory.

References
----------
docs/design.md, "The OCS schedule" (reference semantics).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import matching
from ..errors import ScheduleError

__all__ = ["PhaseTimes", "choose"]


class PhaseTimes:
    """One-slot phase times of every distinct demand under every configuration.

    Implements the timing rules of :mod:`ocsnet.schedule.problem` for a phase
    served by one slot: circuits (``C + reserved``), the exposed delay ``x``
    of a change at the phase start, circuits that stay lit during it
    (reserved ones; under partial reconfiguration also ``min(C_old, C_new)``),
    and the packet network for pairs without any circuit.  For each distinct
    demand the circuit counts at its pairs under all K configurations are
    held as one dense (K, nnz) block, so every evaluation is a few numpy
    reductions.
    """

    def __init__(self, problem, demands: list[sp.csr_matrix], configs: list[sp.csr_matrix]):
        self.b = float(problem.circuit_Bps)
        self.pk = float(problem.packet_Bps)
        self.partial = bool(problem.partial_reconfig)
        self.n = problem.N
        self.K = len(configs)
        R = problem.reserved
        self.has_reserved = R.nnz > 0
        self._u = []
        keys = [matching.pair_keys(C) for C in configs]
        allk = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        allc = np.concatenate([C.data.astype(float) for C in configs]) if keys else np.zeros(0)
        owner = np.repeat(np.arange(self.K), [len(k) for k in keys])
        order = np.argsort(allk, kind="stable")
        allk, allc, owner = allk[order], allc[order], owner[order]
        for D in demands:
            q = matching.pair_keys(D)
            w = D.data.astype(float)
            r = matching.values_at(R, q) if self.has_reserved else np.zeros(len(q))
            A = np.tile(r, (self.K, 1))
            lo = np.searchsorted(allk, q, side="left")
            hi = np.searchsorted(allk, q, side="right")
            nm = hi - lo
            if nm.sum():
                e = np.repeat(np.arange(len(q)), nm)
                pos = np.repeat(lo - np.concatenate([[0], np.cumsum(nm)[:-1]]), nm) + np.arange(nm.sum())
                np.add.at(A, (owner[pos], e), allc[pos])
            rows, cols = q // self.n, q % self.n
            self._u.append((w, r, A, rows, cols))
        self._cache: dict = {}
        self.stay = np.array([self._stay(u) for u in range(len(demands))]).reshape(len(demands), self.K)

    def _packet(self, u: int) -> np.ndarray:
        """Packet time of the pairs without any circuit, per configuration, shape (K,)."""
        w, r, A, rows, cols = self._u[u]
        unc = A <= 0
        if not unc.any():
            return np.zeros(self.K)
        if self.pk <= 0:
            return np.where(unc.any(axis=1), np.inf, 0.0)
        X = np.where(unc, w[None, :], 0.0)
        out = np.zeros(self.K)
        for idx in (rows, cols):       # hose model: max of GPU egress and ingress
            S = sp.csr_matrix((np.ones(len(idx)), (np.arange(len(idx)), idx)), shape=(len(idx), self.n))
            out = np.maximum(out, np.asarray((sp.csr_matrix(X) @ S).max(axis=1).todense()).ravel())
        return out / self.pk

    def _stay(self, u: int) -> np.ndarray:
        w, r, A, rows, cols = self._u[u]
        if len(w) == 0:
            return np.zeros(self.K)
        with np.errstate(all="ignore"):
            t = np.where(A > 0, w[None, :] / (A * self.b), 0.0)
        return np.maximum(t.max(axis=1), self._packet(u))

    def switch(self, u: int, x: float) -> np.ndarray:
        """Phase time after a change at its start with exposed delay ``x``.

        Shape (K,) (entering configuration k) when the time does not depend on
        the configuration left, else (K, K) indexed [left, entered].
        """
        key = (u, float(x))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        w, r, A, rows, cols = self._u[u]
        if len(w) == 0 or x <= 0:
            out = self.stay[u].copy() if len(w) else np.full(self.K, max(float(x), 0.0))
            out = np.maximum(out, x)
        elif not self.partial:
            out = np.maximum(self._lit(w, r[None, :], A, x), self._packet(u))
        else:
            pk = self._packet(u)
            out = np.empty((self.K, self.K))
            for s in range(self.K):       # O(K^2 nnz): the left configuration matters
                L = np.minimum(A[s][None, :], A)
                out[s] = np.maximum(self._lit(w, L, A, x), pk)
        self._cache[key] = out
        return out

    def _lit(self, w, L, A, x):
        """Time of the covered pairs: lit circuits ``L`` run through the delay ``x``, all ``A`` after it."""
        b = self.b
        with np.errstate(all="ignore"):
            during = L * b * x
            t = np.where(w[None, :] <= during, w[None, :] / np.maximum(L * b, 1e-300),
                         x + (w[None, :] - during) / np.maximum(A * b, 1e-300))
            t = np.where(A > 0, t, 0.0)
        return np.maximum(t.max(axis=1), x)


def choose(cand: Candidates, exposed_s: np.ndarray, period=None):
    """Dynamic program over phases: the cheapest way to hold and switch candidates.

    Parameters
    ----------
    cand : Candidates
    exposed_s : (P,) array
        Exposed delay ``max(0, delta - g_p)`` of a change at the start of each phase.
    period : (start, length, repeats), optional
        Solve the repeating block period by period and extrapolate once every
        state's cost advances by the same constant and the choices repeat.

    Returns
    -------
    total_s : float
        Sum of phase times (the makespan minus the gaps) of the best plan.
    plan : list of (option, config, previous config) per phase
        ``option`` is -1 for one slot holding ``config``, else an index into
        ``cand.options[uid[p]]`` (then ``config`` is its last slot's).
    stats : dict
        ``periods_solved`` (how many periods the DP actually ran).
    """
    uid = cand.uid
    P = len(uid)
    times = cand.times
    K = times.K
    ar = np.arange(K)
    opt_arrays = []
    for ops in cand.options:
        if ops:
            opt_arrays.append((np.array([o.configs[0] for o in ops]), np.array([o.configs[-1] for o in ops]),
                               np.array([o.circuit_s for o in ops]), np.array([o.packet_s for o in ops])))
        else:
            opt_arrays.append(None)

    def step(V, p):
        u, x = uid[p], float(exposed_s[p])
        stay = V + times.stay[u]
        sw = times.switch(u, x)
        j = int(np.argmin(V))
        m = V[j]
        if sw.ndim == 1:
            c = m + sw
            better = c < stay                    # ties keep the configuration
            Vn = np.where(better, c, stay)
            src = np.where(better, j, ar)
        else:
            M = V[:, None] + sw
            src = np.argmin(M, axis=0)
            Vn = M[src, ar]
            keep = stay <= Vn
            src = np.where(keep, ar, src)
            Vn = np.where(keep, stay, Vn)
        src = src.astype(np.int32)
        opt = None
        oa = opt_arrays[u]
        if oa is not None:
            F, Lo, circ, pkt = oa
            st = V[F] + np.maximum(circ, pkt)
            sc = m + np.maximum(x + circ, pkt)
            use = sc < st
            val = np.where(use, sc, st)
            osrc = np.where(use, j, F)
            for o in np.argsort(val, kind="stable"):
                if val[o] < Vn[Lo[o]]:
                    if opt is None:
                        opt = np.full(K, -1, np.int32)
                    Vn[Lo[o]] = val[o]
                    src[Lo[o]] = osrc[o]
                    opt[Lo[o]] = o
        if not np.isfinite(Vn).any():
            raise ScheduleError(f"demand[{p}]: no candidate serves this phase "
                                "(raise max_slots_per_phase or add a packet network)")
        return Vn, src, opt

    rec: list = [None] * P
    V = np.zeros(K)
    s, ln, r = period if period else (P, 0, 0)
    for p in range(0, s):
        V, a, o = step(V, p)
        rec[p] = (a, o)
    prev_inc, prev_rec, solved = None, None, 0
    q = 0
    while q < r:
        V0 = V
        block = []
        for i in range(ln):
            V, a, o = step(V, s + q * ln + i)
            block.append((a, o))
        rec[s + q * ln: s + (q + 1) * ln] = block
        q += 1
        solved += 1
        fin = np.isfinite(V)
        inc = np.where(fin, V - np.where(np.isfinite(V0), V0, 0.0), 0.0)
        if (prev_inc is not None and np.array_equal(fin, np.isfinite(V0)) and fin.any()
                and np.ptp(inc[fin]) <= 1e-9 * max(abs(inc[fin]).max(), 1e-300)
                and prev_rec is not None and _same_block(block, prev_rec)):
            lam = float(inc[fin][0])
            V = np.where(fin, V + lam * (r - q), V)
            for qq in range(q, r):
                rec[s + qq * ln: s + (qq + 1) * ln] = block
            q = r
            break
        prev_inc, prev_rec = inc, block
    for p in range(s + ln * r, P):
        V, a, o = step(V, p)
        rec[p] = (a, o)
    k = int(np.argmin(V))
    total = float(V[k])
    plan = [None] * P
    for p in range(P - 1, -1, -1):
        a, o = rec[p]
        oi = -1 if o is None else int(o[k])
        plan[p] = (oi, k, int(a[k]))
        k = int(a[k])
    return total, plan, {"periods_solved": solved}


def _same_block(a, b) -> bool:
    for (sa, oa), (sb, ob) in zip(a, b):
        if not np.array_equal(sa, sb):
            return False
        if (oa is None) != (ob is None) or (oa is not None and not np.array_equal(oa, ob)):
            return False
    return True
