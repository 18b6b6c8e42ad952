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


def _deltas(s, d, dims, strides, wrap) -> np.ndarray:
    """Signed hops of every flow in every dimension, shape (ndim, n_flows); the same in every
    dimension order (a flow's coordinate in a dimension changes only when that dimension is routed)."""
    out = np.empty((len(dims), len(s)), dtype=np.int64)
    for i, (k, st) in enumerate(zip(dims.tolist(), strides.tolist())):
        delta = (d // st) % k - (s // st) % k
        if wrap:
            delta = delta % k
            delta = np.where(delta > k // 2, delta - k, delta)   # ties (k even, k/2) go positive
        out[i] = delta
    return out


def _fill(out, pos0, s, d, delta, dims, strides, order, table) -> None:
    """Write the edge ids of every hop of every flow into ``out``, flow ``f``'s hops at
    ``pos0[f], pos0[f] + 1, ...`` in path order, dimensions in ``order`` (no sort needed).

    One pass per (dimension, direction), so the direction is a scalar and the
    port table column a contiguous array; 32-bit indices where they fit.
    """
    n = len(s)
    idt = np.int32 if max(n, int(table.shape[0]), len(out)) < 2**31 - 1 else np.int64
    cur = s.astype(idt)
    off = pos0.astype(np.int64)
    for i in order:
        k, st = int(dims[i]), int(strides[i])
        cs = (cur // st) % k
        base = cur - cs * st
        for sgn, col in ((1, 2 * i), (-1, 2 * i + 1)):
            idx = np.flatnonzero(delta[i] * sgn > 0).astype(idt)
            if not len(idx):
                continue
            c = np.abs(delta[i][idx]).astype(idt)
            f = np.repeat(idx, c)
            j = np.arange(len(f), dtype=idt)
            j -= np.repeat((np.cumsum(c) - c).astype(idt), c)
            coord = cs[f] + j if sgn > 0 else cs[f] - j
            coord %= k
            coord *= st
            coord += base[f]
            out[off[f] + j] = np.ascontiguousarray(table[:, col])[coord]
        off += np.abs(delta[i])
        cur = (base + ((cs + delta[i]) % k) * st).astype(idt)


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
    strides = np.concatenate([[1], np.cumprod(dims[:-1])]).astype(np.int64)
    wrap = bool(fabric.meta.get("wrap", True))
    m, n_flows = fabric.n_edges, len(s)
    table = _port_table(fabric, dims, wrap)
    # GPU rank == node index on a torus (checked by is_torus: GPUs are all the nodes)
    s_n, d_n = fabric.gpus[s], fabric.gpus[d]
    delta = _deltas(s_n, d_n, dims, strides, wrap)
    hops = np.abs(delta).sum(axis=0)                    # minimal in every dimension order
    indptr = np.concatenate([[0], np.cumsum(hops)])
    edges = np.empty(int(indptr[-1]), dtype=np.int64)
    _fill(edges, indptr[:-1], s_n, d_n, delta, dims, strides, range(len(dims)), table)

    def stuck(pos_flows=None):
        bad = np.flatnonzero(edges < 0)
        mask = np.zeros(n_flows, dtype=bool)
        mask[np.searchsorted(indptr, bad, side="right") - 1] = True
        return mask

    blocked = stuck()
    nd = len(dims)
    for r in range(1, nd):
        todo = np.flatnonzero(blocked)
        if not len(todo):
            break
        order = [(i + r) % nd for i in range(nd)]
        _fill(edges, indptr[todo], s_n[todo], d_n[todo], delta[:, todo], dims, strides, order, table)
        blocked = stuck()
    lat = fabric.latency_s
    latency = (np.add.reduceat(lat[edges if not blocked.any() else np.maximum(edges, 0)], indptr[:-1])
               if len(edges) else np.zeros(n_flows))
    lost = np.zeros(0, dtype=np.int64)
    todo = np.flatnonzero(blocked)
    if len(todo):
        # the blocked flows' columns come from the detour: rebuild the CSC arrays by scattering
        # the kept hops and the detour's entries to their new places (no sparse addition)
        other = route(fabric, s[todo], d[todo], method=detour, gpu_forwarding=True, unreachable=unreachable)
        oc = other.incidence.tocsc()
        oc.sort_indices()
        # splice: the kept hops between blocked flows are copied once, as views cut at the blocked
        # flows' segments (a short loop over the blocked flows only, which are few)
        cuts = np.stack([indptr[todo], indptr[todo + 1]], axis=1).ravel()
        e_parts = np.split(edges, cuts)
        o_idx = np.split(oc.indices.astype(np.int64), oc.indptr[1:-1])
        o_val = np.split(oc.data, oc.indptr[1:-1])
        idx_parts, val_parts = [e_parts[0]], [np.ones(len(e_parts[0]))]
        for t in range(len(todo)):
            idx_parts += [o_idx[t], e_parts[2 * t + 2]]
            val_parts += [o_val[t], np.ones(len(e_parts[2 * t + 2]))]
        new_len = hops.copy()
        new_len[todo] = np.diff(oc.indptr)
        new_ptr = np.concatenate([[0], np.cumsum(new_len)])
        inc = sp.csc_matrix((np.concatenate(val_parts), np.concatenate(idx_parts), new_ptr), shape=(m, n_flows))
        hops = hops.copy()
        hops[todo] = other.hops
        latency[todo] = other.latency_s
        lost = todo[other.unreachable]
    else:
        inc = sp.csc_matrix((np.ones(len(edges)), edges, indptr), shape=(m, n_flows))
    return Routes(inc, s, d, hops.astype(np.int64), latency, "dor", lost)
