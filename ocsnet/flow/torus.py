"""Dimension-order routing on a torus or mesh, with detours around failed links.

Stage 5 of the pipeline (flow model), next to :mod:`ocsnet.flow.routing`.
Breadth-first routing costs one search per destination (about a minute for
1e6 flows on a 65,536-GPU torus); dimension-order routing (DOR) needs none: a
flow corrects its coordinates one dimension after the other, each along the
shorter way round (ties, at distance ``k/2``, go the positive way), so every
hop of every flow is computed at once by array arithmetic from the ranks
(Dally and Towles, "Principles and Practices of Interconnection Networks",
2004, ch. 14).

On a degraded torus (:func:`ocsnet.faults.degrade`) a flow whose DOR path
crosses a failed link first tries the other dimension orders (the rotations
of ``0, 1, ..., n-1``; the path stays minimal), and a flow blocked in every
order takes a shortest path on the surviving fabric (one breadth-first
search per destination, for those flows only).  A flow with no path at all
is reported in ``Routes.unreachable`` (or raises, as :func:`route` does).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..errors import FlowError
from ..fabric import Fabric
from .routing import UNREACHABLE, Routes, check_ranks, route

__all__ = ["route_dor", "is_torus"]


def is_torus(fabric: Fabric) -> bool:
    """Whether the fabric is a torus or mesh built by :func:`ocsnet.topology.torus` (possibly degraded)."""
    m = fabric.meta
    return (m.get("generator") == "torus" and "dims" in m
            and fabric.n_gpus == math.prod(m["dims"]) == fabric.n_nodes)


def _port_table(fabric: Fabric, dims, wrap: bool) -> np.ndarray:
    """Edge id of every (node, dimension, direction), -1 where the link is missing or failed."""
    n = fabric.n_nodes
    r = np.arange(n, dtype=np.int64)
    table = np.full((n, 2 * len(dims)), -1, dtype=np.int64)
    stride = 1
    for i, k in enumerate(dims):
        c = (r // stride) % k
        for sgn, col in ((1, 2 * i), (-1, 2 * i + 1)):
            nc = c + sgn
            ok = (nc >= 0) & (nc < k) if not wrap else np.ones(n, dtype=bool)
            nb = r + ((nc % k) - c) * stride
            e = np.full(n, -1, dtype=np.int64)
            e[ok] = fabric.edge_ids(r[ok], nb[ok])
            table[:, col] = e
        stride *= k
    return table


def _dor_hops(s, d, dims, wrap, order, table):
    """Edge ids and flow index of every hop of every flow, dimensions in ``order``."""
    strides = np.concatenate([[1], np.cumprod(dims[:-1])]).astype(np.int64)
    cur = s.copy()
    es, fs = [], []
    fidx = np.arange(len(s), dtype=np.int64)
    for i in order:
        k, st = int(dims[i]), int(strides[i])
        cs, cd = (cur // st) % k, (d // st) % k
        delta = cd - cs
        if wrap:
            delta = delta % k
            delta = np.where(delta > k // 2, delta - k, delta)   # ties (k even, k/2) go positive
        cnt = np.abs(delta)
        tot = int(cnt.sum())
        if tot:
            f = np.repeat(fidx, cnt)
            j = np.arange(tot, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            sg = np.sign(delta)[f]
            coord = cs[f] + sg * j
            node = cur[f] + ((coord % k) - cs[f]) * st
            col = 2 * i + (sg < 0)
            es.append(table[node, col])
            fs.append(f)
        cur = cur + (cd - cs) * st
    if not es:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(es), np.concatenate(fs)


def route_dor(fabric: Fabric, src, dst, *, unreachable: str = "raise", detour: str = "shortest") -> Routes:
    """Route flows by dimension order on a torus or mesh (see the module docstring).

    Parameters
    ----------
    fabric : Fabric
        A fabric of :func:`ocsnet.topology.torus`, possibly degraded.
    src, dst : array of int
        Source and destination GPU rank of every flow.
    unreachable : {"raise", "report"}
        As in :func:`ocsnet.flow.route`.
    detour : {"shortest", "ecmp"}
        How flows blocked in every dimension order are routed on the
        surviving fabric.

    Returns
    -------
    Routes
        ``method == "dor"``.

    Raises
    ------
    FlowError
        The fabric is not a torus, a rank is out of range, or (with
        ``unreachable="raise"``) a flow has no path.

    Examples
    --------
    >>> from ocsnet.topology import torus
    >>> r = route_dor(torus([4, 4], link_Bps=1e9), [0], [10])
    >>> r.hops.tolist()
    [4]
    """
    if not is_torus(fabric):
        raise FlowError(f"fabric: {fabric.name!r} is not a torus or mesh of ocsnet.topology.torus; "
                        "use route(..., method='shortest' or 'ecmp')")
    if unreachable not in UNREACHABLE:
        raise FlowError(f"unreachable: {unreachable!r} is not one of {', '.join(UNREACHABLE)}")
    s, d = check_ranks(fabric, src, dst)
    dims = np.asarray(fabric.meta["dims"], dtype=np.int64)
    wrap = bool(fabric.meta.get("wrap", True))
    m, n_flows = fabric.n_edges, len(s)
    table = _port_table(fabric, dims, wrap)
    # GPU rank == node index on a torus (checked by is_torus: GPUs are all the nodes)
    s_n, d_n = fabric.gpus[s], fabric.gpus[d]
    e, f = _dor_hops(s_n, d_n, dims, wrap, range(len(dims)), table)
    blocked = np.zeros(n_flows, dtype=bool)
    bad = e < 0
    if bad.any():
        blocked[f[bad]] = True
        keep = ~blocked[f]
        e, f = e[keep], f[keep]
        nd = len(dims)
        for r in range(1, nd if nd > 1 else 1):
            todo = np.flatnonzero(blocked)
            if not len(todo):
                break
            order = [(i + r) % nd for i in range(nd)]
            e2, f2 = _dor_hops(s_n[todo], d_n[todo], dims, wrap, order, table)
            stuck = np.zeros(len(todo), dtype=bool)
            stuck[f2[e2 < 0]] = True
            ok = ~stuck[f2]
            e = np.concatenate([e, e2[ok]])
            f = np.concatenate([f, todo[f2[ok]]])
            blocked[todo[~stuck]] = False
    x = np.ones(len(e))
    lost = np.zeros(0, dtype=np.int64)
    todo = np.flatnonzero(blocked)
    if len(todo):
        other = route(fabric, s[todo], d[todo], method=detour, gpu_forwarding=True, unreachable=unreachable)
        oc = other.incidence.tocoo()
        e = np.concatenate([e, oc.row.astype(np.int64)])
        f = np.concatenate([f, todo[oc.col]])
        x = np.concatenate([x, oc.data])
        lost = todo[other.unreachable]
    inc = sp.csc_matrix((x, (e, f)), shape=(m, n_flows))
    hops = np.rint(np.asarray(inc.sum(axis=0)).ravel()).astype(np.int64)
    return Routes(inc, s, d, hops, inc.T @ fabric.latency_s, "dor", lost)
