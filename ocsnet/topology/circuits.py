"""Circuits on an OCS fabric: which GPU pairs can hold one, and the logical fabric of a circuit matrix.

Stage 3 of the pipeline, the step after :mod:`ocsnet.topology.optical`, which
wires GPUs to OCS planes (:func:`~ocsnet.topology.optical.ocs_fabric`, or the
OCS part of :func:`~ocsnet.topology.hybrid.hybrid`).  This module holds:

* :func:`pair_level` and :func:`allowed_pairs`: which GPU pairs the wiring can
  join by a circuit (two GPUs whose circuit-domain coordinates differ in
  exactly one dimension ``l``, through a level-``l`` plane);
* the checks of a circuit matrix ``C`` (docs/design.md, "The OCS
  schedule"): integer, non-negative, zero diagonal, every row and column sum at
  most ``ports_per_gpu`` and, level by level, at most ``planes_per_level``
  (exact by Konig's theorem inside each line's OCS units; see
  :mod:`ocsnet.topology.optical`);
* :func:`apply_circuits`, which turns ``C`` into the *logical* GPU-to-GPU
  fabric that the flow model routes on.

References
----------
Jouppi et al., "TPU v4: An optically reconfigurable supercomputer for machine
learning with hardware support for embeddings", ISCA 2023.
Ahn et al., "HyperX: Topology, routing, and packaging of efficient
large-scale networks", SC 2009.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import FabricError
from ..fabric import Fabric
from ..ocsinfo import OCSInfo
from .optical import concat_attrs, grid_strides

__all__ = ["apply_circuits", "allowed_pairs", "pair_level", "CIRCUIT_LINK"]

#: Catalog link used for the logical circuit edges (passive fibre through the OCS;
#: the transceivers are priced on the physical GPU<->OCS edges).
CIRCUIT_LINK = "fiber-circuit"

# Closed-form keys that describe one physical fabric and no longer hold once circuits are applied.
_CLOSED_FORMS = ("diameter_hops", "avg_hops", "bisection_Bps")


def _ocs_info(fabric: Fabric) -> OCSInfo:
    if not isinstance(fabric, Fabric):
        raise FabricError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    if fabric.ocs is None:
        raise FabricError(f"fabric {fabric.name!r}: has no optical circuit switch (fabric.ocs is None); "
                          "build it with ocs_fabric or hybrid")
    return fabric.ocs


def pair_level(fabric: Fabric, src, dst) -> np.ndarray:
    """For GPU rank pairs ``(src[k], dst[k])``: the circuit level joining them, or -1 if none can.

    A circuit can join two different GPUs iff their circuit-domain coordinates
    differ in exactly one dimension ``l``; it then uses a level-``l`` plane.

    Examples
    --------
    >>> from ocsnet.topology.optical import ocs_fabric
    >>> f = ocs_fabric(12, 2, domain_shape=[3, 4], planes_per_level=[1, 1])
    >>> pair_level(f, [0, 0, 0], [1, 3, 4]).tolist()     # ranks 1: same line of dim 0; 3: of dim 1
    [0, 1, -1]
    """
    shape = _ocs_info(fabric).domain_shape
    src = np.atleast_1d(np.asarray(src, dtype=np.int64))
    dst = np.atleast_1d(np.asarray(dst, dtype=np.int64))
    if len(shape) == 1:
        return np.where(src != dst, 0, -1)
    strides = grid_strides(shape)
    shp = np.asarray(shape, dtype=np.int64)
    diff = (src[:, None] // strides) % shp != (dst[:, None] // strides) % shp
    one = diff.sum(axis=1) == 1
    return np.where(one, np.argmax(diff, axis=1), -1)


def allowed_pairs(fabric: Fabric, src=None, dst=None):
    """Which GPU pairs can hold a circuit.

    Parameters
    ----------
    fabric : Fabric
        A fabric with OCS planes (:func:`~ocsnet.topology.optical.ocs_fabric` or
        :func:`~ocsnet.topology.hybrid.hybrid`).
    src, dst : array of int, optional
        GPU ranks.  If given, return a boolean array for these pairs.

    Returns
    -------
    numpy.ndarray of bool, or scipy.sparse.csr_matrix of bool
        Without ``src``/``dst``: the ``N x N`` boolean CSR matrix of allowed
        pairs (zero diagonal).  When ``fabric.ocs.all_to_all`` is true it
        is every off-diagonal pair; prefer the flag to materializing it.

    Examples
    --------
    >>> from ocsnet.topology.optical import ocs_fabric
    >>> f = ocs_fabric(12, 2, domain_shape=[3, 4], planes_per_level=[1, 1])
    >>> allowed_pairs(f).getnnz(axis=1)[:3].tolist()   # 2 peers on its dim-0 line, 3 on its dim-1 line
    [5, 5, 5]
    """
    if src is not None or dst is not None:
        if src is None or dst is None:
            raise FabricError("allowed_pairs: give both src and dst, or neither")
        return pair_level(fabric, src, dst) >= 0
    n = fabric.n_gpus
    shape = _ocs_info(fabric).domain_shape
    strides = grid_strides(shape)
    r = np.arange(n, dtype=np.int64)
    cols = []
    for s, st in zip(shape, strides):
        c = (r // st) % s
        others = (c[:, None] + np.arange(1, s)) % s          # the other s-1 coordinates on the line
        cols.append(r[:, None] + (others - c[:, None]) * st)
    deg = sum(s - 1 for s in shape)
    idx_dtype = np.int32 if n < 2**31 else np.int64
    indices = np.sort(np.concatenate(cols, axis=1), axis=1).astype(idx_dtype).ravel()
    indptr = np.arange(0, n * deg + 1, deg, dtype=idx_dtype)
    return sp.csr_matrix((np.ones(n * deg, dtype=bool), indices, indptr), shape=(n, n))


def _circuit_triplets(circuits, n: int):
    """Validate shape and entries of a circuit matrix; return (i, j, count) of the non-zeros."""
    shape = getattr(circuits, "shape", None)
    if sp.issparse(circuits):
        if shape != (n, n):
            raise FabricError(f"circuits: shape {shape} does not match the fabric's {n} GPUs, expected ({n}, {n})")
        c = sp.coo_matrix(circuits)
        c.sum_duplicates()
        i, j, v = c.row.astype(np.int64), c.col.astype(np.int64), c.data
    else:
        a = np.asarray(circuits)
        if a.ndim != 2 or a.shape != (n, n):
            raise FabricError(f"circuits: shape {a.shape} does not match the fabric's {n} GPUs, expected ({n}, {n})")
        i, j = np.nonzero(a)
        v = a[i, j]
    if v.dtype.kind not in "biuf":
        raise FabricError(f"circuits: entries must be integer circuit counts, got dtype {v.dtype}")
    v = v.astype(np.float64) if v.dtype.kind == "f" else v.astype(np.int64)
    if v.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(v) | (v != np.round(v)))
        if len(bad):
            k = bad[0]
            raise FabricError(f"circuits[{i[k]}, {j[k]}] = {float(v[k])!r} is not an integer number of circuits")
    neg = np.flatnonzero(v < 0)
    if len(neg):
        k = neg[0]
        raise FabricError(f"circuits[{i[k]}, {j[k]}] = {v[k]:g} is negative, allowed [0, ports_per_gpu]")
    keep = v != 0
    i, j, v = i[keep], j[keep], v[keep].astype(np.int64)
    diag = np.flatnonzero(i == j)
    if len(diag):
        k = diag[0]
        raise FabricError(f"circuits[{i[k]}, {i[k]}] = {v[k]}: the diagonal must be zero (GPU {i[k]} to itself)")
    return i, j, v


def _check_sums(i, j, v, n, budget, what, where):
    for axis, idx in (("row", i), ("column", j)):
        sums = np.bincount(idx, weights=v, minlength=n)
        over = np.flatnonzero(sums > budget)
        if len(over):
            k = int(over[0])
            dirn = "from" if axis == "row" else "to"
            raise FabricError(f"circuits: {axis} {k} (circuits {dirn} GPU {k}{where}) sums to {int(sums[k])}, "
                              f"allowed at most {what} = {budget}")


def apply_circuits(fabric: Fabric, circuits) -> Fabric:
    """The logical fabric of a circuit configuration: GPU-to-GPU circuit edges.

    Parameters
    ----------
    fabric : Fabric
        A physical fabric with OCS planes (:func:`~ocsnet.topology.optical.ocs_fabric`, or a hybrid whose
        packet part is kept).
    circuits : array_like or scipy.sparse matrix, shape (N, N)
        ``C[i, j]`` circuits from GPU rank ``i`` to rank ``j``: non-negative
        integers, zero diagonal, every row and column sum at most
        ``ports_per_gpu``; with several circuit levels, a circuit may only join
        GPUs that share a domain line, and each level's row and column sums are
        at most its ``planes_per_level``.

    Returns
    -------
    Fabric
        The OCS nodes and GPU<->OCS edges are removed; every other node and edge
        is kept; edge ``i -> j`` has capacity ``C[i, j] * circuit_Bps``, tech
        ``circuit``, latency ``fabric.ocs.circuit_latency_s`` (link +
        OCS insertion + link) and edge attributes ``link = "fiber-circuit"``
        and ``circuits = C[i, j]``.  ``meta["circuits"]`` counts them.

    Raises
    ------
    FabricError
        The fabric has no OCS, or the matrix has the wrong shape, a negative,
        non-integer or non-zero diagonal entry, a row or column over the port
        budget, or a circuit the wiring cannot make; the message names the
        entry, row or column.  A circuit parallel to a direct GPU-to-GPU link
        of a hybrid's packet part (e.g. a torus) is refused too: a Fabric holds
        one edge per ordered pair.

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.topology.optical import ocs_fabric
    >>> f = ocs_fabric(8, 2)
    >>> ring = np.roll(np.eye(8, dtype=int), 1, axis=1)      # i -> i+1
    >>> logical = apply_circuits(f, ring + ring.T)            # bidirectional ring
    >>> logical.n_nodes, logical.n_edges
    (8, 16)
    """
    om = _ocs_info(fabric)
    if fabric.meta.get("logical"):
        raise FabricError(f"fabric {fabric.name!r}: circuits are already applied; apply them to the physical fabric")
    n = fabric.n_gpus
    d = om.ports_per_gpu
    i, j, v = _circuit_triplets(circuits, n)
    _check_sums(i, j, v, n, d, "ports_per_gpu", "")
    lvl = pair_level(fabric, i, j)
    bad = np.flatnonzero(lvl < 0)
    if len(bad):
        k = bad[0]
        raise FabricError(f"circuits[{i[k]}, {j[k]}] = {v[k]}: GPUs {i[k]} and {j[k]} share no circuit domain "
                          f"(domain_shape {list(om.domain_shape)}); the wiring cannot join them directly")
    ppl = om.planes_per_level
    if len(ppl) > 1:
        for level, budget in enumerate(ppl):
            sel = lvl == level
            _check_sums(i[sel], j[sel], v[sel], n, int(budget), f"planes_per_level[{level}]",
                        f" on circuit level {level}")
    keep_node = fabric.kind != "ocs"
    new_index = np.cumsum(keep_node) - 1
    keep_edge = keep_node[fabric.src] & keep_node[fabric.dst]
    gnode = new_index[fabric.gpus]
    k_old = int(keep_edge.sum())
    src = np.concatenate([new_index[fabric.src[keep_edge]], gnode[i]])
    dst = np.concatenate([new_index[fabric.dst[keep_edge]], gnode[j]])
    cap = np.concatenate([fabric.capacity_Bps[keep_edge], v * om.circuit_Bps])
    lat = np.concatenate([fabric.latency_s[keep_edge], np.full(len(v), om.circuit_latency_s)])
    tech = np.concatenate([fabric.tech[keep_edge], np.full(len(v), "circuit", dtype=object)])
    old_attrs = {k: a[keep_edge] for k, a in fabric.edge_attrs.items() if k != "plane"}
    old_attrs["circuits"] = np.zeros(k_old, dtype=np.int64)
    new_attrs = {"link": np.full(len(v), CIRCUIT_LINK), "circuits": v}
    edge_attrs = concat_attrs([(old_attrs, k_old), (new_attrs, len(v))])
    node_attrs = {k: a[keep_node] for k, a in fabric.node_attrs.items() if k not in ("plane", "level")}
    meta = {k: val for k, val in fabric.meta.items() if k not in _CLOSED_FORMS}
    meta["logical"] = True
    meta["circuits"] = {"n_circuits": int(v.sum()), "n_pairs": int(len(v))}
    labels = None if fabric.labels is None else [fabric.labels[x] for x in np.flatnonzero(keep_node)]
    kind = fabric.kind[keep_node]
    try:
        return Fabric(kind, src, dst, cap, lat, tech, gpus=gnode, name=f"{fabric.name}+circuits", meta=meta,
                      node_attrs=node_attrs, edge_attrs=edge_attrs, labels=labels, ocs=om)
    except FabricError as e:
        if "appears twice" in str(e):
            raise FabricError(f"circuits: a circuit duplicates a direct GPU-to-GPU link of the packet part ({e})") from None
        raise
