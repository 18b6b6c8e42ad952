"""Folded-Clos wiring shared by the packet generators: sizing, builder, closed forms.

Stage 3 of the pipeline.  :mod:`ocsnet.topology.packet` holds the public
generators (``fat_tree``, ``leaf_spine``, ``clos``, ``rail_optimized``,
``dgx_cluster``); they check their own parameters and call this module:

* catalog resolution (:func:`resolve_specs`,
  :func:`record_spec`);
* wiring arithmetic: uplinks per leaf (:func:`uplinks`), GPU ports per leaf
  (:func:`max_down`), leaves per pod (:func:`clos_dims`) and the rail layout
  of scalable units (:func:`build_rail`);
* :func:`build_clos`, which lays out the nodes and numpy edge arrays of a
  2- or 3-tier folded Clos from a GPU-to-leaf map, and
  :func:`clos_closed_forms`, its hop counts and bisection.

The node order, edge attributes, latency rule and ``meta`` keys are the
conventions listed in :mod:`ocsnet.topology.packet`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import hardware
from .. import checks
from ..errors import SpecError
from ..fabric import Fabric

__all__ = ["resolve_specs", "record_spec", "uplinks",
           "max_down", "clos_dims", "build_clos", "clos_closed_forms", "build_rail"]

_CATALOG = {"gpu": hardware.gpus, "switch": hardware.switches, "link": hardware.links}


# ---- parameter checks and wiring arithmetic -------------------------------------------

def resolve_specs(gpu, switch, link, meta_hw: dict):
    """Resolve catalog names (or pass specs through); record non-catalog specs in ``meta_hw``."""
    gs = hardware.gpu(gpu)
    ss = hardware.switch(switch)
    ls = hardware.link(link if link is not None else ss.port_link)
    for typ, spec in (("gpu", gs), ("switch", ss), ("link", ls)):
        record_spec(meta_hw, typ, spec)
    return gs, ss, ls


def record_spec(meta_hw: dict, typ: str, spec) -> None:
    """Record ``spec`` in ``meta_hw`` (for ``meta["hardware"]``) unless the catalog holds it unchanged."""
    if _CATALOG[typ]().get(spec.name) != spec:
        d = dataclasses.asdict(spec)
        d.pop("source", None)
        meta_hw[spec.name] = {"type": typ, **d}


def uplinks(d: int, host_Bps: float, port_Bps: float, oversub: float) -> int:
    """Uplinks a leaf with ``d`` GPU ports needs: ceil(d*h / (o*c)), at least 1."""
    need = d * host_Bps / (oversub * port_Bps)
    return max(1, math.ceil(need * (1 - 1e-12)))


def max_down(radix: int, host_Bps: float, port_Bps: float, oversub: float) -> int:
    """Largest number of GPU ports ``d`` with ``d + uplinks(d) <= radix``."""
    d = radix - 1
    while d >= 1 and d + uplinks(d, host_Bps, port_Bps, oversub) > radix:
        d -= 1
    if d < 1:
        raise SpecError(f"radix: {radix} ports cannot hold one GPU port plus its uplinks, allowed >= 2")
    return d


def clos_dims(n_leaves, radix, tiers, unit=1):
    """Leaves per pod and a size check for a folded Clos of ``tiers`` tiers."""
    if tiers == 2:
        if n_leaves > radix:
            return None
        return n_leaves
    half = radix // 2
    p = (half // unit) * unit if unit <= half else half
    p = min(p, n_leaves)
    return p if -(-n_leaves // p) <= radix else None


# ---- the shared folded-Clos builder -----------------------------------------------------

def build_clos(*, name, generator, params, gs, ss, ls, leaf_of, n_leaves, d, u, p, tiers, host_Bps,
               meta_hw, rail_of_leaf=None, node_of=None, gpus_per_node=None, nv=None):
    """Build a folded Clos from the GPU-to-leaf map ``leaf_of`` (conventions: :mod:`ocsnet.topology.packet`).

    ``nv`` = (nvswitch spec, its link spec, chips per domain) adds one NVSwitch domain
    per server node, linked to that node's GPUs at the GPU's scale-up bandwidth.
    """
    N, L = len(leaf_of), n_leaves
    pods = -(-L // p) if tiers == 3 else 1
    n2 = u if tiers == 2 else pods * u
    n3 = u * p if tiers == 3 else 0
    n_srv = int(node_of.max()) + 1 if nv is not None else 0
    off_leaf = N
    off_t2 = off_leaf + L
    off_t3 = off_t2 + n2
    off_nv = off_t3 + n3
    n = off_nv + n_srv
    c = ss.port_Bps

    kind = np.empty(n, dtype=object)
    kind[:N] = "gpu"
    kind[N:off_nv] = "packet_switch"
    kind[off_nv:] = "nvswitch"
    model = np.empty(n, dtype=object)
    model[:N] = gs.name
    model[N:off_nv] = ss.name
    tier = np.zeros(n, dtype=np.int8)
    tier[off_leaf:off_t2], tier[off_t2:off_t3], tier[off_t3:off_nv], tier[off_nv:] = 1, 2, 3, -1
    pod = np.full(n, -1, dtype=np.int64)
    enter_s = np.zeros(n)                       # latency of the switch an edge enters
    enter_s[N:off_nv] = ss.latency_s

    leaves = np.arange(L)
    groups = []                                 # (a, b, capacity_Bps, link spec)
    groups.append((np.arange(N), off_leaf + leaf_of, host_Bps, ls))
    if tiers == 2:
        groups.append((off_leaf + np.repeat(leaves, u), off_t2 + np.tile(np.arange(u), L), c, ls))
    else:
        pod_of_leaf = leaves // p
        pod[:N] = pod_of_leaf[leaf_of]
        pod[off_leaf:off_t2] = pod_of_leaf
        pod[off_t2:off_t3] = np.arange(n2) // u
        groups.append((off_leaf + np.repeat(leaves, u),
                       off_t2 + np.repeat(pod_of_leaf, u) * u + np.tile(np.arange(u), L), c, ls))
        aggs = np.arange(n2)
        groups.append((off_t2 + np.repeat(aggs, p),
                       off_t3 + np.repeat(aggs % u, p) * p + np.tile(np.arange(p), n2), c, ls))
    node_attrs = {"model": model, "tier": tier, "pod": pod}
    if rail_of_leaf is not None:
        rail = np.full(n, -1, dtype=np.int64)
        rail[:N] = rail_of_leaf[leaf_of]
        rail[off_leaf:off_t2] = rail_of_leaf
        srv = np.full(n, -1, dtype=np.int64)
        srv[:N] = node_of
        node_attrs.update(rail=rail, node=srv)
    if nv is not None:
        nvs, nvl, chips = nv
        model[off_nv:] = nvs.name
        enter_s[off_nv:] = nvs.latency_s
        node_attrs["node"][off_nv:] = np.arange(n_srv)
        units = np.ones(n, dtype=np.int64)
        units[off_nv:] = chips
        node_attrs["units"] = units
        groups.append((np.arange(N), off_nv + node_of, gs.scaleup_Bps, nvl))

    # Both directions of every link; per-edge link spec by group index.
    a = np.concatenate([g[0] for g in groups])
    b = np.concatenate([g[1] for g in groups])
    sizes = [len(g[0]) for g in groups]
    gidx = np.repeat(np.arange(len(groups)), sizes)
    cap = np.repeat([float(g[2]) for g in groups], sizes)
    link_lat = np.repeat([g[3].latency_s for g in groups], sizes)
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])
    gidx, cap, link_lat = np.tile(gidx, 2), np.tile(cap, 2), np.tile(link_lat, 2)
    tech = np.array([g[3].tech for g in groups], dtype=object)[gidx]
    link_name = np.array([g[3].name for g in groups], dtype=object)[gidx]
    lat = link_lat + enter_s[dst]

    meta = {"generator": generator, "params": params, "gpu": gs.name, "switch": ss.name,
            "link": ls.name, "host_Bps": float(host_Bps), "port_Bps": float(c), "tiers": tiers,
            "gpus_per_leaf": d, "uplinks_per_leaf": u, "n_leaves": L}
    if tiers == 3:
        meta.update(leaves_per_pod=p, n_pods=pods)
    if rail_of_leaf is not None:
        meta["gpus_per_node"] = gpus_per_node
    if nv is not None:
        meta.update(nvswitch=nv[0].name, nvlink=nv[1].name, nvswitch_chips=int(nv[2]))
    meta.update(clos_closed_forms(leaf_of, L, p, tiers, d, u, host_Bps, c,
                                  node_of if nv is not None else None, gpus_per_node))
    if meta_hw:
        meta["hardware"] = meta_hw
    return Fabric(kind, src, dst, cap, lat, tech, gpus=np.arange(N), name=name, meta=meta,
                  node_attrs=node_attrs, edge_attrs={"link": link_name})


def clos_closed_forms(leaf_of, L, p, tiers, d, u, h, c, node_of, g) -> dict:
    """GPU-to-GPU hop counts and, where proven exact, the bisection of a folded Clos.

    Hops: two GPUs on one leaf (or, with NVSwitch domains, in one server) are 2
    links apart; otherwise 4 within a pod (or anywhere in 2 tiers) and 6 across
    pods.  The graph is bipartite with all GPUs on one side, so no path is odd.

    Bisection: with per-GPU rate ``r = min(h, u*c/d)`` every hose-model traffic
    pattern is routable by splitting each flow evenly over all up-paths (Valiant),
    so every balanced cut has at least ``floor(N/2) * r``.  That bound is reached
    by cutting the GPU links of half the GPUs (value ``floor(N/2) * h``) or by
    splitting full leaves (2 tiers) or full pods (3 tiers) in halves (value
    ``N/2 * u*c/d``); the bound is recorded only when one of them reaches it.
    """
    N = len(leaf_of)
    out = {}
    if node_of is not None and tiers == 3 and p % g and -(-L // p) > 1:
        return out  # servers straddle pods: NVSwitch shortcuts break the hop classes
    nl = np.bincount(leaf_of, minlength=L).astype(float)
    T = float(N) * (N - 1)
    s_leaf = float(np.sum(nl * (nl - 1)))
    s_node = 0.0
    if node_of is not None:
        nn = np.bincount(node_of).astype(float)
        s_node = float(np.sum(nn * (nn - 1)))
    if tiers == 2:
        s_pod = T
    else:
        npod = np.bincount(np.arange(L) // p, weights=nl)
        s_pod = float(np.sum(npod * (npod - 1)))
    cls = {2: s_leaf + s_node, 4: s_pod - s_leaf - s_node, 6: T - s_pod}
    out["diameter_hops"] = max((k for k, v in cls.items() if v > 0), default=0)
    out["avg_hops"] = (sum(k * v for k, v in cls.items()) / T) if N > 1 else 0.0

    half = N // 2
    lower = half * min(h, u * c / d)
    cands = []
    if node_of is None or (N // g) % 2 == 0:
        cands.append(half * h)                  # cut the GPU links of half the GPUs (whole servers)
    pods = -(-L // p) if tiers == 3 else 1
    full = bool(np.all(nl == d)) and N % 2 == 0
    # With NVSwitch domains a split must keep servers whole: halve the scalable units.
    halves = L % (2 * g) == 0 if node_of is not None else L % 2 == 0
    split = halves if tiers == 2 else (pods % 2 == 0 and L == pods * p) or (pods == 1 and halves)
    if full and split:
        cands.append(half * u * c / d)
    if N < 2:
        out["bisection_Bps"] = 0.0
    elif cands and min(cands) <= lower * (1 + 1e-12):
        out["bisection_Bps"] = float(lower)
    return out


def build_rail(generator, n_nodes, gpus_per_node, nodes_per_leaf, tiers, oversubscription, gs, ss, ls, h,
               hw, name, params, nv=None):
    """Shared body of :func:`rail_optimized` and :func:`dgx_cluster`."""
    n_nodes = checks.integer("n_nodes", n_nodes, lo=1)
    g = checks.integer("gpus_per_node", gpus_per_node, lo=1)
    o = checks.number("oversubscription", oversubscription, lo=1)
    r = ss.ports
    dmax = max_down(r, h, ss.port_Bps, o)
    if nodes_per_leaf is None:      # scalable units of 2**m servers, as in DGX SuperPOD, halve evenly
        d = min(1 << (dmax.bit_length() - 1), n_nodes)
    else:
        d = checks.integer("nodes_per_leaf", nodes_per_leaf, lo=1, hi=dmax)
    u = uplinks(d, h, ss.port_Bps, o)
    n_su = -(-n_nodes // d)                      # scalable units: d servers share g rail leaves
    L = n_su * g
    if tiers is None:
        tiers = 2 if L <= r else 3
    tiers = checks.integer("tiers", tiers, lo=2, hi=3)
    p = clos_dims(L, r, tiers, unit=g)
    if p is None:
        p_full = (r // 2 // g) * g if g <= r // 2 else r // 2
        most = (r // g if tiers == 2 else r * p_full // g) * d
        raise SpecError(f"n_nodes: {n_nodes} is out of range for a {tiers}-tier rail-optimized network "
                        f"of {ss.name} ({r} ports) with {g} GPUs per node, allowed [1, {most}]")
    N = n_nodes * g
    ranks = np.arange(N)
    node_of, rail_of = ranks // g, ranks % g
    leaf_of = (node_of // d) * g + rail_of
    params = {"n_nodes": n_nodes, "gpus_per_node": g, "nodes_per_leaf": d, "tiers": tiers,
              "oversubscription": o, **params}
    return build_clos(name=name or f"{generator}({n_nodes})", generator=generator, params=params,
                      gs=gs, ss=ss, ls=ls, leaf_of=leaf_of, n_leaves=L, d=d, u=u, p=p, tiers=tiers,
                      host_Bps=h, meta_hw=hw, rail_of_leaf=np.arange(L) % g, node_of=node_of,
                      gpus_per_node=g, nv=nv)
