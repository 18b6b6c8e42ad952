"""The fabric as it stands after failures: :func:`degrade` and its report, :class:`Degraded`.

Stage 3 of the pipeline.  :func:`degrade` removes every failed part (a failed
node keeps its index, so GPU ranks do not move, but loses all its links) and
reports what is cut off from what, instead of leaving it to fail later in
routing:

* ``group`` of every GPU: the connectivity group it belongs to (``-1`` if
  it failed).  Group 0 is the largest; GPUs outside it are *cut off*.  Two
  GPUs are in one group when traffic can pass both ways between them over
  forwarding nodes (switches, NICs; GPUs only where they forward, see
  :meth:`ocsnet.fabric.Fabric.gpus_forward`; an OCS unit counts as
  forwarding, since a circuit can join any two of its ports).
* ``ports_left``: outgoing links left per GPU (on an OCS fabric, its optical
  ports), which :func:`ocsnet.faults.ocs_ports` hands to the OCS scheduler.
* the capacity lost, and with :meth:`Degraded.summary` ``bisection=True``
  the bisection before and after.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..errors import FaultError
from ..fabric import Fabric
from .faultset import FaultSet, parse_faults

__all__ = ["Degraded", "degrade", "ocs_ports"]

# Generator facts in ``meta`` that a failure invalidates (metrics recompute them).
_CLOSED_FORMS = ("bisection_Bps", "diameter_hops", "avg_hops")


@dataclass
class Degraded:
    """A fabric after failures and what the failures cost.

    Attributes
    ----------
    fabric : Fabric
        The surviving fabric (same nodes and GPU ranks; failed parts carry no traffic).
    original : Fabric
    faults : FaultSet
        The faults, resolved to node indices.
    node_failed : ndarray of bool (n_nodes)
    edge_failed : ndarray of bool (original edges)
    group : ndarray of int (N)
        Connectivity group of every GPU rank, 0 = the largest, -1 = failed.
    ports_left, ports_total : ndarray of int (N)
        Outgoing links per GPU after and before the failures.
    """

    fabric: Fabric
    original: Fabric
    faults: FaultSet
    node_failed: np.ndarray
    edge_failed: np.ndarray
    group: np.ndarray
    ports_left: np.ndarray
    ports_total: np.ndarray

    @property
    def gpu_failed(self) -> np.ndarray:
        """Failed GPU ranks as a mask (N)."""
        return self.group < 0

    @property
    def cut_off(self) -> np.ndarray:
        """Ranks of GPUs that work but cannot reach the largest group."""
        return np.flatnonzero(self.group > 0)

    @property
    def n_groups(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) and self.group.max() >= 0 else 0

    @property
    def lost_capacity_Bps(self) -> float:
        """Capacity of the removed directed edges, bytes/s (both directions counted)."""
        return float(self.original.capacity_Bps[self.edge_failed].sum())

    def reachable(self, src, dst) -> np.ndarray:
        """Whether GPU rank ``src[i]`` can reach ``dst[i]`` (same group, neither failed)."""
        s = np.asarray(src, dtype=np.int64)
        d = np.asarray(dst, dtype=np.int64)
        return (self.group[s] >= 0) & (self.group[s] == self.group[d])

    def summary(self, *, bisection: bool = False) -> dict:
        """What was lost, JSON-able (``bisection``: also the bisection before and after, which
        may take seconds on a large fabric)."""
        total = float(self.original.capacity_Bps.sum())
        out = {
            "faults": str(self.faults),
            "n_gpus": int(self.original.n_gpus),
            "gpus_failed": int(self.gpu_failed.sum()),
            "gpus_cut_off": int(len(self.cut_off)),
            "cut_off_ranks": self.cut_off[:32].tolist(),
            "groups": self.n_groups,
            "nodes_failed": int(self.node_failed.sum()),
            "links_failed": int(self.edge_failed.sum()),
            "capacity_lost_Bps": self.lost_capacity_Bps,
            "capacity_lost_share": self.lost_capacity_Bps / total if total else 0.0,
            "ports_lost": int((self.ports_total - self.ports_left).sum()),
        }
        if bisection:
            from ..topology.metrics_bisection import bisection_Bps
            out["bisection_before_Bps"] = float(bisection_Bps(self.original))
            out["bisection_after_Bps"] = float(bisection_Bps(self.fabric)) if self.fabric.n_edges else 0.0
        return out


def _node_mask(fabric: Fabric, f: FaultSet) -> np.ndarray:
    dead = np.zeros(fabric.n_nodes, dtype=bool)
    dead[fabric.gpus[list(f.gpus)]] = True
    dead[list(f.switches)] = True
    if f.planes:
        pl = fabric.node_attrs["plane"]
        dead |= (fabric.kind == "ocs") & np.isin(pl, list(f.planes))
    if f.hosts:
        dead |= np.isin(fabric.node_attrs["node"], list(f.hosts)) & (fabric.kind != "packet_switch")
    return dead


def _edge_mask(fabric: Fabric, f: FaultSet, dead: np.ndarray) -> np.ndarray:
    gone = dead[fabric.src] | dead[fabric.dst]
    if f.planes and "plane" in fabric.edge_attrs:
        gone |= np.isin(fabric.edge_attrs["plane"], list(f.planes))
    if f.links:
        u = np.array([x[0] for x in f.links], dtype=np.int64)
        v = np.array([x[1] for x in f.links], dtype=np.int64)
        both = np.array([x[2] for x in f.links], dtype=bool)
        gone[fabric.edge_ids(u, v)] = True
        gone[fabric.edge_ids(v[both], u[both])] = True
    if f.ports:
        g = np.array([p[0] for p in f.ports], dtype=np.int64)
        k = np.array([p[1] for p in f.ports], dtype=np.int64)
        e = fabric.csr.indptr[fabric.gpus[g]] + k           # the GPU's k-th outgoing edge
        gone[e] = True
        back = fabric.edge_ids(fabric.dst[e], fabric.src[e])
        gone[back[back >= 0]] = True
    return gone


def _groups(fabric: Fabric, keep: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Connectivity group per GPU rank (0 = largest, -1 = failed); see the module docstring."""
    n, N = fabric.n_nodes, fabric.n_gpus
    is_gpu = fabric.kind == "gpu"
    fwd = ~is_gpu | fabric.gpus_forward()
    s, d = fabric.src[keep], fabric.dst[keep]
    both_fwd = fwd[s] & fwd[d]
    A = sp.csr_matrix((np.ones(int(both_fwd.sum())), (s[both_fwd], d[both_fwd])), shape=(n, n))
    _, comp = connected_components(A, directed=True, connection="strong")
    group = np.full(N, -1, dtype=np.int64)
    alive = ~dead[fabric.gpus]
    if fabric.gpus_forward():
        gcomp = comp[fabric.gpus]
        gcomp = np.where(alive, gcomp, -1)
    else:
        # a non-forwarding GPU joins the component its links reach that holds most GPUs
        up = keep & is_gpu[fabric.src] & fwd[fabric.dst]
        gr, c = fabric.gpu_rank[fabric.src[up]], comp[fabric.dst[up]]
        pairs = np.unique(gr * n + c)
        gr, c = pairs // n, pairs % n
        size = np.bincount(c, minlength=n)
        order = np.lexsort((c, -size[c], gr))                 # per GPU: biggest component first
        gr, c = gr[order], c[order]
        first = np.r_[True, gr[1:] != gr[:-1]] if len(gr) else np.zeros(0, bool)
        gcomp = np.full(N, -1, dtype=np.int64)
        gcomp[gr[first]] = c[first]
        # an alive GPU with no link left is a group of its own
        lone = alive & (gcomp < 0)
        gcomp[lone] = n + np.flatnonzero(lone)
        gcomp = np.where(alive, gcomp, -1)
    ok = gcomp >= 0
    if ok.any():
        labels, inv, cnt = np.unique(gcomp[ok], return_inverse=True, return_counts=True)
        # relabel: largest group first, ties by smallest member rank
        first_rank = np.full(len(labels), N, dtype=np.int64)
        np.minimum.at(first_rank, inv, np.flatnonzero(ok))
        rank_of = np.empty(len(labels), dtype=np.int64)
        rank_of[np.lexsort((first_rank, -cnt))] = np.arange(len(labels))
        group[ok] = rank_of[inv]
    return group


def degrade(fabric: Fabric, faults: FaultSet | str) -> Degraded:
    """The fabric as it stands after ``faults``, and a report of what was lost.

    Parameters
    ----------
    fabric : Fabric
    faults : FaultSet or str
        The failures (a string is parsed by :func:`ocsnet.faults.parse_faults`).

    Returns
    -------
    Degraded
        ``.fabric`` keeps every node and GPU rank; failed nodes have no link
        left.  A fabric left disconnected is reported (``group``, ``cut_off``),
        never an error.

    Raises
    ------
    FaultError
        A fault names a component the fabric does not have.

    Examples
    --------
    A ring of 6 GPUs with two links cut falls into two groups:

    >>> from ocsnet.topology import torus
    >>> d = degrade(torus(6, link_Bps=1e9), "link:0-1,link:3-4")
    >>> d.group.tolist(), d.lost_capacity_Bps
    ([0, 1, 1, 1, 0, 0], 4000000000.0)
    """
    if isinstance(faults, str):
        faults = parse_faults(faults)
    if not isinstance(faults, FaultSet):
        raise FaultError(f"faults: expected a FaultSet or a string, got {type(faults).__name__}")
    f = faults if faults._resolved else faults.resolve(fabric)
    dead = _node_mask(fabric, f)
    gone = _edge_mask(fabric, f, dead)
    keep = ~gone
    meta = dict(fabric.meta)
    meta["faults"] = str(f)
    if not f.empty:
        for k in _CLOSED_FORMS:        # the generator's closed forms hold for the intact fabric only
            meta.pop(k, None)
    new = Fabric(fabric.kind, fabric.src[keep], fabric.dst[keep], fabric.capacity_Bps[keep],
                 fabric.latency_s[keep], fabric.tech[keep], gpus=fabric.gpus, name=fabric.name, meta=meta,
                 node_attrs=fabric.node_attrs, edge_attrs={k: v[keep] for k, v in fabric.edge_attrs.items()},
                 labels=fabric.labels)
    for attr in ("ocs",):                     # a typed OCS description, when the fabric has one
        if hasattr(fabric, attr) and not hasattr(new, attr):
            setattr(new, attr, getattr(fabric, attr))
    out_deg = np.bincount(fabric.src, minlength=fabric.n_nodes)[fabric.gpus]
    out_left = np.bincount(fabric.src[keep], minlength=fabric.n_nodes)[fabric.gpus]
    return Degraded(new, fabric, f, dead, gone, _groups(fabric, keep, dead), out_left, out_deg)


def ocs_ports(fabric: Fabric, faults: FaultSet | str | Degraded | None = None) -> np.ndarray:
    """Optical ports left per GPU rank of an OCS fabric after ``faults`` (failed GPUs: 0).

    A failed plane takes its port from every GPU wired to it; a lost port
    takes one.  This is the per-GPU ``ports`` of
    :class:`ocsnet.schedule.OCSProblem`.
    """
    d = faults if isinstance(faults, Degraded) else degrade(fabric, faults or FaultSet())
    ocs = d.original.kind == "ocs"
    if not ocs.any():
        raise FaultError(f"fabric: {fabric.name!r} has no OCS; optical ports are counted on OCS fabrics")
    keep = ~d.edge_failed
    o = d.original
    up = keep & (o.kind[o.src] == "gpu") & ocs[o.dst]
    left = np.bincount(o.gpu_rank[o.src[up]], minlength=o.n_gpus)
    left[d.gpu_failed] = 0
    return left.astype(np.int64)
