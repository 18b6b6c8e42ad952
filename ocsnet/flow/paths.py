"""Routes from explicit paths given by the caller (one or more per flow, with weights).

Stage 5 of the pipeline (flow model), next to :mod:`ocsnet.flow.routing`:
for routing the flow model does not compute itself, e.g. dimension-order
routes on a torus, a schedule's multi-hop circuit routes, or a Valiant
detour.  Validated and vectorized: the paths are flattened into one array
of hops and looked up in the fabric's CSR adjacency at once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import FlowError
from ..fabric import Fabric
from .routing import Routes, edge_lookup, routable_edges

__all__ = ["route_paths"]


def route_paths(fabric: Fabric, paths, *, flow=None, weight=None) -> Routes:
    """Routes from explicit paths given by the caller.

    Parameters
    ----------
    fabric : Fabric
    paths : sequence of sequences of int
        Every path as fabric node indices, from the source GPU's node to the
        destination GPU's node.
    flow : array of int, optional
        The flow each path belongs to (several paths may share a flow);
        default: path ``i`` is flow ``i``.  Flows are numbered ``0..max``
        and every number must have a path.
    weight : array of float, optional
        Fraction of its flow carried by each path; default an even split
        over the flow's paths.  The fractions of a flow must sum to 1.

    Returns
    -------
    Routes
        With ``hops`` the longest path of each flow.

    Raises
    ------
    FlowError
        A path has fewer than two nodes, does not start and end at GPUs,
        uses a missing edge or crosses an OCS node, the paths of a flow
        disagree on its endpoints, or a flow's weights do not sum to 1.
    """
    plist = [np.asarray(p, dtype=np.int64).ravel() for p in paths]
    n_paths = len(plist)
    lens = np.array([len(p) for p in plist], dtype=np.int64)
    short = np.flatnonzero(lens < 2)
    if len(short):
        raise FlowError(f"path {int(short[0])}: needs at least two nodes (source and destination GPU)")
    pf = np.arange(n_paths) if flow is None else np.asarray(flow, dtype=np.int64)
    if pf.shape != (n_paths,):
        raise FlowError(f"flow: expected {n_paths} entries (one per path), got shape {pf.shape}")
    n_flows = int(pf.max()) + 1 if n_paths else 0
    if n_paths and pf.min() < 0:
        raise FlowError(f"flow: path {int(np.argmin(pf))} has a negative flow index")
    missing = np.setdiff1d(np.arange(n_flows), pf)
    if len(missing):
        raise FlowError(f"flow {int(missing[0])}: has no path")
    npf = np.bincount(pf, minlength=n_flows)
    w = 1.0 / npf[pf] if weight is None else np.asarray(weight, dtype=float)
    if w.shape != (n_paths,):
        raise FlowError(f"weight: expected {n_paths} entries (one per path), got shape {w.shape}")
    badw = np.flatnonzero(~((w >= 0) & np.isfinite(w)))
    if len(badw):
        raise FlowError(f"weight[{int(badw[0])}] (path {int(badw[0])}): {float(w[badw[0]])!r} is out of range, allowed [0, 1]")
    tot = np.bincount(pf, weights=w, minlength=n_flows)
    badt = np.flatnonzero(np.abs(tot - 1.0) > 1e-9)
    if len(badt):
        raise FlowError(f"flow {int(badt[0])}: path weights sum to {tot[badt[0]]:.6g}, must sum to 1")
    nodes = np.concatenate(plist) if n_paths else np.zeros(0, np.int64)
    if len(nodes) and (nodes.min() < 0 or nodes.max() >= fabric.n_nodes):
        p = int(np.flatnonzero([(q.min() < 0) or (q.max() >= fabric.n_nodes) for q in plist])[0])
        raise FlowError(f"path {p}: node index out of range, allowed [0, {fabric.n_nodes - 1}]")
    first = np.cumsum(lens) - lens
    last = first + lens - 1
    rank = fabric.gpu_rank
    for name, pos in (("start", first), ("end", last)):
        notgpu = np.flatnonzero(rank[nodes[pos]] < 0)
        if len(notgpu):
            p = int(notgpu[0])
            raise FlowError(f"path {p}: must {name} at a GPU, node {int(nodes[pos[p]])} is a "
                            f"{fabric.kind[nodes[pos[p]]]}")
    ps, pd = rank[nodes[first]], rank[nodes[last]]
    s = np.full(n_flows, -1, dtype=np.int64)
    dd = np.full(n_flows, -1, dtype=np.int64)
    s[pf[::-1]], dd[pf[::-1]] = ps[::-1], pd[::-1]     # a flow's endpoints are those of its first path
    clash = np.flatnonzero((s[pf] != ps) | (dd[pf] != pd))
    if len(clash):
        p = int(clash[0])
        raise FlowError(f"path {p}: flow {int(pf[p])} has paths with different endpoints")
    same = np.flatnonzero(s == dd)
    if len(same):
        raise FlowError(f"flow {int(same[0])}: source and destination are the same GPU rank {int(s[same[0]])}")
    # hops u -> v of every path
    inner = np.ones(len(nodes), dtype=bool)
    inner[last] = False
    hu = nodes[inner]
    hv = nodes[np.flatnonzero(inner) + 1]
    hp = np.repeat(np.arange(n_paths), lens - 1)
    e = edge_lookup(fabric, hu, hv)
    bad = np.flatnonzero(e < 0)
    if len(bad):
        k = int(bad[0])
        raise FlowError(f"path {int(hp[k])}: no edge from node {int(hu[k])} to node {int(hv[k])}")
    ocs = np.flatnonzero(~routable_edges(fabric)[e])
    if len(ocs):
        k = int(ocs[0])
        raise FlowError(f"path {int(hp[k])}: crosses an OCS node between nodes {int(hu[k])} and {int(hv[k])}; "
                        "apply circuits to get a fabric whose circuits are links")
    inc = sp.csc_matrix((w[hp], (e, pf[hp])), shape=(fabric.n_edges, n_flows))
    inc.sum_duplicates()
    hops = np.zeros(n_flows, dtype=np.int64)
    np.maximum.at(hops, pf, lens - 1)
    return Routes(inc, s, dd, hops, inc.T @ fabric.latency_s, "paths")
