"""Fabric metrics: counts, GPU-to-GPU hops, bisection, power and relative cost.

Stage 3 of the pipeline.  Every function takes any :class:`~ocsnet.fabric.Fabric`
(packet, OCS, direct or wrapped from networkx).  Traffic never transits a node
of kind ``ocs`` (an optical circuit switch carries nothing until circuits are
set up), so hop counts and bisection ignore the edges touching such nodes.

Catalog lookups use the node attribute ``model`` (falling back to
``meta["gpu"]``, ``meta["switch"]``, ``meta["nvswitch"]`` when they are names)
and the edge attribute ``link`` (falling back to the first catalog link of the
edge's ``tech``); specs recorded in ``meta["hardware"]`` take precedence over
the catalog.  A node attribute ``units`` multiplies a node's power and cost
(e.g. an NVSwitch domain of several chips).

Link ends: every directed edge is the transmitting end of one link direction,
so a bidirectional link has two ends.  An end needs
``ceil(capacity_Bps / link bandwidth)`` ports (lanes) of its link technology;
``n_transceivers`` and ``n_cpo_ports`` count these on ``pluggable`` and ``cpo``
edges, and per-end costs are charged per port.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from .. import hardware, units
from ..errors import SpecError
from ..fabric import TECHS, Fabric
from .metrics_bisection import bisection, bisection_Bps, transit_mask

__all__ = ["counts", "hops", "bisection", "bisection_Bps", "power", "cost", "summary"]

# Exact BFS runs when sources x (nodes + edges) stays below this (about a second).
EXACT_HOPS_WORK = 1e8
SAMPLE_SOURCES = 64

_SPEC_TYPES = {"gpu": ("gpu", hardware.GPUSpec, hardware.gpu),
               "packet_switch": ("switch", hardware.SwitchSpec, hardware.switch),
               "nvswitch": ("switch", hardware.SwitchSpec, hardware.switch),
               "ocs": ("ocs", hardware.OCSSpec, hardware.ocs)}
_META_MODEL = {"gpu": "gpu", "packet_switch": "switch", "nvswitch": "nvswitch", "ocs": "ocs_model"}


# ---- catalog lookups ------------------------------------------------------------

def _spec(fabric: Fabric, typ: str, cls, getter, name):
    custom = (fabric.meta.get("hardware") or {}).get(name)
    if isinstance(custom, dict) and custom.get("type") == typ:
        fields = {k: v for k, v in custom.items() if k != "type"}
        return cls(**fields)
    try:
        return getter(name)
    except SpecError:
        return None


def _node_groups(fabric: Fabric):
    """Yield (kind, spec or None, count, units) for every (kind, model) group of nodes."""
    model = fabric.node_attrs.get("model")
    mult = fabric.node_attrs.get("units")
    for kind in np.unique(fabric.kind).tolist() if fabric.n_nodes else []:
        mask = fabric.kind == kind
        if model is not None:
            names = model[mask]
        else:
            fallback = fabric.meta.get(_META_MODEL.get(kind, ""), None)
            names = np.full(int(mask.sum()), fallback if isinstance(fallback, str) else None, dtype=object)
        u = mult[mask] if mult is not None else np.ones(int(mask.sum()))
        for name in sorted(set(names.tolist()), key=str):
            sel = names == name
            spec = None
            if kind in _SPEC_TYPES and isinstance(name, str):
                spec = _spec(fabric, *_SPEC_TYPES[kind], name)
            yield kind, spec, int(sel.sum()), float(np.sum(u[sel]))


def _default_link(tech: str):
    for spec in hardware.links().values():
        if spec.tech == tech:
            return spec
    return None


def _edge_groups(fabric: Fabric):
    """Yield (edge mask, LinkSpec or None) covering every directed edge once."""
    names = fabric.edge_attrs.get("link")
    if names is None:
        for tech in sorted(set(fabric.tech.tolist())):
            yield fabric.tech == tech, _default_link(tech)
        return
    for name in sorted(set(names.tolist()), key=str):
        mask = names == name
        spec = _spec(fabric, "link", hardware.LinkSpec, hardware.link, name) if isinstance(name, str) else None
        if spec is None:  # unknown name: price by the edge's technology
            for tech in sorted(set(fabric.tech[mask].tolist())):
                yield mask & (fabric.tech == tech), _default_link(tech)
        else:
            yield mask, spec


def _lanes(fabric: Fabric, mask, spec) -> np.ndarray:
    cap = fabric.capacity_Bps[mask]
    if spec is None or spec.bandwidth_Bps <= 0:
        return np.ones(len(cap))
    return np.ceil(cap / spec.bandwidth_Bps * (1 - 1e-12))


# ---- counts ---------------------------------------------------------------------------

def counts(fabric: Fabric) -> dict:
    """Count GPUs, switches, OCS, links (by technology), transceivers and CPO ports.

    A link is a pair of nodes joined in either or both directions (two directed
    edges make one bidirectional link).

    Returns
    -------
    dict
        ``n_gpus``, ``n_packet_switches`` (kinds ``packet_switch`` and ``nvswitch``),
        ``n_nvswitches``, ``n_ocs``, ``n_nodes``, ``n_links``, ``n_links_<tech>``
        for every tech, ``n_transceivers`` (pluggable link ends, in ports) and
        ``n_cpo_ports`` (cpo link ends, in ports).

    Examples
    --------
    >>> from ocsnet.topology.packet import fat_tree
    >>> c = counts(fat_tree(4))
    >>> c["n_links"], c["n_transceivers"]
    (48, 96)
    """
    f = fabric
    out = {"n_gpus": f.n_gpus,
           "n_packet_switches": int(np.isin(f.kind, ["packet_switch", "nvswitch"]).sum()),
           "n_nvswitches": int((f.kind == "nvswitch").sum()),
           "n_ocs": int((f.kind == "ocs").sum()),
           "n_nodes": f.n_nodes}
    rev = f.edge_ids(f.dst, f.src) if f.n_edges else np.zeros(0, dtype=np.int64)
    rep = (f.src < f.dst) | (rev < 0)           # one directed edge stands for each link
    out["n_links"] = int(rep.sum())
    for tech in TECHS:
        out[f"n_links_{tech}"] = int((rep & (f.tech == tech)).sum())
    trx = cpo = 0.0
    for mask, spec in _edge_groups(f):
        lanes = _lanes(f, mask, spec)
        tech = f.tech[mask]
        trx += float(lanes[tech == "pluggable"].sum())
        cpo += float(lanes[tech == "cpo"].sum())
    out["n_transceivers"] = int(trx)
    out["n_cpo_ports"] = int(cpo)
    return out


# ---- hops -------------------------------------------------------------------------------

def _bfs_graph(fabric: Fabric) -> sp.csr_matrix:
    keep = transit_mask(fabric)
    n = fabric.n_nodes
    return sp.csr_matrix((np.ones(int(keep.sum())), (fabric.src[keep], fabric.dst[keep])), shape=(n, n))


def _bfs_sources(A: sp.csr_matrix, g: np.ndarray):
    """BFS source of each GPU node in ``g``: its only out-neighbour if it has one, else itself."""
    leaf = np.diff(A.indptr)[g] == 1
    first = A.indices[np.minimum(A.indptr[g], max(A.nnz - 1, 0))] if A.nnz else g
    return np.where(leaf, first, g), leaf


def _gpu_stats(fabric: Fabric, ranks: np.ndarray):
    """Exact hop statistics of the GPUs ``ranks`` to all other GPUs.

    A GPU whose only outgoing edge goes to node ``s`` is ``1 + dist(s, x)`` from
    every other node ``x``, so BFS runs from ``s`` once for all GPUs hanging off
    it (a fat-tree needs one BFS per edge switch, not per GPU).  Returns
    (sum of distances, reachable pairs, max distance, all reachable).
    """
    A = _bfs_graph(fabric)
    gpus = fabric.gpus
    N = len(gpus)
    srcnode, leaf = _bfs_sources(A, gpus[ranks])
    offset = leaf.astype(float)
    sources, which = np.unique(srcnode, return_inverse=True)
    total = cnt = 0.0
    dmax = 0.0
    chunk = max(1, int(2e6 // max(fabric.n_nodes, 1)))      # rows of BFS distances held at once (16 MB)
    for lo in range(0, len(sources), chunk):
        D = csgraph.shortest_path(A, unweighted=True, indices=sources[lo:lo + chunk])[:, gpus]
        fin = np.isfinite(D)
        Dz = np.where(fin, D, 0.0)
        rsum, rcnt = Dz.sum(1), fin.sum(1)
        m1 = np.where(fin, D, -np.inf).max(1)
        c1 = (D == m1[:, None]).sum(1)
        m2 = np.where(fin & (D < m1[:, None]), D, -np.inf).max(1)
        sel = np.flatnonzero((which >= lo) & (which < lo + chunk))
        row = which[sel] - lo
        own = D[row, ranks[sel]]                 # source's distance to the GPU itself
        own_fin = np.isfinite(own)
        o = offset[sel]
        c = rcnt[row] - own_fin
        total += float(np.sum(rsum[row] - np.where(own_fin, own, 0.0) + o * c))
        cnt += float(np.sum(c))
        mx = np.where((own == m1[row]) & (c1[row] == 1), m2[row], m1[row]) + o
        if len(mx):
            dmax = max(dmax, float(np.max(np.where(c > 0, mx, 0.0))))
    connected = cnt == len(ranks) * (N - 1)
    return total, cnt, dmax, connected


def hops(fabric: Fabric, method: str = "auto", *, n_sources: int = SAMPLE_SOURCES) -> dict:
    """GPU-to-GPU diameter and average hop count (links on a shortest path).

    Parameters
    ----------
    fabric : Fabric
    method : {"auto", "exact", "closed-form", "sampled"}
        ``exact``: BFS (scipy.sparse.csgraph) from every GPU, never through an
        OCS node.  ``closed-form``: ``meta["diameter_hops"]`` and
        ``meta["avg_hops"]`` from the generator.  ``sampled``: BFS from
        ``n_sources`` GPUs at evenly spaced ranks (the diameter is then a lower
        bound, the average an estimate).  ``auto``: exact when its work (sources
        times nodes plus edges) is at most :data:`EXACT_HOPS_WORK`, else the
        closed form where ``meta`` has it, else sampled.
    n_sources : int
        GPUs to sample, >= 1.

    Returns
    -------
    dict
        ``diameter_hops``, ``avg_hops`` (``inf`` if some GPU cannot reach
        another), ``diameter_method``, ``avg_hops_method``, ``connected``.

    Raises
    ------
    SpecError
        Unknown ``method``; ``closed-form`` on a fabric without the closed forms.

    Examples
    --------
    >>> from ocsnet.topology.packet import fat_tree
    >>> h = hops(fat_tree(4), "exact")
    >>> h["diameter_hops"], round(h["avg_hops"], 4)
    (6, 5.4667)
    """
    methods = ("auto", "exact", "closed-form", "sampled")
    if method not in methods:
        raise SpecError(f"method: {method!r} is not one of {', '.join(methods)}")
    if isinstance(n_sources, bool) or not isinstance(n_sources, (int, np.integer)) or n_sources < 1:
        raise SpecError(f"n_sources: {n_sources!r} is out of range, allowed integers in [1, inf)")
    N = fabric.n_gpus
    if N < 2:
        return {"diameter_hops": 0, "avg_hops": 0.0, "diameter_method": "trivial",
                "avg_hops_method": "trivial", "connected": True}
    meta = fabric.meta
    if method == "auto":
        A = _bfs_graph(fabric)
        srcs, _ = _bfs_sources(A, fabric.gpus)
        work = len(np.unique(srcs)) * (fabric.n_nodes + A.nnz)
        if work <= EXACT_HOPS_WORK:
            method = "exact"
        elif "diameter_hops" in meta and "avg_hops" in meta:
            method = "closed-form"
        else:
            method = "sampled"
    if method == "closed-form":
        if "diameter_hops" not in meta or "avg_hops" not in meta:
            raise SpecError(f"method: 'closed-form' needs meta['diameter_hops'] and meta['avg_hops'], which "
                            f"{fabric.name!r} lacks; use 'exact' or 'sampled'")
        return {"diameter_hops": meta["diameter_hops"], "avg_hops": float(meta["avg_hops"]),
                "diameter_method": "closed-form", "avg_hops_method": "closed-form", "connected": True}
    if method == "exact":
        ranks = np.arange(N)
        label_d, label_a = "exact-bfs", "exact-bfs"
    else:
        ranks = np.unique(np.linspace(0, N - 1, min(n_sources, N)).round().astype(np.int64))
        label_d = f"sampled-bfs ({len(ranks)} of {N} GPUs, lower bound)"
        label_a = f"sampled-bfs ({len(ranks)} of {N} GPUs, estimate)"
    total, cnt, dmax, connected = _gpu_stats(fabric, ranks)
    diameter = int(round(dmax)) if connected else math.inf
    avg = total / cnt if connected and cnt else math.inf
    return {"diameter_hops": diameter, "avg_hops": avg, "diameter_method": label_d,
            "avg_hops_method": label_a, "connected": bool(connected)}


# ---- power and cost ----------------------------------------------------------------------

def power(fabric: Fabric) -> dict:
    """Power at full load, watts.

    GPUs at TDP, packet switches, NVSwitches and OCS at catalog power (times
    ``units``), and every directed edge at ``energy_J_per_bit * 8 * capacity_Bps``.

    Returns
    -------
    dict
        ``gpus_W``, ``switches_W``, ``ocs_W``, ``links_W``, ``total_W`` and
        ``unpriced_nodes`` (nodes with no catalog entry, counted as zero).

    Examples
    --------
    >>> from ocsnet.topology.packet import fat_tree
    >>> p = power(fat_tree(4))       # 16 x 175 W + 20 x 500 W + 96 x 800 Gb/s x 18 pJ/b
    >>> round(p["total_W"], 1)
    14182.4
    """
    out = {"gpus_W": 0.0, "switches_W": 0.0, "ocs_W": 0.0, "links_W": 0.0}
    unpriced = 0
    for kind, spec, n, mult in _node_groups(fabric):
        if spec is None:
            unpriced += n
        elif kind == "gpu":
            out["gpus_W"] += mult * spec.tdp_W
        elif kind == "ocs":
            out["ocs_W"] += mult * spec.power_W
        else:
            out["switches_W"] += mult * spec.power_W
    for mask, spec in _edge_groups(fabric):
        if spec is not None:
            out["links_W"] += float(fabric.capacity_Bps[mask].sum()) * units.BITS_PER_BYTE * spec.energy_J_per_bit
    out["total_W"] = out["gpus_W"] + out["switches_W"] + out["ocs_W"] + out["links_W"]
    out["unpriced_nodes"] = unpriced
    return out


def cost(fabric: Fabric) -> dict:
    """Relative cost (one H100 = 1): GPUs, switches, OCS and link-end ports from the catalog.

    Returns
    -------
    dict
        ``gpus``, ``switches``, ``ocs``, ``links``, ``total``, ``unpriced_nodes``.
    """
    out = {"gpus": 0.0, "switches": 0.0, "ocs": 0.0, "links": 0.0}
    unpriced = 0
    for kind, spec, n, mult in _node_groups(fabric):
        if spec is None:
            unpriced += n
            continue
        key = {"gpu": "gpus", "ocs": "ocs"}.get(kind, "switches")
        out[key] += mult * spec.relative_cost
    for mask, spec in _edge_groups(fabric):
        if spec is not None:
            out["links"] += float(_lanes(fabric, mask, spec).sum()) * spec.relative_cost
    out["total"] = out["gpus"] + out["switches"] + out["ocs"] + out["links"]
    out["unpriced_nodes"] = unpriced
    return out


# ---- summary ---------------------------------------------------------------------------

def summary(fabric: Fabric) -> dict:
    """One flat dict of a fabric's figures, unit-suffixed keys, ready for a table or JSON.

    Keys: ``name``, ``generator``, ``gpu``, the :func:`counts`, ``diameter_hops``,
    ``avg_hops`` (``None`` if some GPUs cannot reach each other), ``bisection_TBps``,
    ``bisection_per_gpu_GBps`` (bisection over the GPUs of one half: the rate
    each can send across, the GPU link rate for a full-bisection network),
    ``power_kW``, ``relative_cost``, and ``diameter_method``,
    ``avg_hops_method``, ``bisection_method`` saying how each derived number
    was obtained.  Deterministic for the same fabric.

    Examples
    --------
    >>> from ocsnet.topology.packet import fat_tree
    >>> s = summary(fat_tree(4))
    >>> s["n_packet_switches"], s["diameter_hops"], s["bisection_TBps"], s["bisection_method"]
    (20, 6, 0.8, 'closed-form')
    """
    c = counts(fabric)
    h = hops(fabric)
    b = bisection(fabric)
    p = power(fabric)
    k = cost(fabric)
    gpu_model = fabric.meta.get("gpu")
    if not isinstance(gpu_model, str) and "model" in fabric.node_attrs and fabric.n_gpus:
        gpu_model = str(fabric.node_attrs["model"][fabric.gpus[0]])
    half = fabric.n_gpus // 2
    out = {"name": fabric.name, "generator": fabric.meta.get("generator", "custom"),
           "gpu": gpu_model if isinstance(gpu_model, str) else None}
    out.update(c)
    out["diameter_hops"] = h["diameter_hops"] if h["connected"] else None
    out["avg_hops"] = round(h["avg_hops"], 6) if h["connected"] else None
    out["bisection_TBps"] = units.from_si("bisection_TBps", b["bisection_Bps"])
    out["bisection_per_gpu_GBps"] = units.from_si("bisection_per_gpu_GBps", b["bisection_Bps"] / half) if half else 0.0
    out["power_kW"] = units.from_si("power_kW", p["total_W"])
    out["relative_cost"] = k["total"]
    out["unpriced_nodes"] = max(p["unpriced_nodes"], k["unpriced_nodes"])
    out["diameter_method"] = h["diameter_method"]
    out["avg_hops_method"] = h["avg_hops_method"]
    out["bisection_method"] = b["method"]
    return out
