"""Lower bounds on the time of a collective on a fabric.

Stage 4 of the pipeline (collectives).  :func:`lower_bound_s` is the larger
of three bounds that hold for every algorithm (fabric-blind, fabric-aware,
synthesized) in the fluid model of :mod:`ocsnet.flow`:

- **injection**: every rank must send (and receive) at least
  ``f * nbytes`` bytes, ``f`` the bus-bandwidth factor (all-reduce
  ``2 (p-1)/p``, Patarasuk and Yuan 2009; reduce-scatter, all-gather and
  all-to-all ``(p-1)/p``), over the capacity of all its links at once (on an
  OCS fabric, ``ports * circuit_Bps``);
- **cut**: for a split of the group into A and B, the bytes that must cross
  from A to B (all-reduce ``nbytes``: every byte of B's result depends on A;
  reduce-scatter ``|B| nbytes / p``; all-gather ``|A| nbytes / p``;
  all-to-all ``|A| |B| nbytes / p``) over the maximum flow from A's GPUs to
  B's through the fabric (the capacity of the weakest cut between them).
  Splits tried: each locality domain against the rest of the group, and on a
  torus block the two halves along each dimension;
- **lp** (optional, all-gather and reduce-scatter on small fabrics): the
  optimum of the broadcast LP of :mod:`ocsnet.collectives.synth`;
- **latency**: the lowest-latency path between the farthest pair of ranks
  (the result at B depends on A's data), over at most
  :data:`LATENCY_SOURCES` sources.

References
----------
P. Patarasuk, X. Yuan, "Bandwidth optimal all-reduce algorithms for clusters
of workstations", JPDC 69(2), 2009.  See docs/design.md, "Fabric-aware collectives".
"""

from __future__ import annotations

import numpy as np

from ..errors import WorkloadError
from ..fabric import Fabric
from ..topology.shape import torus_block
from .cost import bus_bandwidth_factor
from .steps import check_float

__all__ = ["lower_bound_s", "lower_bounds", "BOUND_KINDS", "LATENCY_SOURCES"]

#: Collectives with a lower bound.
BOUND_KINDS = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all")
#: Sources of the latency bound's shortest paths (a subset still gives a valid bound).
LATENCY_SOURCES = 64
#: Splits of the cut bound from locality domains (each domain against the rest), at most.
MAX_DOMAIN_SPLITS = 16


def _cut_bytes(kind: str, a: int, b: int, p: int, N: float) -> float:
    if kind == "all-reduce":
        return N
    if kind == "reduce-scatter":
        return b * N / p
    if kind == "all-gather":
        return a * N / p
    return a * b * N / p


def _max_flow(fabric: Fabric, A: np.ndarray, B: np.ndarray) -> float:
    """Maximum flow (bytes/s) from the GPUs A to the GPUs B (scipy's maximum_flow on scaled integers)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import maximum_flow

    n = fabric.n_nodes
    cap = fabric.capacity_Bps
    scale = 1e6 / max(float(cap.min()), 1.0)             # the slowest link becomes 1e6 units
    big = int(min(cap.sum() * scale + 1, 2**62))
    if big > 2**31 - 1:
        scale *= (2**31 - 1) / big / 2
        big = 2**31 - 1
    s, t = n, n + 1
    gA, gB = fabric.gpus[A], fabric.gpus[B]
    src = np.concatenate([fabric.src, np.full(len(gA), s), gB])
    dst = np.concatenate([fabric.dst, gA, np.full(len(gB), t)])
    c = np.concatenate([np.maximum(np.floor(cap * scale), 1).astype(np.int64),
                        np.full(len(gA) + len(gB), big, dtype=np.int64)]).astype(np.int32)
    g = sp.csr_matrix((c, (src, dst)), shape=(n + 2, n + 2))
    g.sum_duplicates()
    return float(maximum_flow(g, s, t).flow_value) / scale


def _splits(fabric: Fabric, ranks: np.ndarray) -> list[np.ndarray]:
    """Boolean masks (True = side A) over the group positions."""
    from ..workload.parallel import gpu_domains

    p = len(ranks)
    out = []
    block = torus_block(fabric, ranks)
    if block is not None:
        from ..topology.shape import block_coords
        X = block_coords(block.shape)
        for i, m in enumerate(block.shape):
            side = np.zeros(p, dtype=bool)
            side[block.pos] = X[:, i] < m // 2
            out.append(side)
    for name, lab in gpu_domains(fabric):
        if name == "fabric":
            continue
        g = lab[ranks]
        u = np.unique(g)
        if len(u) < 2:
            continue
        for d in u[:MAX_DOMAIN_SPLITS]:
            out.append(g == d)
        break
    return out


def _gpu_caps(fabric: Fabric, ranks: np.ndarray):
    from .fabric_aware import ocs_info
    oi = ocs_info(fabric)
    if oi is not None:
        c = oi["ports_per_gpu"] * oi["circuit_Bps"]
        return np.full(len(ranks), c), np.full(len(ranks), c)
    gr = fabric.gpu_rank
    s, d = gr[fabric.src], gr[fabric.dst]
    out = np.bincount(s[s >= 0], weights=fabric.capacity_Bps[s >= 0], minlength=fabric.n_gpus)
    inn = np.bincount(d[d >= 0], weights=fabric.capacity_Bps[d >= 0], minlength=fabric.n_gpus)
    return out[ranks], inn[ranks]


def _latency(fabric: Fabric, ranks: np.ndarray) -> float:
    from .fabric_aware import ocs_info
    oi = ocs_info(fabric)
    if oi is not None:
        return oi["circuit_latency_s"]
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra

    n = fabric.n_nodes
    # zero-latency links still count: a tiny floor keeps them as edges for dijkstra
    w = np.maximum(fabric.latency_s, 1e-30)
    g = sp.csr_matrix((w, (fabric.src, fabric.dst)), shape=(n, n))
    idx = np.linspace(0, len(ranks) - 1, min(len(ranks), LATENCY_SOURCES)).astype(np.int64)
    dist = dijkstra(g, directed=True, indices=fabric.gpus[ranks[idx]])
    dd = dist[:, fabric.gpus[ranks]]
    dd = dd[np.isfinite(dd)]
    return float(dd.max()) if len(dd) else 0.0


def lower_bounds(kind: str, fabric: Fabric, ranks, nbytes: float, *, lp: bool = False) -> dict:
    """The bounds of :func:`lower_bound_s`: ``{"injection_s", "cut_s", "latency_s"}``.

    With ``lp=True``, all-gather and reduce-scatter on a small enough fabric
    also get ``"lp_s"``, the optimum of the broadcast LP of
    :func:`ocsnet.collectives.synth.lp_bound_s` (seconds of solver time).
    """
    if kind not in BOUND_KINDS:
        raise WorkloadError(f"kind: {kind!r} has no lower bound here, expected one of {', '.join(BOUND_KINDS)}")
    if not isinstance(fabric, Fabric):
        raise WorkloadError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    from .fabric_aware import group_ranks
    r = np.asarray(ranks) if ranks is not None else np.arange(fabric.n_gpus)
    r = group_ranks(fabric, r, len(r))
    N = check_float("nbytes", nbytes)
    p = len(r)
    if p <= 1:
        return {"injection_s": 0.0, "cut_s": 0.0, "latency_s": 0.0}
    f = bus_bandwidth_factor(kind, p) * N
    out, inn = _gpu_caps(fabric, r)
    if (out <= 0).any() or (inn <= 0).any():
        raise WorkloadError(f"ranks: a GPU of the group has no link on {fabric.name!r}")
    inj = f / float(min(out.min(), inn.min()))
    cut = 0.0
    if N > 0:
        from .fabric_aware import ocs_info
        if ocs_info(fabric) is None:
            for side in _splits(fabric, r):
                a = int(side.sum())
                if a == 0 or a == p:
                    continue
                for A, B, na, nb in ((side, ~side, a, p - a), (~side, side, p - a, a)):
                    fl = _max_flow(fabric, r[A], r[B])
                    if fl > 0:
                        cut = max(cut, _cut_bytes(kind, na, nb, p, N) / fl)
    lat = _latency(fabric, r)
    out = {"injection_s": inj, "cut_s": cut, "latency_s": lat}
    if lp and kind in ("all-gather", "reduce-scatter"):
        from .fabric_aware import ocs_info
        from .synth import lp_bound_s
        v = None if ocs_info(fabric) is not None else lp_bound_s(kind, fabric, r, N)
        if v is not None:
            out["lp_s"] = v
    return out


def lower_bound_s(kind: str, fabric: Fabric, ranks, nbytes: float, *, lp: bool = False) -> float:
    """A lower bound on the time of a collective of the group ``ranks`` on ``fabric``, seconds.

    The largest of the injection, cut and latency bounds (see the module
    notes); valid for every algorithm in the fluid flow model.

    Parameters
    ----------
    kind : {"all-reduce", "reduce-scatter", "all-gather", "all-to-all"}
    fabric : Fabric
    ranks : sequence of int or None
        The group's GPU ranks (None: every GPU of the fabric).
    nbytes : float
        Buffer size in the nccl-tests convention (:func:`ocsnet.collectives.expand`).
    lp : bool
        Also the broadcast LP bound (all-gather, reduce-scatter; small fabrics).

    Examples
    --------
    >>> from ocsnet.topology import torus
    >>> f = torus((4, 4, 4), gpu="lite-netboost")
    >>> round(lower_bound_s("all-reduce", f, None, 1e9) * 1e3, 3)    # 2 (63/64) GB over 6 links
    8.75
    """
    b = lower_bounds(kind, fabric, ranks, nbytes, lp=lp)
    return max(b.values())

