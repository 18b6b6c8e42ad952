"""Max-min fair rates by progressive filling, vectorized over links and flows.

Stage 5 of the pipeline (flow model).  Given a sparse link-by-flow matrix
``A`` (entry ``A[l, f]`` is the fraction of flow ``f`` that crosses link
``l``), link capacities ``c`` and optional per-flow rate caps, find the
max-min fair rates ``r``: feasible (``A r <= c``, ``r <= cap``) and such that
no flow's rate can grow without shrinking the rate of a flow that is not
larger.

The kernel freezes, in every round, *all* links that are local minima of the
fair-share level, not only the global minimum, so the number of rounds
follows the longest chain of increasing levels rather than the number of
distinct levels, and each round costs the nonzeros still active.

Why a local minimum may be frozen at once (a proof sketch; the tests check
the result against a sequence of LPs).  Let ``U`` be the unfrozen flows and
``c'`` the capacity left after the frozen flows, and let the level of link
``l`` be ``s_l = c'_l / sum_{f in U} A[l, f]``.  Inductively the frozen flows
hold their true max-min rates, so the max-min rates of ``U`` are those of the
residual problem (the bottleneck characterization carries over).  Run
progressive filling on the residual problem: a link saturates exactly when
the common rate reaches its level, and a flow freezing below a link's level
only *raises* that level (``s' = s + A (s - t) / (n - A) >= s``).  If ``s_L``
is no larger than the level of every link sharing a flow with ``L``, none of
those links saturates before the common rate reaches ``s_L``, so no flow of
``L`` freezes early, ``s_L`` never moves, and ``L`` saturates at exactly
``s_L``: every unfrozen flow on ``L`` has max-min rate ``s_L``.  A rate cap
is a link of its own flow with level ``cap``.

References
----------
.. [1] D. Bertsekas and R. Gallager, *Data Networks*, 2nd ed., Section 6.5.2
   (max-min fairness, progressive filling, the bottleneck characterization).
.. [2] J. Ros-Giralt, A. Bohara, S. Yellamraju, et al., "On the bottleneck
   structure of congestion-controlled networks", Proc. ACM Meas. Anal.
   Comput. Syst. 3(3), 2019 (freezing every link whose fair share is a local
   minimum in one iteration).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import checks
from ..errors import FlowError
from ..sparse import as_sparse_2d

__all__ = ["max_min_fair", "as_incidence", "check_capacity"]


def as_incidence(incidence, n_links: int | None = None) -> sp.csc_matrix:
    """Validate a link-by-flow matrix and return it as CSC float64 with sorted, summed entries.

    Raises
    ------
    FlowError
        The matrix is not two-dimensional, has a negative or non-finite entry
        (the message names the link and flow), or has ``n_links`` mismatched.
    """
    a = as_sparse_2d(incidence, "incidence", FlowError, "csc", "link-by-flow matrix")
    if a.ndim != 2:
        raise FlowError("incidence: expected a 2-D link-by-flow matrix")
    if n_links is not None and a.shape[0] != n_links:
        raise FlowError(f"incidence: has {a.shape[0]} rows (links) but capacity has {n_links} entries; "
                        "they must match")
    a.sum_duplicates()
    bad = np.flatnonzero(~(np.isfinite(a.data) & (a.data >= 0)))
    if len(bad):
        k = int(bad[0])
        f = int(np.searchsorted(a.indptr, k, side="right") - 1)
        raise FlowError(f"incidence[{int(a.indices[k])}, {f}] (link {int(a.indices[k])}, flow {f}): "
                        f"{float(a.data[k])!r} is out of range, allowed [0, inf)")
    a.eliminate_zeros()
    return a


def _floats(name: str, values) -> np.ndarray:
    """``values`` as a float array (the range checks, naming link or flow, are the caller's)."""
    if isinstance(values, (str, bytes, dict)):
        raise FlowError(f"{name}: expected an array of numbers, got {checks.kind_of(values)}")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise FlowError(f"{name}: expected an array of numbers, got {checks.kind_of(values)}") from None


def check_capacity(capacity, n_links: int, name: str = "capacity") -> np.ndarray:
    """Validate per-link capacities (bytes/s): length ``n_links``, each in ``[0, inf]``."""
    c = _floats(name, capacity)
    if c.ndim != 1 or len(c) != n_links:
        raise FlowError(f"{name}: expected {n_links} entries (one per link, the incidence rows), "
                        f"got shape {c.shape}")
    bad = np.flatnonzero(~(c >= 0))        # catches NaN and negatives
    if len(bad):
        raise FlowError(f"{name}[{int(bad[0])}] (link {int(bad[0])}): {float(c[bad[0]])!r} is out of range, allowed [0, inf]")
    return c


def _check_demand(demand, n_flows: int) -> np.ndarray | None:
    if demand is None:
        return None
    d = _floats("demand", demand)
    d = np.broadcast_to(d, (n_flows,)) if d.ndim == 0 else d
    if d.ndim != 1 or len(d) != n_flows:
        raise FlowError(f"demand: expected {n_flows} entries (one per flow, the incidence columns), got shape {d.shape}")
    bad = np.flatnonzero(~(d >= 0))
    if len(bad):
        raise FlowError(f"demand[{int(bad[0])}] (flow {int(bad[0])}): {float(d[bad[0]])!r} is out of range, allowed [0, inf]")
    return d


def max_min_fair(incidence, capacity, demand=None, *, return_info: bool = False):
    """Max-min fair rates of flows sharing capacitated links.

    Parameters
    ----------
    incidence : sparse or dense matrix, shape (n_links, n_flows)
        ``incidence[l, f]`` is the fraction of flow ``f`` carried by link
        ``l`` (1 on a single path, fractions under ECMP), in ``[0, inf)``.
    capacity : array, shape (n_links,)
        Capacity of every link in bytes/s, in ``[0, inf]``; an infinite link
        never constrains.
    demand : float or array, shape (n_flows,), optional
        A cap on every flow's rate in bytes/s, in ``[0, inf]`` (the rate it
        asks for).  Default: no cap.
    return_info : bool
        Also return a dict with ``rounds`` (filling rounds) and
        ``frozen_per_round`` (flows fixed in each round).

    Returns
    -------
    rates : ndarray, shape (n_flows,)
        Rate of every flow in bytes/s.  A flow that crosses no finite link
        gets its cap, or ``inf`` if it has none.
    info : dict
        Only with ``return_info=True``.

    Raises
    ------
    FlowError
        Shapes do not match, or a capacity, demand or incidence entry is
        negative or NaN; the message names the link or flow index.

    Notes
    -----
    Each round computes every active link's fair-share level, every flow's
    smallest level over its links (and its cap), and freezes every flow on a
    link whose level is no larger than that of any link it shares a flow
    with; the proof is in the module docstring.  Frozen columns and
    saturated rows leave the active arrays, so a round costs a few passes
    over the nonzeros still active.

    Examples
    --------
    Two flows share a 10 B/s link; the second also crosses a 2 B/s link:

    >>> import numpy as np
    >>> A = np.array([[1.0, 1.0], [0.0, 1.0]])
    >>> max_min_fair(A, [10.0, 2.0]).tolist()
    [8.0, 2.0]

    References
    ----------
    Bertsekas and Gallager, *Data Networks*, Sec. 6.5.2; Ros-Giralt et al.,
    Proc. ACM Meas. Anal. Comput. Syst. 3(3), 2019.
    """
    # ---- validate once at the entry point --------------------------------
    if sp.issparse(incidence) or np.ndim(incidence) == 2:
        n_links = incidence.shape[0]
    else:
        raise FlowError(f"incidence: expected a 2-D link-by-flow matrix, got {np.ndim(incidence)} dimension(s)")
    c = check_capacity(capacity, n_links)
    a = as_incidence(incidence, n_links)
    n_flows = a.shape[1]
    cap = _check_demand(demand, n_flows)
    rates, info = fill(a, c, cap)
    return (rates, info) if return_info else rates


def fill(a: sp.csc_matrix, c: np.ndarray, cap: np.ndarray | None = None):
    """The filling rounds of :func:`max_min_fair` on inputs already validated by it
    (``a`` from :func:`as_incidence`, ``c`` from :func:`check_capacity`); returns
    ``(rates, info)``.  For callers that solve many sub-problems of one checked
    instance, such as the fluid simulation."""
    n_flows = a.shape[1]
    rates = np.full(n_flows, np.inf) if cap is None else cap.copy()
    info = {"rounds": 0, "frozen_per_round": []}
    # Work on the finite links that carry flows only (entries on infinite links
    # never constrain), numbered 0..n_links-1, so that per-link arrays cost the
    # links in use, not the fabric's.
    used = np.zeros(a.shape[0] + 1, dtype=bool)
    used[a.indices] = True
    used[:-1] &= np.isfinite(c)
    if not used[a.indices].all():
        a = sp.csc_matrix(sp.diags(used[:-1].astype(np.float64)) @ a)
        a.eliminate_zeros()
    link = np.flatnonzero(used[:-1])
    n_links = len(link)
    number = np.cumsum(used[:-1]) - 1
    a = sp.csc_matrix((a.data, np.take(number, a.indices), a.indptr), shape=(n_links, n_flows))
    buckets = _buckets(a, n_links, cap)
    if not buckets:
        return rates, info

    row_all = a.indices.astype(np.intp, copy=False)
    resid = np.append(c[link], 0.0)                                    # slot n_links: padding
    n_w = np.bincount(row_all, weights=a.data, minlength=n_links + 1)  # unfrozen weight per link
    n_e = np.bincount(row_all, minlength=n_links + 1)                  # unfrozen entries per link
    s = np.full(n_links + 1, np.inf)
    while buckets:
        info["rounds"] += 1
        # fair-share level of every link; links with no unfrozen flow are never read
        np.divide(resid[:-1], n_w[:-1], out=s[:-1], where=n_w[:-1] > 0)
        # each flow's smallest level over its links (and its cap); the entries
        # where the link attains it are "tight"
        tights = [b.tight(s) for b in buckets]
        # a link is a local minimum exactly when all its entries are tight
        tcount = np.bincount(np.concatenate([t[2] for t in tights]), minlength=n_links + 1)
        local = tcount == n_e
        frows, floads, fvals, nfrozen = [], [], [], 0
        for b, (m, tidx, trow) in zip(buckets, tights):
            froz = b.freeze(m, tidx, trow, local, rates)
            nfrozen += len(froz)
            if len(froz):
                r, v, load = b.frozen_entries(froz, m)
                frows.append(r)
                fvals.append(v)
                floads.append(load)
        info["frozen_per_round"].append(nfrozen)
        # move the frozen flows' load out of the residual problem
        fr = np.concatenate(frows)
        fv = np.concatenate(fvals)
        resid -= np.bincount(fr, weights=np.concatenate(floads), minlength=n_links + 1)
        np.maximum(resid, 0.0, out=resid)
        n_w -= np.bincount(fr, weights=fv, minlength=n_links + 1)
        n_e -= np.bincount(fr, minlength=n_links + 1)
        n_e[-1] = 0
        n_w[n_e == 0] = 0.0                    # no rounding residue on emptied links
        buckets = [b for b in buckets if b.compact()]
        live = np.flatnonzero(n_e[:-1] > 0)
        if 4 * len(live) < n_links:            # renumber once most links have emptied
            remap = np.full(n_links + 1, len(live), dtype=np.intp)
            remap[live] = np.arange(len(live))
            for b in buckets:
                b.relabel(remap)
            n_links = len(live)
            resid, n_w, n_e = (np.append(x[live], 0) for x in (resid, n_w, n_e))
            s = np.full(n_links + 1, np.inf)
    return rates, info


# Cost model of a round, used to choose the buckets: every bucket costs a fixed
# number of numpy calls (about this many entries' worth of work), every stored
# entry (padding included) a few passes over memory.
_BUCKET_COST_ENTRIES = 12_000


def _widths(widths: np.ndarray, n_cols: np.ndarray) -> np.ndarray:
    """The bucket widths minimizing ``buckets * _BUCKET_COST_ENTRIES + stored entries``.

    ``widths`` are the distinct column lengths (ascending) and ``n_cols`` how
    many columns have each.  A bucket holds a run of consecutive widths padded
    to the largest, so this is an optimal 1-D partition: dynamic programming
    over the k distinct widths, O(k^2) (hand-written: a few lines, and no
    library partitions a sequence under this cost).
    """
    k = len(widths)
    csum = np.concatenate([[0], np.cumsum(n_cols)])
    best = np.zeros(k + 1)
    cut = np.zeros(k + 1, dtype=np.int64)
    for j in range(1, k + 1):                  # best[j]: widths[:j] bucketed, last bucket ends at j-1
        i = np.arange(j)
        cost = best[i] + _BUCKET_COST_ENTRIES + widths[j - 1] * (csum[j] - csum[i])
        cut[j] = int(np.argmin(cost))
        best[j] = cost[cut[j]]
    out, j = [], k
    while j > 0:
        out.append(widths[j - 1])
        j = cut[j]
    return np.array(out[::-1], dtype=np.int64)


class _Bucket:
    """Flows crossing (up to) ``w`` links, stored column-major: ``row[j, i]`` is the
    j-th link of the bucket's i-th flow (padding points at the dummy link ``n_links``).

    Why this layout: a flow's minimum level becomes ``w`` contiguous
    element-wise minimums instead of a segmented reduction, which is what
    makes a round cost a few passes over memory (numpy has no faster
    segmented min; hand-written because no library offers it).
    """

    __slots__ = ("row", "val", "colid", "capa", "dead", "n_dead", "n_links")

    def __init__(self, row, val, colid, capa, n_links):
        self.row, self.val, self.colid, self.capa = row, val, colid, capa
        self.dead = np.zeros(row.shape[1], dtype=bool)
        self.n_dead = 0
        self.n_links = n_links

    def tight(self, s):
        st = np.take(s, self.row)
        m = st.min(axis=0)
        if self.capa is not None:
            np.minimum(m, self.capa, out=m)
        if self.n_dead:
            m[self.dead] = -np.inf                  # frozen columns are never tight
        tidx = np.flatnonzero(st <= m)
        return m, tidx, np.take(self.row.ravel(), tidx)

    def freeze(self, m, tidx, trow, local, rates):
        n = self.row.shape[1]
        froz = np.zeros(n, dtype=bool)
        froz[tidx[local[trow]] % n] = True
        if self.capa is not None:
            froz |= self.capa <= m                 # m is -inf on dead columns
        idx = np.flatnonzero(froz)
        rates[self.colid[idx]] = m[idx]
        self.dead[idx] = True
        self.n_dead += len(idx)
        return idx

    def frozen_entries(self, idx, m):
        r = self.row[:, idx]
        mm = m[idx]
        if self.val is None:
            v = (r < self.n_links).astype(np.float64)
            return r.ravel(), v.ravel(), (v * mm).ravel()
        v = self.val[:, idx]
        return r.ravel(), v.ravel(), (v * mm).ravel()

    def relabel(self, remap):
        """Renumber the links (``remap`` maps old ids, padding included, to new ones)."""
        self.row = np.take(remap, self.row)
        self.n_links = int(remap[-1])

    def compact(self) -> bool:
        """Drop frozen columns once they are a quarter of the bucket; false when empty."""
        n = self.row.shape[1]
        if self.n_dead == n:
            return False
        if self.n_dead * 4 > n:
            keep = np.flatnonzero(~self.dead)
            self.row = np.take(self.row, keep, axis=1)
            if self.val is not None:
                self.val = np.take(self.val, keep, axis=1)
            self.colid = self.colid[keep]
            if self.capa is not None:
                self.capa = self.capa[keep]
            self.dead = np.zeros(len(keep), dtype=bool)
            self.n_dead = 0
        return True


def _buckets(a: sp.csc_matrix, n_links: int, cap) -> list:
    """Split the columns of ``a`` by number of entries into column-major buckets."""
    counts = np.diff(a.indptr)
    widths = np.unique(counts[counts > 0])
    if len(widths) == 0:
        return []
    ladder = _widths(widths, np.bincount(counts, minlength=widths[-1] + 1)[widths])
    cls = np.searchsorted(ladder, counts)               # width class of every column
    unit = bool(np.all(a.data == 1.0))
    out = []
    for k, w in enumerate(ladder.tolist()):
        cols = np.flatnonzero((cls == k) & (counts > 0))
        if len(cols) == 0:
            continue
        cnt = counts[cols]
        n = len(cols)
        tot = int(cnt.sum())
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        j = np.arange(tot) - first                       # position of the entry in its column
        i = np.repeat(np.arange(n), cnt)                 # column within the bucket
        g = np.repeat(a.indptr[cols], cnt) + j           # entry in the CSC arrays
        row = np.full((w, n), n_links, dtype=np.intp)
        row[j, i] = a.indices[g]
        val = None
        if not unit:
            val = np.zeros((w, n))
            val[j, i] = a.data[g]
        out.append(_Bucket(row, val, cols, None if cap is None else cap[cols], n_links))
    return out
