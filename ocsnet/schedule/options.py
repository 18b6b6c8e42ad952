"""Several-slot options of the OCS heuristic: ways to serve one phase with several configurations.

Stage 4 of the pipeline (``ocsnet.schedule``), the part of the heuristic's
candidate step (:mod:`.candidates`) that builds phases of several slots:

* :class:`Option` -- one several-slot way to serve a distinct demand, with
  its hold times and the time it costs;
* :func:`_options_for` -- hold times of given slot configurations by the
  linear program :func:`~ocsnet.schedule.decompose.retime`, offered in every
  rotation of the slot order;
* :class:`_Slots` and :func:`_maximal_windows` -- the fewest slots a window
  of phases needs (Konig), and the longest windows that fit a slot count;
* :func:`_chain_options` and :func:`_carry_chain` -- chains that hand a
  phase's last configuration (or its unserved pairs) on to the next phase,
  so consecutive several-slot phases change configuration once less.

References
----------
DESIGN.md, "The OCS scheduling problem" (reference semantics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import matching
from .decompose import decompose, retime
from ..errors import ScheduleError
from ..sparse import canonical

# Cap on matching terms per decomposition (BvN may need up to nnz of them).
_MAX_TERMS = 4096
# Decompositions with at most this many slots are also offered in every rotation of their order.
_MAX_ROTATIONS = 16


@dataclass
class Option:
    """A several-slot way to serve one distinct demand.

    ``configs`` index the candidate set; ``hold_s`` are the slot transfer
    times (without reconfiguration); ``circuit_s`` is their sum plus the fully
    exposed changes between slots; ``packet_s`` the packet time of the pairs
    no slot covers.  Entered with a change of exposed delay ``x`` the phase
    lasts ``max(x + circuit_s, packet_s)``.
    """

    configs: list[int]
    hold_s: np.ndarray
    circuit_s: float
    packet_s: float
    method: str


def _uncovered_packet_s(problem, D: sp.csr_matrix, cover: sp.csr_matrix | None) -> float:
    """Packet time of the pairs of ``D`` that no circuit (``cover`` or reserved) serves."""
    keys = matching.pair_keys(D)
    c = matching.values_at(cover, keys) if cover is not None else np.zeros(len(keys))
    if problem.reserved.nnz:
        c = c + matching.values_at(problem.reserved, keys)
    unc = c <= 0
    if not unc.any():
        return 0.0
    if problem.packet_Bps <= 0:
        return float("inf")
    n = problem.N
    w = D.data[unc]
    peak = max(np.bincount(keys[unc] // n, w, minlength=n).max(), np.bincount(keys[unc] % n, w, minlength=n).max())
    return float(peak / problem.packet_Bps)


def _last_hold(problem, D: sp.csr_matrix, cfgs: list, hold: np.ndarray) -> np.ndarray:
    """Hold times with the last one cut to what the earlier slots leave, as the re-timing does.

    The reference semantics run the last slot of a phase only until its demand
    is served; counting it that way keeps the DP's phase times equal to the
    re-timed ones (lit circuits during the changes, which only shorten the
    phase, are not credited).
    """
    keys = matching.pair_keys(D)
    R = matching.values_at(problem.reserved, keys) if problem.reserved.nnz else 0.0
    A = [matching.values_at(C, keys) + R for C in cfgs]
    circ = sum(a for a in A) > 0                     # pairs the slots carry (others go by packet)
    rem = np.where(circ, D.data, 0.0)
    for a, h in zip(A[:-1], hold[:-1]):
        rem = np.maximum(rem - a * problem.circuit_Bps * h, 0.0)
    act = rem > 1e-9 * D.data
    out = hold.copy()
    with np.errstate(all="ignore"):
        need = np.where(act, rem / (A[-1] * problem.circuit_Bps), 0.0)
    out[-1] = float(need.max()) if len(need) else 0.0
    return out


class _Slots:
    """Fewest slots a window of phases needs so that every circuit-only pair gets a circuit.

    That is ``ceil(max degree / free ports)`` over the union of the window's
    circuit-only pairs (allowed, not reserved): by Konig's edge-colouring
    theorem the union splits into that many configurations, and no fewer
    exist.  Grows monotonically with the window, so maximal windows are
    found by doubling and bisection.
    """

    def __init__(self, problem, demands):
        self.n = problem.N
        self.free_out, self.free_in = problem.free_out, problem.free_in
        self.keys = []
        for D in demands:
            k = matching.pair_keys(D)
            ok = matching.mask_at(problem.allowed, k)
            if problem.reserved.nnz:
                ok &= matching.values_at(problem.reserved, k) <= 0
            ok &= (k // self.n) != (k % self.n)
            self.keys.append(k[ok])

    def need(self, uids) -> float:
        k = np.unique(np.concatenate([self.keys[u] for u in uids])) if len(uids) else np.zeros(0, np.int64)
        if len(k) == 0:
            return 0.0
        out = 0.0
        for deg, free in ((np.bincount(k // self.n, minlength=self.n), self.free_out),
                          (np.bincount(k % self.n, minlength=self.n), self.free_in)):
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(deg > 0, np.ceil(deg / np.maximum(free, 1e-300)), 0.0)
            out = max(out, float(q.max()))
        return out


def _maximal_windows(uid: np.ndarray, rep: np.ndarray, slots: _Slots, max_starts: int):
    """Maximal windows (from each change of demand in ``rep``) that fit the slots their first phase needs, or one more.

    Returns ``[(counts per distinct demand, slots)]`` for windows of at least two phases.
    """
    out = []
    starts = [i for i in range(len(rep)) if i == 0 or uid[rep[i]] != uid[rep[i - 1]]][:max_starts]
    cache: dict[tuple, float] = {}

    def need(i, w):
        key = tuple(np.unique(uid[rep[i:i + w]]))
        if key not in cache:
            cache[key] = slots.need(list(key))
        return cache[key]

    for i in starts:
        first = need(i, 1)
        if not 0 < first < np.inf:
            continue
        top = len(rep) - i
        # The slots of the first phase, and one more (phases then share slots
        # and hand their last configuration on to the next phase).
        for target in (first, first + 1):
            w = 1
            while 2 * w <= top and need(i, 2 * w) <= target:
                w *= 2
            lo, hi = w, min(2 * w, top + 1)         # need(lo) fits; need(hi) does not (or past the end)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if mid <= top and need(i, mid) <= target:
                    lo = mid
                else:
                    hi = mid
            if lo >= 2:
                out.append((np.bincount(uid[rep[i:i + lo]], minlength=len(slots.keys)), int(target)))
    return out


def _options_for(problem, D: sp.csr_matrix, ids: list[int], cfgs: list, method: str) -> list[Option]:
    """Several-slot options serving ``D`` with the given slot configurations, in every rotation.

    Hold times by :func:`~ocsnet.schedule.decompose.retime` (the linear program)
    over the pairs circuits serve; slots it leaves empty are dropped.
    """
    keys = matching.pair_keys(D)
    circ = matching.mask_at(problem.allowed, keys)
    if problem.reserved.nnz:
        circ |= matching.values_at(problem.reserved, keys) > 0
    Dc = D.copy()
    Dc.data = np.where(circ, Dc.data, 0.0)
    Dc.eliminate_zeros()
    if Dc.nnz == 0:
        return []
    try:
        hold = retime(Dc, cfgs, problem.circuit_Bps,
                               base=problem.reserved if problem.reserved.nnz else None)
    except ScheduleError:
        return []
    keep = hold > 0
    ids = [c for c, k in zip(ids, keep) if k]
    cfgs = [C for C, k in zip(cfgs, keep) if k]
    hold = hold[keep]
    K = len(cfgs)
    if K < 2:
        return []
    pk = _uncovered_packet_s(problem, D, sum(cfgs[1:], cfgs[0]))
    out = []
    # Every rotation of the slot order serves the phase equally; offering them
    # lets a phase start with the configuration the previous phase ended with
    # (a repeated all-to-all then changes once less per phase).
    for r in range(K if K <= _MAX_ROTATIONS else 1):
        order = [(k + r) % K for k in range(K)]
        h = _last_hold(problem, D, [cfgs[k] for k in order], hold[order])
        out.append(Option(configs=[ids[k] for k in order], hold_s=h,
                          circuit_s=float(h.sum() + (K - 1) * problem.reconfig_delay_s), packet_s=pk,
                          method=method))
    return out


def _fill(L: sp.csr_matrix, nxt_keys: np.ndarray, n: int, free_out, free_in) -> sp.csr_matrix:
    """``L`` plus a matching of the next phase's pairs on the ports ``L`` leaves free.

    A maximum bipartite matching (``scipy.sparse.csgraph.maximum_bipartite_matching``)
    over the pairs whose sender and receiver both have a free port.
    """
    from scipy.sparse.csgraph import maximum_bipartite_matching

    ro = free_out - np.asarray(L.sum(axis=1)).ravel()
    ci = free_in - np.asarray(L.sum(axis=0)).ravel()
    i, j = nxt_keys // n, nxt_keys % n
    ok = (ro[i] > 0) & (ci[j] > 0) & (matching.values_at(L, nxt_keys) <= 0)
    if not ok.any():
        return L
    G = sp.csr_matrix((np.ones(ok.sum()), (i[ok], j[ok])), shape=(n, n))
    m = maximum_bipartite_matching(G, perm_type="column")
    r = np.flatnonzero(m >= 0)
    M = sp.csr_matrix((np.ones(len(r), np.int64), (r, m[r])), shape=(n, n))
    return canonical(L + M, dtype=np.int64)


def _chain_options(problem, demands, uid, rep, slots: _Slots, cs: ConfigSet, kw, max_phases: int):
    """Several-slot options that hand a configuration from one phase to the next.

    Along the representative phase sequence: a phase first serves what the
    configuration handed to it covers, splits the rest into the fewest slots,
    and fills the free ports of its last slot with a matching of the next
    phase's pairs, handing that slot on.  Consecutive phases that each need
    several slots then change configuration once less per phase, which is
    what a slow OCS wants.  Returns ``{distinct demand: [Option]}``.
    """
    n, b = problem.N, problem.circuit_Bps
    out: dict[int, list[Option]] = {}
    prev_ids, prev_cfg = None, None
    seq = rep[:max_phases]
    for t, p in enumerate(seq):
        u = int(uid[p])
        D = demands[u]
        q = slots.keys[u]
        if len(q) == 0:
            prev_ids = prev_cfg = None
            continue
        first = []
        rest = D
        if prev_cfg is not None:
            covered = matching.values_at(prev_cfg, matching.pair_keys(D)) > 0
            rest = D.copy()
            rest.data = np.where(covered, 0.0, rest.data)
            rest.eliminate_zeros()
            first = [(prev_ids, prev_cfg)]
        cfgs = []
        if rest.nnz:
            cfgs, _ = decompose(rest, problem.free_out, b, method="min-slots", max_terms=_MAX_TERMS, **kw)
        if not cfgs:
            if not first:
                prev_ids = prev_cfg = None
                continue
            cfgs = []
        nxt = slots.keys[int(uid[seq[t + 1]])] if t + 1 < len(seq) else np.zeros(0, np.int64)
        if cfgs:
            cfgs[-1] = _fill(cfgs[-1], nxt, n, problem.free_out, problem.free_in) if len(nxt) else cfgs[-1]
        ids = [c for c, _ in first] + [cs.add(C) for C in cfgs]
        allc = [C for _, C in first] + cfgs
        if len(allc) >= 2:
            out.setdefault(u, []).extend(_options_for(problem, D, ids, allc, "chain")[:1])
        prev_ids, prev_cfg = ids[-1], allc[-1]
    return out


def _cover(n: int, required: np.ndarray, extra: np.ndarray, free_out, free_in, rounds: int):
    """A configuration with one circuit on every ``required`` pair plus as many ``extra`` pairs as fit.

    The extra pairs are added by up to ``rounds`` maximum bipartite matchings
    on the ports left free.  None if the required pairs alone exceed the ports.
    """
    from scipy.sparse.csgraph import maximum_bipartite_matching

    ro = free_out - np.bincount(required // n, minlength=n)
    ci = free_in - np.bincount(required % n, minlength=n)
    if (ro < 0).any() or (ci < 0).any():
        return None
    chosen = [required]
    extra = np.setdiff1d(extra, required)
    for _ in range(rounds):
        i, j = extra // n, extra % n
        ok = (ro[i] > 0) & (ci[j] > 0)
        if not ok.any():
            break
        m = maximum_bipartite_matching(sp.csr_matrix((np.ones(ok.sum()), (i[ok], j[ok])), shape=(n, n)),
                                       perm_type="column")
        r = np.flatnonzero(m >= 0)
        if len(r) == 0:
            break
        k = r * n + m[r]
        chosen.append(k)
        ro[r] -= 1
        ci[m[r]] -= 1
        extra = np.setdiff1d(extra, k)
    k = np.concatenate(chosen)
    return sp.csr_matrix((np.ones(len(k), np.int64), (k // n, k % n)), shape=(n, n))


def _carry_chain(problem, demands, uid, rep, slots: _Slots, cs: ConfigSet, max_phases: int):
    """Two-slot options that carry a phase's unserved pairs into the next phase's first slot.

    Phase ``p`` holds ``X_p`` (handed to it) and then ``X_{p+1}``, which must
    carry every pair of ``p`` that ``X_p`` lacks and fills its free ports with
    pairs of phase ``p+1``: one change per phase and none between phases.
    Returns ``{distinct demand: [Option]}``.
    """
    n, rounds = problem.N, problem.ports
    fo, fi = problem.free_out, problem.free_in
    out: dict[int, list[Option]] = {}
    seq = rep[:max_phases]
    X = None
    for t, p in enumerate(seq):
        u = int(uid[p])
        q = slots.keys[u]
        if len(q) == 0:
            X = None
            continue
        if X is None:
            X = _cover(n, np.zeros(0, np.int64), q, fo, fi, rounds)
        carry = q[matching.values_at(X, q) <= 0]
        nxt = slots.keys[int(uid[seq[t + 1]])] if t + 1 < len(seq) else np.zeros(0, np.int64)
        if len(carry) == 0:
            continue                                  # X alone serves p; hand it on unchanged
        Y = _cover(n, carry, nxt, fo, fi, rounds)
        if Y is None:
            X = None
            continue
        ids = [cs.add(X), cs.add(Y)]
        ops = _options_for(problem, demands[u], ids, [cs.configs[ids[0]], cs.configs[ids[1]]], "carry")
        if ops:
            out.setdefault(u, []).append(ops[0])     # this order: X first, Y handed on
        X = Y
    return out
