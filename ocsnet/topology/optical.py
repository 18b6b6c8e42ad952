"""Optical circuit switched fabrics: GPUs wired to OCS planes.

Stage 3 of the pipeline.  :func:`ocs_fabric` builds the *physical* fabric:
every GPU has ``d = ports_per_gpu`` optical ports and port ``p`` of every GPU
is cabled to OCS plane ``p``.  This module holds that wiring (circuit domains,
planes per level, the circuit-path closed forms) and the small validators that
the direct and hybrid generators share.  Setting circuits on the wired
fabric is the next step, in :mod:`ocsnet.topology.circuits`:
:func:`~ocsnet.topology.circuits.apply_circuits` turns a circuit matrix ``C``
(DESIGN.md, "The OCS scheduling problem") into the *logical* GPU-to-GPU
fabric that the flow model routes on.  Its public names (``apply_circuits``,
``allowed_pairs``, ``pair_level``, ``CIRCUIT_LINK``) can still be imported
from here.

Wiring (circuit domains)
------------------------
An OCS unit has a fixed port count ``P`` (catalog).  When ``N <= P`` each
plane is one OCS and any GPU can hold a circuit to any other: the fabric is
all-to-all and, by Konig's theorem, any ``C`` whose row and column sums are at
most ``d`` splits into ``d`` matchings, one per plane.

When ``N > P`` a plane needs several OCS units.  Giving every plane the same
partition of the GPUs would cut the cluster into islands, so the GPUs are
laid out on a grid ``domain_shape = (s_0, ..., s_{L-1})`` (mixed radix, rank
``r = sum c_l * prod(s_0..s_{l-1})``, dimension 0 fastest, every
``s_l <= P``) and the planes are split into ``L`` *levels* of
``planes_per_level[l]`` planes each.  A level-``l`` plane has one OCS per
*line* of the grid along dimension ``l`` (the ``s_l`` GPUs that differ only
in coordinate ``l``).  Two GPUs can hold a circuit iff their coordinates differ
in exactly one dimension ``l``, and then only through the level-``l`` planes.
This is the TPU v4 idea (Jouppi et al., ISCA 2023: each OCS joins the same
face position of every 4x4x4 block) made uniform, a HyperX / flattened
butterfly of circuit lines (Ahn et al., SC 2009): every GPU reaches every
other in at most ``L`` circuit hops, and a circuit matrix is realizable iff,
for every level, its level-``l`` part has row and column sums at most
``planes_per_level[l]`` (Konig's theorem inside each line's OCS units).  That
check is exact and vectorized, which is why this wiring was chosen over a
per-plane scrambled partition (whose feasibility is a list edge-colouring
problem).

Latency
-------
A GPU->OCS edge has the link's latency plus the OCS insertion latency (the
device it enters); an OCS->GPU edge the link's latency.  A circuit therefore
costs ``link + insertion + link``; this is ``meta["ocs"]["circuit_latency_s"]``
and the latency of every circuit edge
:func:`~ocsnet.topology.circuits.apply_circuits` creates.

The physical fabric is for counting, pricing and drawing: an OCS is not a
packet switch, so route flows on ``apply_circuits(fabric, C)``, never through
the OCS nodes.

References
----------
Jouppi et al., "TPU v4: An optically reconfigurable supercomputer for machine
learning with hardware support for embeddings", ISCA 2023.
Liu et al., "Lightwave Fabrics: At-scale optical circuit switching for
datacenter and machine learning systems", SIGCOMM 2023.
Ahn et al., "HyperX: Topology, routing, and packaging of efficient
large-scale networks", SC 2009.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .. import checks, hardware
from ..errors import SpecError
from ..fabric import Fabric

__all__ = ["ocs_fabric", "apply_circuits", "allowed_pairs", "pair_level", "CIRCUIT_LINK"]

# Circuit names that moved to :mod:`ocsnet.topology.circuits`; resolved lazily
# (module __getattr__) because circuits imports this module.
_CIRCUIT_NAMES = ("apply_circuits", "allowed_pairs", "pair_level", "CIRCUIT_LINK")


def concat_attrs(parts: Sequence[tuple[Mapping[str, np.ndarray], int]],
                 fill: Mapping[str, object] | None = None) -> dict[str, np.ndarray]:
    """Concatenate per-node or per-edge attribute dicts of several blocks.

    A key missing from a block is filled with ``fill[key]`` if given, else a
    neutral value of the key's dtype: -1 for integers, NaN for floats, False
    for booleans, "" for strings.
    """
    fill = dict(fill or {})
    keys = sorted({k for attrs, _ in parts for k in attrs})
    out = {}
    for k in keys:
        sample = next(np.asarray(a[k]) for a, _ in parts if k in a)
        chunks = []
        for attrs, n in parts:
            if k in attrs:
                chunks.append(np.asarray(attrs[k]))
            elif k in fill:
                chunks.append(np.full(n, fill[k], dtype=sample.dtype))
            elif sample.dtype.kind in "iu":
                chunks.append(np.full(n, -1, dtype=sample.dtype))
            elif sample.dtype.kind == "f":
                chunks.append(np.full(n, np.nan, dtype=sample.dtype))
            elif sample.dtype.kind == "b":
                chunks.append(np.zeros(n, dtype=bool))
            else:
                chunks.append(np.full(n, "", dtype=sample.dtype if sample.dtype.kind == "U" else object))
        out[k] = np.concatenate(chunks)
    return out


# ---- wiring -------------------------------------------------------------------------

def _factorizations(n: int, parts: int, cap: int, hi: int):
    """Factorizations of n into `parts` non-increasing factors, each in [2, min(cap, hi)].

    Hand-written: a tiny divisor search (n <= a few million) that no library offers.
    """
    if parts == 1:
        if 2 <= n <= min(cap, hi):
            yield (n,)
        return
    for f in range(min(cap, hi, n), 1, -1):
        if n % f == 0:
            for rest in _factorizations(n // f, parts - 1, cap, f):
                yield (f,) + rest


def _domain_shape(n: int, ports: int, ocs_name: str, shape) -> list[int]:
    if shape is not None:
        if isinstance(shape, (int, np.integer)):
            shape = [shape]
        shape = checks.integers("domain_shape", shape, lo=2, hi=ports)
        if math.prod(shape) != n:
            raise SpecError(f"domain_shape: {shape} holds {math.prod(shape)} GPUs, but n_gpus = {n}; "
                            "the product must equal n_gpus")
        return shape
    if n <= ports:
        return [n]
    levels = 2
    while ports ** levels < n:
        levels += 1
    for L in range(levels, levels + 3):
        cands = list(_factorizations(n, L, ports, n))
        if cands:
            return list(min(cands, key=lambda c: (c[0], c)))   # most balanced: smallest largest domain
    raise SpecError(f"n_gpus: {n} GPUs exceed one {ocs_name} OCS ({ports} ports) and {n} has no factorization "
                    f"into circuit domains of at most {ports} GPUs; give domain_shape or another n_gpus")


def _planes_per_level(d: int, levels: int, ppl) -> list[int]:
    if ppl is None:
        if d < levels:
            raise SpecError(f"ports_per_gpu: {d} is out of range for a {levels}-level wiring, allowed [{levels}, inf) "
                            "(each level of circuit domains needs at least one plane)")
        return [d // levels + (1 if i < d % levels else 0) for i in range(levels)]
    if isinstance(ppl, (int, np.integer)):
        ppl = [ppl]
    ppl = checks.integers("planes_per_level", ppl, lo=1)
    if len(ppl) != levels:
        raise SpecError(f"planes_per_level: has {len(ppl)} entries, domain_shape has {levels} levels")
    if sum(ppl) != d:
        raise SpecError(f"planes_per_level: {ppl} sums to {sum(ppl)}, but ports_per_gpu = {d}")
    return ppl


def grid_strides(shape: Sequence[int]) -> np.ndarray:
    """Mixed-radix strides of a circuit-domain grid, dimension 0 fastest."""
    return np.concatenate([[1], np.cumprod(shape[:-1])]).astype(np.int64)


def ocs_part(n: int, d: int, *, ocs, link, port_Bps: float, domain_shape=None, planes_per_level=None) -> dict:
    """Wire ``n`` GPU ranks with ``d`` ports each to OCS planes (arrays only).

    Returns a dict with ``n_ocs``, ``ocs_level``, ``ocs_plane`` (per OCS unit),
    ``gpu``/``unit``/``plane`` (per GPU port: rank, OCS unit, plane) and the
    ``meta`` dict stored as ``fabric.meta["ocs"]``.  Used by :func:`ocs_fabric`
    and :func:`ocsnet.topology.hybrid.hybrid`.
    """
    o = hardware.ocs(ocs)
    lk = hardware.link(link)
    shape = _domain_shape(n, o.ports, o.name, domain_shape)
    ppl = _planes_per_level(d, len(shape), planes_per_level)
    strides = grid_strides(shape)
    r = np.arange(n, dtype=np.int64)
    gpu, unit, plane = [], [], []
    ocs_level, ocs_plane = [], []
    offset, p = 0, 0
    for lvl, (s, st, dl) in enumerate(zip(shape, strides, ppl)):
        n_lines = n // s
        line = (r // (st * s)) * st + r % st            # index of the GPU's line along dimension lvl
        for _ in range(dl):
            gpu.append(r)
            unit.append(offset + line)
            plane.append(np.full(n, p, dtype=np.int64))
            ocs_level.append(np.full(n_lines, lvl, dtype=np.int64))
            ocs_plane.append(np.full(n_lines, p, dtype=np.int64))
            offset += n_lines
            p += 1
    meta = {
        "ports_per_gpu": d,
        "circuit_Bps": port_Bps,
        "reconfig_delay_s": o.reconfig_delay_s,
        "ocs": o.name,
        "link": lk.name,
        "ocs_ports": o.ports,
        "domain_size": max(shape),
        "domain_shape": list(shape),
        "planes_per_level": list(ppl),
        "all_to_all": len(shape) == 1,
        "circuit_latency_s": 2 * lk.latency_s + o.insertion_latency_s,
        "n_ocs": offset,
    }
    meta.update(ocs_closed_forms(n, shape, ppl, port_Bps))
    return {"n_ocs": offset, "ocs_level": np.concatenate(ocs_level), "ocs_plane": np.concatenate(ocs_plane),
            "gpu": np.concatenate(gpu), "unit": np.concatenate(unit), "plane": np.concatenate(plane),
            "meta": meta, "link": lk, "ocs": o}


def ocs_closed_forms(n: int, shape: Sequence[int], ppl: Sequence[int], port_Bps: float) -> dict:
    """Circuit-path figures of an OCS wiring, stored in ``meta["ocs"]``.

    The physical fabric carries nothing until circuits are set (metrics treat
    OCS nodes as non-transit), so these describe what circuits can reach:

    - ``max_circuit_hops``: circuits on the longest shortest GPU-to-GPU circuit
      path, ``L`` (one per dimension in which two GPUs' grid coordinates differ);
    - ``avg_circuit_hops``: its mean over ordered pairs,
      ``N/(N-1) * sum(1 - 1/s_l)``;
    - ``bisection_bound_Bps`` (per direction): no circuit configuration can put
      more across the worst balanced cut.  An OCS with ``a`` of its ``s`` GPUs
      on one side passes at most ``min(a, s - a)`` circuits across, so a cut
      along dimension ``l`` passes at most ``N/2 * d_l * b``; stated where that
      cut is balanced (one level, or every ``s_l`` even).
    """
    out = {"max_circuit_hops": len(shape),
           "avg_circuit_hops": n / (n - 1) * sum(1.0 - 1.0 / s for s in shape)}
    if len(shape) == 1:
        out["bisection_bound_Bps"] = (n // 2) * ppl[0] * port_Bps
    elif all(s % 2 == 0 for s in shape):
        out["bisection_bound_Bps"] = (n // 2) * min(ppl) * port_Bps
    return out


def ocs_fabric(n_gpus: int, ports_per_gpu: int, *, gpu: str = "lite-base", ocs: str = "mems-3d",
               link: str = "cpo", port_Bps: float | None = None, domain_shape: Sequence[int] | None = None,
               planes_per_level: Sequence[int] | None = None, name: str | None = None) -> Fabric:
    """GPUs whose optical ports are all cabled to optical circuit switch planes.

    Parameters
    ----------
    n_gpus : int
        Number of GPUs, >= 2.
    ports_per_gpu : int
        Optical ports per GPU ``d`` (= number of OCS planes), >= 1.
    gpu, ocs, link : str
        Catalog names of the GPU, the OCS and the GPU<->OCS link technology
        (``cpo``: co-packaged optics toward the OCS).
    port_Bps : float, optional
        Bandwidth of one port and so of one circuit (bytes/s per direction).
        Default: the GPU's network bandwidth split evenly over its ``d`` ports.
    domain_shape : sequence of int, optional
        Grid of circuit domains (see the module notes); every entry at most the
        OCS port count, product ``n_gpus``.  Default: one domain if the GPUs fit
        one OCS, else the most balanced factorization into the fewest levels.
    planes_per_level : sequence of int, optional
        How the ``d`` planes are shared among the levels (each >= 1, sum ``d``).
        Default: as even as possible, the first levels get the remainder.
    name : str, optional

    Returns
    -------
    Fabric
        Nodes: the GPUs (ranks 0..N-1, nodes 0..N-1), then the OCS units (kind
        ``ocs``, node attributes ``plane`` and ``level``).  Edges: GPU->OCS and
        OCS->GPU for every port, tech of ``link``, edge attribute ``plane``.
        ``meta["ocs"]`` holds ``ports_per_gpu``, ``circuit_Bps``,
        ``reconfig_delay_s``, ``ocs``, ``domain_size``, ``domain_shape``,
        ``planes_per_level``, ``all_to_all``, ``circuit_latency_s`` and the
        circuit-path figures of :func:`ocs_closed_forms`.  There is no top-level
        ``diameter_hops``/``bisection_Bps``: without circuits no GPU reaches
        another (an OCS is not a packet switch).

    Raises
    ------
    SpecError
        A parameter is out of range or names no catalog entry.

    Examples
    --------
    >>> f = ocs_fabric(64, 4)
    >>> f.n_gpus, len(f.nodes_of_kind("ocs")), f.meta["ocs"]["all_to_all"]
    (64, 4, True)
    >>> f = ocs_fabric(4096, 8)            # 4096 > 136 ports: 64 x 64 circuit domains
    >>> f.meta["ocs"]["domain_shape"], f.meta["ocs"]["planes_per_level"]
    ([64, 64], [4, 4])

    References
    ----------
    Jouppi et al., ISCA 2023 (TPU v4); Liu et al., SIGCOMM 2023 (Lightwave
    Fabrics); Canakci et al., HotOS 2025 (Lite-GPUs joined by CPO and OCS).
    """
    n = checks.integer("n_gpus", n_gpus, lo=2)
    d = checks.integer("ports_per_gpu", ports_per_gpu, lo=1)
    g = hardware.gpu(gpu)
    b = checks.positive("port_Bps", g.network_Bps / d if port_Bps is None else port_Bps)
    part = ocs_part(n, d, ocs=ocs, link=link, port_Bps=b, domain_shape=domain_shape,
                    planes_per_level=planes_per_level)
    lk, o = part["link"], part["ocs"]
    u = part["n_ocs"]
    onode = n + part["unit"]
    src = np.concatenate([part["gpu"], onode])
    dst = np.concatenate([onode, part["gpu"]])
    m = len(part["gpu"])
    lat = np.concatenate([np.full(m, lk.latency_s + o.insertion_latency_s), np.full(m, lk.latency_s)])
    kind = np.array(["gpu"] * n + ["ocs"] * u, dtype=object)
    node_attrs = {
        "model": np.array([g.name] * n + [o.name] * u),
        "plane": np.concatenate([np.full(n, -1, dtype=np.int64), part["ocs_plane"]]),
        "level": np.concatenate([np.full(n, -1, dtype=np.int64), part["ocs_level"]]),
    }
    edge_attrs = {"link": np.full(2 * m, lk.name), "plane": np.concatenate([part["plane"], part["plane"]])}
    om = part["meta"]
    meta = {"generator": "ocs_fabric", "n_gpus": n, "ports_per_gpu": d, "gpu": g.name, "ocs_model": o.name,
            "link": lk.name, "port_Bps": b, "ocs": om}
    return Fabric(kind, src, dst, b, lat, lk.tech, gpus=np.arange(n), name=name or f"ocs-{n}x{d}",
                  meta=meta, node_attrs=node_attrs, edge_attrs=edge_attrs)


def __getattr__(name: str):
    """Resolve the circuit names that moved to :mod:`ocsnet.topology.circuits`."""
    if name in _CIRCUIT_NAMES:
        from . import circuits
        return getattr(circuits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
