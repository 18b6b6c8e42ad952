"""The best fractional all-gather and reduce-scatter on a small fabric, by linear programming.

Stage 4 of the pipeline (collectives).  In an all-gather every rank ``s``
broadcasts its chunk (``nbytes / p``) to every other rank.  The LP (the
multicommodity broadcast relaxation used by Blink and TE-CCL): for every
source ``s`` a flow ``f[s, t]`` of one chunk from ``s`` to every ``t``; the
copies of ``s``'s chunk may share links (a node that has a byte can send it
on to several neighbours), so link ``e`` carries ``x[s, e] >= f[s, t, e]``
of it for every ``t``; and ``sum_s x[s, e] <= capacity_e * T``.  Minimizing
``T`` gives the highest throughput any schedule reaches when it is pipelined
without limit; by Edmonds' branching theorem it is reached by packing
spanning arborescences, so for an all-gather it is a lower bound that is
tight up to latency and pipelining.  Reduce-scatter is the all-gather on the
reversed fabric.  Solved with scipy's HiGHS; only for fabrics where the LP
has at most :data:`MAX_LP_VARIABLES` variables (about 16 GPUs on a 2-tier
Clos, 24 on a clique).  See docs/design.md, "Fabric-aware collectives".

References
----------
G. Wang et al., "Blink: fast and generic collectives for distributed ML",
MLSys 2020.  X. Liu et al., "Rethinking machine learning collective
communication as a multi-commodity flow problem" (TE-CCL), SIGCOMM 2024.
J. Edmonds, "Edge-disjoint branchings", 1973.
"""

from __future__ import annotations

import numpy as np

from ..errors import WorkloadError
from ..fabric import Fabric

__all__ = ["lp_bound_s", "synthesized_program", "MAX_LP_VARIABLES", "MAX_TREES", "SYNTH_CHUNKS"]

#: Largest LP solved (variables); larger groups get no LP bound.
MAX_LP_VARIABLES = 250_000


def _broadcast_lp(n: int, u, v, cap, nodes, x_cost: float = 0.0):
    """Solve the broadcast LP on a graph of ``n`` nodes and edges ``u -> v`` of relative capacity ``cap``.

    ``nodes`` are the group's nodes (source ``s`` is ``nodes[s]``).  Returns scipy's result, whose
    variables are ``x[s, e]`` (``p * E``), ``f[k, e]`` (``p (p - 1) * E``) and ``T`` (last); ``x_cost``
    is a tiny cost on ``x`` that keeps the copies on as few links as the optimum allows.
    """
    import scipy.sparse as sp
    from scipy.optimize import linprog

    p, E = len(nodes), len(u)
    K = p * (p - 1)
    nx_, nf = p * E, K * E
    S = np.repeat(np.arange(p), p - 1)                       # commodity k = (s, t)
    T_ = np.concatenate([np.delete(np.arange(p), s) for s in range(p)])
    # conservation: for commodity k at node w, out - in = [w == s] - [w == t]
    k_e = np.repeat(np.arange(K), E)
    e_k = np.tile(np.arange(E), K)
    fcol = nx_ + k_e * E + e_k
    A_eq = sp.csr_matrix((np.r_[np.ones(nf), -np.ones(nf)], (np.r_[k_e * n + u[e_k], k_e * n + v[e_k]],
                                                            np.r_[fcol, fcol])), shape=(K * n, nx_ + nf + 1))
    b_eq = np.zeros(K * n)
    b_eq[np.arange(K) * n + nodes[S]] += 1.0
    b_eq[np.arange(K) * n + nodes[T_]] -= 1.0
    # sharing: f[k, e] - x[s(k), e] <= 0
    r1 = np.arange(nf)
    A1 = sp.csr_matrix((np.r_[np.ones(nf), -np.ones(nf)], (np.r_[r1, r1], np.r_[fcol, S[k_e] * E + e_k])),
                       shape=(nf, nx_ + nf + 1))
    # capacity: sum_s x[s, e] - cap_e T <= 0
    s_e = np.repeat(np.arange(p), E)
    e_s = np.tile(np.arange(E), p)
    A2 = sp.csr_matrix((np.r_[np.ones(nx_), -cap], (np.r_[e_s, np.arange(E)], np.r_[s_e * E + e_s, np.full(E, nx_ + nf)])),
                       shape=(E, nx_ + nf + 1))
    c = np.zeros(nx_ + nf + 1)
    c[-1] = 1.0
    c[:nx_] = x_cost
    return linprog(c, A_ub=sp.vstack([A1, A2]).tocsr(), b_ub=np.zeros(nf + E), A_eq=A_eq, b_eq=b_eq,
                   bounds=(0, None), method="highs")


def lp_bound_s(kind: str, fabric: Fabric, ranks, nbytes: float) -> float | None:
    """LP lower bound on an all-gather or reduce-scatter of the group, seconds (None if too large).

    Examples
    --------
    >>> from ocsnet.topology import fully_connected
    >>> f = fully_connected(4, link_Bps=1e9)
    >>> round(lp_bound_s("all-gather", f, [0, 1, 2, 3], 4e9), 6)   # 3 chunks of 1 GB over 3 links
    1.0
    """
    if kind not in ("all-gather", "reduce-scatter"):
        raise WorkloadError(f"kind: {kind!r} has no LP bound, expected all-gather or reduce-scatter")
    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    if p < 2 or nbytes <= 0:
        return 0.0
    E = fabric.n_edges
    if p * E + p * (p - 1) * E + 1 > MAX_LP_VARIABLES:
        return None
    u, v = (fabric.src, fabric.dst) if kind == "all-gather" else (fabric.dst, fabric.src)
    res = _broadcast_lp(fabric.n_nodes, u, v, fabric.capacity_Bps / fabric.capacity_Bps.max(), fabric.gpus[ranks])
    if res.status != 0:
        return None
    # T is seconds per byte of chunk at capacity scale max(capacity): undo both normalizations
    return float(res.x[-1]) * (nbytes / p) / float(fabric.capacity_Bps.max())


# ---- the synthesized algorithm: pipelined trees packed from the LP ----------------------
#: Trees packed per source at most, and pipeline chunks of the synthesized schedule.
MAX_TREES = 6
SYNTH_CHUNKS = 4


def _group_graph(fabric: Fabric, ranks: np.ndarray):
    """(u, v, capacity) of the direct links between the group's GPUs, as group positions."""
    inv = np.full(fabric.n_nodes, -1, dtype=np.int64)
    inv[fabric.gpus[ranks]] = np.arange(len(ranks))
    a, b = inv[fabric.src], inv[fabric.dst]
    sel = (a >= 0) & (b >= 0)
    return a[sel], b[sel], fabric.capacity_Bps[sel]


def _solve_x(p: int, u, v, cap):
    """Per source s and link e, the share x[s, e] of s's chunk the LP puts on e (all-gather)."""
    res = _broadcast_lp(p, u, v, cap / cap.max(), np.arange(p), x_cost=1e-6)
    if res.status != 0:  # pragma: no cover - feasible whenever the group is strongly connected
        raise WorkloadError("synthesized: the LP found no all-gather on the group's links")
    return res.x[:p * len(u)].reshape(p, len(u))


def _pack_trees(p: int, s: int, u, v, x):
    """Spanning arborescences rooted at s with weights, packed greedily from the LP shares x (one source)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order
    rem = x.copy()
    trees = []
    total = 0.0
    for _ in range(MAX_TREES):
        live = rem > 1e-6
        g = csr_matrix((np.ones(int(live.sum())), (u[live], v[live])), shape=(p, p))
        order, pred = breadth_first_order(g, s, directed=True, return_predecessors=True)
        if len(order) < p:
            break
        child = np.delete(np.arange(p), s)
        par = pred[child]
        # edge id of every tree edge (parent -> child)
        key = u * p + v
        srt = np.argsort(key)
        eid = srt[np.searchsorted(key[srt], par * p + child)]
        lam = min(float(rem[eid].min()), 1.0 - total)
        if lam <= 1e-9:
            break
        rem[eid] -= lam
        total += lam
        parent = np.full(p, -1, dtype=np.int64)
        parent[child] = par
        trees.append((parent, lam))
        if total >= 1 - 1e-9:
            break
    if not trees:
        raise WorkloadError("synthesized: the group's links do not reach every GPU from every GPU")
    return [(par, lam / total) for par, lam in trees]


def lp_size(fabric: Fabric, ranks) -> int:
    """Variables of the synthesized algorithm's LP for the group (``p * links * (p (p-1) + 1)``)."""
    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    return p * len(_group_graph(fabric, ranks)[0]) * (p * (p - 1) + 1)


def check_synthesized(fabric: Fabric, ranks) -> None:
    """Raise WorkloadError (naming the group and why) if the synthesized algorithm does not apply."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    u, v, _ = _group_graph(fabric, ranks)
    if p < 2 or len(u) == 0:
        raise WorkloadError(f"synthesized: the group of {p} GPUs on {fabric.name!r} has no direct GPU-to-GPU links")
    n_cc = connected_components(csr_matrix((np.ones(len(u)), (u, v)), shape=(p, p)), directed=True,
                                connection="strong")[0]
    if n_cc != 1:
        raise WorkloadError(f"synthesized: the direct links between the group's {p} GPUs on {fabric.name!r} "
                            "do not join every GPU to every other")
    if lp_size(fabric, ranks) > MAX_LP_VARIABLES:
        raise WorkloadError(f"synthesized: the group of {p} GPUs with {len(u)} links is too large for the LP "
                            f"(at most {MAX_LP_VARIABLES} variables); use torus, multi-ring or ring")


def synthesized_program(kind: str, fabric: Fabric, ranks, nbytes: float, *, symbolic: bool = False):
    """All-gather, reduce-scatter or all-reduce along pipelined trees packed from the broadcast LP.

    Applies to groups whose GPUs are joined by direct links (CPO cliques,
    tori, dragonfly groups) and small enough for the LP.  Every source's
    chunk is split over up to :data:`MAX_TREES` spanning arborescences (the
    LP's link shares packed greedily, shares renormalized to 1) and cut into
    :data:`SYNTH_CHUNKS` pieces; a tree edge at depth ``h`` moves piece ``c``
    in step ``h + c - 1`` (all-gather, parent to child) or in step
    ``H - h + c`` (reduce-scatter, child to parent, ``H`` the deepest tree).
    """
    from .program import Move, Program

    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    check_synthesized(fabric, ranks)
    u, v, cap = _group_graph(fabric, ranks)
    x = _solve_x(p, u, v, cap)
    k = SYNTH_CHUNKS
    trees = []                                            # (source, parent, depth, weight)
    for s in range(p):
        for parent, lam in _pack_trees(p, s, u, v, x[s]):
            depth = np.zeros(p, dtype=np.int64)
            # depth by walking up (p is small)
            for node in range(p):
                d, w = 0, node
                while parent[w] >= 0:
                    w = parent[w]
                    d += 1
                depth[node] = d
            trees.append((s, parent, depth, lam))
    H = max(int(t[2].max()) for t in trees)
    n_steps = H + k - 1
    ag = [[] for _ in range(n_steps)]
    rs = [[] for _ in range(n_steps)]
    chunk_bytes = []
    for j, (s, parent, depth, lam) in enumerate(trees):
        kids = np.flatnonzero(parent >= 0)
        nb = lam * nbytes / (p * k)
        for c in range(k):
            cid = j * k + c
            chunk_bytes.append(nb)
            for h in range(1, int(depth.max()) + 1):
                e = kids[depth[kids] == h]
                ch = np.full((len(e), 1), cid, dtype=np.int64) if symbolic else None
                ag[h + c - 1].append(Move(parent[e], e, np.full(len(e), nb), ch, "copy"))
                rs[H - h + c].append(Move(e, parent[e], np.full(len(e), nb), ch, "reduce"))
    steps = rs if kind == "reduce-scatter" else ag if kind == "all-gather" else rs + ag
    prog = Program(kind, p, steps, name="synthesized")
    if symbolic:
        prog.n_chunks = len(chunk_bytes)
        prog.chunk_bytes = np.asarray(chunk_bytes)
        prog.owner = np.repeat([t[0] for t in trees], k)
    return prog
