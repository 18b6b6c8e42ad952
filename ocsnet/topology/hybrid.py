"""Hybrid fabrics: a packet-switched network and OCS planes side by side on the same GPUs.

Stage 3 of the pipeline.  Each GPU's ports are split: some go to a packet
network (a leaf-spine, fat-tree, rail network from :mod:`ocsnet.topology.packet`,
or any fabric), the others to optical circuit switch planes wired as in
:func:`ocsnet.topology.optical.ocs_fabric`.  Traffic that has no circuit, or
arrives while the OCS reconfigures, takes the packet network; bulk, predictable
traffic (tensor-parallel rings, pipeline sends) takes circuits.  This is the
split of Google's Jupiter/TPU fabrics (packet plus OCS) and of the Lite-GPU
proposal (Canakci et al., HotOS 2025).

Bandwidth: by default the OCS ports get what the packet network leaves of
the GPU's network bandwidth, split evenly over ``ocs_ports_per_gpu`` ports.
Size the packet network accordingly (e.g. ``host_Bps`` of the packet
generators), or pass ``port_Bps``.
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

import numpy as np

from .. import hardware
from ..errors import FabricError, SpecError
from ..fabric import Fabric
from .. import checks
from .optical import concat_attrs, ocs_part

__all__ = ["hybrid", "PACKET_GENERATORS"]

#: Generators ``hybrid`` can call by name, and the module holding each.
PACKET_GENERATORS = {"fat_tree": "packet", "leaf_spine": "packet", "clos": "packet",
                     "rail_optimized": "packet", "dgx_cluster": "packet",
                     "torus": "direct", "fully_connected": "direct", "fully_connected_groups": "direct"}

# Closed forms of the packet part that stay exact for the hybrid: metrics never route
# through an OCS node, so before circuits are set the packet part carries all traffic.
_PACKET_FORMS = ("diameter_hops", "avg_hops", "bisection_Bps")


def _resolve(packet, packet_params: dict) -> Fabric:
    if isinstance(packet, Fabric):
        if packet_params:
            raise SpecError(f"packet: parameters {sorted(packet_params)} given with an already built fabric")
        return packet
    if isinstance(packet, str):
        mod = PACKET_GENERATORS.get(packet)
        if mod is None:
            raise SpecError(f"packet: {packet!r} is not one of {', '.join(sorted(PACKET_GENERATORS))}")
        fn: Callable = getattr(importlib.import_module(f"ocsnet.topology.{mod}"), packet)
        return fn(**packet_params)
    if callable(packet):
        return packet(**packet_params)
    raise SpecError(f"packet: expected a Fabric, a generator name or a callable, got {type(packet).__name__}")


def hybrid(packet: Fabric | str | Callable, ocs_ports_per_gpu: int, *, ocs: str = "mems-3d", link: str = "cpo",
           port_Bps: float | None = None, domain_shape: Sequence[int] | None = None,
           planes_per_level: Sequence[int] | None = None, name: str | None = None, **packet_params) -> Fabric:
    """A packet network plus OCS planes on the same GPUs.

    Parameters
    ----------
    packet : Fabric, str or callable
        The packet part: a built fabric, or the name of a generator
        (``leaf_spine``, ``fat_tree``, ``clos``, ``rail_optimized``,
        ``dgx_cluster``, or a direct fabric such as ``torus``) called with
        ``**packet_params``.  It must have no OCS of its own.
    ocs_ports_per_gpu : int
        Optical ports per GPU cabled to OCS planes, >= 1.
    ocs, link : str
        Catalog names of the OCS and the GPU<->OCS link (``cpo``).
    port_Bps : float, optional
        Bandwidth of one OCS port (one circuit).  Default: the GPU's network
        bandwidth minus the packet part's bandwidth per GPU (the most any GPU
        sends into it), over ``ocs_ports_per_gpu``.
    domain_shape, planes_per_level : sequence of int, optional
        Circuit domains of the OCS part, as in :func:`~ocsnet.topology.optical.ocs_fabric`.
    name : str, optional
    **packet_params
        Passed to the packet generator when ``packet`` is a name or callable.

    Returns
    -------
    Fabric
        The packet part's nodes (GPUs keep their indices and rank order) then
        the OCS units; its edges plus GPU<->OCS edges (edge attribute
        ``plane``, -1 on packet edges).  ``meta``: ``generator = "hybrid"``,
        ``gpu``, ``packet`` (the packet part's meta), ``ocs`` (as
        ``ocs_fabric``; :func:`~ocsnet.topology.optical.apply_circuits` keeps
        the packet part and adds the circuits), ``packet_gpu_Bps``,
        ``ocs_gpu_Bps``, and the packet part's ``diameter_hops``,
        ``avg_hops`` and ``bisection_Bps`` where it has them (still exact: no
        traffic crosses an OCS until circuits are set).

    Raises
    ------
    SpecError
        A parameter is out of range, the packet part leaves no bandwidth for the
        OCS ports and ``port_Bps`` is not given, or a name is unknown.
    FabricError
        The packet part already has an OCS.

    Examples
    --------
    >>> f = hybrid("leaf_spine", 2, n_gpus=64, gpus_per_leaf=16, host_Bps=50e9)
    >>> f.meta["packet_gpu_Bps"], f.meta["ocs_gpu_Bps"], f.meta["ocs"]["ports_per_gpu"]
    (50000000000.0, 62500000000.0, 2)

    References
    ----------
    Poutievski et al., "Jupiter evolving", SIGCOMM 2022; Jouppi et al., ISCA
    2023 (TPU v4); Canakci et al., HotOS 2025 (Lite-GPUs).
    """
    pk = _resolve(packet, packet_params)
    if "ocs" in pk.meta or (pk.kind == "ocs").any():
        raise FabricError(f"packet: fabric {pk.name!r} already has OCS planes; give a packet-switched fabric")
    d = checks.integer("ocs_ports_per_gpu", ocs_ports_per_gpu, lo=1)
    n = pk.n_gpus
    if n < 2:
        raise SpecError(f"packet: fabric {pk.name!r} has {n} GPU; a hybrid needs at least 2")
    out_Bps = np.bincount(pk.src, weights=pk.capacity_Bps, minlength=pk.n_nodes)[pk.gpus]
    packet_gpu_Bps = float(out_Bps.max())
    gpu_name = pk.meta.get("gpu")
    if gpu_name is None and "model" in pk.node_attrs:
        gpu_name = str(pk.node_attrs["model"][pk.gpus[0]])
    if port_Bps is None:
        try:
            g = hardware.gpu(gpu_name)
        except SpecError:
            raise SpecError(f"port_Bps: the packet part's GPU {gpu_name!r} is not in the catalog; "
                            "give port_Bps") from None
        left = g.network_Bps - packet_gpu_Bps
        if not left > 0:
            raise SpecError(f"port_Bps: the packet part already uses {packet_gpu_Bps / 1e9:g} GB/s of the "
                            f"{g.network_Bps / 1e9:g} GB/s network bandwidth of a {g.name} GPU, leaving nothing "
                            "for the OCS ports; give port_Bps or a packet part with a smaller host_Bps")
        port_Bps = left / d
    b = checks.positive("port_Bps", port_Bps)
    part = ocs_part(n, d, ocs=ocs, link=link, port_Bps=b, domain_shape=domain_shape,
                    planes_per_level=planes_per_level)
    lk, o = part["link"], part["ocs"]
    u = part["n_ocs"]
    gnode = pk.gpus[part["gpu"]]
    onode = pk.n_nodes + part["unit"]
    m = len(gnode)
    src = np.concatenate([pk.src, gnode, onode])
    dst = np.concatenate([pk.dst, onode, gnode])
    cap = np.concatenate([pk.capacity_Bps, np.full(2 * m, b)])
    lat = np.concatenate([pk.latency_s, np.full(m, lk.latency_s + o.insertion_latency_s), np.full(m, lk.latency_s)])
    tech = np.concatenate([pk.tech, np.full(2 * m, lk.tech, dtype=object)])
    kind = np.concatenate([pk.kind, np.full(u, "ocs", dtype=object)])
    ocs_nodes = {"model": np.full(u, o.name), "plane": part["ocs_plane"], "level": part["ocs_level"]}
    node_attrs = concat_attrs([(pk.node_attrs, pk.n_nodes), (ocs_nodes, u)], fill={"units": 1})
    ocs_edges = {"link": np.full(2 * m, lk.name), "plane": np.concatenate([part["plane"], part["plane"]])}
    edge_attrs = concat_attrs([(pk.edge_attrs, pk.n_edges), (ocs_edges, 2 * m)])
    meta = {"generator": "hybrid", "gpu": gpu_name, "ocs_model": o.name, "link": lk.name,
            "n_gpus": n, "ocs_ports_per_gpu": d, "port_Bps": b,
            "packet_gpu_Bps": packet_gpu_Bps, "ocs_gpu_Bps": d * b,
            "packet": dict(pk.meta), "ocs": part["meta"]}
    if "hardware" in pk.meta:
        meta["hardware"] = pk.meta["hardware"]
    meta.update({k: pk.meta[k] for k in _PACKET_FORMS if k in pk.meta})
    labels = None if pk.labels is None else list(pk.labels) + [f"ocs{i}" for i in range(u)]
    return Fabric(kind, src, dst, cap, lat, tech, gpus=pk.gpus, name=name or f"hybrid({pk.name}+ocs x{d})",
                  meta=meta, node_attrs=node_attrs, edge_attrs=edge_attrs, labels=labels)
