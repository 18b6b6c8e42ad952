"""Bisection bandwidth of a fabric: closed form, exact minimum balanced cut, rank-split bound.

Stage 3 of the pipeline (part of :mod:`ocsnet.topology.metrics`).

The bisection bandwidth is the minimum, over all ways of splitting the GPUs
into two halves of ``floor(N/2)`` and ``ceil(N/2)`` GPUs (switches placed on
either side as suits the cut), of the capacity of the directed edges from one
half to the other.  Edges touching an ``ocs`` node are left out: traffic cannot
transit an optical circuit switch without circuits.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import SpecError
from ..fabric import Fabric

__all__ = ["bisection", "bisection_Bps", "cut_Bps", "transit_mask", "EXACT_MAX_NODES", "EXACT_MAX_EDGES"]

# The exact minimum balanced cut is NP-hard; CP-SAT is offered up to this size.
# CP-SAT proves the balanced cut of a fat-tree of k=6 (99 nodes) in about a second;
# from about 200 nodes on it rarely proves optimality within a minute.
EXACT_MAX_NODES = 256
EXACT_MAX_EDGES = 2048
EXACT_TIME_LIMIT_S = 60.0
AUTO_EXACT_MAX_NODES = 128      # "auto" tries CP-SAT only up to this size ...
AUTO_TIME_LIMIT_S = 10.0        # ... and for this long


def transit_mask(fabric: Fabric) -> np.ndarray:
    """Directed edges that traffic may use: those touching no ``ocs`` node."""
    ocs = fabric.kind == "ocs"
    if not ocs.any():
        return np.ones(fabric.n_edges, dtype=bool)
    return ~(ocs[fabric.src] | ocs[fabric.dst])


def cut_Bps(fabric: Fabric, side) -> float:
    """Capacity of the usable directed edges from nodes with ``side`` true to nodes with ``side`` false."""
    side = np.asarray(side, dtype=bool)
    keep = transit_mask(fabric)
    cross = keep & side[fabric.src] & ~side[fabric.dst]
    return float(fabric.capacity_Bps[cross].sum())


def _symmetric(fabric: Fabric, keep: np.ndarray) -> bool:
    """True if every usable edge has a reverse edge of equal capacity."""
    rev = fabric.edge_ids(fabric.dst[keep], fabric.src[keep])
    if (rev < 0).any():
        return False
    return bool(np.allclose(fabric.capacity_Bps[rev], fabric.capacity_Bps[keep], rtol=1e-12, atol=0))


def _twins(fabric: Fabric, keep: np.ndarray):
    """Groups of nodes that are interchangeable in any cut.

    Nodes with the same neighbours over the same capacities (the GPUs of one
    leaf switch, the spines of a leaf-spine, the core switches of one group)
    differ in a cut only by how many of them sit in each half.  Groups are
    taken GPU groups first, then by size, skipping any that touches a group
    already taken (a group's neighbours must stay single nodes).  Returns a list
    of (members, out-edges, in-edges).
    """
    out: dict[int, list] = {}
    inn: dict[int, list] = {}
    for u, v, c in zip(fabric.src[keep].tolist(), fabric.dst[keep].tolist(), fabric.capacity_Bps[keep].tolist()):
        out.setdefault(u, []).append((v, c))
        inn.setdefault(v, []).append((u, c))
    isgpu = fabric.gpu_rank >= 0
    by_sig: dict[tuple, list] = {}
    for v in range(fabric.n_nodes):
        if v in out or v in inn:          # a GPU and a switch are never twins: only GPUs count for balance
            sig = (bool(isgpu[v]), tuple(sorted(out.get(v, []))), tuple(sorted(inn.get(v, []))))
            by_sig.setdefault(sig, []).append(v)
    cands = sorted((m for m in by_sig.values() if len(m) > 1), key=lambda m: (not isgpu[m[0]], -len(m), m[0]))
    taken: set = set()
    blocked: set = set()
    groups = []
    for members in cands:
        o, i = sorted(out.get(members[0], [])), sorted(inn.get(members[0], []))
        nbrs = {v for v, _ in o + i}
        if blocked.intersection(members) or taken.intersection(nbrs):
            continue
        groups.append((members, o, i))
        taken.update(members)
        blocked.update(members)
        blocked.update(nbrs)
    return groups


def _exact(fabric: Fabric, time_limit_s: float) -> dict:
    """Minimum balanced cut as a CP-SAT model.

    A Boolean ``x_v`` per node (1 = first half) and ``y_e >= x_u - x_v`` per
    directed edge e = (u, v), which then crosses from the first half; minimize
    the crossing capacity with ``floor(N/2)`` or ``ceil(N/2)`` GPUs in the first
    half.  Two reductions keep CP-SAT fast: a group of interchangeable nodes
    (:func:`_twins`) becomes one integer ``n_T`` (members in the first half),
    with the products ``n_T * x_v`` linearized exactly (McCormick); and with
    symmetric capacities one ``y`` per link suffices, the first half may hold
    exactly ``floor(N/2)`` GPUs and one switch may be fixed to it, since a cut
    and its mirror cost the same.
    """
    from ortools.sat.python import cp_model

    N, n = fabric.n_gpus, fabric.n_nodes
    keep = transit_mask(fabric)
    sym = _symmetric(fabric, keep)
    groups = _twins(fabric, keep)
    twin = np.zeros(n, dtype=bool)
    for members, _, _ in groups:
        twin[members] = True
    isgpu = fabric.gpu_rank >= 0
    singles = np.flatnonzero(isgpu & ~twin).tolist()
    src, dst, cap = fabric.src[keep], fabric.dst[keep], fabric.capacity_Bps[keep]
    inner = ~twin[src] & ~twin[dst]
    if sym:
        inner &= src < dst                       # one variable per link
    src, dst, cap = src[inner], dst[inner], cap[inner]
    allcap = fabric.capacity_Bps[keep]
    # CP-SAT needs integer weights: whole MB/s when that is exact, else a 2**30 scale.
    exact_mb = np.all(np.mod(allcap, 1e6) == 0) and allcap.max(initial=0) / 1e6 < 2**40
    q = 1e6 if exact_mb else max(allcap.max(initial=1.0), 1.0) / 2**30

    def wt(c):
        return int(round(c / q))

    m = cp_model.CpModel()
    x = {v: m.new_bool_var(f"x{v}") for v in np.flatnonzero(~twin).tolist()}
    cost = []
    for e, (u, v, c) in enumerate(zip(src.tolist(), dst.tolist(), cap.tolist())):
        y = m.new_bool_var(f"y{e}")
        m.add(y >= x[u] - x[v])
        if sym:
            m.add(y >= x[v] - x[u])
        cost.append(wt(c) * y)
    counts = []
    for t, (members, outs, ins) in enumerate(groups):
        k = len(members)
        nt = m.new_int_var(0, k, f"n{t}")
        counts.append(nt)
        prod = {}
        for v in sorted({v for v, _ in outs + ins}):
            w = m.new_int_var(0, k, f"w{t}_{v}")    # w = nt * x_v
            m.add(w <= k * x[v])
            m.add(w <= nt)
            m.add(w >= nt - k * (1 - x[v]))
            prod[v] = w
        cost += [wt(c) * (nt - prod[v]) for v, c in outs]        # twin in half 1, neighbour in half 2
        cost += [wt(c) * (k * x[v] - prod[v]) for v, c in ins]   # neighbour in half 1, twin in half 2
    in_first = sum(nt for (members, _, _), nt in zip(groups, counts) if isgpu[members[0]]) + sum(x[g] for g in singles)
    lo, hi = N // 2, (N + 1) // 2
    m.add(in_first >= lo)
    m.add(in_first <= (lo if sym else hi))
    if sym and N % 2 == 0 and x:
        m.add(x[min(x)] == 1)
    m.minimize(sum(cost))

    solver = cp_model.CpSolver()
    # A deterministic work limit (about seconds) keeps the answer reproducible;
    # the wall-clock limit is only a safety net.
    solver.parameters.max_deterministic_time = float(time_limit_s)
    solver.parameters.max_time_in_seconds = 4.0 * float(time_limit_s)
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.linearization_level = 2  # LP cuts: proves fat-tree k=6 in seconds, not minutes
    status = solver.solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):  # pragma: no cover - any split is feasible
        raise SpecError(f"time_limit_s: CP-SAT found no balanced cut of {fabric.name!r} within "
                        f"{time_limit_s} s (status {solver.status_name(status)}); raise the limit")
    side = np.zeros(n, dtype=bool)
    for v, xv in x.items():
        side[v] = bool(solver.value(xv))
    for (members, _, _), nt in zip(groups, counts):
        side[members[: solver.value(nt)]] = True
    value = cut_Bps(fabric, side)              # recomputed from the float capacities
    optimal = status == cp_model.OPTIMAL
    bound = value if optimal else solver.best_objective_bound * q
    return {"bisection_Bps": value, "method": "exact-cpsat" if optimal else "exact-cpsat (time limit; upper bound)",
            "optimal": optimal, "lower_bound_Bps": float(bound), "side": side}


def _rank_split(fabric: Fabric) -> float:
    """Minimum cut between GPU ranks [0, N/2) and the rest, switches free: an upper bound.

    Max flow from a super-source on the first half to a super-sink on the second
    (OR-Tools SimpleMaxFlow, integer capacities in bytes/s).
    """
    from ortools.graph.python import max_flow

    N, n = fabric.n_gpus, fabric.n_nodes
    keep = transit_mask(fabric)
    cap = np.rint(fabric.capacity_Bps[keep]).astype(np.int64)
    big = int(min(cap.sum() + 1, 2**62))
    a, b = fabric.gpus[: N // 2], fabric.gpus[N // 2:]
    s, t = n, n + 1
    tails = np.concatenate([fabric.src[keep], np.full(len(a), s), b])
    heads = np.concatenate([fabric.dst[keep], a, np.full(len(b), t)])
    caps = np.concatenate([cap, np.full(len(a) + len(b), big, dtype=np.int64)])
    mf = max_flow.SimpleMaxFlow()
    mf.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps)
    status = mf.solve(s, t)
    if status != mf.OPTIMAL:
        raise SpecError(f"fabric: max flow on {fabric.name!r} failed with status {status}")
    return float(mf.optimal_flow())


def bisection(fabric: Fabric, method: str = "auto", *, time_limit_s: float | None = None) -> dict:
    """Bisection bandwidth (bytes/s) and how it was obtained.

    Parameters
    ----------
    fabric : Fabric
    method : {"auto", "closed-form", "exact", "rank-split"}
        ``closed-form``: ``meta["bisection_Bps"]`` from the generator.
        ``exact``: the minimum balanced cut by CP-SAT (OR-Tools), for fabrics of
        at most :data:`EXACT_MAX_NODES` nodes and :data:`EXACT_MAX_EDGES` edges
        (minimum bisection is NP-hard).
        ``rank-split``: the minimum cut separating GPU ranks ``[0, N/2)`` from the
        rest, by max flow: an upper bound, exact for fabrics whose worst cut
        splits the rank order in the middle.  ``auto``: closed form, else exact
        up to :data:`AUTO_EXACT_MAX_NODES` nodes (limited to
        :data:`AUTO_TIME_LIMIT_S`), else rank-split.
    time_limit_s : float, optional
        CP-SAT work limit in deterministic seconds (default
        :data:`EXACT_TIME_LIMIT_S`); if it runs out the best cut found is
        returned with ``optimal`` false and the solver's lower bound.

    Returns
    -------
    dict
        ``bisection_Bps``, ``method``, ``optimal`` (proven minimum), and for
        ``exact`` also ``lower_bound_Bps`` and ``side`` (True for the first half).

    Raises
    ------
    SpecError
        Unknown method; ``closed-form`` on a fabric without one; ``exact`` on a
        fabric above the size limit.

    Examples
    --------
    >>> from ocsnet.topology.packet import fat_tree
    >>> f = fat_tree(4)
    >>> bisection(f, "exact")["bisection_Bps"] == f.meta["bisection_Bps"] == 8 * 100e9
    True

    References
    ----------
    C. E. Leiserson, "Fat-trees", IEEE Trans. Computers, 1985 (bisection width);
    M. R. Garey, D. S. Johnson, L. Stockmeyer, "Some simplified NP-complete
    graph problems", TCS 1976 (minimum bisection is NP-hard).
    """
    methods = ("auto", "closed-form", "exact", "rank-split")
    if method not in methods:
        raise SpecError(f"method: {method!r} is not one of {', '.join(methods)}")
    if fabric.n_gpus < 2:
        return {"bisection_Bps": 0.0, "method": "trivial", "optimal": True}
    small = fabric.n_nodes <= EXACT_MAX_NODES and fabric.n_edges <= EXACT_MAX_EDGES
    has_cf = "bisection_Bps" in fabric.meta
    if method == "auto":
        auto_small = fabric.n_nodes <= AUTO_EXACT_MAX_NODES and fabric.n_edges <= EXACT_MAX_EDGES
        method = "closed-form" if has_cf else "exact" if auto_small else "rank-split"
        if time_limit_s is None:
            time_limit_s = AUTO_TIME_LIMIT_S
    if time_limit_s is None:
        time_limit_s = EXACT_TIME_LIMIT_S
    if method == "closed-form":
        if not has_cf:
            raise SpecError(f"method: 'closed-form' needs meta['bisection_Bps'], which {fabric.name!r} lacks; "
                            f"use 'exact' (up to {EXACT_MAX_NODES} nodes) or 'rank-split'")
        return {"bisection_Bps": float(fabric.meta["bisection_Bps"]), "method": "closed-form", "optimal": True}
    if method == "exact":
        if not small:
            raise SpecError(f"method: 'exact' is limited to {EXACT_MAX_NODES} nodes and {EXACT_MAX_EDGES} "
                            f"directed edges; {fabric.name!r} has {fabric.n_nodes} and {fabric.n_edges}; "
                            f"use 'closed-form' or 'rank-split'")
        if not (isinstance(time_limit_s, (int, float)) and math.isfinite(time_limit_s) and time_limit_s > 0):
            raise SpecError(f"time_limit_s: {time_limit_s!r} is out of range, allowed (0, inf)")
        return _exact(fabric, time_limit_s)
    return {"bisection_Bps": _rank_split(fabric), "method": "rank-split (upper bound)", "optimal": False}


def bisection_Bps(fabric: Fabric, method: str = "auto", **kwargs) -> float:
    """Bisection bandwidth in bytes/s; see :func:`bisection` for ``method``."""
    return bisection(fabric, method, **kwargs)["bisection_Bps"]
