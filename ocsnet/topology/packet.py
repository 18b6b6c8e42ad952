"""Packet-switched fabrics: fat-tree, leaf-spine, folded Clos, rail-optimized, DGX cluster.

Stage 3 of the pipeline.  Each generator is a plain function returning a
:class:`~ocsnet.fabric.Fabric`, built with numpy edge arrays (no networkx calls),
so a 524,288-GPU fat-tree builds in seconds.

Conventions
-----------
* Nodes: GPUs first, in rank order; then leaf switches, then the second tier
  (spines, or the aggregation switches pod by pod), then core switches, then
  (``dgx_cluster``) one NVSwitch domain per server node.
* A link is two directed edges, each with the full per-direction capacity.
  Switch-to-switch links carry the switch port bandwidth; GPU links carry
  ``host_Bps`` (default: the port bandwidth; ``dgx_cluster``: the GPU's
  scale-out bandwidth).  One GPU link uses one switch port.
* Latency of an edge = latency of its link technology (``links.toml``) plus the
  port-to-port latency of the switch it enters (``switches.toml``); an edge
  entering a GPU adds nothing.
* Link technology: ``link`` (catalog name) or else the switch's ``port_link``;
  ``link="cpo"`` or ``switch="tomahawk5-cpo"`` gives ``cpo`` edges.  Every edge
  carries the edge attribute ``link`` (catalog name) so metrics can price it.
* Leaf sizing: a leaf with ``d`` GPU ports has
  ``u = ceil(d * host_Bps / (oversubscription * port_Bps))`` uplinks, one to each
  spine (2 tiers) or each aggregation switch of its pod (3 tiers).  The count is
  rounded up, so the achieved oversubscription is at most the requested one.
* 3 tiers: pods of ``p = min(radix // 2, leaves)`` leaves; ``u`` aggregation
  switches per pod, each with ``p`` uplinks, one to each of the ``p`` core
  switches of its group; ``u * p`` core switches; at most ``radix`` pods.  With
  ``d = u = p = k/2`` and ``k`` pods this is exactly the k-ary fat-tree.
* Node attributes: ``model`` (catalog name), ``tier`` (0 GPU, 1 leaf, 2 spine or
  aggregation, 3 core, -1 NVSwitch), ``pod`` (-1 where none), and for the rail
  families ``node`` and ``rail`` (-1 where none); ``units`` (physical chips a
  node stands for) on ``dgx_cluster``.  Custom specs (e.g. from
  :func:`ocsnet.hardware.lite_gpu`) are recorded in ``meta["hardware"]``.
* ``meta`` holds ``generator``, ``params``, ``gpu``, ``switch``, ``link``,
  ``host_Bps``, ``port_Bps`` and the closed forms ``diameter_hops``,
  ``avg_hops`` (GPU to GPU, in links) and ``bisection_Bps`` where it is proven
  exact (see :func:`_closed_forms`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from .. import hardware
from ..errors import SpecError, check_range
from ..fabric import Fabric

__all__ = ["fat_tree", "leaf_spine", "clos", "rail_optimized", "dgx_cluster"]

_CATALOG = {"gpu": hardware.gpus, "switch": hardware.switches, "link": hardware.links}
_RESOLVE = {"gpu": hardware.gpu, "switch": hardware.switch, "link": hardware.link}


# ---- parameter checks ---------------------------------------------------------------

def _int(name, value, lo, hi=None, *, even=False) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    ok = ok and value >= lo and (hi is None or value <= hi) and (not even or value % 2 == 0)
    if not ok:
        rng = f"[{lo}, {'inf' if hi is None else hi}]"
        raise SpecError(f"{name}: {value!r} is out of range, allowed {'even ' if even else ''}integers in {rng}")
    return int(value)


def _positive_Bps(name, value) -> float:
    check_range(name, value, 0.0, lo_open=True)
    if not math.isfinite(float(value)):
        raise SpecError(f"{name}: {value!r} is out of range, allowed (0, inf)")
    return float(value)


def _oversub(value) -> float:
    check_range("oversubscription", value, 1.0)
    if not math.isfinite(float(value)):
        raise SpecError(f"oversubscription: {value!r} is out of range, allowed [1.0, inf)")
    return float(value)


def _specs(gpu, switch, link, meta_hw: dict):
    """Resolve catalog names (or pass specs through); record non-catalog specs in ``meta_hw``."""
    gs = hardware.gpu(gpu)
    ss = hardware.switch(switch)
    ls = hardware.link(link if link is not None else ss.port_link)
    for typ, spec in (("gpu", gs), ("switch", ss), ("link", ls)):
        _record(meta_hw, typ, spec)
    return gs, ss, ls


def _record(meta_hw: dict, typ: str, spec) -> None:
    if _CATALOG[typ]().get(spec.name) != spec:
        d = dataclasses.asdict(spec)
        d.pop("source", None)
        meta_hw[spec.name] = {"type": typ, **d}


def _uplinks(d: int, host_Bps: float, port_Bps: float, oversub: float) -> int:
    """Uplinks a leaf with ``d`` GPU ports needs: ceil(d*h / (o*c)), at least 1."""
    need = d * host_Bps / (oversub * port_Bps)
    return max(1, math.ceil(need * (1 - 1e-12)))


def _max_down(radix: int, host_Bps: float, port_Bps: float, oversub: float) -> int:
    """Largest number of GPU ports ``d`` with ``d + uplinks(d) <= radix``."""
    d = radix - 1
    while d >= 1 and d + _uplinks(d, host_Bps, port_Bps, oversub) > radix:
        d -= 1
    if d < 1:
        raise SpecError(f"radix: {radix} ports cannot hold one GPU port plus its uplinks, allowed >= 2")
    return d


# ---- the shared folded-Clos builder -----------------------------------------------------

def _build(*, name, generator, params, gs, ss, ls, leaf_of, n_leaves, d, u, p, tiers, host_Bps,
           meta_hw, rail_of_leaf=None, node_of=None, gpus_per_node=None, nv=None):
    """Build a folded Clos from the GPU-to-leaf map ``leaf_of`` (see the module docstring).

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
    meta.update(_closed_forms(leaf_of, L, p, tiers, d, u, host_Bps, c,
                              node_of if nv is not None else None, gpus_per_node))
    if meta_hw:
        meta["hardware"] = meta_hw
    return Fabric(kind, src, dst, cap, lat, tech, gpus=np.arange(N), name=name, meta=meta,
                  node_attrs=node_attrs, edge_attrs={"link": link_name})


def _closed_forms(leaf_of, L, p, tiers, d, u, h, c, node_of, g) -> dict:
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


# ---- generators -----------------------------------------------------------------------

def fat_tree(k, *, gpu="lite-base", switch="tomahawk5", link=None, host_Bps=None, name=None) -> Fabric:
    """The 3-tier k-ary fat-tree with GPUs as hosts.

    ``k`` pods, each with ``k/2`` edge and ``k/2`` aggregation switches;
    ``(k/2)**2`` core switches; ``k**3/4`` GPUs, ``k/2`` per edge switch.
    Edge switch ``e`` of a pod links to every aggregation switch of its pod;
    aggregation switch ``j`` links to core switches ``j*k/2 .. j*k/2 + k/2 - 1``.

    Parameters
    ----------
    k : int
        Switch ports used, even, in [2, radix of ``switch``].
    gpu, switch, link : str or spec
        Catalog names (or specs); ``link`` defaults to the switch's ``port_link``.
    host_Bps : float, optional
        GPU link capacity per direction, > 0; default the switch port bandwidth.
    name : str, optional
        Fabric name; default ``"fat_tree(k=<k>)"``.

    Returns
    -------
    Fabric
        ``5k**2/4`` switches, ``3k**3/4`` links, diameter 6, bisection
        ``k**3/8 * min(host_Bps, port_Bps)`` (in ``meta``).

    Raises
    ------
    SpecError
        ``k`` odd, below 2 or above the switch radix; ``host_Bps`` <= 0;
        an unknown catalog name.

    Examples
    --------
    >>> f = fat_tree(4)
    >>> f.n_gpus, int((f.kind == "packet_switch").sum()), f.n_edges // 2
    (16, 20, 48)

    References
    ----------
    M. Al-Fares, A. Loukissas, A. Vahdat, "A scalable, commodity data center
    network architecture", SIGCOMM 2008.
    """
    hw = {}
    gs, ss, ls = _specs(gpu, switch, link, hw)
    k = _int("k", k, 2, ss.ports, even=True)
    h = ss.port_Bps if host_Bps is None else _positive_Bps("host_Bps", host_Bps)
    half = k // 2
    N = k ** 3 // 4
    return _build(name=name or f"fat_tree(k={k})", generator="fat_tree",
                  params={"k": k, "host_Bps": None if host_Bps is None else h},
                  gs=gs, ss=ss, ls=ls, leaf_of=np.arange(N) // half, n_leaves=k * half,
                  d=half, u=half, p=half, tiers=3, host_Bps=h, meta_hw=hw)


def leaf_spine(n_gpus, *, gpus_per_leaf, oversubscription=1.0, gpu="lite-base", switch="tomahawk5",
               link=None, host_Bps=None, name=None) -> Fabric:
    """A two-tier leaf-spine network: every leaf links once to every spine.

    Parameters
    ----------
    n_gpus : int
        GPUs, >= 1; ``ceil(n_gpus / gpus_per_leaf)`` leaves (the last may be partly filled).
    gpus_per_leaf : int
        GPU ports per leaf, >= 1, leaving room for the uplinks in the switch radix.
    oversubscription : float
        Leaf downlink over uplink bandwidth, >= 1.  The spine count
        ``ceil(gpus_per_leaf * host_Bps / (oversubscription * port_Bps))`` is rounded up.
    gpu, switch, link, host_Bps, name
        As in :func:`fat_tree`.

    Returns
    -------
    Fabric
        Diameter 4 (2 with one leaf); ``meta["bisection_Bps"]`` where exact.

    Raises
    ------
    SpecError
        A count out of range, a leaf whose GPU ports plus uplinks exceed the
        radix, more leaves than a spine has ports (use :func:`clos` with 3 tiers).

    Examples
    --------
    >>> f = leaf_spine(64, gpus_per_leaf=16)
    >>> int((f.node_attrs["tier"] == 2).sum())    # spines
    16

    References
    ----------
    C. Clos, "A study of non-blocking switching networks", Bell System Technical
    Journal, 1953; M. Alizadeh, T. Edsall, "On the data path performance of
    leaf-spine datacenter fabrics", HotI 2013.
    """
    hw = {}
    gs, ss, ls = _specs(gpu, switch, link, hw)
    n_gpus = _int("n_gpus", n_gpus, 1)
    d = _int("gpus_per_leaf", gpus_per_leaf, 1, ss.ports - 1)
    o = _oversub(oversubscription)
    h = ss.port_Bps if host_Bps is None else _positive_Bps("host_Bps", host_Bps)
    u = _uplinks(d, h, ss.port_Bps, o)
    if d + u > ss.ports:
        raise SpecError(f"gpus_per_leaf: {d} GPU ports plus {u} uplinks exceed the {ss.ports} ports of "
                        f"{ss.name}; allowed at most {_max_down(ss.ports, h, ss.port_Bps, o)}")
    L = -(-n_gpus // d)
    if L > ss.ports:
        raise SpecError(f"n_gpus: {n_gpus} needs {L} leaves but a spine has {ss.ports} ports; allowed "
                        f"n_gpus in [1, {ss.ports * d}] (use clos(tiers=3) for more)")
    return _build(name=name or f"leaf_spine({n_gpus})", generator="leaf_spine",
                  params={"n_gpus": n_gpus, "gpus_per_leaf": d, "oversubscription": o,
                          "host_Bps": None if host_Bps is None else h},
                  gs=gs, ss=ss, ls=ls, leaf_of=np.arange(n_gpus) // d, n_leaves=L, d=d, u=u, p=L,
                  tiers=2, host_Bps=h, meta_hw=hw)


def _clos_dims(n_leaves, radix, tiers, unit=1):
    """Leaves per pod and a size check for a folded Clos of ``tiers`` tiers."""
    if tiers == 2:
        if n_leaves > radix:
            return None
        return n_leaves
    half = radix // 2
    p = (half // unit) * unit if unit <= half else half
    p = min(p, n_leaves)
    return p if -(-n_leaves // p) <= radix else None


def clos(n_gpus, *, tiers=2, radix=None, oversubscription=1.0, gpu="lite-base", switch="tomahawk5",
         link=None, host_Bps=None, name=None) -> Fabric:
    """A multi-tier folded Clos network of identical switches.

    Each leaf has the most GPU ports ``d`` that leave room for its uplinks
    (``d + ceil(d * host_Bps / (oversubscription * port_Bps)) <= radix``), or
    ``n_gpus`` if fewer.
    Two tiers: every leaf links once to each of the ``u`` spines (at most
    ``radix`` leaves).  Three tiers: pods of ``radix // 2`` leaves and ``u``
    aggregation switches, ``u * radix // 2`` core switches (at most ``radix``
    pods); see the module docstring.  With ``n_gpus = radix**3 / 4``,
    ``tiers=3`` and no oversubscription this is :func:`fat_tree` of ``k = radix``.

    Parameters
    ----------
    n_gpus : int
        GPUs, >= 1.
    tiers : int
        2 or 3.
    radix : int, optional
        Ports used per switch, in [2, switch ports]; default all ports.
    oversubscription : float
        Leaf downlink over uplink bandwidth, >= 1 (uplink count rounded up).
    gpu, switch, link, host_Bps, name
        As in :func:`fat_tree`.

    Returns
    -------
    Fabric

    Raises
    ------
    SpecError
        ``tiers`` not 2 or 3, ``radix`` out of range, or ``n_gpus`` beyond what the
        tiers can connect (the message gives the maximum).

    Examples
    --------
    >>> f = clos(128, tiers=3, radix=8)
    >>> f.meta["diameter_hops"], f.n_gpus
    (6, 128)

    References
    ----------
    C. Clos, Bell System Technical Journal, 1953; C. E. Leiserson, "Fat-trees:
    universal networks for hardware-efficient supercomputing", IEEE Trans.
    Computers, 1985; Al-Fares et al., SIGCOMM 2008.
    """
    hw = {}
    gs, ss, ls = _specs(gpu, switch, link, hw)
    n_gpus = _int("n_gpus", n_gpus, 1)
    tiers = _int("tiers", tiers, 2, 3)
    r = ss.ports if radix is None else _int("radix", radix, 2, ss.ports)
    o = _oversub(oversubscription)
    h = ss.port_Bps if host_Bps is None else _positive_Bps("host_Bps", host_Bps)
    d = min(_max_down(r, h, ss.port_Bps, o), n_gpus)
    u = _uplinks(d, h, ss.port_Bps, o)
    L = -(-n_gpus // d)
    p = _clos_dims(L, r, tiers)
    if p is None:
        most = r * d if tiers == 2 else r * (r // 2) * d
        raise SpecError(f"n_gpus: {n_gpus} is out of range for a {tiers}-tier Clos of radix {r}, "
                        f"allowed [1, {most}]")
    return _build(name=name or f"clos({n_gpus}, tiers={tiers})", generator="clos",
                  params={"n_gpus": n_gpus, "tiers": tiers, "radix": r, "oversubscription": o,
                          "host_Bps": None if host_Bps is None else h},
                  gs=gs, ss=ss, ls=ls, leaf_of=np.arange(n_gpus) // d, n_leaves=L, d=d, u=u, p=p,
                  tiers=tiers, host_Bps=h, meta_hw=hw)


def _rail(generator, n_nodes, gpus_per_node, nodes_per_leaf, tiers, oversubscription, gs, ss, ls, h,
          hw, name, params, nv=None):
    """Shared body of :func:`rail_optimized` and :func:`dgx_cluster`."""
    n_nodes = _int("n_nodes", n_nodes, 1)
    g = _int("gpus_per_node", gpus_per_node, 1)
    o = _oversub(oversubscription)
    r = ss.ports
    dmax = _max_down(r, h, ss.port_Bps, o)
    if nodes_per_leaf is None:      # scalable units of 2**m servers, as in DGX SuperPOD, halve evenly
        d = min(1 << (dmax.bit_length() - 1), n_nodes)
    else:
        d = _int("nodes_per_leaf", nodes_per_leaf, 1, dmax)
    u = _uplinks(d, h, ss.port_Bps, o)
    n_su = -(-n_nodes // d)                      # scalable units: d servers share g rail leaves
    L = n_su * g
    if tiers is None:
        tiers = 2 if L <= r else 3
    tiers = _int("tiers", tiers, 2, 3)
    p = _clos_dims(L, r, tiers, unit=g)
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
    return _build(name=name or f"{generator}({n_nodes})", generator=generator, params=params,
                  gs=gs, ss=ss, ls=ls, leaf_of=leaf_of, n_leaves=L, d=d, u=u, p=p, tiers=tiers,
                  host_Bps=h, meta_hw=hw, rail_of_leaf=np.arange(L) % g, node_of=node_of,
                  gpus_per_node=g, nv=nv)


def rail_optimized(n_nodes, *, gpus_per_node=8, nodes_per_leaf=None, tiers=None, oversubscription=1.0,
                   gpu="lite-base", switch="tomahawk5", link=None, host_Bps=None, name=None) -> Fabric:
    """A rail-optimized network: GPU ``r`` of every server sits on a leaf of rail ``r``.

    Servers form scalable units of ``nodes_per_leaf`` servers; each unit has one
    leaf per rail, holding GPU ``r`` of each of its servers.  A spine layer (or
    aggregation and core layers, with whole scalable units in a pod) joins the
    rails, as in a folded Clos.  GPU rank = ``node * gpus_per_node + rail``.

    Parameters
    ----------
    n_nodes : int
        Servers, >= 1.
    gpus_per_node : int
        GPUs per server (= rails), >= 1.
    nodes_per_leaf : int, optional
        Servers per scalable unit (GPU ports per leaf), at most what the radix
        allows beside the uplinks; default the largest power of two within
        that (32 for a 64-port switch, as in DGX SuperPOD), or ``n_nodes`` if fewer.
    tiers : int, optional
        2 or 3; default 2 if the leaves fit one spine layer, else 3.
    oversubscription, gpu, switch, link, host_Bps, name
        As in :func:`leaf_spine`.

    Returns
    -------
    Fabric
        With node attributes ``node`` (server) and ``rail``.

    Raises
    ------
    SpecError
        A count out of range or a cluster larger than the tiers can connect.

    Examples
    --------
    >>> f = rail_optimized(64)
    >>> f.n_gpus, f.meta["diameter_hops"]
    (512, 4)

    References
    ----------
    NVIDIA, "DGX SuperPOD reference architecture with DGX H100 systems" (2023);
    W. Wang et al., "Rail-only: a low-cost high-performance network for training
    LLMs with trillion parameters", HotI 2024.
    """
    hw = {}
    gs, ss, ls = _specs(gpu, switch, link, hw)
    h = ss.port_Bps if host_Bps is None else _positive_Bps("host_Bps", host_Bps)
    return _rail("rail_optimized", n_nodes, gpus_per_node, nodes_per_leaf, tiers, oversubscription,
                 gs, ss, ls, h, hw, name, {"host_Bps": None if host_Bps is None else h})


def dgx_cluster(n_nodes, *, gpu="h100-sxm", gpus_per_node=8, nodes_per_leaf=None, tiers=None,
                oversubscription=1.0, switch="tomahawk5", link=None, nvswitch="nvswitch3",
                nvswitch_chips=None, name=None) -> Fabric:
    """The H100 baseline: NVLink servers joined by a rail-optimized scale-out network.

    Each server's NVSwitch domain is one node of kind ``nvswitch`` linked to each
    of its GPUs at the GPU's ``scaleup_Bps`` (tech of the NVSwitch's port link,
    ``copper``).  Its ``units`` attribute counts the NVSwitch chips it stands for,
    by default the fewest whose ports terminate every GPU's NVLink lanes
    (``ceil(gpus_per_node * ceil(scaleup_Bps / nvlink_port_Bps) / ports)``, 3 for
    a DGX H100; the real system has 4 because it also exposes ports outside the
    node: pass ``nvswitch_chips=4``).  Every GPU also has a scale-out link at its
    ``scaleout_Bps`` to a rail leaf, as in :func:`rail_optimized`.

    Parameters
    ----------
    n_nodes : int
        Servers, >= 1.
    gpu : str or spec
        A GPU with scale-up (NVLink) bandwidth.
    gpus_per_node : int
        GPUs per server, >= 1.
    nodes_per_leaf, tiers, oversubscription, switch, link, name
        As in :func:`rail_optimized`.
    nvswitch : str or spec
        The NVLink switch chip (catalog ``switches.toml``).
    nvswitch_chips : int, optional
        Chips per NVSwitch domain, >= 1 (power and cost only).

    Returns
    -------
    Fabric

    Raises
    ------
    SpecError
        The GPU has no scale-up bandwidth, or a count is out of range.

    Examples
    --------
    >>> f = dgx_cluster(32)
    >>> f.n_gpus, int((f.kind == "nvswitch").sum()), f.meta["nvswitch_chips"]
    (256, 32, 3)

    References
    ----------
    NVIDIA, "DGX H100 user guide" and "DGX SuperPOD reference architecture with
    DGX H100 systems" (2023); NVIDIA Hopper architecture whitepaper (2022).
    """
    hw = {}
    gs, ss, ls = _specs(gpu, switch, link, hw)
    nvs = hardware.switch(nvswitch)
    nvl = hardware.link(nvs.port_link)
    _record(hw, "switch", nvs)
    _record(hw, "link", nvl)
    if not gs.scaleup_Bps > 0:
        raise SpecError(f"gpu: {gs.name!r} has no scale-up bandwidth (scaleup_Bps = 0); "
                        f"dgx_cluster needs an NVLink GPU such as 'h100-sxm'")
    if not gs.scaleout_Bps > 0:
        raise SpecError(f"gpu: {gs.name!r} has no scale-out bandwidth (scaleout_Bps = 0)")
    g = _int("gpus_per_node", gpus_per_node, 1)
    lanes = math.ceil(gs.scaleup_Bps / nvs.port_Bps * (1 - 1e-12))
    chips = -(-g * lanes // nvs.ports) if nvswitch_chips is None else _int("nvswitch_chips", nvswitch_chips, 1)
    return _rail("dgx_cluster", n_nodes, g, nodes_per_leaf, tiers, oversubscription, gs, ss, ls,
                 gs.scaleout_Bps, hw, name, {"nvswitch_chips": chips}, nv=(nvs, nvl, chips))
