"""Fabric: a network of GPUs, switches and links, with networkx and array views.

Stage 3 of the pipeline.  A :class:`Fabric` is array-first: generators hand it
edge arrays (source, destination, capacity, latency, technology), which is
what lets a 524,288-GPU fat-tree be built in seconds.  The networkx directed
graph that DESIGN.md names is built on first access of :attr:`Fabric.graph`
and carries every attribute, so every networkx algorithm works unchanged;
:meth:`Fabric.from_networkx` wraps any graph with the right attributes.

Conventions (DESIGN.md): every node has ``kind`` (one of :data:`KINDS`); every
directed edge is one direction of a link with ``capacity_Bps`` (> 0),
``latency_s`` (>= 0) and ``tech`` (one of :data:`TECHS`).  GPUs are listed in
rank order in :attr:`Fabric.gpus` (node indices).  Nodes are the integers
``0..n_nodes-1``; a human-readable label per node is available from
:meth:`Fabric.label`.

Edges are stored sorted by (source, destination), so position ``e`` in the
CSR adjacency :attr:`Fabric.csr` is edge ``e`` of :attr:`src`, :attr:`dst`,
:attr:`capacity_Bps`, :attr:`latency_s`.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping, Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp

from .errors import FabricError

__all__ = ["Fabric", "KINDS", "TECHS", "SWITCH_KINDS"]

KINDS = ("gpu", "packet_switch", "nvswitch", "ocs", "nic", "memory")
TECHS = ("copper", "pluggable", "cpo", "circuit")
#: Node kinds that forward packets; a fabric with none of them lets GPUs forward.
SWITCH_KINDS = ("packet_switch", "nvswitch")


def _not_in(values: np.ndarray, allowed: tuple) -> Any:
    """The first value not in ``allowed``, or None.

    One elementwise comparison per allowed value: much faster than sorting a
    million Python strings with ``np.unique``.
    """
    ok = np.zeros(len(values), dtype=bool)
    for a in allowed:
        ok |= values == a
    if ok.all():
        return None
    return values[np.flatnonzero(~ok)[0]]


class Fabric:
    """A GPU fabric.

    Parameters
    ----------
    kind : sequence of str, length n_nodes
        The kind of every node, one of :data:`KINDS`.
    src, dst : array of int, length n_edges
        Endpoints of every directed edge (one direction of a link).
    capacity_Bps : array of float
        Capacity of every directed edge in bytes/s, > 0.
    latency_s : array of float
        Fixed latency of every directed edge (link plus the switch it enters), >= 0.
    tech : sequence of str or str
        Link technology of every edge (or one for all), one of :data:`TECHS`.
    gpus : array of int, optional
        Node indices of the GPUs in rank order; default: nodes of kind ``gpu`` in index order.
    name : str
        A short name for tables and plots.
    meta : dict, optional
        Generator name, parameters and facts later stages need (e.g. ``meta["ocs"]``
        holds ``ports_per_gpu``, ``circuit_Bps``, ``reconfig_delay_s`` for OCS fabrics).
    node_attrs, edge_attrs : dict of arrays, optional
        Extra per-node or per-edge attributes (e.g. ``pod``, ``plane``), copied to the graph.
    labels : sequence, optional
        Original node ids (kept when wrapping a networkx graph).
    aggregate : bool
        If true, parallel edges with the same (src, dst) are merged: capacities
        add, latency is the maximum.  Otherwise a duplicate is an error.

    Raises
    ------
    FabricError
        A field is missing, has the wrong length, or is out of range; the
        message names it.
    """

    def __init__(self, kind: Sequence[str], src, dst, capacity_Bps, latency_s, tech,
                 *, gpus=None, name: str = "fabric", meta: Mapping[str, Any] | None = None,
                 node_attrs: Mapping[str, Any] | None = None, edge_attrs: Mapping[str, Any] | None = None,
                 labels: Sequence | None = None, aggregate: bool = False):
        kind = np.asarray(kind, dtype=object if len(kind) == 0 else None)
        n = len(kind)
        bad = _not_in(kind, KINDS)
        if bad is not None:
            raise FabricError(f"kind: {bad!r} is not one of {', '.join(KINDS)}")
        src = np.asarray(src, dtype=np.int64).ravel()
        dst = np.asarray(dst, dtype=np.int64).ravel()
        m = len(src)
        cap = np.broadcast_to(np.asarray(capacity_Bps, dtype=float), (m,)).copy()
        lat = np.broadcast_to(np.asarray(latency_s, dtype=float), (m,)).copy()
        if isinstance(tech, str):
            tech = np.full(m, tech, dtype=object)
        tech = np.asarray(tech, dtype=object)
        for fld, arr in (("dst", dst), ("capacity_Bps", cap), ("latency_s", lat), ("tech", tech)):
            if len(arr) != m:
                raise FabricError(f"{fld}: length {len(arr)} does not match src length {m}")
        if m:
            if src.min() < 0 or src.max() >= n or dst.min() < 0 or dst.max() >= n:
                raise FabricError(f"src/dst: node index out of range, allowed [0, {n - 1}]")
            selfloop = np.flatnonzero(src == dst)
            if len(selfloop):
                raise FabricError(f"edge {int(selfloop[0])}: self-loop at node {int(src[selfloop[0]])}")
            badcap = np.flatnonzero(~(np.isfinite(cap) & (cap > 0)))
            if len(badcap):
                e = int(badcap[0])
                raise FabricError(f"capacity_Bps of edge ({int(src[e])}, {int(dst[e])}): {cap[e]!r} is out of range, allowed (0, inf)")
            badlat = np.flatnonzero(~(np.isfinite(lat) & (lat >= 0)))
            if len(badlat):
                e = int(badlat[0])
                raise FabricError(f"latency_s of edge ({int(src[e])}, {int(dst[e])}): {lat[e]!r} is out of range, allowed [0, inf)")
            bad = _not_in(tech, TECHS)
            if bad is not None:
                raise FabricError(f"tech: {bad!r} is not one of {', '.join(TECHS)}")
        edge_attrs = {k: np.asarray(v) for k, v in (edge_attrs or {}).items()}
        for k, v in edge_attrs.items():
            if len(v) != m:
                raise FabricError(f"edge attribute {k!r}: length {len(v)} does not match {m} edges")
        # Sort edges by (src, dst) so CSR positions are edge ids.
        order = np.lexsort((dst, src))
        src, dst, cap, lat, tech = src[order], dst[order], cap[order], lat[order], tech[order]
        edge_attrs = {k: v[order] for k, v in edge_attrs.items()}
        if m > 1:
            dup = (src[1:] == src[:-1]) & (dst[1:] == dst[:-1])
            if dup.any():
                if not aggregate:
                    e = int(np.flatnonzero(dup)[0])
                    raise FabricError(f"edge ({int(src[e])}, {int(dst[e])}) appears twice; pass aggregate=True to merge parallel links")
                first = np.concatenate([[True], ~dup])
                group = np.cumsum(first) - 1
                cap = np.bincount(group, weights=cap)
                lat = np.maximum.reduceat(lat, np.flatnonzero(first))
                src, dst, tech = src[first], dst[first], tech[first]
                edge_attrs = {k: v[first] for k, v in edge_attrs.items()}
        self.kind = kind
        self.src = src
        self.dst = dst
        self.capacity_Bps = cap
        self.latency_s = lat
        self.tech = tech
        self.edge_attrs = edge_attrs
        self.node_attrs = {k: np.asarray(v) for k, v in (node_attrs or {}).items()}
        for k, v in self.node_attrs.items():
            if len(v) != n:
                raise FabricError(f"node attribute {k!r}: length {len(v)} does not match {n} nodes")
        if gpus is None:
            gpus = np.flatnonzero(kind == "gpu") if n else np.zeros(0, dtype=np.int64)
        gpus = np.asarray(gpus, dtype=np.int64).ravel()
        if len(gpus):
            if gpus.min() < 0 or gpus.max() >= n:
                raise FabricError(f"gpus: node index out of range, allowed [0, {n - 1}]")
            notgpu = gpus[kind[gpus] != "gpu"]
            if len(notgpu):
                raise FabricError(f"gpus: node {int(notgpu[0])} has kind {kind[notgpu[0]]!r}, not 'gpu'")
            if len(np.unique(gpus)) != len(gpus):
                raise FabricError("gpus: a GPU is listed twice in the rank order")
        if len(gpus) != int((kind == "gpu").sum()):
            raise FabricError(f"gpus: lists {len(gpus)} GPUs but the fabric has {int((kind == 'gpu').sum())}")
        self.gpus = gpus
        self.name = name
        self.meta = dict(meta or {})
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and len(self.labels) != n:
            raise FabricError(f"labels: length {len(self.labels)} does not match {n} nodes")

    # ---- sizes -------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.kind)

    @property
    def n_edges(self) -> int:
        """Number of directed edges (two per bidirectional link)."""
        return len(self.src)

    @property
    def n_gpus(self) -> int:
        return len(self.gpus)

    def __repr__(self) -> str:
        return f"Fabric({self.name!r}, {self.n_gpus} GPUs, {self.n_nodes} nodes, {self.n_edges} directed edges)"

    # ---- array views ---------------------------------------------------------
    @functools.cached_property
    def csr(self) -> sp.csr_matrix:
        """n_nodes x n_nodes adjacency in CSR form; ``csr.data[e] == e + 1`` (edge id plus one)."""
        n = self.n_nodes
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.src, minlength=n), out=indptr[1:])
        data = np.arange(1, self.n_edges + 1, dtype=np.int64)
        return sp.csr_matrix((data, self.dst.copy(), indptr), shape=(n, n))

    @functools.cached_property
    def gpu_rank(self) -> np.ndarray:
        """For every node its GPU rank, or -1 if it is not a GPU."""
        r = np.full(self.n_nodes, -1, dtype=np.int64)
        r[self.gpus] = np.arange(self.n_gpus)
        return r

    def edge_ids(self, u, v) -> np.ndarray:
        """Edge ids of the directed edges (u[i], v[i]); -1 where there is no such edge."""
        u = np.atleast_1d(np.asarray(u, dtype=np.int64))
        v = np.atleast_1d(np.asarray(v, dtype=np.int64))
        key = self.src * self.n_nodes + self.dst          # sorted, since edges are sorted
        q = u * self.n_nodes + v
        pos = np.searchsorted(key, q)
        pos_c = np.minimum(pos, max(len(key) - 1, 0))
        ok = (pos < len(key)) & (key[pos_c] == q) if len(key) else np.zeros(len(q), bool)
        return np.where(ok, pos_c, -1)

    def gpus_forward(self, gpu_forwarding: bool | None = None) -> bool:
        """Whether GPUs forward transit traffic: ``gpu_forwarding`` if given, else
        ``meta["gpu_forwarding"]`` if the generator set it (e.g. an ASTRA-sim
        multi-dimensional network, whose NPUs pass traffic between dimensions),
        else true exactly when the fabric has no node of a kind in
        :data:`SWITCH_KINDS` (a torus or a circuit fabric)."""
        if gpu_forwarding is not None:
            return bool(gpu_forwarding)
        if self.meta.get("gpu_forwarding") is not None:
            return bool(self.meta["gpu_forwarding"])
        return not bool(np.isin(self.kind, SWITCH_KINDS).any()) if self.n_nodes else True

    def nodes_of_kind(self, kind: str) -> np.ndarray:
        """Indices of the nodes of one kind."""
        return np.flatnonzero(self.kind == kind)

    def label(self, i: int) -> str:
        """A readable name for node i (its original id if wrapped, else kind and index)."""
        if self.labels is not None:
            return str(self.labels[i])
        k = self.kind[i]
        if k == "gpu":
            return f"gpu{int(self.gpu_rank[i])}"
        return f"{k}{i}"

    # ---- networkx view -------------------------------------------------------
    @functools.cached_property
    def graph(self) -> nx.DiGraph:
        """The fabric as a networkx DiGraph (built on first access and cached).

        Nodes are ``0..n_nodes-1`` with attributes ``kind``, ``rank`` (GPUs) and
        any extra node attributes; edges carry ``capacity_Bps``, ``latency_s``,
        ``tech`` and any extra edge attributes.  ``graph.graph`` holds the name,
        the GPU rank order and ``meta``.
        """
        g = nx.DiGraph(name=self.name, gpus=self.gpus.tolist(), meta=self.meta)
        rank = self.gpu_rank
        extra = {k: v.tolist() for k, v in self.node_attrs.items()}
        g.add_nodes_from(
            (i, {"kind": str(self.kind[i]), **({"rank": int(rank[i])} if rank[i] >= 0 else {}),
                 **{k: extra[k][i] for k in extra},
                 **({"label": self.labels[i]} if self.labels is not None else {})})
            for i in range(self.n_nodes))
        eextra = {k: v.tolist() for k, v in self.edge_attrs.items()}
        cap, lat = self.capacity_Bps.tolist(), self.latency_s.tolist()
        g.add_edges_from(
            (u, v, {"capacity_Bps": cap[e], "latency_s": lat[e], "tech": str(self.tech[e]),
                    **{k: eextra[k][e] for k in eextra}})
            for e, (u, v) in enumerate(zip(self.src.tolist(), self.dst.tolist())))
        return g

    @classmethod
    def from_networkx(cls, graph: nx.Graph, gpus: Iterable | None = None, name: str | None = None,
                      meta: Mapping[str, Any] | None = None) -> "Fabric":
        """Wrap any networkx graph whose nodes have ``kind`` and edges ``capacity_Bps``, ``latency_s``, ``tech``.

        An undirected graph becomes both directions of every edge.  GPUs are
        ordered by ``gpus`` if given, else by their ``rank`` attribute, else
        in node order.  Extra numeric or string attributes are kept.

        Raises
        ------
        FabricError
            Naming the first node or edge that lacks a required attribute.
        """
        if not isinstance(graph, nx.Graph):
            raise FabricError(f"graph: expected a networkx graph, got {type(graph).__name__}")
        if graph.is_multigraph():
            raise FabricError("graph: multigraphs are not supported; merge parallel links into one edge with their total capacity_Bps")
        nodes = list(graph.nodes)
        index = {u: i for i, u in enumerate(nodes)}
        kind = []
        for u in nodes:
            k = graph.nodes[u].get("kind")
            if k is None:
                raise FabricError(f"node {u!r}: missing attribute 'kind' (one of {', '.join(KINDS)})")
            kind.append(k)
        edges = list(graph.edges(data=True))
        if not graph.is_directed():
            edges = edges + [(v, u, d) for u, v, d in edges]
        for u, v, d in edges:
            for a in ("capacity_Bps", "latency_s", "tech"):
                if a not in d:
                    raise FabricError(f"edge ({u!r}, {v!r}): missing attribute {a!r}")
        src = [index[u] for u, _, _ in edges]
        dst = [index[v] for _, v, _ in edges]
        node_keys = sorted({k for u in nodes for k in graph.nodes[u]} - {"kind", "rank", "label"})
        node_attrs = {}
        for k in node_keys:
            vals = [graph.nodes[u].get(k) for u in nodes]
            if all(isinstance(x, (int, float, str, bool)) for x in vals):
                node_attrs[k] = np.asarray(vals)
        edge_keys = sorted({k for _, _, d in edges for k in d} - {"capacity_Bps", "latency_s", "tech"})
        edge_attrs = {}
        for k in edge_keys:
            vals = [d.get(k) for _, _, d in edges]
            if all(isinstance(x, (int, float, str, bool)) for x in vals):
                edge_attrs[k] = np.asarray(vals)
        if gpus is None:
            gnodes = [u for u in nodes if graph.nodes[u]["kind"] == "gpu"]
            if gnodes and all("rank" in graph.nodes[u] for u in gnodes):
                gnodes.sort(key=lambda u: graph.nodes[u]["rank"])
            gpus = gnodes
        try:
            gidx = [index[u] for u in gpus]
        except KeyError as e:
            raise FabricError(f"gpus: {e.args[0]!r} is not a node of the graph") from None
        labels = nodes if not all(isinstance(u, int) and u == i for i, u in enumerate(nodes)) else None
        gmeta = dict(graph.graph.get("meta", {}) or {})
        gmeta.update(meta or {})
        return cls(kind, src, dst, [d["capacity_Bps"] for _, _, d in edges],
                   [d["latency_s"] for _, _, d in edges], [d["tech"] for _, _, d in edges],
                   gpus=gidx, name=name or graph.graph.get("name") or "fabric", meta=gmeta,
                   node_attrs=node_attrs, edge_attrs=edge_attrs, labels=labels)
