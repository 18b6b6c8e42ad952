"""Fabric-aware collective algorithms: which apply to a group, their programs, and ``auto``.

Stage 4 of the pipeline (collectives).  Given a fabric and the GPU ranks of a
group, :func:`fabric_program` builds the :class:`~ocsnet.collectives.program.Program`
of an algorithm that needs the fabric:

=============  ================================================  ==========================================
algorithm      kinds                                             applies to
=============  ================================================  ==========================================
torus          all-reduce, reduce-scatter, all-gather,            a group that is a block of a torus fabric
               all-to-all                                         (sub-torus, ring or line)
multi-ring     all-reduce, reduce-scatter, all-gather             a clique of direct links, an OCS fabric
                                                                  (``d`` ports: ``d`` rings), a torus block
hierarchical   all-reduce, reduce-scatter, all-gather             a group spread evenly over >= 2 locality
                                                                  domains (NVLink node, server, leaf, ...)
synthesized    all-reduce, reduce-scatter, all-gather             a group joined by direct GPU links, small
                                                                  enough for the LP (:mod:`.synth`)
=============  ================================================  ==========================================

:func:`choose` picks the fastest algorithm that applies (fabric-aware and
fabric-blind) by :func:`estimate_s`, the per-step time of a fluid model on
the fabric's links: flows between directly linked GPUs load their link (exact
under max-min fairness, a flow's only bottleneck is its link); any other flow
is charged at its source's and destination's total link capacity.  The
evaluation and the benchmarks time the chosen steps with the flow model of
:mod:`ocsnet.flow`.  See docs/design.md, "Fabric-aware collectives".
"""

from __future__ import annotations

import weakref

import numpy as np

from ..errors import WorkloadError
from ..fabric import Fabric
from ..topology.shape import TorusBlock, is_clique, torus_block
from .algorithms import FABRIC_ALGORITHMS
from .program import Program
from .rings import hierarchical_program, multi_ring_program, walecki_cycles
from .torus import torus_a2a_program, torus_program

#: ``auto`` considers the synthesized algorithm only up to this LP size (variables).
AUTO_LP_VARIABLES = 40_000

__all__ = ["FABRIC_ALGORITHMS", "AUTO_LP_VARIABLES", "applies", "fabric_program", "choose", "estimate_s", "group_ranks",
           "ocs_info", "ring_orders"]



def group_ranks(fabric: Fabric, ranks, group_size: int) -> np.ndarray:
    """The group's GPU ranks as an int array, checked against the fabric."""
    if ranks is None:
        ranks = np.arange(group_size)
    r = np.asarray(ranks)
    if r.ndim != 1 or (r.size and not np.issubdtype(r.dtype, np.integer)):
        raise WorkloadError(f"ranks: expected a list of {group_size} GPU ranks, got {ranks!r:.80}")
    r = r.astype(np.int64)
    if len(r) != group_size:
        raise WorkloadError(f"ranks: {len(r)} GPU ranks given for group_size = {group_size}")
    if len(r) and (r.min() < 0 or r.max() >= fabric.n_gpus):
        raise WorkloadError(f"ranks: GPU rank out of range, allowed [0, {fabric.n_gpus - 1}] on {fabric.name!r}")
    if len(np.unique(r)) != len(r):
        raise WorkloadError("ranks: a GPU rank appears twice in the group")
    return r


def ocs_info(fabric: Fabric) -> dict | None:
    """``{"ports_per_gpu", "circuit_Bps", "circuit_latency_s"}`` of an OCS fabric, else None."""
    o = getattr(fabric, "ocs", None)
    if o is not None and not isinstance(o, dict):
        return {"ports_per_gpu": int(o.ports_per_gpu), "circuit_Bps": float(o.circuit_Bps),
                "circuit_latency_s": float(getattr(o, "circuit_latency_s", 0.0)),
                "reconfig_delay_s": float(getattr(o, "reconfig_delay_s", 0.0))}
    m = fabric.meta
    om = m.get("ocs")
    if not isinstance(om, dict) or m.get("generator") != "ocs_fabric":
        return None
    return {"ports_per_gpu": int(om["ports_per_gpu"]), "circuit_Bps": float(om["circuit_Bps"]),
            "circuit_latency_s": float(om.get("circuit_latency_s", 0.0)),
            "reconfig_delay_s": float(om.get("reconfig_delay_s", 0.0))}


def _domains(fabric: Fabric, ranks: np.ndarray) -> tuple[str, np.ndarray] | None:
    """(level name, members (G, L) as group positions) of the closest locality level splitting the group evenly."""
    from ..workload.parallel import gpu_domains

    for name, lab in gpu_domains(fabric):
        if name == "fabric":
            continue
        g = lab[ranks]
        u, inv, cnt = np.unique(g, return_inverse=True, return_counts=True)
        if len(u) < 2 or cnt.min() != cnt.max() or cnt[0] < 2:
            continue
        order = np.lexsort((np.arange(len(ranks)), inv))
        return name, order.reshape(len(u), int(cnt[0]))
    return None


def ring_orders(fabric: Fabric, ranks: np.ndarray, block: TorusBlock | None = None) -> tuple[list, str]:
    """Directed rings (cyclic orders of group positions) for multi-ring, and where they come from.

    Raises WorkloadError naming why multi-ring does not apply.
    """
    p = len(ranks)
    if p < 3:
        raise WorkloadError(f"multi-ring: a group of {p} GPUs has one ring at most; use ring")
    oi = ocs_info(fabric)
    if oi is not None or is_clique(fabric, ranks):
        cyc = walecki_cycles(p)
        rings = [c for c in cyc] + [c[::-1] for c in cyc]
        rings = [rings[i // 2] if i % 2 == 0 else rings[len(cyc) + i // 2] for i in range(len(rings))]
        if oi is not None:
            d = oi["ports_per_gpu"]
            if d < 1:
                raise WorkloadError("multi-ring: the OCS fabric has no port per GPU")
            rings = rings[:d] if rings else [list(range(p))]
            return rings, f"{len(rings)} directed rings of circuits ({d} ports per GPU)"
        return rings, f"{len(rings)} directed Hamiltonian rings of the clique"
    if block is None:
        block = torus_block(fabric, ranks)
    if block is not None:
        # a Hamiltonian cycle of unit hops through the block: the reflected (boustrophedon) order
        from ..topology.shape import block_coords
        X = block_coords(block.shape)
        key = np.zeros(p, dtype=np.int64)
        flip = np.zeros(p, dtype=np.int64)
        for i in range(len(block.shape) - 1, -1, -1):
            m = block.shape[i]
            c = np.where(flip % 2 == 1, m - 1 - X[:, i], X[:, i])
            key = key * m + c
            flip = flip + X[:, i]
        order = block.pos[np.argsort(key)].tolist()
        return [order, order[::-1]], "the block's snake ring in both directions"
    links = np.bincount(fabric.gpu_rank[fabric.src][fabric.gpu_rank[fabric.src] >= 0], minlength=fabric.n_gpus)
    raise WorkloadError(f"multi-ring: the group of {p} GPUs on {fabric.name!r} is not a clique, an OCS group or "
                        f"a torus block (GPUs have {int(links[ranks].min())} links); use ring")


def applies(kind: str, algorithm: str, fabric: Fabric, ranks: np.ndarray) -> str | None:
    """None if the fabric-aware algorithm applies to the group, else the reason it does not."""
    if algorithm not in FABRIC_ALGORITHMS.get(kind, ()):
        return f"{algorithm} does not implement {kind}"
    try:
        _build(kind, algorithm, fabric, ranks, 0.0, symbolic=False, check_only=True)
    except WorkloadError as e:
        return str(e)
    return None


def _build(kind, algorithm, fabric, ranks, nbytes, *, symbolic, check_only=False):
    p = len(ranks)
    if algorithm == "torus":
        block = torus_block(fabric, ranks)
        if block is None:
            what = "is not a torus" if fabric.meta.get("generator") != "torus" else \
                "is not a block (sub-torus, ring or line) of the torus"
            raise WorkloadError(f"torus: the group of {p} GPUs (ranks {_short(ranks)}) on {fabric.name!r} {what}")
        if check_only:
            return None
        if kind == "all-to-all":
            return torus_a2a_program(block, nbytes, symbolic=symbolic)
        return torus_program(kind, block, nbytes, caps=_class_caps(fabric, ranks, block), symbolic=symbolic)
    if algorithm == "multi-ring":
        rings, _ = ring_orders(fabric, ranks)
        return None if check_only else multi_ring_program(kind, p, nbytes, rings, symbolic=symbolic)
    if algorithm == "hierarchical":
        dom = _domains(fabric, ranks)
        if dom is None:
            raise WorkloadError(f"hierarchical: the group of {p} GPUs on {fabric.name!r} does not span two or more "
                                "locality domains (NVLink node, server, leaf switch, ...) with equal GPUs in each")
        return None if check_only else hierarchical_program(kind, dom[1], nbytes, symbolic=symbolic)
    if algorithm == "synthesized":
        from .synth import check_synthesized, synthesized_program
        check_synthesized(fabric, ranks)
        return None if check_only else synthesized_program(kind, fabric, ranks, nbytes, symbolic=symbolic)
    raise AssertionError(algorithm)


def _short(ranks) -> str:
    r = list(map(int, ranks[:6]))
    return ", ".join(map(str, r)) + (", ..." if len(ranks) > 6 else "")


def _class_caps(fabric: Fabric, ranks: np.ndarray, block: TorusBlock) -> dict:
    """Link capacity (bytes/s) of every link class of a block (the slowest link of the class)."""
    from ..topology.shape import block_coords
    X = block_coords(block.shape)
    st = np.concatenate([[1], np.cumprod(block.shape[:-1])]).astype(np.int64)
    gpus = fabric.gpus
    caps = {}
    for i, m in enumerate(block.shape):
        for sigma in (1, -1):
            nxt = np.arange(block.size) + (((X[:, i] + sigma) % m) - X[:, i]) * st[i]
            e = fabric.edge_ids(gpus[ranks[block.pos]], gpus[ranks[block.pos[nxt]]])
            c = fabric.capacity_Bps[e[e >= 0]]
            key = (i, sigma) if (block.wrap[i] and m >= 3) else (i, 0)
            v = float(c.min()) if len(c) else 0.0
            caps[key] = min(caps.get(key, np.inf), v) if v > 0 else caps.get(key, 1.0)
    return caps


def fabric_program(kind: str, algorithm: str, fabric: Fabric, ranks, nbytes: float, *,
                   symbolic: bool = False) -> Program:
    """The program of a fabric-aware algorithm on the group ``ranks`` of ``fabric``.

    Raises
    ------
    WorkloadError
        The algorithm does not apply: the message names the algorithm, the
        group and why.
    """
    if not isinstance(fabric, Fabric):
        raise WorkloadError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    if algorithm not in FABRIC_ALGORITHMS.get(kind, ()):
        raise WorkloadError(f"algorithm: {algorithm!r} is not a fabric-aware algorithm for {kind}, "
                            f"supported: {', '.join(FABRIC_ALGORITHMS.get(kind, ())) or 'none'}")
    ranks = np.asarray(ranks, dtype=np.int64)
    return _build(kind, algorithm, fabric, ranks, float(nbytes), symbolic=symbolic)


# ---- choosing -----------------------------------------------------------------------
def _gpu_link_caps(fabric: Fabric):
    gr = fabric.gpu_rank
    s = gr[fabric.src]
    d = gr[fabric.dst]
    out = np.bincount(s[s >= 0], weights=fabric.capacity_Bps[s >= 0], minlength=fabric.n_gpus)
    inn = np.bincount(d[d >= 0], weights=fabric.capacity_Bps[d >= 0], minlength=fabric.n_gpus)
    return out, inn


# Hop counts from a GPU to every GPU, per fabric (weak keys: they go with the fabric).
_HOPS: "weakref.WeakKeyDictionary[Fabric, dict]" = weakref.WeakKeyDictionary()


def _hops(fabric: Fabric, s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Hop counts between GPU ranks: closed form on a torus, else breadth-first search from the sources."""
    from ..topology.shape import block_coords, torus_dims
    td = torus_dims(fabric)
    if td is not None:
        dims, wrap = td
        X = block_coords(dims)
        diff = np.abs(X[s] - X[d])
        if wrap:
            diff = np.minimum(diff, np.asarray(dims)[None, :] - diff)
        return diff.sum(axis=1).astype(float)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path
    memo = _HOPS.get(fabric)
    if memo is None:
        memo = _HOPS[fabric] = {}
    us, inv = np.unique(s, return_inverse=True)
    todo = [int(u) for u in us if int(u) not in memo]
    if todo:
        n = fabric.n_nodes
        g = sp.csr_matrix((np.ones(fabric.n_edges), (fabric.src, fabric.dst)), shape=(n, n))
        dist = shortest_path(g, directed=True, unweighted=True, indices=fabric.gpus[todo])[:, fabric.gpus]
        for u, row in zip(todo, dist):
            memo[u] = np.where(np.isfinite(row), row, 0.0)
    rows = np.stack([memo[int(u)] for u in us])
    return rows[inv, d]


def estimate_s(fabric: Fabric, ranks: np.ndarray, steps, *, reconfig_delay_s: float | None = None) -> float:
    """Estimated time of compact steps of the group ``ranks`` on the fabric, seconds.

    Per step: flows between directly linked GPUs load their link (bytes over
    capacity, the max-min fluid time of single-hop flows); every other flow
    is charged at its source's total outgoing and its destination's total
    incoming link capacity, and all of them together at their byte-hops over
    the capacity of the links between the group's GPUs and of every link that
    touches a switch; the step takes the largest of these plus the
    largest one-hop latency of a direct flow, or the largest GPU link
    latency times 2 for others.  On an OCS fabric a step is charged at the
    most bytes a rank sends or receives over ``ports * circuit_Bps``, or its
    largest message over the circuits a pair can get (``ports // peers``),
    plus one reconfiguration delay (``reconfig_delay_s``, default the
    fabric's) per extra configuration a rank with more peers than ports
    needs inside the step, and one whenever a step's pairs differ from the
    previous step's (consecutive steps leave no compute gap to hide it).
    """
    oi = ocs_info(fabric)
    gpus = fabric.gpus
    if oi is not None:
        d = oi["ports_per_gpu"]
        cap = d * oi["circuit_Bps"]
        lat = oi["circuit_latency_s"]
        delay = oi["reconfig_delay_s"] if reconfig_delay_s is None else float(reconfig_delay_s)
        total = 0.0
        seen: dict[tuple, float] = {}
        p = len(ranks)
        prev = None
        for src, dst, nb in steps:
            key = (id(src), id(dst), id(nb))
            t = seen.get(key)
            if t is None:
                load = max(np.bincount(src, weights=nb, minlength=p).max(), np.bincount(dst, weights=nb, minlength=p).max())
                # a rank with k peers in a step can hold at most ports circuits spread over them
                peers = int(max(np.bincount(src, minlength=p).max(), np.bincount(dst, minlength=p).max()))
                per = max(1, d // max(peers, 1))
                extra = -(-peers // d) - 1
                t = lat + max(load / cap, float(nb.max()) / (per * oi["circuit_Bps"])) + extra * delay
                seen[key] = t
            pairs = (src.tobytes(), dst.tobytes())
            if prev is not None and pairs != prev:
                total += delay
            prev = pairs
            total += t
        return total
    out_cap, in_cap = _gpu_link_caps(fabric)
    # links the group's multi-hop flows can spread over: between its GPUs, or touching a switch
    inside = np.ones(fabric.n_nodes, dtype=bool)
    inside[fabric.gpus] = False
    inside[fabric.gpus[ranks]] = True
    spread_cap = float(fabric.capacity_Bps[inside[fabric.src] & inside[fabric.dst]].sum())
    lat_max = float(fabric.latency_s.max()) if fabric.n_edges else 0.0
    total = 0.0
    cache: dict[tuple, float] = {}
    for src, dst, nb in steps:
        key = (id(src), id(dst), id(nb))
        t = cache.get(key)
        if t is None:
            u, v = gpus[ranks[src]], gpus[ranks[dst]]
            e = fabric.edge_ids(u, v)
            direct = e >= 0
            t = 0.0
            if direct.any():
                load = np.bincount(e[direct], weights=nb[direct], minlength=fabric.n_edges)
                t = float((load / fabric.capacity_Bps).max()) + float(fabric.latency_s[e[direct]].max())
            if (~direct).any():
                s_r, d_r, w = ranks[src[~direct]], ranks[dst[~direct]], nb[~direct]
                # byte-hops over the capacity of every link: congestion spread evenly at best
                spread = float((w * _hops(fabric, s_r, d_r)).sum()) / max(spread_cap, 1e-300)
                so = np.bincount(s_r, weights=w, minlength=fabric.n_gpus)
                di = np.bincount(d_r, weights=w, minlength=fabric.n_gpus)
                with np.errstate(divide="ignore", invalid="ignore"):
                    tt = max(float(np.nanmax(np.where(so > 0, so / out_cap, 0.0))),
                             float(np.nanmax(np.where(di > 0, di / in_cap, 0.0))))
                t = max(t, max(tt, spread) + 2 * lat_max)
            cache[key] = t
        total += t
    return total


def choose(kind: str, fabric: Fabric, ranks, nbytes: float, *, chunks: int = 1) -> str:
    """The algorithm :func:`~ocsnet.collectives.expand` uses for ``algorithm="auto"``.

    The fastest by :func:`estimate_s` among the fabric-aware algorithms that
    apply and the fabric-blind ones (ties: the earlier in
    ``FABRIC_ALGORITHMS[kind] + ALGORITHMS[kind]``).  Never raises for a
    valid group: with nothing fabric-aware applicable it picks among the
    fabric-blind algorithms.
    """
    from .algorithms import ALGORITHMS, PIPELINED, expand_blind

    ranks = np.asarray(ranks, dtype=np.int64)
    p = len(ranks)
    if p <= 1:
        return ALGORITHMS[kind][0]
    best, best_t = None, np.inf
    from .synth import lp_size
    for alg in FABRIC_ALGORITHMS.get(kind, ()):
        if applies(kind, alg, fabric, ranks) is not None:
            continue
        if alg == "synthesized" and lp_size(fabric, ranks) > AUTO_LP_VARIABLES:
            continue              # the LP takes seconds there; auto stays fast
        t = estimate_s(fabric, ranks, fabric_program(kind, alg, fabric, ranks, nbytes).steps())
        if t < best_t * (1 - 1e-9):
            best, best_t = alg, t
    for alg in ALGORITHMS[kind]:
        if kind == "reduce-scatter" or kind == "all-gather":
            if alg == "rhd" and p & (p - 1):
                continue
        if alg == "direct" and p > 1024:
            continue          # p^2 pairs in one step: never the fastest at that size
        k = chunks if (kind, alg) in PIPELINED else 1
        t = estimate_s(fabric, ranks, expand_blind(kind, p, nbytes, alg, k))
        if t < best_t * (1 - 1e-9):
            best, best_t = alg, t
    return best if best is not None else ALGORITHMS[kind][0]

