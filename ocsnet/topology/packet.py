"""Packet-switched fabrics: fat-tree, leaf-spine, folded Clos, rail-optimized, DGX cluster.

Stage 3 of the pipeline.  This module holds the public generators; each is a
plain function that checks its parameters and returns a
:class:`~ocsnet.fabric.Fabric` built by the shared folded-Clos builder of
:mod:`ocsnet.topology.packet_clos` (numpy edge arrays, no networkx calls), so a
524,288-GPU fat-tree builds in seconds.

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
  exact (see :func:`ocsnet.topology.packet_clos.clos_closed_forms`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import hardware
from ..errors import SpecError
from ..fabric import Fabric
from .. import checks
from .packet_clos import build_clos, build_rail, clos_dims, max_down, record_spec, resolve_specs, uplinks

__all__ = ["fat_tree", "leaf_spine", "clos", "rail_optimized", "dgx_cluster"]


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
    gs, ss, ls = resolve_specs(gpu, switch, link, hw)
    k = checks.integer("k", k, lo=2, hi=ss.ports, even=True)
    h = ss.port_Bps if host_Bps is None else checks.positive("host_Bps", host_Bps)
    half = k // 2
    N = k ** 3 // 4
    return build_clos(name=name or f"fat_tree(k={k})", generator="fat_tree",
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
    gs, ss, ls = resolve_specs(gpu, switch, link, hw)
    n_gpus = checks.integer("n_gpus", n_gpus, lo=1)
    d = checks.integer("gpus_per_leaf", gpus_per_leaf, lo=1, hi=ss.ports - 1)
    o = checks.number("oversubscription", oversubscription, lo=1)
    h = ss.port_Bps if host_Bps is None else checks.positive("host_Bps", host_Bps)
    u = uplinks(d, h, ss.port_Bps, o)
    if d + u > ss.ports:
        raise SpecError(f"gpus_per_leaf: {d} GPU ports plus {u} uplinks exceed the {ss.ports} ports of "
                        f"{ss.name}; allowed at most {max_down(ss.ports, h, ss.port_Bps, o)}")
    L = -(-n_gpus // d)
    if L > ss.ports:
        raise SpecError(f"n_gpus: {n_gpus} needs {L} leaves but a spine has {ss.ports} ports; allowed "
                        f"n_gpus in [1, {ss.ports * d}] (use clos(tiers=3) for more)")
    return build_clos(name=name or f"leaf_spine({n_gpus})", generator="leaf_spine",
                      params={"n_gpus": n_gpus, "gpus_per_leaf": d, "oversubscription": o,
                              "host_Bps": None if host_Bps is None else h},
                      gs=gs, ss=ss, ls=ls, leaf_of=np.arange(n_gpus) // d, n_leaves=L, d=d, u=u, p=L,
                      tiers=2, host_Bps=h, meta_hw=hw)



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
    gs, ss, ls = resolve_specs(gpu, switch, link, hw)
    n_gpus = checks.integer("n_gpus", n_gpus, lo=1)
    tiers = checks.integer("tiers", tiers, lo=2, hi=3)
    r = ss.ports if radix is None else checks.integer("radix", radix, lo=2, hi=ss.ports)
    o = checks.number("oversubscription", oversubscription, lo=1)
    h = ss.port_Bps if host_Bps is None else checks.positive("host_Bps", host_Bps)
    d = min(max_down(r, h, ss.port_Bps, o), n_gpus)
    u = uplinks(d, h, ss.port_Bps, o)
    L = -(-n_gpus // d)
    p = clos_dims(L, r, tiers)
    if p is None:
        most = r * d if tiers == 2 else r * (r // 2) * d
        raise SpecError(f"n_gpus: {n_gpus} is out of range for a {tiers}-tier Clos of radix {r}, "
                        f"allowed [1, {most}]")
    return build_clos(name=name or f"clos({n_gpus}, tiers={tiers})", generator="clos",
                      params={"n_gpus": n_gpus, "tiers": tiers, "radix": r, "oversubscription": o,
                              "host_Bps": None if host_Bps is None else h},
                      gs=gs, ss=ss, ls=ls, leaf_of=np.arange(n_gpus) // d, n_leaves=L, d=d, u=u, p=p,
                      tiers=tiers, host_Bps=h, meta_hw=hw)




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
    gs, ss, ls = resolve_specs(gpu, switch, link, hw)
    h = ss.port_Bps if host_Bps is None else checks.positive("host_Bps", host_Bps)
    return build_rail("rail_optimized", n_nodes, gpus_per_node, nodes_per_leaf, tiers, oversubscription,
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
    gs, ss, ls = resolve_specs(gpu, switch, link, hw)
    nvs = hardware.switch(nvswitch)
    nvl = hardware.link(nvs.port_link)
    record_spec(hw, "switch", nvs)
    record_spec(hw, "link", nvl)
    if not gs.scaleup_Bps > 0:
        raise SpecError(f"gpu: {gs.name!r} has no scale-up bandwidth (scaleup_Bps = 0); "
                        f"dgx_cluster needs an NVLink GPU such as 'h100-sxm'")
    if not gs.scaleout_Bps > 0:
        raise SpecError(f"gpu: {gs.name!r} has no scale-out bandwidth (scaleout_Bps = 0)")
    g = checks.integer("gpus_per_node", gpus_per_node, lo=1)
    lanes = math.ceil(gs.scaleup_Bps / nvs.port_Bps * (1 - 1e-12))
    chips = -(-g * lanes // nvs.ports) if nvswitch_chips is None else checks.integer("nvswitch_chips", nvswitch_chips, lo=1)
    return build_rail("dgx_cluster", n_nodes, g, nodes_per_leaf, tiers, oversubscription, gs, ss, ls,
                      gs.scaleout_Bps, hw, name, {"nvswitch_chips": chips}, nv=(nvs, nvl, chips))
