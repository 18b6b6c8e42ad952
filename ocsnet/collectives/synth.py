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

__all__ = ["lp_bound_s", "MAX_LP_VARIABLES"]

#: Largest LP solved (variables); larger groups get no LP bound.
MAX_LP_VARIABLES = 250_000


def lp_bound_s(kind: str, fabric: Fabric, ranks, nbytes: float) -> float | None:
    """LP lower bound on an all-gather or reduce-scatter of the group, seconds (None if too large).

    Examples
    --------
    >>> from ocsnet.topology import fully_connected
    >>> f = fully_connected(4, link_Bps=1e9)
    >>> round(lp_bound_s("all-gather", f, [0, 1, 2, 3], 4e9), 6)   # 3 chunks of 1 GB over 3 links
    1.0
    """
    import scipy.sparse as sp
    from scipy.optimize import linprog

    if kind not in ("all-gather", "reduce-scatter"):
        raise WorkloadError(f"kind: {kind!r} has no LP bound, expected all-gather or reduce-scatter")
    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    if p < 2 or nbytes <= 0:
        return 0.0
    n, E = fabric.n_nodes, fabric.n_edges
    K = p * (p - 1)
    nx_ = p * E
    nf = K * E
    if nx_ + nf + 1 > MAX_LP_VARIABLES:
        return None
    u, v = (fabric.src, fabric.dst) if kind == "all-gather" else (fabric.dst, fabric.src)
    cap = fabric.capacity_Bps / fabric.capacity_Bps.max()
    gnode = fabric.gpus[ranks]
    S = np.repeat(np.arange(p), p - 1)                       # commodity k = (s, t)
    T_ = np.concatenate([np.delete(np.arange(p), s) for s in range(p)])
    # conservation: for commodity k at node w, out - in = [w == s] - [w == t]
    k_e = np.repeat(np.arange(K), E)
    e_k = np.tile(np.arange(E), K)
    fcol = nx_ + k_e * E + e_k
    rows_out = k_e * n + u[e_k]
    rows_in = k_e * n + v[e_k]
    A_eq = sp.csr_matrix((np.r_[np.ones(nf), -np.ones(nf)], (np.r_[rows_out, rows_in], np.r_[fcol, fcol])),
                         shape=(K * n, nx_ + nf + 1))
    b_eq = np.zeros(K * n)
    b_eq[np.arange(K) * n + gnode[S]] += 1.0
    b_eq[np.arange(K) * n + gnode[T_]] -= 1.0
    # sharing: f[k, e] - x[s(k), e] <= 0
    r1 = np.arange(nf)
    A1 = sp.csr_matrix((np.r_[np.ones(nf), -np.ones(nf)],
                        (np.r_[r1, r1], np.r_[fcol, S[k_e] * E + e_k])), shape=(nf, nx_ + nf + 1))
    # capacity: sum_s x[s, e] - cap_e T <= 0
    s_e = np.repeat(np.arange(p), E)
    e_s = np.tile(np.arange(E), p)
    A2 = sp.csr_matrix((np.r_[np.ones(nx_), -cap], (np.r_[e_s, np.arange(E)], np.r_[s_e * E + e_s, np.full(E, nx_ + nf)])),
                       shape=(E, nx_ + nf + 1))
    c = np.zeros(nx_ + nf + 1)
    c[-1] = 1.0
    res = linprog(c, A_ub=sp.vstack([A1, A2]).tocsr(), b_ub=np.zeros(nf + E), A_eq=A_eq, b_eq=b_eq,
                  bounds=(0, None), method="highs")
    if res.status != 0:
        return None
    # T is seconds per byte of chunk at capacity scale max(capacity): undo both normalizations
    return float(res.x[-1]) * (nbytes / p) / float(fabric.capacity_Bps.max())
