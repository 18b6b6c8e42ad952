"""Lower bounds on the optimal makespan of an OCS scheduling problem.

Stage 4 of the pipeline (``ocsnet.schedule``).  Every solver reports its
makespan beside the best of these bounds, so the gap it prints is honest.
Each bound below is a proof, stated in its docstring, and the tests check
each against brute-force optima on tiny instances.

* :func:`design_bound_s` -- DESIGN.md: gaps plus ``max(row, col sum) / (d b
  + packet_Bps)`` per phase.  Valid under every extension.
* :func:`transfer_bounds_s` -- per phase, also the slowest single pair: a pair
  never moves faster than all the circuits its two GPUs can give it (or the
  packet rate, whichever is larger).  Valid under every extension.
* :func:`reconfiguration_bound_s` -- all-stop problems without reserved
  circuits or packets: reconfigurations that every schedule must make
  (a phase whose GPU has more partners than ports needs several slots; two
  consecutive phases that no single configuration serves need a change
  between them), chosen by a dynamic program over phases.
* :func:`static_or_change_bound_s` -- same conditions: a schedule either never
  changes its configuration (then one configuration serves every phase, and
  each GPU's best split of its ports over its partners bounds the time) or
  changes at least once (paying at least the cheapest exposed delay).  The
  optimum is at least the smaller of the two.  This is what proves that no
  reconfiguration pays off when ``delta`` is large.

:func:`lower_bound_s` returns the largest.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.sparse as sp

__all__ = ["lower_bound_s", "design_bound_s", "transfer_bounds_s", "reconfiguration_bound_s",
           "static_or_change_bound_s", "slots_needed", "conflicts", "all_bounds"]

# Work limit (array elements) for the per-GPU static enumeration.
_STATIC_WORK = 20_000_000


def _plain(problem) -> bool:
    """All-stop reconfiguration, nothing reserved, no packet network: dead time during a change."""
    return problem.reserved.nnz == 0 and not problem.partial_reconfig and problem.packet_Bps <= 0


def _entries(D: sp.csr_matrix):
    rows = np.repeat(np.arange(D.shape[0], dtype=np.int64), np.diff(D.indptr))
    return rows, D.indices.astype(np.int64), D.data.astype(float)


def design_bound_s(problem) -> float:
    """The DESIGN.md bound: ``sum_p g_p + max(max row sum, max col sum of D_p) / (d b + packet_Bps)``.

    A GPU sends and receives over at most ``d`` circuits (reserved ones
    included) plus the packet network, and gaps are always paid.
    """
    return problem.lower_bound_s()


def transfer_bounds_s(problem) -> np.ndarray:
    """Per phase, a lower bound on the time its traffic takes (exposed delays not included).

    The larger of the DESIGN per-phase bound and ``max over demanded pairs of
    D / rate_max`` where ``rate_max = max((R + cmax) b, packet_Bps)`` and
    ``cmax = min(free ports of i, free ports of j)`` (0 for a pair the OCS
    cannot connect): a pair is carried by circuits or by packets, never
    faster than either can go.

    Returns
    -------
    ndarray (P,) of seconds.
    """
    b, pb = problem.circuit_Bps, problem.packet_Bps
    mats, idx = problem.distinct()
    pair = np.zeros(len(mats))
    for k, D in enumerate(mats):
        if D.nnz == 0:
            continue
        r, c, v = _entries(D)
        R = np.asarray(problem.reserved[r, c]).ravel()
        cmax = np.where(problem.is_allowed(r, c), np.minimum(problem.free_out[r], problem.free_in[c]), 0)
        rate = np.maximum((R + cmax) * b, pb)
        pair[k] = float((v / rate).max())
    return np.maximum(problem.phase_lower_bounds_s(), pair[idx])


def slots_needed(problem) -> np.ndarray:
    """Fewest slots each phase needs if every demanded pair must get a circuit: ``max_i ceil(degree_i / d_i)``.

    In one slot a GPU reaches at most ``d`` partners, so a GPU with ``m``
    demanded partners needs ``ceil(m / d)`` slots (meaningful for
    :func:`_plain` problems, where every demanded pair needs a circuit).
    """
    d = np.maximum(problem.port_counts, 1)       # a GPU with 0 ports has no demand (OCSProblem checks)
    mats, idx = problem.distinct()
    out = np.ones(len(mats), dtype=np.int64)
    for k, D in enumerate(mats):
        if D.nnz:
            r, c, _ = _entries(D)
            deg = np.maximum(np.bincount(r, minlength=problem.N), np.bincount(c, minlength=problem.N))
            out[k] = max(1, int((-(-deg // d)).max()))
    return out[idx]


def conflicts(problem) -> np.ndarray:
    """``conflicts[p]`` (p >= 1): no single configuration has a circuit on every pair demanded in p-1 or p.

    True when some GPU has more distinct partners in the two phases together
    than it has ports (a configuration with every such pair is then
    impossible; and when the degrees fit, the 0/1 support itself is one).
    """
    out = np.zeros(problem.P, dtype=bool)
    d = problem.port_counts
    mats, idx = problem.distinct()
    seen: dict[tuple[int, int], bool] = {}
    for p in range(1, problem.P):
        key = (int(idx[p - 1]), int(idx[p]))
        if key not in seen:
            U = (mats[key[0]] != 0).astype(np.int8) + (mats[key[1]] != 0).astype(np.int8)
            U = sp.csr_matrix(U)
            U.eliminate_zeros()
            seen[key] = False
            if U.nnz:
                r, c, _ = _entries(U)
                seen[key] = bool((np.maximum(np.bincount(r, minlength=problem.N),
                                             np.bincount(c, minlength=problem.N)) > d).any())
        out[p] = seen[key]
    return out


def _slot_count_costs(problem, p: int, kmax: int) -> np.ndarray:
    """``cost[k-1]`` (k = 1..kmax): a lower bound on phase ``p``'s transfer time if it uses ``k`` slots.

    For plain problems.  A GPU with ``m`` demanded partners has at most
    ``k d`` (slot, circuit) incidences in ``k`` slots and every partner needs
    one, so at least ``2m - k d`` partners get exactly one circuit in exactly
    one slot; such a partner ``u`` alone holds its slot for ``D_u / b``.  At
    most ``d`` of them share a slot, so the slots' hold times add up to at
    least the sum of the group maxima of the cheapest such choice: the
    ``2m - k d`` smallest demands, sorted and cut into groups of ``d``.  The
    phase's time is at least the largest of these over its GPUs (rows and
    columns) and at least its transfer bound; infinite below ``slots_needed``.
    """
    pc, b = np.maximum(problem.port_counts, 1), problem.circuit_Bps
    D = problem.demand[p]
    out = np.zeros(kmax)
    if D.nnz == 0:
        return out
    for M in (D, D.T.tocsr()):
        r = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr))
        v = M.data.astype(float)
        order = np.lexsort((v, r))                       # by GPU, ascending bytes
        r, v = r[order], v[order]
        deg = np.diff(M.indptr)
        pos = np.arange(len(v)) - M.indptr[r] + 1        # 1-based rank within the GPU
        d = pc[r]                                        # the GPU's own port budget
        for k in range(1, kmax + 1):
            ns = np.maximum(0, 2 * deg - k * pc)[r]
            take = (pos <= ns) & ((ns - pos) % d == 0)
            if not take.any():
                continue
            per_gpu = np.bincount(r[take], v[take], minlength=M.shape[0]) / b
            out[k - 1] = max(out[k - 1], float(per_gpu.max()))
            if (deg > k * pc).any():
                out[k - 1] = math.inf
    return out


def reconfiguration_bound_s(problem, max_slots_per_phase: int | None = None) -> float:
    """Gaps, transfer times and the exposed reconfiguration every schedule must pay.

    Valid for all-stop problems without reserved circuits or packet network
    (else returns the transfer bound alone): there a change is dead time, so
    it adds to the phase's transfer time.  A phase using ``k`` slots has
    ``k - 1`` changes inside it, each fully exposed (``delta``), and its
    transfer takes at least the larger of :func:`transfer_bounds_s` and
    :func:`_slot_count_costs` for ``k`` (``k`` at least :func:`slots_needed`,
    at most ``max_slots_per_phase``).  If :func:`conflicts` holds at ``p``,
    some change happens inside phase ``p-1``, at the start of phase ``p``
    (exposed ``max(0, delta - g_p)``) or inside phase ``p``: otherwise one
    configuration would serve both.  A dynamic program over phases, whose
    state says whether the phase has a change inside it, finds the cheapest
    way to meet every condition; it never counts one change twice, so it is
    a lower bound on the makespan.

    With ``max_slots_per_phase=1`` no change happens inside a phase, so every
    conflict costs ``max(0, delta - g_p)`` (infinite if some phase needs more
    than one slot).
    """
    g = problem.gap_s
    tb = transfer_bounds_s(problem)
    base = float(g.sum() + tb.sum())
    if not _plain(problem):
        return base
    delta = problem.reconfig_delay_s
    w = np.maximum(0.0, delta - g)
    s = slots_needed(problem)
    conf = conflicts(problem)
    S = None if max_slots_per_phase is None else int(max_slots_per_phase)
    INF = math.inf
    cost = [INF, INF]
    cache: dict[int, tuple[float, float]] = {}
    for p in range(problem.P):
        key = id(problem.demand[p])
        if key not in cache:
            # enough k: beyond 2 * max degree / d every GPU's singleton bound is 0
            D = problem.demand[p]
            kmax = 1
            if D.nnz:
                r, c, _ = _entries(D)
                deg = np.maximum(np.bincount(r, minlength=problem.N), np.bincount(c, minlength=problem.N))
                kmax = max(1, int((-(-2 * deg // np.maximum(problem.port_counts, 1))).max()) + 1)
            if S is not None:
                kmax = min(kmax, S)
            kc = np.maximum(_slot_count_costs(problem, p, kmax), tb[p])
            one = kc[0] if s[p] <= 1 else INF
            more = min((k - 1) * delta + kc[k - 1] for k in range(max(2, int(s[p])), kmax + 1)) if kmax >= 2 else INF
            cache[key] = (one, more)
        inner = cache[key]
        new = [INF, INF]
        for i in (0, 1):
            if inner[i] == INF:
                continue
            if p == 0:
                new[i] = inner[i]
                continue
            for j in (0, 1):
                if cost[j] == INF:
                    continue
                boundary = w[p] if (conf[p] and i == 0 and j == 0) else 0.0
                new[i] = min(new[i], cost[j] + boundary + inner[i])
        cost = new
    return float(g.sum()) + float(min(cost))


def _best_row_split(Dm: np.ndarray, d: int, b: float, weight: np.ndarray) -> np.ndarray:
    """For each GPU (row of ``Dm``: (G, P, m) bytes to its m partners), ``min over c of sum_p w_p max_j D / (c_j b)``.

    ``c`` ranges over integer vectors with ``c_j >= 1`` and ``sum c <= d``
    (every partner needs a circuit in a static configuration).  Enumerated:
    there are ``C(d, m)`` such vectors.
    """
    G, P, m = Dm.shape
    comps = np.array([c for c in itertools.product(range(1, d - m + 2), repeat=m) if sum(c) <= d], dtype=float)
    t = Dm[:, None, :, :] / (comps[None, :, None, :] * b)        # (G, K, P, m)
    return (t.max(axis=3) * weight[None, None, :]).sum(axis=2).min(axis=1)


def static_or_change_bound_s(problem) -> float:
    """``min(static bound, bound of schedules that change at least once)``; a valid lower bound.

    For all-stop problems without reserved circuits or packets (else the
    transfer bound).  *Static*: a schedule that never changes holds one
    configuration ``C`` throughout; every demanded pair of every phase needs
    a circuit in it (so if some GPU has more partners over the whole trace
    than ports, no static schedule exists), and GPU ``i``'s row of ``C``
    alone forces ``sum_p max_j D_p[i, j] / (C[i, j] b)``, at least the best
    over all splits of its ``d_i`` ports (enumerated); likewise columns.
    *Changing*: at least one change, exposing at least
    ``min(min_{p >= 1} max(0, delta - g_p), delta)``, on top of
    :func:`reconfiguration_bound_s`'s transfer part.  Returns the smaller
    (the optimum is one of the two kinds).  The enumeration is skipped (and
    the transfer bound returned) when it would exceed a fixed work limit.
    """
    g = problem.gap_s
    tb = transfer_bounds_s(problem)
    base = float(g.sum() + tb.sum())
    if not _plain(problem):
        return base
    pc, b, N, P = problem.port_counts, problem.circuit_Bps, problem.N, problem.P
    delta = problem.reconfig_delay_s
    wmin = min([delta] + [max(0.0, delta - float(g[p])) for p in range(1, P)])
    change = max(reconfiguration_bound_s(problem), base + wmin)
    # static (per distinct matrix, weighted by how many phases use it)
    dmats, didx = problem.distinct()
    weight = np.bincount(didx, minlength=len(dmats)).astype(float)
    static = base
    P = len(dmats)
    for axis in (0, 1):
        mats = dmats if axis == 0 else [D.T.tocsr() for D in dmats]
        U = sum((M != 0).astype(np.int32) for M in mats)
        U = sp.csr_matrix(U)
        U.eliminate_zeros()
        U.sort_indices()
        deg = np.diff(U.indptr)
        if (deg > pc).any():
            return change                     # no static schedule exists
        for m, d in sorted({(int(a), int(e)) for a, e in zip(deg[deg > 0], pc[deg > 0])}):
            rows = np.flatnonzero((deg == m) & (pc == d))
            K = math.comb(d, int(m))
            if len(rows) * K * P * m > _STATIC_WORK:
                return base                   # too big to enumerate: give up the combined bound
            idx = U.indptr[rows][:, None] + np.arange(m)[None, :]
            cols = U.indices[idx]                                   # (G, m) partners
            rr = np.repeat(rows, m)
            Dm = np.stack([np.asarray(M[rr, cols.ravel()]).reshape(len(rows), m) for M in mats], axis=1)  # (G, P, m)
            static = max(static, float(g.sum()) + float(_best_row_split(Dm, d, b, weight).max()))
    return min(static, change)


def all_bounds(problem, max_slots_per_phase: int | None = None) -> dict[str, float]:
    """Every bound by name, in seconds."""
    return {"design": design_bound_s(problem),
            "transfer": float(problem.gap_s.sum() + transfer_bounds_s(problem).sum()),
            "reconfiguration": reconfiguration_bound_s(problem, max_slots_per_phase),
            "static_or_change": static_or_change_bound_s(problem)}


def lower_bound_s(problem, max_slots_per_phase: int | None = None) -> float:
    """The best proven lower bound on the optimal makespan, seconds.

    Parameters
    ----------
    problem : OCSProblem
    max_slots_per_phase : int, optional
        Bound only schedules with at most this many slots per phase (tighter;
        infinite if some phase needs more); default any number of slots.

    Examples
    --------
    Two phases that no single configuration serves (GPU 0 talks to 1, then
    to 2, with one port), a 5 ms change and no gap: the change is forced.

    >>> import numpy as np
    >>> from ocsnet.schedule.problem import OCSProblem
    >>> a = np.zeros((3, 3)); a[0, 1] = 1e6; b = np.zeros((3, 3)); b[0, 2] = 1e6
    >>> prob = OCSProblem([a, b], [0.0, 0.0], ports=1, circuit_Bps=1e9, reconfig_delay_s=5e-3)
    >>> round(prob.lower_bound_s(), 6), round(lower_bound_s(prob), 6)
    (0.002, 0.007)
    """
    return max(all_bounds(problem, max_slots_per_phase).values())
