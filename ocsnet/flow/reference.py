"""Slow, independent max-min computations used to validate and benchmark the kernel.

Stage 5 of the pipeline (flow model), for checking only.  Two ways to get
the max-min fair rates that share no code with :func:`ocsnet.flow.max_min_fair`:

* :func:`max_min_fair_lp`: a sequence of linear programs solved by HiGHS
  (``scipy.optimize.linprog``): maximize the common level of the unfrozen
  flows, freeze every flow that cannot exceed it, repeat.
* :func:`max_min_fair_loops`: textbook progressive filling in plain Python
  loops over links and flows, one saturation level per round.

Both are far too slow for real sizes; they exist so that tests and
benchmarks compare against something computed another way.

References
----------
.. [1] D. Bertsekas and R. Gallager, *Data Networks*, 2nd ed., Section 6.5.2.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ..errors import FlowError
from .maxmin import as_incidence, check_capacity

__all__ = ["max_min_fair_lp", "max_min_fair_loops"]


def _prepare(incidence, capacity, rate_cap_Bps):
    c = check_capacity(capacity, incidence.shape[0])
    a = as_incidence(incidence, len(c))
    n = a.shape[1]
    cap = np.full(n, np.inf) if rate_cap_Bps is None else np.broadcast_to(np.asarray(rate_cap_Bps, float), (n,)).copy()
    return a, c, cap


def max_min_fair_lp(incidence, capacity, rate_cap_Bps=None, *, rtol: float = 1e-9) -> np.ndarray:
    """Max-min fair rates by a sequence of LPs (HiGHS), for validation.

    Round k maximizes ``t`` subject to ``A r <= c``, ``r <= cap``, ``r >= 0``,
    the frozen rates fixed and ``r_f >= t`` for every unfrozen flow; then, for
    every unfrozen flow, maximizes ``r_f`` with the others kept at ``>= t*``.
    A flow that cannot exceed ``t* (1 + rtol)`` is frozen at ``t*``.

    Parameters
    ----------
    incidence, capacity, rate_cap_Bps
        As in :func:`ocsnet.flow.max_min_fair`.
    rtol : float
        Relative tolerance deciding that a flow cannot exceed the level.

    Returns
    -------
    ndarray
        Rates in bytes/s (``inf`` for a flow no finite link or cap bounds).

    Raises
    ------
    FlowError
        Bad input, or an LP that HiGHS does not solve.
    """
    a, c, cap = _prepare(incidence, capacity, rate_cap_Bps)
    n_links, n = a.shape
    fin = np.isfinite(c)
    # solve in units of the largest finite capacity or cap, so HiGHS's absolute tolerances fit
    finite = np.concatenate([c[fin], cap[np.isfinite(cap)]])
    unit = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
    c, cap = c / unit, cap / unit
    A = a[fin].tocsr()
    b = c[fin]
    rates = np.full(n, np.nan)
    bounded = (np.diff(A.tocsc().indptr) > 0) | np.isfinite(cap)
    rates[~bounded] = np.inf
    unfrozen = np.flatnonzero(bounded)
    while len(unfrozen):
        frozen = np.flatnonzero(~np.isnan(rates))
        lo = np.zeros(n)
        hi = np.where(np.isfinite(cap), cap, None)
        bounds = [(lo[i], hi[i]) for i in range(n)]
        for i in frozen:
            bounds[i] = (rates[i], rates[i]) if np.isfinite(rates[i]) else (0, 0)
        # variables: r (n), t; rows: A r <= b, t - r_f <= 0 for unfrozen f
        G = sp.lil_matrix((len(unfrozen), n + 1))
        for k, f in enumerate(unfrozen):
            G[k, f] = -1.0
            G[k, n] = 1.0
        A_ub = sp.vstack([sp.hstack([A, sp.csr_matrix((A.shape[0], 1))]), G.tocsr()]).tocsr()
        b_ub = np.concatenate([b, np.zeros(len(unfrozen))])
        obj = np.zeros(n + 1)
        obj[n] = -1.0
        res = linprog(obj, A_ub=A_ub, b_ub=b_ub, bounds=bounds + [(0, None)], method="highs")
        if res.status != 0:
            raise FlowError(f"reference LP (level): {res.message}")
        t = res.x[n]
        # which unfrozen flows can exceed t?
        can_grow = np.zeros(len(unfrozen), dtype=bool)
        bounds_t = bounds + [(t * (1 - 1e-10), t * (1 - 1e-10))]   # a hair below t*: stays feasible
        for k, f in enumerate(unfrozen):
            o = np.zeros(n + 1)
            o[f] = -1.0
            r2 = linprog(o, A_ub=A_ub, b_ub=b_ub, bounds=bounds_t, method="highs")
            if r2.status != 0:
                raise FlowError(f"reference LP (flow {f}): {r2.message}")
            can_grow[k] = r2.x[f] > t * (1 + rtol) + 1e-12
        if can_grow.all():       # numerically stuck: freeze the least growable
            can_grow[:] = True
            can_grow[0] = False
        for f in unfrozen[~can_grow]:
            rates[f] = t
        unfrozen = unfrozen[can_grow]
    return rates * unit


def max_min_fair_loops(incidence, capacity, rate_cap_Bps=None, *, rtol: float = 1e-12) -> np.ndarray:
    """Straightforward progressive filling with Python loops (the benchmark baseline).

    Every round computes every link's fair-share level with loops over its
    flows, takes the global minimum, and freezes the flows of every link at
    that level (within ``rtol``): one level per round, a Python loop over
    links and flows in each.

    Parameters
    ----------
    incidence, capacity, rate_cap_Bps
        As in :func:`ocsnet.flow.max_min_fair`.

    Returns
    -------
    ndarray
        Rates in bytes/s.
    """
    a, c, cap = _prepare(incidence, capacity, rate_cap_Bps)
    n_links, n = a.shape
    csc = a
    csr = a.tocsr()
    links_of = [list(zip(csc.indices[csc.indptr[f]:csc.indptr[f + 1]].tolist(),
                         csc.data[csc.indptr[f]:csc.indptr[f + 1]].tolist())) for f in range(n)]
    flows_of = [dict(zip(csr.indices[csr.indptr[l]:csr.indptr[l + 1]].tolist(),
                         csr.data[csr.indptr[l]:csr.indptr[l + 1]].tolist())) for l in range(n_links)]
    resid = c.tolist()
    capl = cap.tolist()
    rates = [float("nan")] * n
    active = set()
    for f in range(n):
        if any(resid[l] != float("inf") for l, _ in links_of[f]) or capl[f] != float("inf"):
            active.add(f)
        else:
            rates[f] = capl[f]
    live_links = {l for l in range(n_links) if flows_of[l] and resid[l] != float("inf")}
    while active:
        best = float("inf")
        level = {}
        for l in live_links:
            w = 0.0
            for f, x in flows_of[l].items():
                w += x
            level[l] = resid[l] / w
            best = min(best, level[l])
        for f in active:
            best = min(best, capl[f])
        tol = best * rtol
        freeze = set()
        for l, s in level.items():
            if s <= best + tol:
                freeze.update(flows_of[l].keys())
        for f in active:
            if capl[f] <= best + tol:
                freeze.add(f)
        for f in freeze:
            rates[f] = best
            for l, x in links_of[f]:
                if l in live_links:
                    resid[l] = max(resid[l] - x * best, 0.0)
                    del flows_of[l][f]
                    if not flows_of[l]:
                        live_links.discard(l)
        active -= freeze
    return np.asarray(rates, dtype=float)
