"""Memory nodes on a fabric: DRAM or CXL-class pools, optically attached.

Stage 3 of the pipeline.  :func:`attach_memory` adds ``n_nodes`` nodes of kind
``memory`` to a built fabric (packet, direct or OCS) and returns a new
:class:`~ocsnet.fabric.Fabric`; the memory nodes' links are edges like any
other, so the flow model congests them with the rest of the traffic.

Where a node attaches (``attach``):

- ``"leaf"`` (switched fabrics): the leaf switches (node attribute
  ``tier == 1``), nodes spread evenly over them; ``"spine"``: the top-tier
  switches.  All ``ports`` links of a node go to one switch.
- ``"gpu"`` (direct fabrics: tori, cliques): a GPU, nodes spread evenly over
  the ranks; traffic then crosses the direct links (GPUs forward).
- ``"ocs"`` (OCS fabrics): port ``p`` of a node is cabled to an OCS unit of
  plane ``p mod planes``, like a GPU's; memory traffic rides circuits (the
  per-layer model serves it with the node's ports; see
  :mod:`ocsnet.evaluation.remote`).
- ``"auto"``: ``leaf`` on a switched fabric, ``ocs`` on an OCS fabric,
  ``gpu`` otherwise.

With one attachment point per node (its ``ports`` links merged into one
edge of ``ports x port_Bps`` each way) a memory node is never on a shortest
path between two other nodes, so GPU-to-GPU routes do not change.

``meta["memory"]`` records ``tier``, ``n_nodes``, ``ports_per_node``,
``port_Bps``, ``attach``, ``link`` and ``nodes`` (node indices); the memory
tier itself (capacity, device bandwidth, latency, cost) is the catalog's
``memory.toml`` entry of that name, read by :mod:`ocsnet.memory`.
"""

from __future__ import annotations

import numpy as np

from .. import checks, hardware
from ..errors import SpecError
from ..fabric import Fabric

__all__ = ["attach_memory", "ATTACH"]

ATTACH = ("auto", "leaf", "spine", "gpu", "ocs")


def _points(fabric: Fabric, attach: str, n_nodes: int) -> tuple[str, np.ndarray]:
    kind = fabric.kind
    switches = np.flatnonzero((kind == "packet_switch") | (kind == "nvswitch"))
    has_ocs = bool((kind == "ocs").any())
    if attach == "auto":
        attach = "leaf" if len(switches) else ("ocs" if has_ocs else "gpu")
    if attach in ("leaf", "spine"):
        if not len(switches):
            raise SpecError(f"attach: {attach!r} needs packet switches, the fabric {fabric.name!r} has none; "
                            f"allowed here: {'ocs' if has_ocs else 'gpu'}")
        tier = fabric.node_attrs.get("tier")
        if tier is None:
            cand = switches
        else:
            t = tier[switches]
            want = t.min() if attach == "leaf" else t.max()
            cand = switches[t == want]
        return attach, cand[(np.arange(n_nodes) * len(cand)) // n_nodes]
    if attach == "gpu":
        g = fabric.gpus
        return attach, g[(np.arange(n_nodes) * len(g)) // n_nodes]
    if attach == "ocs":
        if not has_ocs:
            raise SpecError(f"attach: 'ocs' needs OCS units, the fabric {fabric.name!r} has none")
        return attach, np.zeros(0, np.int64)
    raise SpecError(f"attach: {attach!r} is not one of {', '.join(ATTACH)}")


def attach_memory(fabric: Fabric, n_nodes: int, *, tier: str = "cxl-pool", ports: int = 8,
                  link: str = "cpo", port_Bps: float | None = None, attach: str = "auto",
                  name: str | None = None) -> Fabric:
    """The fabric with ``n_nodes`` memory nodes attached.

    Parameters
    ----------
    fabric : Fabric
        A built fabric without memory nodes.
    n_nodes : int
        Memory nodes to add, >= 1.
    tier : str
        Name of the memory tier (``ocsnet/catalog/memory.toml``, kind ``node``)
        the nodes hold; recorded as the nodes' ``model``.
    ports : int
        Optical ports per memory node, >= 1.
    link : str
        Catalog link technology of those ports (default ``cpo``).
    port_Bps : float, optional
        Bandwidth of one port, per direction; default the link's.
    attach : {"auto", "leaf", "spine", "gpu", "ocs"}
        Where the nodes attach (module notes).
    name : str, optional

    Returns
    -------
    Fabric
        The same nodes and edges, then the memory nodes (indices
        ``fabric.n_nodes ..``) and their links; ``meta["memory"]`` describes them.

    Raises
    ------
    SpecError
        A parameter out of range, an unknown link, an attachment the fabric
        cannot take, or a fabric that already has memory nodes.

    Examples
    --------
    >>> from ocsnet.topology import fat_tree
    >>> f = attach_memory(fat_tree(4), 2, ports=4)
    >>> int((f.kind == "memory").sum()), f.meta["memory"]["attach"], f.n_gpus
    (2, 'leaf', 16)
    """
    if not isinstance(fabric, Fabric):
        raise SpecError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    if (fabric.kind == "memory").any() or fabric.meta.get("memory"):
        raise SpecError(f"fabric: {fabric.name!r} already has memory nodes")
    m = checks.integer("n_nodes", n_nodes, lo=1)
    p = checks.integer("ports", ports, lo=1)
    lk = hardware.link(link)
    b = checks.positive("port_Bps", lk.bandwidth_Bps if port_Bps is None else port_Bps)
    if not isinstance(tier, str) or not tier:
        raise SpecError(f"tier: expected a memory tier name, got {tier!r}")
    how, where = _points(fabric, attach, m)
    n0 = fabric.n_nodes
    mem = n0 + np.arange(m)
    if how == "ocs":
        ocs = np.flatnonzero(fabric.kind == "ocs")
        plane = fabric.node_attrs.get("plane", np.zeros(fabric.n_nodes, np.int64))[ocs]
        planes = np.unique(plane)
        # port k of node j -> plane k mod planes, the j-th unit of that plane (round robin)
        j, k = np.divmod(np.arange(m * p), p)
        pl = planes[k % len(planes)]
        units = [ocs[plane == q] for q in planes]
        idx = np.searchsorted(planes, pl)
        other = np.array([units[i][jj % len(units[i])] for i, jj in zip(idx.tolist(), j.tolist())], dtype=np.int64)
        node = mem[j]
        cap = np.full(m * p, b)
        info = getattr(fabric, "ocs", None)
        model = getattr(info, "ocs", None) or fabric.meta.get("ocs_model")
        ocs_spec = hardware.ocs(model) if isinstance(model, str) else None
        lat_in = lk.latency_s + (ocs_spec.insertion_latency_s if ocs_spec else 0.0)
        u = np.concatenate([node, other])
        v = np.concatenate([other, node])
        lat = np.concatenate([np.full(len(node), lat_in), np.full(len(node), lk.latency_s)])
        cap = np.concatenate([cap, cap])
    else:
        u = np.concatenate([mem, where])
        v = np.concatenate([where, mem])
        cap = np.full(2 * m, p * b)
        lat = np.full(2 * m, lk.latency_s)
    kind = np.concatenate([fabric.kind, np.full(m, "memory", dtype=object)])
    node_attrs = {}
    for k_, arr in fabric.node_attrs.items():
        fill = np.full(m, tier if k_ == "model" else (-1 if np.issubdtype(arr.dtype, np.number) else ""),
                       dtype=arr.dtype if np.issubdtype(arr.dtype, np.number) else object)
        node_attrs[k_] = np.concatenate([arr.astype(object) if fill.dtype == object else arr, fill])
    if "model" not in node_attrs:
        gm = fabric.meta.get("gpu")
        base = np.full(n0, "", dtype=object)
        if isinstance(gm, str):
            base[fabric.gpus] = gm
        node_attrs["model"] = np.concatenate([base, np.full(m, tier, dtype=object)])
    edge_attrs = {}
    for k_, arr in fabric.edge_attrs.items():
        if k_ == "link":
            fill = np.full(len(u), lk.name, dtype=object)
        else:
            fill = np.full(len(u), -1 if np.issubdtype(arr.dtype, np.number) else "",
                           dtype=arr.dtype if np.issubdtype(arr.dtype, np.number) else object)
        edge_attrs[k_] = np.concatenate([arr.astype(object) if fill.dtype == object else arr, fill])
    if "link" not in edge_attrs:
        edge_attrs["link"] = np.concatenate([np.full(fabric.n_edges, "", dtype=object),
                                             np.full(len(u), lk.name, dtype=object)])
    meta = dict(fabric.meta)
    meta["memory"] = {"tier": tier, "n_nodes": m, "ports_per_node": p, "port_Bps": b, "attach": how,
                      "link": lk.name, "nodes": mem.tolist()}
    labels = None if fabric.labels is None else list(fabric.labels) + [f"memory{j}" for j in range(m)]
    return Fabric(kind, np.concatenate([fabric.src, u]), np.concatenate([fabric.dst, v]),
                  np.concatenate([fabric.capacity_Bps, cap]), np.concatenate([fabric.latency_s, lat]),
                  np.concatenate([fabric.tech, np.full(len(u), lk.tech, dtype=object)]),
                  gpus=fabric.gpus, name=name or fabric.name, meta=meta, node_attrs=node_attrs,
                  edge_attrs=edge_attrs, labels=labels, aggregate=True)
