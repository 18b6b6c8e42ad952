"""Decompositions of one demand matrix into several slots (stage 4, ``ocsnet.schedule``).

What the scheduler uses when no single configuration serves a phase well
(all-to-all): the demand is split into several slots, each with its own
configuration, then re-timed.

* :func:`stuff` -- dummy demand that makes every row and column sum equal
  (Solstice's QuickStuff, then the north-west corner rule);
* :func:`bvn` / :func:`solstice_slices` -- Birkhoff-von Neumann terms of a
  stuffed matrix (Chang et al. 2000), optionally with Solstice's
  power-of-two thresholded slicing (Liu et al. 2015);
* :func:`group_slots` -- matching terms packed into slot configurations,
  ``d`` terms per slot (one per OCS plane);
* :func:`retime` -- the shortest slot durations for given configurations
  (a linear program);
* :func:`decompose` -- the entry point: ``bvn``, ``solstice`` or
  ``min-slots`` (the fewest slots, a bipartite edge colouring of the
  support), re-timed by :func:`retime`.

The one-slot configuration and the sparse-matrix helpers shared with this
module live in :mod:`.matching`; its names ``matching.decompose`` etc. still
resolve to the functions here.

References
----------
C.-S. Chang, W.-J. Chen, H.-Y. Huang, "Birkhoff-von Neumann input buffered
crossbar switches", INFOCOM 2000.

H. Liu et al., "Scheduling techniques for hybrid circuit/packet networks"
(Solstice), CoNEXT 2015.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import maximum_bipartite_matching

from ..errors import ScheduleError
from ..sparse import canonical
from .matching import _REL, _caps, _entries, _keep_pairs, mask_at, pair_keys, values_at

__all__ = ["stuff", "bvn", "solstice_slices", "group_slots", "retime", "decompose"]


def stuff(M: sp.csr_matrix, *, integer: bool = False, rounds: int = 4) -> tuple[sp.csr_matrix, float]:
    """Add dummy demand so that every row and column sums to the same total ``L``.

    First raises existing entries (a few vectorized rounds, each row and column
    giving its deficit out in equal shares, like Solstice's QuickStuff, so that
    few new pairs appear), then places what is left by the north-west corner
    rule on the remaining row and column deficits (at most 2N new entries,
    possibly on the diagonal: dummies never become circuits).

    Returns the stuffed matrix and ``L = max(max row sum, max column sum)``.
    """
    M = canonical(M)
    n = M.shape[0]
    rows, cols, w = _entries(M)
    rs = np.bincount(rows, w, minlength=n)
    cs = np.bincount(cols, w, minlength=n)
    L = float(max(rs.max(initial=0.0), cs.max(initial=0.0)))
    rdef, cdef = L - rs, L - cs
    w = w.copy()
    deg_r = np.bincount(rows, minlength=n)
    deg_c = np.bincount(cols, minlength=n)
    for _ in range(rounds):
        p = np.minimum(rdef[rows] / np.maximum(deg_r[rows], 1), cdef[cols] / np.maximum(deg_c[cols], 1))
        if integer:
            p = np.floor(p)
        if not (p > 0).any():
            break
        w += p
        rdef -= np.bincount(rows, p, minlength=n)
        cdef -= np.bincount(cols, p, minlength=n)
    rdef = np.maximum(rdef, 0)
    cdef = np.maximum(cdef, 0)
    if integer:
        rdef, cdef = np.rint(rdef), np.rint(cdef)
    # North-west corner rule, vectorized: cut [0, S] at every cumulative deficit;
    # each piece belongs to one row and one column.
    R, Cc = np.cumsum(rdef), np.cumsum(cdef)
    S = min(R[-1], Cc[-1]) if n else 0.0
    extra = []
    if S > 0:
        cuts = np.unique(np.concatenate([R, Cc]))
        cuts = cuts[(cuts > 0) & (cuts <= S)]
        starts = np.concatenate([[0.0], cuts[:-1]])
        amount = cuts - starts
        mid = starts + amount / 2
        i = np.minimum(np.searchsorted(R, mid, side="right"), n - 1)
        j = np.minimum(np.searchsorted(Cc, mid, side="right"), n - 1)
        keep = amount > (0.5 if integer else 1e-12 * L)
        extra = (i[keep], j[keep], amount[keep])
    if extra:
        rows = np.concatenate([rows, extra[0]])
        cols = np.concatenate([cols, extra[1]])
        w = np.concatenate([w, extra[2]])
    out = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
    out.sum_duplicates()
    out.sort_indices()
    return out, L


def _perfect_matching(support: sp.csr_matrix) -> np.ndarray | None:
    m = maximum_bipartite_matching(support, perm_type="column")
    return None if (m < 0).any() else m


def bvn(M: sp.csr_matrix, *, tol: float = 1e-9, threshold: str = "none",
        max_terms: int | None = None) -> list[tuple[np.ndarray, float]]:
    """Birkhoff-von Neumann decomposition of a stuffed (doubly balanced) matrix.

    Repeatedly finds a perfect matching on the support
    (``scipy.sparse.csgraph.maximum_bipartite_matching``, Hopcroft-Karp), takes
    the smallest matched entry as its weight and subtracts it, which zeroes at
    least one entry per term.  With ``threshold="solstice"`` the matching is
    sought only among entries >= ``r``, ``r`` the largest power of two (times
    the largest entry's scale) for which one exists, as Solstice's slicing does,
    so the first terms carry the big entries.

    Returns a list of ``(match, weight)``: ``match[i]`` is the column matched to
    row ``i``.  Stops when every entry is below ``tol * L`` or ``max_terms`` is
    reached.
    """
    M = canonical(M)
    n = M.shape[0]
    if M.nnz == 0:
        return []
    data = M.data.copy()
    keys = pair_keys(M)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(M.indptr))
    L = float(np.bincount(rows, data, minlength=n).max())
    eps = tol * L
    r = 2.0 ** np.floor(np.log2(data.max())) if threshold == "solstice" else 0.0
    out: list[tuple[np.ndarray, float]] = []
    while max_terms is None or len(out) < max_terms:
        live = data > max(eps, r * (1 - _REL) if r else 0.0)
        if not (data > eps).any():
            break
        S = sp.csr_matrix((np.ones(live.sum()), (rows[live], M.indices[live])), shape=(n, n))
        m = _perfect_matching(S)
        if m is None:
            if threshold == "solstice" and r > eps:
                r /= 2
                if r <= eps:
                    r = 0.0
                continue
            break                               # numerically exhausted
        pos = np.searchsorted(keys, np.arange(n, dtype=np.int64) * n + m)
        wgt = float(data[pos].min())
        data[pos] -= wgt
        data[data <= eps] = 0.0
        out.append((m.astype(np.int64), wgt))
    return out


def solstice_slices(M: sp.csr_matrix, *, tol: float = 1e-9, max_terms: int | None = None):
    """Solstice's thresholded slicing of a stuffed matrix (see :func:`bvn`)."""
    return bvn(M, tol=tol, threshold="solstice", max_terms=max_terms)


def group_slots(terms, real: sp.csr_matrix, row_ports, col_ports=None) -> list[sp.csr_matrix]:
    """Pack matching terms into slot configurations, heaviest first (first fit).

    A term contributes one circuit to each of its pairs that carries real
    demand (dummies and diagonal entries are dropped).  A slot takes terms
    while every row and column stays within its free ports, so with ``d``
    ports per GPU ``d`` terms share one slot, one per OCS plane.  A slot that
    uses at most ``1/f`` of every port budget it touches gets its circuits
    multiplied by ``f``.
    """
    real = canonical(real)
    n = real.shape[0]
    rp = _caps(row_ports, n, "ports")
    cp = rp if col_ports is None else _caps(col_ports, n, "col_ports")
    rk = pair_keys(real)
    order = sorted(range(len(terms)), key=lambda t: -terms[t][1])
    slots: list[list] = []              # [row_used, col_used, rows list, cols list]
    ar = np.arange(n, dtype=np.int64)
    for t in order:                     # loop over terms (at most nnz), each vectorized over GPUs
        m = terms[t][0]
        k = ar * n + m
        pos = np.minimum(np.searchsorted(rk, k), max(len(rk) - 1, 0))
        hit = (rk[pos] == k) & (m != ar) if len(rk) else np.zeros(n, bool)
        i, j = ar[hit], m[hit]
        if len(i) == 0:
            continue
        for s in slots:
            if (s[0][i] < rp[i]).all() and (s[1][j] < cp[j]).all():
                break
        else:
            if (rp[i] < 1).any() or (cp[j] < 1).any():
                continue                # a GPU with no free port: nothing to do here
            s = [np.zeros(n, np.int64), np.zeros(n, np.int64), [], []]
            slots.append(s)
        s[0][i] += 1
        s[1][j] += 1
        s[2].append(i)
        s[3].append(j)
    out = []
    for s in slots:
        i, j = np.concatenate(s[2]), np.concatenate(s[3])
        C = sp.csr_matrix((np.ones(len(i), np.int64), (i, j)), shape=(n, n))
        C.sum_duplicates()
        C.sort_indices()
        # A slot whose terms leave ports idle on every GPU it uses (a lone ring
        # step among d planes) repeats its circuits on them: same pairs, faster.
        ru, cu = s[0], s[1]
        fill = min(int((rp[ru > 0] // ru[ru > 0]).min()), int((cp[cu > 0] // cu[cu > 0]).min()))
        if fill > 1:
            C = C * fill
        out.append(C)
    return out


def retime(demand, configs: list, circuit_Bps: float, *, base=None) -> np.ndarray:
    """Shortest slot durations that serve ``demand`` with the given slot configurations.

    Solves the linear program ``min sum_k t_k`` s.t. ``sum_k (C_k + base)[i,j] b t_k
    >= D[i,j]`` for every demanded pair, ``t >= 0`` (``scipy.optimize.linprog``,
    HiGHS), in units scaled to O(1), then scales the answer up by the largest
    shortfall so every byte is served exactly despite solver tolerances.  Slots
    the LP leaves empty get duration 0 (the caller drops them and saves their
    reconfiguration).

    Raises
    ------
    ScheduleError
        If some demanded pair has a circuit in no slot.
    """
    D = canonical(demand)
    K = len(configs)
    if D.nnz == 0:
        return np.zeros(K)
    n = D.shape[0]
    keys = pair_keys(D)
    w = D.data.astype(float)
    wmax = float(w.max())
    cap = np.stack([values_at(canonical(C), keys) for C in configs], axis=1) if K else np.zeros((len(w), 0))
    if base is not None:
        cap = cap + values_at(canonical(base), keys)[:, None]
    if K == 0 or (cap.sum(axis=1) <= 0).any():
        raise ScheduleError("slots: some demanded pair has a circuit in no slot; cannot serve it")
    wn = w / wmax
    A = sp.csr_matrix(-cap)
    res = linprog(np.ones(K), A_ub=A, b_ub=-wn, bounds=(0, None), method="highs")
    if res.status != 0:
        # Fall back to the greedy timing: each slot as long as its worst pair alone needs.
        t = np.array([np.max(np.where(cap[:, k] > 0, wn / np.maximum(cap[:, k], 1e-300), 0)) for k in range(K)])
    else:
        t = np.maximum(res.x, 0.0)
    t[t < 1e-12 * max(t.max(), 1e-300)] = 0.0
    served = cap @ t
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.max(np.where(served > 0, wn / served, np.inf))
    if not np.isfinite(short):
        raise ScheduleError("slots: the timing leaves a demanded pair without service")
    t *= max(1.0, short) * (1 + 4 * np.finfo(float).eps)
    del n
    return t * wmax / float(circuit_Bps)


def decompose(demand, ports, circuit_Bps: float = 1.0, *, col_ports=None, base=None, allowed=None,
              method: str = "bvn", max_terms: int | None = None) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """Split ``demand`` into slots: configurations and their durations.

    Parameters
    ----------
    demand : (N, N) array or sparse matrix
        Bytes; pairs outside ``allowed`` are left out (the caller routes them
        some other way or reports them infeasible).
    ports, col_ports, base, allowed, circuit_Bps
        As in :func:`~ocsnet.schedule.matching.best_config`.
    method : {"bvn", "solstice", "min-slots"}
        ``bvn``: Birkhoff-von Neumann terms of the stuffed demand, packed
        heaviest first into slots of ``d`` terms.  ``solstice``: the same with
        Solstice's power-of-two thresholded slicing.  ``min-slots``: every
        demanded pair counts 1 (integer stuffing of the support), so the terms
        are a bipartite edge colouring of the support with as many colours as
        its largest degree and the slots number ``ceil(max degree / d)``, the
        fewest any schedule that gives every pair a circuit can use.
    max_terms : int, optional
        Cap on matching terms (BvN may need up to nnz of them).

    Returns
    -------
    configs : list of csr_matrix
        One configuration per slot (``base`` not included), in slot order.
    durations_s : ndarray
        Slot durations from :func:`retime`; slots of zero duration are removed.

    Examples
    --------
    All-to-all among 5 GPUs, 1 byte per pair, 2 ports: 4 partners need 2 slots.

    >>> import numpy as np
    >>> D = np.ones((5, 5)) - np.eye(5)
    >>> cfgs, t = decompose(D, 2, 1.0, method="min-slots")
    >>> len(cfgs), round(float(t.sum()), 9)
    (2, 2.0)
    """
    D = canonical(demand)
    n = D.shape[0]
    D.setdiag(0)
    D.eliminate_zeros()
    bsub = canonical(base, n=n) if base is not None else None
    Dt = D                               # what the slots' timing must serve
    if allowed is not None:
        keys = pair_keys(D)
        ok = mask_at(allowed, keys)
        if bsub is not None:             # reserved circuits serve pairs outside the mask
            Dt = _keep_pairs(D, ok | (values_at(bsub, keys) > 0))
        D = _keep_pairs(D, ok)
        if bsub is None:
            Dt = D
    if D.nnz == 0:
        return [], np.zeros(0)
    rp = _caps(ports, n, "ports")
    cp = rp if col_ports is None else _caps(col_ports, n, "col_ports")
    # Work on the GPUs that send or receive: the decomposition of a 16-GPU ring
    # inside a 4,096-GPU fabric should not pay for the idle GPUs.
    act = np.flatnonzero(np.asarray((abs(D).sum(axis=1)).ravel() + abs(D).sum(axis=0)).ravel() > 0)
    sub = D[act][:, act]
    if method == "min-slots":
        work = sub.copy()
        work.data[:] = 1.0
        S, _ = stuff(work, integer=True)
        terms = bvn(S, tol=1e-9, max_terms=max_terms)
    elif method in ("bvn", "solstice"):
        S, _ = stuff(sub)
        terms = bvn(S, threshold="solstice" if method == "solstice" else "none", max_terms=max_terms)
    else:
        raise ScheduleError(f"method: {method!r} is not one of 'bvn', 'solstice', 'min-slots'")
    # Integer BvN terms may carry a multiplicity (weight > 1 in units of one
    # circuit-slot): expand them so each copy is one circuit.
    if method == "min-slots":
        terms = [(m, 1.0) for m, wgt in terms for _ in range(int(round(wgt)))]
    local = group_slots(terms, sub, rp[act], cp[act])
    # Cover any pair a truncated or numerically exhausted decomposition missed.
    if local:
        covered = sum(C.astype(float) for C in local)
        miss = sub - sub.multiply(covered > 0)
        miss = canonical(miss)
    else:
        miss = sub
    if miss.nnz:
        mt = [(m, 1.0) for m, wgt in bvn(stuff((miss > 0).astype(float), integer=True)[0])
              for _ in range(int(round(wgt)))]
        local += group_slots(mt, miss, rp[act], cp[act])
    # Map back to global GPU indices.
    P = sp.csr_matrix((np.ones(len(act)), (act, np.arange(len(act)))), shape=(n, len(act)))
    configs = [canonical(P @ C @ P.T, dtype=np.int64) for C in local]
    t = retime(Dt, configs, circuit_Bps, base=bsub)
    keep = t > 0
    return [C for C, k in zip(configs, keep) if k], t[keep]
