"""The scalable OCS schedule heuristic: candidate configurations, then an exact choice.

Stage 4 of the pipeline (``ocsnet.schedule``).  Two steps:

1. **Candidates.**  Equal phases share one demand matrix (a Llama decode step
   of 7,560 phases holds a handful of distinct ones), so candidates are built
   per distinct demand, on a representative stretch of phases (prefix, two
   periods, suffix):

   * its best one-slot configuration (:func:`~ocsnet.schedule.matching.best_config`);
   * one configuration for the merged demand of windows of consecutive phases
     (lengths 2, 4, ..., 256, and the maximal windows one configuration can
     serve at all), in two weightings, so one configuration can be held
     across a collective, a layer or a pipeline stage;
   * for a demand no single configuration serves at its bound (all-to-all):
     several-slot decompositions (:func:`~ocsnet.schedule.matching.decompose`:
     fewest slots, Birkhoff-von Neumann), slots shared by a maximal window of
     such phases, and chains that hand a phase's last slot on to the next
     phase; each in every rotation of its slot order.
2. **Exact choice over the candidates.**  Dynamic programming over phases;
   the state is the configuration held; holding costs nothing, switching at
   the start of phase ``p`` costs the exposed ``max(0, delta - g_p)``; a
   phase costs its duration under the chosen configuration (or option of
   slots, with their fully exposed internal changes).  Switching cost does not
   depend on the configuration left (except under partial reconfiguration,
   where circuits kept by both stay lit: O(K^2) then), so a phase costs O(K)
   for K candidates.  A periodic trace is solved period by period until the cost
   vector advances by the same constant for every state; from then on every
   period makes the same choices (min-plus linearity), so the rest is
   extrapolated exactly, boundaries between repeats included.

The result is optimal over the candidate set, and reported against the lower
bound with its gap.

References
----------
DESIGN.md, "The OCS scheduling problem" (reference semantics, lower bound).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from . import matching
from ..errors import ScheduleError

__all__ = ["solve_heuristic", "Candidates", "build_candidates", "choose"]

# A one-slot configuration within this factor of the phase's lower bound is
# considered good enough that no multi-slot decomposition is tried for it.
_DECOMPOSE_ABOVE = 1.0 + 1e-9
# Window sizes (phases) whose merged demand gets its own candidate configuration.
_WINDOWS = (2, 4, 8, 16, 32, 64, 128, 256)
# Cap on matching terms per decomposition (BvN may need up to nnz of them).
_MAX_TERMS = 4096
# Decompositions with at most this many slots are also offered in every rotation of their order.
_MAX_ROTATIONS = 16
# Most window starts (changes of demand) searched for maximal windows.
_MAX_STARTS = 64
# Held configurations (most pairs in common first) a several-slot phase may start or end with.
_MAX_HELD = 8


def _digest(M: sp.csr_matrix) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.int64(M.shape[0]).tobytes())
    for a in (M.indptr.astype(np.int64), M.indices.astype(np.int64), M.data.astype(np.float64)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()


def unique_demands(demand: list) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """Distinct demand matrices (by value) in first-use order, and each phase's index into them.

    Phases that share one matrix object are hashed once.
    """
    by_id: dict[int, int] = {}
    by_hash: dict[bytes, int] = {}
    mats: list[sp.csr_matrix] = []
    uid = np.empty(len(demand), dtype=np.int64)
    for p, m in enumerate(demand):
        u = by_id.get(id(m))
        if u is None:
            # OCSProblem stores canonical float CSR; hash those without a copy.
            ok = sp.isspmatrix_csr(m) and m.dtype == np.float64 and m.has_canonical_format
            c = m if ok else matching.canonical(m)
            key = _digest(c)
            u = by_hash.get(key)
            if u is None:
                u = len(mats)
                by_hash[key] = u
                mats.append(c)
            by_id[id(m)] = u
        uid[p] = u
    return mats, uid


class ConfigSet:
    """Distinct configurations (integer CSR), each stored once and indexed."""

    def __init__(self, n: int):
        self.n = n
        self.configs: list[sp.csr_matrix] = []
        self._index: dict[bytes, int] = {}

    def add(self, C) -> int:
        C = matching.canonical(C, self.n, dtype=np.int64)
        key = _digest(C)
        k = self._index.get(key)
        if k is None:
            k = len(self.configs)
            self._index[key] = k
            self.configs.append(C)
        return k

    def __len__(self) -> int:
        return len(self.configs)


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


# --- phase times under the reference semantics, vectorized over configurations ----------


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


# --- candidates -------------------------------------------------------------------------


@dataclass
class Candidates:
    """Everything the dynamic program chooses from."""

    demands: list[sp.csr_matrix]
    uid: np.ndarray                           # (P,) distinct-demand index of every phase
    configs: ConfigSet
    times: PhaseTimes
    options: list[list[Option]]               # per distinct demand
    truncated: bool = False                   # the time limit cut candidate generation short
    stats: dict = field(default_factory=dict)


def _representative(P: int, period) -> np.ndarray:
    """Phase indices that show every window shape: prefix, two periods, suffix."""
    if not period:
        return np.arange(P)
    s, ln, r = period
    body = np.arange(s, s + ln * min(r, 2))
    return np.concatenate([np.arange(s), body, np.arange(s + ln * r, P)])


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

    Hold times by :func:`~ocsnet.schedule.matching.retime` (the linear program)
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
        hold = matching.retime(Dc, cfgs, problem.circuit_Bps,
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
    return matching.canonical(L + M, dtype=np.int64)


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
            cfgs, _ = matching.decompose(rest, problem.free_out, b, method="min-slots", max_terms=_MAX_TERMS, **kw)
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


def build_candidates(problem, *, time_limit_s: float | None = None, max_slots_per_phase: int | None = None,
                     windows=_WINDOWS, max_windows: int = 96,
                     decompositions=("min-slots", "bvn"), t0: float | None = None) -> Candidates:
    """Candidate configurations and several-slot options for every distinct demand.

    Parameters
    ----------
    problem : OCSProblem
    time_limit_s : float, optional
        Stop adding optional candidates (windows, extra decompositions) when
        this much time has passed since ``t0``; the candidates every phase
        needs to be served at all are always built.
    max_slots_per_phase : int, optional
        Several-slot options with more slots are not offered.
    windows : sequence of int
        Window lengths (phases) whose merged demand gets a configuration.
    max_windows : int
        Cap on distinct merged windows.
    decompositions : sequence of str
        Methods of :func:`~ocsnet.schedule.matching.decompose` tried for a
        demand no single configuration serves at its lower bound.

    Returns
    -------
    Candidates
    """
    t0 = time.perf_counter() if t0 is None else t0

    def late() -> bool:
        return time_limit_s is not None and time.perf_counter() - t0 > time_limit_s

    demands, uid = unique_demands(problem.demand)
    U, n, b = len(demands), problem.N, problem.circuit_Bps
    cs = ConfigSet(n)
    kw = dict(col_ports=problem.free_in, base=problem.reserved if problem.reserved.nnz else None,
              allowed=problem.allowed)
    ports = problem.free_out
    truncated = False
    best_t = np.full(U, np.inf)
    for u, D in enumerate(demands):
        C, t = matching.best_config(D, ports, b, **kw)
        if np.isfinite(t):
            cs.add(C)
            best_t[u] = t
        if problem.packet_Bps > 0 and D.nnz > 1:
            # With a packet network the small pairs may stay off circuits.
            for q in (0.5, 0.9):
                keep = D.data >= np.quantile(D.data, q)
                Dk = D.copy()
                Dk.data = np.where(keep, Dk.data, 0.0)
                Ck, tk = matching.best_config(Dk, ports, b, **kw)
                if np.isfinite(tk) and Ck.nnz:
                    cs.add(Ck)
    n_single = len(cs)
    # Windows of consecutive phases: one configuration for their merged demand.
    rep = _representative(problem.P, problem.period)
    seen: set[bytes] = set()
    sigs = []
    for w in windows:
        if w > len(rep):
            break
        for s in range(0, len(rep) - w + 1, max(1, w // 2)):
            cnt = np.bincount(uid[rep[s:s + w]], minlength=U)
            if (cnt > 0).sum() < 2:
                continue
            key = cnt.tobytes()
            if key not in seen:
                seen.add(key)
                sigs.append(cnt)
    whole = np.bincount(uid, minlength=U)
    if (whole > 0).sum() >= 2 and whole.tobytes() not in seen:
        sigs.insert(0, whole)                       # the static configuration first
    # Maximal windows that one configuration (or the slots of their first phase)
    # can serve: what a slow OCS wants, to change as rarely as possible.
    slots = _Slots(problem, demands)
    multi = []
    for cnt, k in _maximal_windows(uid, rep, slots, max_starts=_MAX_STARTS):
        key = cnt.tobytes()
        if k == 1 and key not in seen and (cnt > 0).sum() >= 2:
            seen.add(key)
            sigs.insert(1, cnt)
        elif k >= 2:
            multi.append(cnt)
    for i, cnt in enumerate(sigs):
        if i >= max_windows or late():
            truncated = truncated or late()
            break
        merged = sum(demands[u] * float(c) for u, c in enumerate(cnt) if c)
        C, t = matching.best_config(merged, ports, b, **kw)
        if np.isfinite(t):
            cs.add(C)
        # Second variant: slow every phase of the window down by the same factor
        # (elementwise max of each demand over its own best time), which suits
        # the sum of per-phase maxima better when phases differ in size.
        if np.isfinite(best_t[cnt > 0]).all() and (best_t[cnt > 0] > 0).all():
            norm = None
            for u in np.flatnonzero(cnt):
                M = demands[u] / best_t[u]
                norm = M if norm is None else norm.maximum(M)
            C2, t2 = matching.best_config(norm, ports, b, **kw)
            if np.isfinite(t2):
                cs.add(C2)
    n_window = len(cs) - n_single
    # Several-slot options for demands no single configuration serves at their bound.
    cap = problem.ports * b + problem.packet_Bps
    options: list[list[Option]] = [[] for _ in range(U)]
    delta = problem.reconfig_delay_s
    for u, D in enumerate(demands):
        if D.nnz == 0:
            continue
        peak = max(np.asarray(D.sum(axis=1)).max(), np.asarray(D.sum(axis=0)).max())
        if best_t[u] <= peak / cap * _DECOMPOSE_ABOVE:
            continue
        for mi, method in enumerate(decompositions):
            if mi > 0 and np.isfinite(best_t[u]) and late():
                truncated = True
                break
            cfgs, hold = matching.decompose(D, ports, b, method=method, max_terms=_MAX_TERMS, **kw)
            if len(cfgs) < 2 or (max_slots_per_phase is not None and len(cfgs) > max_slots_per_phase):
                for C in cfgs:
                    cs.add(C)
                continue
            ids = [cs.add(C) for C in cfgs]
            options[u] += _options_for(problem, D, ids, cfgs, method)
    # Several-slot phases that start or end with a configuration a neighbouring
    # window holds: serve what it covers there, split the rest into the fewest
    # slots (the rotations put the held configuration first or last).
    multi_u = [u for u in range(U) if slots.need([u]) >= 2]
    if multi_u and n_window and not late():
        held = list(range(n_single, n_single + n_window)) + list(range(n_single))
        for u in multi_u:
            D = demands[u]
            dk = matching.pair_keys(D)
            cov = [(int((matching.values_at(cs.configs[k], dk) > 0).sum()), k) for k in held]
            for c, k in sorted(cov, reverse=True)[:_MAX_HELD]:
                if c == 0 or late():
                    break
                W = cs.configs[k]
                rest = D.copy()
                rest.data = np.where(matching.values_at(W, dk) > 0, 0.0, rest.data)
                rest.eliminate_zeros()
                cfgs, _ = matching.decompose(rest, ports, b, method="min-slots", max_terms=_MAX_TERMS, **kw)
                if max_slots_per_phase is not None and len(cfgs) + 1 > max_slots_per_phase:
                    continue
                options[u] += _options_for(problem, D, [k] + [cs.add(C) for C in cfgs], [W] + cfgs, "held")
    # Chains handing the last slot of a several-slot phase on to the next phase.
    if any(slots.need([u]) >= 2 for u in range(U)) and not late():
        chains = [_chain_options(problem, demands, uid, rep, slots, cs, kw, max_phases=4 * _MAX_STARTS)]
        if max_slots_per_phase is None or max_slots_per_phase >= 2:
            chains.append(_carry_chain(problem, demands, uid, rep, slots, cs, max_phases=4 * _MAX_STARTS))
        for ch in chains:
            for u, ops in ch.items():
                if max_slots_per_phase is not None:
                    ops = [o for o in ops if len(o.configs) <= max_slots_per_phase]
                options[u] += ops
    # Window decompositions: the fewest slots for the merged demand of a maximal
    # window, shared by all its phases (each uses the slots that cover its pairs),
    # so consecutive several-slot phases can hand their last configuration on.
    done: set[bytes] = set()
    for cnt in multi[:_MAX_STARTS]:
        if late():
            truncated = True
            break
        if (cnt > 0).sum() < 2 or cnt.tobytes() in done:
            continue
        done.add(cnt.tobytes())
        merged = sum(demands[u] * float(c) for u, c in enumerate(cnt) if c)
        cfgs, _ = matching.decompose(merged, ports, b, method="min-slots", max_terms=_MAX_TERMS, **kw)
        if len(cfgs) < 2:
            continue
        ids = [cs.add(C) for C in cfgs]
        keys = [matching.pair_keys(C) for C in cfgs]
        for u in np.flatnonzero(cnt):
            q = slots.keys[u]
            use = [k for k in range(len(cfgs)) if np.isin(q, keys[k]).any()]
            if max_slots_per_phase is not None and len(use) > max_slots_per_phase:
                continue
            options[u] += _options_for(problem, demands[u], [ids[k] for k in use], [cfgs[k] for k in use],
                                       "window")
    times = PhaseTimes(problem, demands, cs.configs)
    stats = {"distinct_demands": U, "configs": len(cs), "single": n_single, "windows": n_window,
             "options": sum(len(o) for o in options)}
    return Candidates(demands, uid, cs, times, options, truncated, stats)


# --- the exact choice over the candidates -------------------------------------------------


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


# --- the solver -----------------------------------------------------------------------------


def assemble(problem, configs: list[sp.csr_matrix], seq: list[list[int]], durations: list, *, method: str,
             status: str = "feasible", solve_time_s: float = 0.0, meta: dict | None = None,
             lower_bound_s: float | None = None):
    """A :class:`~ocsnet.schedule.io.Schedule` from distinct configurations and per-phase slot indices.

    Times come from :func:`ocsnet.schedule.validate.retime` (the reference
    semantics): ``durations[p]`` is None for a one-slot phase, else the slot
    durations with the last one None (re-timed).  Only the configurations
    used are kept, in order of first use.  Unlike ``Schedule.from_configs``
    this does not re-hash every phase's matrices, which matters at 7,560 phases.
    """
    from .bounds import lower_bound_s as _lb
    from .io import PhaseSchedule, Schedule, Slot
    from .validate import retime

    order: dict[int, int] = {}
    for row in seq:
        for c in row:
            order.setdefault(c, len(order))
    used = [configs[c] for c in order]
    seq2 = [[order[c] for c in row] for row in seq]
    dur = [[None] * len(row) if d is None else list(d) for row, d in zip(seq2, durations)]
    t = retime(problem, used, seq2, dur)
    phases = []
    for p, row in enumerate(seq2):
        slots = [Slot(config=c, duration_s=float(t.duration_s[p][k]), reconfig=bool(t.reconfig[p][k]),
                      exposed_s=float(t.exposed_s[p][k])) for k, c in enumerate(row)]
        phases.append(PhaseSchedule(slots=slots, start_s=float(t.start_s[p]), end_s=float(t.end_s[p]),
                                    reconfig_at_start=bool(t.reconfig[p][0])))
    if t.violations:
        raise ScheduleError(f"{method}: internal error, the schedule does not serve the demand: {t.violations[0]}")
    return Schedule(used, phases, makespan_s=t.makespan_s,
                    lower_bound_s=_lb(problem) if lower_bound_s is None else lower_bound_s,
                    status=status, method=method, solve_time_s=solve_time_s,
                    reconfig_delay_s=problem.reconfig_delay_s, meta=meta)


def schedule_from_plan(problem, cand: Candidates, plan, exposed_s: np.ndarray, *, method: str,
                       status: str = "feasible", solve_time_s: float = 0.0, meta: dict | None = None,
                       lower_bound_s: float | None = None):
    """Turn a plan (option, config, previous config per phase) into a re-timed :class:`Schedule`.

    One-slot phases get the closed-form duration; several-slot phases their
    hold times plus each slot's exposed delay (the last slot is re-timed).
    """
    delta = problem.reconfig_delay_s
    seq, durations = [], []
    for p, (o, k, prev) in enumerate(plan):
        if o < 0:
            seq.append([k])
            durations.append(None)
            continue
        op = cand.options[cand.uid[p]][o]
        first = op.configs[0]
        x0 = float(exposed_s[p]) if (p > 0 and prev != first) else 0.0
        seq.append(list(op.configs))
        d = [x0 + float(op.hold_s[0])] + [delta + float(h) for h in op.hold_s[1:]]
        d[-1] = None
        durations.append(d)
    return assemble(problem, cand.configs.configs, seq, durations, method=method, status=status,
                    solve_time_s=solve_time_s, meta=meta, lower_bound_s=lower_bound_s)


def design_bound_s(problem, demands: list, uid: np.ndarray) -> float:
    """The DESIGN.md lower bound computed once per distinct demand (gaps plus peak / (d b + packet))."""
    peak = np.array([max(np.asarray(D.sum(axis=1)).max(initial=0.0), np.asarray(D.sum(axis=0)).max(initial=0.0))
                     if D.nnz else 0.0 for D in demands])
    cap = problem.ports * problem.circuit_Bps + problem.packet_Bps
    return float(problem.gap_s.sum() + (peak[uid] / cap).sum())


def solve_heuristic(problem, time_limit_s: float | None = None, max_slots_per_phase: int | None = None,
                    *, windows=_WINDOWS, decompositions=("min-slots", "bvn"), bound: str = "best"):
    """Schedule a large OCS problem: candidate configurations, then an exact choice.

    Parameters
    ----------
    problem : OCSProblem
    time_limit_s : float, optional
        Budget for optional candidates; the schedule is always returned
        (status ``"time-limit"`` if candidates were cut short).
    max_slots_per_phase : int, optional
        Largest number of slots a phase may use (default: no limit).
    windows : sequence of int
        Lengths of the windows of consecutive phases whose merged demand
        gets its own candidate configuration.
    decompositions : sequence of str
        Several-slot decompositions tried for phases no single configuration
        serves at their bound (see :func:`~ocsnet.schedule.matching.decompose`).
    bound : {"best", "design"}
        ``best``: the tightest bound of :mod:`ocsnet.schedule.bounds`;
        ``design``: the DESIGN.md bound only, computed per distinct demand
        (for very long traces where the tighter bounds cost more than the solve).

    Returns
    -------
    Schedule
        Optimal over the candidates, re-timed by the reference semantics,
        with the lower bound and gap.  ``meta`` holds candidate counts and the
        dynamic program's own makespan (``dp_makespan_s``, equal to the
        re-timed one up to the lit circuits the DP does not credit inside
        several-slot phases).

    Raises
    ------
    ScheduleError
        If some phase cannot be served within ``max_slots_per_phase``.

    Examples
    --------
    A ring step repeated with a short gap: one configuration is held throughout.

    >>> import numpy as np
    >>> from ocsnet.schedule.problem import OCSProblem
    >>> ring = np.roll(np.eye(4), 1, axis=1) * 4e9
    >>> prob = OCSProblem([ring] * 3, [1e-3] * 3, ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-2)
    >>> s = solve_heuristic(prob)
    >>> round(s.makespan_s, 6), s.n_reconfigurations, s.gap
    (6.003, 0, 0.0)
    """
    if max_slots_per_phase is not None and int(max_slots_per_phase) < 1:
        raise ScheduleError(f"max_slots_per_phase: {max_slots_per_phase!r} is out of range, allowed [1, inf)")
    if bound not in ("best", "design"):
        raise ScheduleError(f"bound: {bound!r} is not one of 'best', 'design'")
    t0 = time.perf_counter()
    cand = build_candidates(problem, time_limit_s=time_limit_s, max_slots_per_phase=max_slots_per_phase,
                            windows=windows, decompositions=decompositions, t0=t0)
    exposed = np.maximum(0.0, problem.reconfig_delay_s - problem.gap_s)
    total, plan, dstats = choose(cand, exposed, problem.period)
    # Deterministic facts only (the JSON must not change between runs); wall
    # times of the steps go to the log of the caller through solve_time_s.
    meta = {"candidates": cand.stats, "dp_makespan_s": float(problem.gap_s.sum() + total),
            "periods_solved": dstats["periods_solved"]}
    meta["bound"] = bound
    sched = schedule_from_plan(problem, cand, plan, exposed, method="heuristic",
                               status="time-limit" if cand.truncated else "feasible", meta=meta,
                               lower_bound_s=design_bound_s(problem, cand.demands, cand.uid) if bound == "design" else None)
    sched.solve_time_s = time.perf_counter() - t0
    if sched.status == "feasible" and sched.makespan_s <= sched.lower_bound_s * (1 + 1e-9):
        sched.status = "optimal"          # meets a proven lower bound
    return sched
