"""Routing flows over a fabric: shortest path, ECMP, or paths the caller gives.

Stage 5 of the pipeline (flow model).  The result, :class:`Routes`, is a
sparse link-by-flow incidence matrix (entry = fraction of the flow on that
directed edge) plus hop counts and path latencies per flow; it is what
:func:`ocsnet.flow.max_min_fair` and the completion-time models consume.

Routing is destination-based, as in switch forwarding tables: one
breadth-first search (hop count) per *destination group* on the reversed
fabric, never one graph search per flow.  Destination GPUs with the same set
of upstream neighbours form one group, rooted at a virtual sink wired to
those neighbours, so on a switched fabric the number of searches is the
number of distinct edge switches behind the destinations (2,048 on a
65,536-GPU fat-tree), not the number of GPUs.  A group's search serves
every flow towards it; paths are then extracted for all flows of a batch of
groups at once, one vectorized step per hop.

* ``"shortest"``: one path per flow, the breadth-first tree of
  ``scipy.sparse.csgraph.breadth_first_order`` towards the destination
  (deterministic: a node's next hop is the neighbour the search reached
  first).
* ``"ecmp"``: per-hop equal split, what switches do: at every node the flow
  splits evenly over all next hops that lie on a shortest path to its
  destination (not evenly over paths).
* :func:`ocsnet.flow.route_paths` (module :mod:`ocsnet.flow.paths`): explicit
  paths given by the caller, one or more per flow, with weights.

Which nodes forward.  Nodes of kind ``ocs`` are never crossed (edges that
touch them are dropped: traffic crosses an OCS only as circuits applied by
``ocsnet.topology.apply_circuits``), so a hybrid fabric's packet part still
routes.  GPUs forward only when ``gpu_forwarding`` is true; by default (see
:func:`gpus_forward`) they do exactly when the fabric has no packet switch
or NVSwitch (a torus or a circuit fabric), and never in a switched fabric,
unless the fabric's ``meta["gpu_forwarding"]`` says otherwise.  NICs always
forward.

Latency of a flow is the fraction-weighted sum of its edges' ``latency_s``:
the path latency on a single path, the traffic-weighted mean over paths
under ECMP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from ..errors import FlowError
from ..fabric import SWITCH_KINDS, Fabric

__all__ = ["Routes", "route", "gpus_forward", "check_ranks", "SWITCH_KINDS", "METHODS", "UNREACHABLE"]

#: Routing methods of :func:`route`.
METHODS = ("shortest", "ecmp")
#: What :func:`route` does with a flow that has no path: raise, or report it in ``Routes.unreachable``.
UNREACHABLE = ("raise", "report")
# Memory for the per-batch search results (distances or next hops), entries.
_BATCH_ENTRIES = 1 << 24


@dataclass
class Routes:
    """Flows routed on a fabric.

    Attributes
    ----------
    incidence : scipy.sparse.csc_matrix, shape (n_edges, n_flows)
        Fraction of every flow carried by every directed edge (edge ids of
        the fabric).
    src, dst : ndarray of int
        Source and destination GPU rank of every flow.
    hops : ndarray of int
        Number of edges on the flow's path (the longest of its paths).
    latency_s : ndarray of float
        Fraction-weighted sum of edge latencies (path latency; the mean over
        paths under ECMP).
    method : str
        ``"shortest"``, ``"ecmp"``, ``"dor"`` or ``"paths"``.
    unreachable : ndarray of int
        Flows with no path (routed with ``unreachable="report"``, e.g. on a
        fabric degraded by :func:`ocsnet.faults.degrade`); their columns of
        ``incidence`` are empty, their hops and latency zero.
    """

    incidence: sp.csc_matrix
    src: np.ndarray
    dst: np.ndarray
    hops: np.ndarray
    latency_s: np.ndarray
    method: str
    unreachable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_flows(self) -> int:
        return self.incidence.shape[1]

    @property
    def n_edges(self) -> int:
        return self.incidence.shape[0]

    def subset(self, flows) -> "Routes":
        """The routes of a subset of flows (indices or boolean mask), in that order."""
        idx = np.arange(self.n_flows)[flows]
        lost = np.zeros(self.n_flows, dtype=bool)
        lost[self.unreachable] = True
        return Routes(self.incidence[:, idx], self.src[idx], self.dst[idx], self.hops[idx],
                      self.latency_s[idx], self.method, np.flatnonzero(lost[idx]))

    @property
    def reachable(self) -> np.ndarray:
        """Mask of the flows that have a path."""
        ok = np.ones(self.n_flows, dtype=bool)
        ok[self.unreachable] = False
        return ok

    def link_load(self, rates) -> np.ndarray:
        """Load of every directed edge (bytes/s) for the given per-flow rates."""
        r = np.asarray(rates, dtype=float)
        if r.shape != (self.n_flows,):
            raise FlowError(f"rates: expected {self.n_flows} entries (one per flow), got shape {r.shape}")
        return self.incidence @ r


def gpus_forward(fabric: Fabric, gpu_forwarding: bool | None = None) -> bool:
    """Whether GPUs forward transit traffic (see :meth:`ocsnet.fabric.Fabric.gpus_forward`):
    ``gpu_forwarding`` if given, else ``fabric.meta["gpu_forwarding"]`` if set, else
    true exactly when the fabric has no node of a kind in :data:`SWITCH_KINDS`."""
    return fabric.gpus_forward(gpu_forwarding)


def check_ranks(fabric: Fabric, src, dst):
    """``src`` and ``dst`` as int64 arrays of GPU ranks, one entry per flow, checked (FlowError names the flow)."""
    s = np.atleast_1d(np.asarray(src))
    d = np.atleast_1d(np.asarray(dst))
    for name, a in (("src", s), ("dst", d)):
        if a.ndim != 1:
            raise FlowError(f"{name}: expected a 1-D array of GPU ranks, got shape {a.shape}")
        if len(a) and not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.isfinite(a.astype(float))) or np.any(a != np.round(a)):
                raise FlowError(f"{name}: GPU ranks must be integers")
    s = s.astype(np.int64)
    d = d.astype(np.int64)
    if len(s) != len(d):
        raise FlowError(f"src and dst: lengths {len(s)} and {len(d)} differ; one entry per flow")
    n = fabric.n_gpus
    for name, a in (("src", s), ("dst", d)):
        bad = np.flatnonzero((a < 0) | (a >= n))
        if len(bad):
            raise FlowError(f"flow {int(bad[0])}: {name} rank {int(a[bad[0]])} is out of range, allowed [0, {n - 1}]")
    same = np.flatnonzero(s == d)
    if len(same):
        raise FlowError(f"flow {int(same[0])}: source and destination are the same GPU rank {int(s[same[0]])}")
    return s, d


def _routable(fabric: Fabric) -> np.ndarray:
    """Edges that may carry traffic: those not touching an OCS node."""
    ocs = fabric.kind == "ocs"
    return ~(ocs[fabric.src] | ocs[fabric.dst])


def route(fabric: Fabric, src, dst, *, method: str = "shortest",
          gpu_forwarding: bool | None = None, unreachable: str = "raise") -> Routes:
    """Route flows between GPU ranks by hop count.

    Parameters
    ----------
    fabric : Fabric
        The network (with circuits applied, for an OCS fabric).
    src, dst : array of int
        Source and destination GPU rank of every flow (distinct per flow).
    method : {"shortest", "ecmp"}
        One shortest path per flow, or an equal split at every hop over all
        next hops on shortest paths.
    gpu_forwarding : bool, optional
        Whether GPUs may carry transit traffic; default: only on fabrics with
        no packet switch or NVSwitch (see :func:`gpus_forward`).
    unreachable : {"raise", "report"}
        A flow with no path raises (naming it), or is listed in
        ``Routes.unreachable`` with an empty column (for degraded fabrics).

    Returns
    -------
    Routes

    Raises
    ------
    FlowError
        A rank is out of range, a flow's source equals its destination, the
        method is unknown, or (with ``unreachable="raise"``) a flow has no
        path (the message names it).

    Examples
    --------
    A 4-GPU ring (GPUs forward, since there is no switch):

    >>> import numpy as np
    >>> from ocsnet.fabric import Fabric
    >>> s = np.r_[0:4, 0:4]; d = np.r_[[1, 2, 3, 0], [3, 0, 1, 2]]
    >>> ring = Fabric(["gpu"] * 4, s, d, 1e9, 1e-6, "cpo")
    >>> r = route(ring, [0], [2], method="ecmp")
    >>> r.hops.tolist(), sorted(r.incidence.data.tolist())
    ([2], [0.5, 0.5, 0.5, 0.5])
    """
    if method not in METHODS:
        raise FlowError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    if unreachable not in UNREACHABLE:
        raise FlowError(f"unreachable: {unreachable!r} is not one of {', '.join(UNREACHABLE)}")
    report = unreachable == "report"
    s, d = check_ranks(fabric, src, dst)
    n_flows = len(s)
    n = fabric.n_nodes
    m = fabric.n_edges
    if n_flows == 0:
        return Routes(sp.csc_matrix((m, 0)), s, d, np.zeros(0, np.int64), np.zeros(0), method)
    fwd = gpus_forward(fabric, gpu_forwarding)
    is_gpu = fabric.kind == "gpu"
    routable = _routable(fabric)
    # An edge may lead to a transit node unless that node is a non-forwarding GPU.
    transit = routable if fwd else routable & ~is_gpu[fabric.dst]
    eid = np.flatnonzero(transit)
    # Reversed graph: a search from a destination follows edges backwards.
    rev_rows, rev_cols = fabric.dst[eid], fabric.src[eid]

    # ---- destination groups: GPUs with the same routable in-neighbours ----
    tnode = fabric.gpus[d]
    dests = np.unique(tnode)
    into = np.flatnonzero(routable & is_gpu[fabric.dst])           # edges into GPUs
    into = into[np.isin(fabric.dst[into], dests)]
    order = np.lexsort((fabric.src[into], fabric.dst[into]))
    into = into[order]
    bounds = np.searchsorted(fabric.dst[into], dests, side="left")
    ends = np.searchsorted(fabric.dst[into], dests, side="right")
    srcs_into = fabric.src[into].tolist()
    key_to_group: dict[tuple, int] = {}
    group_of_dest = np.empty(len(dests), dtype=np.int64)
    group_members: list[tuple] = []
    for k in range(len(dests)):
        key = tuple(srcs_into[bounds[k]:ends[k]])
        if not key and report:
            group_of_dest[k] = -1
            continue
        if not key:
            f = int(np.flatnonzero(tnode == dests[k])[0])
            hint = ("; its links lead to an OCS, which traffic crosses only as circuits "
                    "(apply circuits first)") if (fabric.kind == "ocs").any() else ""
            raise FlowError(f"flow {f} (GPU rank {int(s[f])} -> {int(d[f])}): no path; "
                            f"the destination has no routable link into it{hint}")
        g = key_to_group.setdefault(key, len(key_to_group))
        if g == len(group_members):
            group_members.append(key)
        group_of_dest[k] = g
    n_groups = len(group_members)
    flow_group = group_of_dest[np.searchsorted(dests, tnode)]
    lost = [np.flatnonzero(flow_group < 0)]

    # Augmented reversed graph: node n + g is the virtual sink of group g.
    vg = np.repeat(np.arange(n_groups), [len(k) for k in group_members])
    vy = np.fromiter((y for k in group_members for y in k), dtype=np.int64, count=len(vg))
    na = n + n_groups
    rr = np.concatenate([rev_rows, n + vg])
    rc = np.concatenate([rev_cols, vy])
    R = sp.csr_matrix((np.ones(len(rr)), (rr, rc)), shape=(na, na))   # float64: csgraph copies nothing
    R.sum_duplicates()

    live = np.flatnonzero(flow_group >= 0)
    by_group = live[np.argsort(flow_group[live], kind="stable")]
    gstart = np.searchsorted(flow_group[by_group], np.arange(n_groups + 1))
    per_group = na if method == "shortest" else na + 2 * m     # ECMP also holds the DAG masks
    batch = int(np.clip(_BATCH_ENTRIES // per_group, 1, max(n_groups, 1)))
    parts_e, parts_f, parts_x = [], [], []
    for g0 in range(0, n_groups, max(batch, 1)):
        g1 = min(g0 + batch, n_groups)
        fl = by_group[gstart[g0]:gstart[g1]]                      # flows of this batch
        b = flow_group[fl] - g0
        table = np.empty((g1 - g0, n), dtype=np.int32)
        for g in range(g0, g1):
            bfs, pred = breadth_first_order(R, n + g, directed=True, return_predecessors=True)
            if method == "shortest":
                table[g - g0] = pred[:n]
            else:
                table[g - g0] = _bfs_levels(bfs, pred, na)[:n]
        extract = _extract_shortest if method == "shortest" else _extract_ecmp
        try:
            e, f, x = extract(fabric, table, b, fl, fabric.gpus[s[fl]], tnode[fl], transit, s, d,
                              lost if report else None)
        except FlowError as err:
            if fwd:
                raise
            raise FlowError(f"{err} (GPUs do not forward on this fabric; allow it with "
                            "gpu_forwarding=True, or --gpu-forwarding yes)") from None
        parts_e.append(e)
        parts_f.append(f)
        parts_x.append(x)
    e = np.concatenate(parts_e) if parts_e else np.zeros(0, np.int64)
    f = np.concatenate(parts_f) if parts_f else np.zeros(0, np.int64)
    x = np.concatenate(parts_x) if parts_x else np.zeros(0)
    inc = sp.csc_matrix((x, (e, f)), shape=(m, n_flows))
    inc.sum_duplicates()
    hops = np.bincount(f, minlength=n_flows) if method == "shortest" else _ecmp_hops(inc, fabric, d)
    return Routes(inc, s, d, hops.astype(np.int64), inc.T @ fabric.latency_s, method,
                  np.unique(np.concatenate(lost)).astype(np.int64))


def _edge_lookup(fabric: Fabric, u, v) -> np.ndarray:
    """Edge ids of the directed edges (u[i], v[i]), -1 where there is none.

    Reads the CSR adjacency (``data[e] == e + 1``) by a binary search inside
    each short row, several times faster than a search over all edges.
    """
    if len(u) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(fabric.csr[u, v]).ravel().astype(np.int64) - 1


def _bfs_levels(bfs: np.ndarray, pred: np.ndarray, size: int) -> np.ndarray:
    """Hop distance of every node from the root of a breadth-first search, -1 if unreached.

    ``bfs`` lists nodes in the order a FIFO search reached them, so the
    position of each node's predecessor never decreases along it: every
    level is one contiguous slice, found by one binary search per level.
    """
    dist = np.full(size, -1, dtype=np.int32)
    pos = np.empty(size, dtype=np.int64)
    pos[bfs] = np.arange(len(bfs))
    pp = pos[pred[bfs[1:]]]                 # predecessor position of bfs[1:], non-decreasing
    dist[bfs[0]] = 0
    lo, hi, level = 0, 1, 0
    while hi < len(bfs):
        level += 1
        nxt = 1 + int(np.searchsorted(pp, hi, side="left"))
        dist[bfs[hi:nxt]] = level
        lo, hi = hi, nxt
    return dist


def _unreachable(fl, s, d):
    f = int(fl)
    raise FlowError(f"flow {f} (GPU rank {int(s[f])} -> {int(d[f])}): no path between these GPUs")


def _extract_shortest(fabric, pred, b, fl, cur, tgt, transit, s, d, lost=None):
    """Walk every flow of a batch along its next-hop table, one hop per step
    (flows with no path raise, or go to ``lost`` if it is a list)."""
    n = fabric.n_nodes
    es, fs = [], []
    flows = fl.copy()
    nxt = pred[b, cur]
    bad = nxt < 0
    if bad.any():
        if lost is None:
            _unreachable(flows[np.flatnonzero(bad)[0]], s, d)
        lost.append(flows[bad])
        flows, b, cur, tgt = flows[~bad], b[~bad], cur[~bad], tgt[~bad]
    while len(flows):
        nxt = pred[b, cur]
        last = nxt >= n                       # the next hop is the group's virtual sink
        hop_to = np.where(last, tgt, nxt)
        es.append(_edge_lookup(fabric, cur, hop_to))
        fs.append(flows)
        go = ~last
        flows, b, cur, tgt = flows[go], b[go], nxt[go], tgt[go]
    e = np.concatenate(es) if es else np.zeros(0, np.int64)
    return e, (np.concatenate(fs) if fs else np.zeros(0, np.int64)), np.ones(len(e))


def _extract_ecmp(fabric, dist, b, fl, cur, tgt, transit, s, d, lost=None):
    """Push every flow's unit of traffic down its destination's shortest-path DAG,
    splitting evenly at every node over the next hops one step closer."""
    n = fabric.n_nodes
    # The DAG of every group of the batch: transit edges (u, w) one step closer.
    et = np.flatnonzero(transit)
    du_e = dist[:, fabric.src[et]]
    dw_e = dist[:, fabric.dst[et]]
    gb, ge = np.nonzero((du_e == dw_e + 1) & (dw_e >= 1))
    del du_e, dw_e
    ge = et[ge]
    key = gb.astype(np.int64) * n + fabric.src[ge]     # sorted: group, then edge (= source node)
    es, fs, xs = [], [], []
    bad = dist[b, cur] < 0
    if bad.any():
        if lost is None:
            _unreachable(fl[np.flatnonzero(bad)[0]], s, d)
        lost.append(fl[bad])
    k = np.flatnonzero(~bad)                   # frontier: (flow in batch, node, traffic)
    u = cur[k]
    x = np.ones(len(k))
    while len(k):
        last = dist[b[k], u] == 1              # one hop from the destination itself
        if last.any():
            es.append(_edge_lookup(fabric, u[last], tgt[k[last]]))
            fs.append(fl[k[last]])
            xs.append(x[last])
        go = ~last
        k, u, x = k[go], u[go], x[go]
        if not len(k):
            break
        rows = b[k] * n + u
        lo = np.searchsorted(key, rows, side="left")
        deg = np.searchsorted(key, rows, side="right") - lo
        rep = np.repeat(np.arange(len(k)), deg)
        pos = np.repeat(lo, deg) + (np.arange(len(rep)) - np.repeat(np.cumsum(deg) - deg, deg))
        e = ge[pos]
        share = x[rep] / deg[rep]
        es.append(e)
        fs.append(fl[k[rep]])
        xs.append(share)
        # merge the traffic arriving at the same node for the same flow
        kk = k[rep] * n + fabric.dst[e]
        uk, inv = np.unique(kk, return_inverse=True)
        x = np.bincount(inv, weights=share)
        k, u = uk // n, uk % n
    if not es:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(es), np.concatenate(fs), np.concatenate(xs)


def _ecmp_hops(inc: sp.csc_matrix, fabric: Fabric, d) -> np.ndarray:
    """Hop count of ECMP flows: every shortest path has the same length, so it is the
    number of edge layers, i.e. total traffic-hops of the unit flow."""
    return np.rint(np.asarray(inc.sum(axis=0)).ravel()).astype(np.int64)
