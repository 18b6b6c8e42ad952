"""A collective's steps timed on a fabric with the flow model.

Stage 5 of the pipeline (flow).  :func:`collective_time` takes the compact
steps of :func:`ocsnet.collectives.expand` (over a group's positions) and the
group's GPU ranks, routes every distinct pair once, and times each distinct
step with :func:`ocsnet.flow.phase_time`; steps run one after the other.
Pairs joined by a direct GPU-to-GPU link take that link without a search
(it is their only shortest path, so ``"shortest"`` and ``"ecmp"`` agree);
that keeps a 4,096-GPU torus collective within seconds.  See docs/design.md,
"Fabric-aware collectives".
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from ..errors import FlowError
from ..fabric import Fabric
from .fluid import FIDELITIES, phase_time
from .routing import METHODS, Routes, route

__all__ = ["collective_time", "group_routes", "best_algorithm"]


def group_routes(fabric: Fabric, src, dst, *, method: str = "ecmp") -> Routes:
    """Routes of GPU-rank pairs (sorted by ``src * n + dst``, no duplicates); direct links taken as they are."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    g = fabric.gpus
    e = fabric.edge_ids(g[src], g[dst]) if len(src) else np.zeros(0, np.int64)
    direct = e >= 0
    n_e = fabric.n_edges
    parts = []
    if direct.any():
        idx = np.flatnonzero(direct)
        inc = sp.csc_matrix((np.ones(len(idx)), (e[idx], np.arange(len(idx)))), shape=(n_e, len(idx)))
        parts.append((idx, Routes(inc, src[idx], dst[idx], np.ones(len(idx), np.int64),
                                  fabric.latency_s[e[idx]], method)))
    if (~direct).any():
        idx = np.flatnonzero(~direct)
        parts.append((idx, route(fabric, src[idx], dst[idx], method=method)))
    if len(parts) == 1 and len(parts[0][0]) == len(src):
        return parts[0][1]
    if not parts:
        return route(fabric, src, dst, method=method)
    order = np.argsort(np.concatenate([i for i, _ in parts]), kind="stable")
    rs = [r for _, r in parts]
    inc = sp.hstack([r.incidence for r in rs]).tocsc()[:, order]
    cat = lambda a: np.concatenate([getattr(r, a) for r in rs])[order]  # noqa: E731
    return Routes(inc, cat("src"), cat("dst"), cat("hops"), cat("latency_s"), method)


def collective_time(fabric: Fabric, ranks, steps, *, fidelity: str = "max-min", routing: str = "ecmp") -> float:
    """Time of a collective's steps run by the group ``ranks`` on ``fabric``, seconds.

    Parameters
    ----------
    fabric : Fabric
        A direct or packet fabric (for an OCS fabric, apply circuits first).
    ranks : sequence of int
        GPU rank of every group position.
    steps : list of (src, dst, nbytes)
        Compact steps (``expand(..., as_arrays=True)``) over group positions.
    fidelity : {"max-min", "alpha-beta"}
    routing : {"shortest", "ecmp"}

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.topology import torus
    >>> from ocsnet.collectives import expand
    >>> f = torus((4, 4, 4), gpu="lite-netboost")
    >>> steps = expand("all-reduce", 64, 1e9, "torus", fabric=f, ranks=np.arange(64), as_arrays=True)
    >>> round(collective_time(f, np.arange(64), steps) * 1e3, 2)        # the injection bound, 8.75 ms
    8.75
    """
    if fidelity not in FIDELITIES:
        raise FlowError(f"fidelity: {fidelity!r} is not one of {', '.join(FIDELITIES)}")
    if routing not in METHODS:
        raise FlowError(f"routing: {routing!r} is not one of {', '.join(METHODS)}")
    r = np.asarray(ranks, dtype=np.int64)
    n = fabric.n_gpus
    steps = list(steps)
    if not steps:
        return 0.0
    keys = np.unique(np.concatenate([r[s[0]] * n + r[s[1]] for s in steps]))
    routes = group_routes(fabric, keys // n, keys % n, method=routing)
    total = 0.0
    cache: dict[tuple, float] = {}
    by_content: dict[bytes, float] = {}
    for s, d, nb in steps:
        key = (id(s), id(d), id(nb))
        t = cache.get(key)
        if t is None:
            # equal steps built apart (an all-gather mirrors its reduce-scatter) are timed once
            h = hashlib.blake2b(np.ascontiguousarray(s).tobytes() + b"|" + np.ascontiguousarray(d).tobytes()
                                + b"|" + np.ascontiguousarray(nb, dtype=np.float64).tobytes(), digest_size=16).digest()
            t = by_content.get(h)
            if t is not None:
                cache[key] = t
        if t is None:
            m = sp.csr_matrix((nb, (r[s], r[d])), shape=(n, n))
            m.sum_duplicates()
            c = m.tocoo()
            keep = (c.data > 0) & (c.row != c.col)
            k = np.sort(c.row[keep].astype(np.int64) * n + c.col[keep])
            sub = routes.subset(np.searchsorted(keys, k))
            t = cache[key] = by_content[h] = float(phase_time(fabric, m, routes=sub, fidelity=fidelity).time_s)
        total += t
    return total


def best_algorithm(kind: str, fabric: Fabric, ranks, nbytes: float, *, chunks: int = 1,
                   lp_limit: int | None = None) -> tuple[str, dict]:
    """The fastest algorithm for a group by the max-min flow model: ``(name, {algorithm: seconds})``.

    Candidates: every fabric-aware algorithm that applies (the synthesized
    one while its LP has at most ``lp_limit`` variables, default
    :data:`ocsnet.collectives.synth.MAX_LP_VARIABLES`) and every fabric-blind
    one (rhd reduce-scatter/all-gather on powers of two; direct up to 1,024
    ranks).  Ties go to the earlier in ``FABRIC_ALGORITHMS[kind] +
    ALGORITHMS[kind]``.  On an OCS fabric (no circuits to route on) this is
    :func:`ocsnet.collectives.fabric_aware.choose`'s ideal-circuit estimate.
    """
    from ..collectives import ALGORITHMS, FABRIC_ALGORITHMS, PIPELINED, expand
    from ..collectives.fabric_aware import AUTO_LP_VARIABLES, applies, choose, ocs_info
    from ..collectives.synth import lp_size

    r = np.asarray(ranks, dtype=np.int64)
    p = len(r)
    if p <= 1 or kind not in FABRIC_ALGORITHMS or ocs_info(fabric) is not None:
        return (choose(kind, fabric, r, nbytes, chunks=chunks) if p > 1 else ALGORITHMS[kind][0]), {}
    limit = AUTO_LP_VARIABLES if lp_limit is None else lp_limit
    times: dict[str, float] = {}
    for alg in (*FABRIC_ALGORITHMS[kind], *ALGORITHMS[kind]):
        if alg in FABRIC_ALGORITHMS[kind]:
            if applies(kind, alg, fabric, r) is not None:
                continue
            if alg == "synthesized" and lp_size(fabric, r) > limit:
                continue
        elif (alg == "rhd" and kind != "all-reduce" and p & (p - 1)) or (alg == "direct" and p > 1024):
            continue
        k = chunks if (kind, alg) in PIPELINED else 1
        steps = expand(kind, p, nbytes, alg, fabric=fabric, ranks=r, chunks=k, as_arrays=True)
        times[alg] = collective_time(fabric, r, steps)
    best = min(times, key=lambda a: (times[a], list(times).index(a)))
    return best, times
