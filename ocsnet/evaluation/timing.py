"""Timing a layer's collectives on a fabric: the helpers of :func:`ocsnet.evaluate`.

Stage: evaluation (see docs/design.md, "The per-layer model").  On a packet or
direct fabric a collective is timed congestion-free along its routes
(alpha-beta) and with every replica's groups at once under max-min fair
rates; on an OCS fabric the circuit schedule of one replica's layers gives
the collective times and the exposed reconfiguration.  Routes, placements
and prices are memoized per fabric (weakly: the memo goes with the fabric).
"""

from __future__ import annotations

import weakref

import numpy as np

from ..errors import WorkloadError
from ..fabric import Fabric
from ..flow.latency import bottleneck_Bps
from ..workload import ParallelPlan
from ..workload.layers import Collective, OpCost
from ..workload.parallel import place
from ..workload.step import StepProfile
from .algorithms import group_steps, needs_fabric

__all__ = ["fabric_memo", "group_ranks", "routes_of", "placed_ranks", "power_and_cost", "alpha_beta_collective",
           "max_min_collective", "layer_demand", "pp_send_time", "crosses_network", "calibrate_collectives", "ocs_layer_times", "ocs_ideal_collective", "STEADY_LAYERS"]

# Layers of the circuit sub-problem solved on an OCS fabric; the last one is the steady state.
STEADY_LAYERS = 3


# ---------------------------------------------------------------------------------------
# groups of GPUs

def group_ranks(ranks: np.ndarray, group: str, plan: ParallelPlan) -> np.ndarray:
    """GPU ranks of every group of one parallel dimension, shape (n_groups, size)."""
    dp, pp, tp = ranks.shape
    if group == "tp":
        return ranks.reshape(-1, tp)
    if group == "ep":
        ep = plan.ep
        return ranks.reshape(dp // ep, ep, pp, tp).transpose(0, 2, 3, 1).reshape(-1, ep)
    if group == "dp":
        return ranks.transpose(1, 2, 0).reshape(-1, dp)
    if group == "edp":
        ep = plan.ep
        return ranks.reshape(dp // ep, ep, pp, tp).transpose(1, 2, 3, 0).reshape(-1, dp // ep)
    raise WorkloadError(f"group: {group!r} is not one of tp, ep, dp, edp")


# Per-fabric memo of routes, placements and prices: a study evaluates many plans and
# algorithms on the same fabric, and routing dominates the cost of a screen.  Weak keys:
# the memo goes away with the fabric.
_MEMO: "weakref.WeakKeyDictionary[Fabric, dict]" = weakref.WeakKeyDictionary()


def fabric_memo(fabric: Fabric) -> dict:
    """The per-fabric memo dict (routes, placements, prices, and what callers keep there)."""
    m = _MEMO.get(fabric)
    if m is None:
        m = _MEMO[fabric] = {}
    return m


def routes_of(fabric: Fabric, src, dst, method: str):
    """Routes of the (src, dst) GPU pairs, each pair routed once per fabric and method."""
    import scipy.sparse as sp

    from ..flow import group_routes
    from ..flow.routing import Routes

    memo = fabric_memo(fabric)
    have, known = memo.get(("routes", method), (np.zeros(0, np.int64), None))
    n = fabric.n_gpus
    want = np.asarray(src, np.int64) * n + np.asarray(dst, np.int64)
    new = np.setdiff1d(want, have)
    if len(new):
        r = group_routes(fabric, new // n, new % n, method=method)   # direct links without a search
        if known is not None:
            new = np.concatenate([have, new])
            r = Routes(sp.hstack([known.incidence, r.incidence]).tocsc(), np.concatenate([known.src, r.src]),
                       np.concatenate([known.dst, r.dst]), np.concatenate([known.hops, r.hops]),
                       np.concatenate([known.latency_s, r.latency_s]), method)
        order = np.argsort(new, kind="stable")
        have, known = new[order], r.subset(order)
        memo[("routes", method)] = (have, known)
    return known.subset(np.searchsorted(have, want))


def placed_ranks(plan: ParallelPlan, fabric: Fabric, strategy: str) -> np.ndarray:
    key = ("place", plan.tp, plan.pp, plan.dp, plan.ep, strategy)
    memo = fabric_memo(fabric)
    if key not in memo:
        memo[key] = place(plan, fabric, strategy)
    return memo[key]


def power_and_cost(fabric: Fabric) -> tuple[dict, dict]:
    """Power and cost of a fabric, computed once per fabric."""
    memo = fabric_memo(fabric)
    if "priced" not in memo:
        from ..topology import metrics
        memo["priced"] = (metrics.power(fabric), metrics.cost(fabric))
    return memo["priced"]


# ---------------------------------------------------------------------------------------
# collective timing on a packet or direct fabric

def alpha_beta_collective(fabric: Fabric, group: np.ndarray, c: Collective) -> float:
    """Congestion-free time of one group's collective along its routes on the fabric.

    A step costs its longest path latency plus the largest of: a flow's bytes
    over its bottleneck, and a rank's bytes sent (received) over the links it
    leaves (enters) by in that step (one link for a one-port algorithm; every
    torus link for the torus algorithm).
    """
    steps = group_steps(c.kind, c.group_size, c.nbytes, c.algorithm, fabric, group)
    if not steps:
        return 0.0
    p = len(group)
    keys = np.unique(np.concatenate([s[0].astype(np.int64) * p + s[1] for s in steps]))
    r = routes_of(fabric, group[keys // p], group[keys % p], "shortest")
    bott = bottleneck_Bps(r, fabric.capacity_Bps)
    inc = r.incidence.tocoo()
    nodes_s, nodes_d = fabric.gpus[group[keys // p]], fabric.gpus[group[keys % p]]
    first = np.full(len(keys), -1, dtype=np.int64)
    last = np.full(len(keys), -1, dtype=np.int64)
    sel = fabric.src[inc.row] == nodes_s[inc.col]
    first[inc.col[sel]] = inc.row[sel]
    sel = fabric.dst[inc.row] == nodes_d[inc.col]
    last[inc.col[sel]] = inc.row[sel]
    cap = fabric.capacity_Bps
    E = fabric.n_edges
    total = 0.0
    cache: dict[tuple, float] = {}
    for s in steps:
        key = (id(s[0]), id(s[1]), id(s[2]))
        t = cache.get(key)
        if t is None:
            src, dst, nb = s
            idx = np.searchsorted(keys, src.astype(np.int64) * p + dst)
            lat = float(r.latency_s[idx].max()) if len(idx) else 0.0
            t = lat + (float((nb / bott[idx]).max()) if len(idx) else 0.0)
            if len(idx):
                for rank, hop in ((src, first[idx]), (dst, last[idx])):
                    u = np.unique(rank.astype(np.int64) * E + hop)
                    link_cap = np.bincount(u // E, weights=cap[u % E], minlength=p)
                    load = np.bincount(rank, weights=nb, minlength=p)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        t = max(t, lat + float(np.nanmax(np.where(load > 0, load / link_cap, 0.0))))
            cache[key] = t
        total += t
    return total


def max_min_collective(fabric: Fabric, groups: np.ndarray, c: Collective) -> float:
    """Congestion-aware time: every group runs the collective at once, max-min rates per step."""
    from ..flow import flows_from_demand, phase_time
    from ..traffic import Trace

    if c.kind == "send-recv" or len(groups) == 0:
        return 0.0
    tr = Trace.from_collective(c.kind, groups, c.nbytes, c.algorithm, n_gpus=fabric.n_gpus,
                               fabric=fabric if needs_fabric(c.kind, c.algorithm) else None)
    times: dict[int, float] = {}
    total = 0.0
    for m in tr.demand:                     # equal steps share one matrix object: timed once
        t = times.get(id(m))
        if t is None:
            src, dst, _ = flows_from_demand(m, fabric.n_gpus)
            r = routes_of(fabric, src, dst, "ecmp")
            t = times[id(m)] = float(phase_time(fabric, m, routes=r, fidelity="max-min").time_s)
        total += t
    return total


def layer_demand(fabric: Fabric, ranks: np.ndarray, plan: ParallelPlan, collectives) -> object:
    """Bytes between GPU ranks of one layer's collectives, every step of every group summed (sparse)."""
    import scipy.sparse as sp

    from ..traffic import Trace

    total = sp.csr_matrix((fabric.n_gpus, fabric.n_gpus))
    for c in collectives:
        if c.kind == "send-recv" or c.group_size < 2:
            continue
        tr = Trace.from_collective(c.kind, group_ranks(ranks, c.group, plan), c.nbytes, c.algorithm,
                                   n_gpus=fabric.n_gpus,
                                   fabric=fabric if needs_fabric(c.kind, c.algorithm) else None)
        for m in tr.demand:
            total = total + m
    return total.tocsr()


def pp_send_time(fabric: Fabric, ranks: np.ndarray, c: Collective | None) -> float:
    """Congestion-free time of one pipeline send (the slowest stage boundary of replica 0)."""
    if c is None or ranks.shape[1] < 2:
        return 0.0
    from ..flow.latency import alpha_beta_time

    src = ranks[0, :-1, :].ravel()
    dst = ranks[0, 1:, :].ravel()
    r = routes_of(fabric, src, dst, "shortest")
    return float(np.max(alpha_beta_time(r, fabric.capacity_Bps, np.full(len(src), c.nbytes))))


def crosses_network(fabric: Fabric, group) -> bool:
    """Whether a group's ring or reversed pairs route over a link other than copper (NVLink); memoized per fabric."""
    g = np.asarray(group, dtype=np.int64)
    if len(g) < 2:
        return False
    memo = fabric_memo(fabric)
    key = ("crosses", g.tobytes())
    hit = memo.get(key)
    if hit is None:
        mask = memo.get("non-copper")
        if mask is None:
            mask = memo["non-copper"] = (np.asarray(fabric.tech) != "copper").astype(float)
        src = np.concatenate([g, g])
        dst = np.concatenate([np.roll(g, -1), g[::-1]])
        keep = src != dst
        r = routes_of(fabric, src[keep], dst[keep], "shortest")
        hit = memo[key] = bool(len(src[keep]) and (r.incidence.T @ mask).max() > 0)
    return hit


def route_latency_s(fabric: Fabric, group, c) -> float:
    """The route-latency part of :func:`alpha_beta_collective`: its time for a one-byte buffer (memoized)."""
    import dataclasses

    g = np.asarray(group, dtype=np.int64)
    memo = fabric_memo(fabric)
    key = ("route-latency", c.kind, c.algorithm, c.group_size, g.tobytes())
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = alpha_beta_collective(fabric, g, dataclasses.replace(c, nbytes=1.0))
    return hit


def nvls_link_Bps(fabric: Fabric, group) -> float:
    """Each GPU's link to its NVSwitch when every GPU of ``group`` hangs off one NVSwitch domain
    that reduces in the network (``in_network_reduction``, NVLink SHARP), else 0.  Memoized."""
    g = np.asarray(group, dtype=np.int64)
    name = fabric.meta.get("nvswitch")
    if len(g) < 2 or not isinstance(name, str):
        return 0.0
    memo = fabric_memo(fabric)
    key = ("nvls", g.tobytes())
    hit = memo.get(key)
    if hit is None:
        from .. import hardware

        custom = (fabric.meta.get("hardware") or {}).get(name)
        try:
            sharp = bool(custom.get("in_network_reduction")) if custom else hardware.switch(name).in_network_reduction
        except Exception:  # noqa: BLE001 - an unknown switch model reduces nothing
            sharp = False
        hit = 0.0
        if sharp:
            kinds = np.asarray(fabric.kind)
            nodes = np.asarray(fabric.gpus)[g]
            up = np.isin(fabric.src, nodes) & (kinds[fabric.dst] == "nvswitch")
            if len(np.unique(fabric.dst[up])) == 1 and len(np.unique(fabric.src[up])) == len(nodes):
                hit = float(np.asarray(fabric.capacity_Bps)[up].min())
        memo[key] = hit
    return hit


def calibrated_collective_s(calib, fabric: Fabric, group, c, t: float, steps: int, net: bool, *,
                            nvls: bool = True) -> float:
    """A group's collective time ``t`` (alpha-beta or max-min) under a calibration: NCCL's protocols over
    its route latency, or, for an all-reduce inside one NVSwitch that reduces in the network, NVLS
    when that is faster (``nvls``: NCCL may choose it)."""
    out = calib.collective_time(t, steps, net, route_latency_s(fabric, group, c))
    if nvls and c.kind == "all-reduce" and not net and calib.nvls_algbw_fraction > 0:
        out = min(out, calib.nvls_time(c.nbytes, nvls_link_Bps(fabric, group)))
    return out


def calibrate_collectives(calib, colls: list, fabric: Fabric, groups_of, is_ocs: bool) -> list:
    """Collective times with the calibration's protocol latencies and link efficiency (roofline: unchanged)."""
    import dataclasses

    if calib.is_roofline:
        return colls
    from ..collectives import n_steps

    out = []
    for c in colls:
        if c.group_size < 2:
            out.append(c)
            continue
        if needs_fabric(c.kind, c.algorithm):      # fabric-aware: count the group's own steps
            grp = np.arange(c.group_size) if is_ocs else groups_of(c.group)[0]
            steps = len(group_steps(c.kind, c.group_size, c.nbytes, c.algorithm, fabric, grp))
        else:
            steps = n_steps(c.kind, c.group_size, c.algorithm)
        if is_ocs:
            def cal(t):
                return calib.collective_time(t, steps, True)
        else:
            grp = groups_of(c.group)[0]
            net = crosses_network(fabric, grp)

            def cal(t):
                return calibrated_collective_s(calib, fabric, grp, c, t, steps, net)
        out.append(dataclasses.replace(c, alpha_beta_s=cal(c.alpha_beta_s),
                                       max_min_s=None if c.max_min_s is None else cal(c.max_min_s)))
    return out


# ---------------------------------------------------------------------------------------
# OCS fabrics: the circuit schedule of one replica's layers

def ocs_layer_times(fabric: Fabric, prof: StepProfile, plan: ParallelPlan, schedule_method: str,
                    reconfig_delay_s: float | None, time_limit_s: float | None, bound: str = "best",
                    reserved: int = 0):
    """Collective and exposed-reconfiguration time per layer from a solved circuit schedule.

    The sub-problem holds one replica's TP group (times its EP peers): ``ep x tp``
    GPUs, the layer's collectives as phases with the compute between them as
    gaps, repeated for the layers of a stage.
    """
    from ..schedule import OCSProblem, solve
    from ..traffic import Trace

    ocs = fabric.ocs
    lp = prof.layer
    tp, ep = plan.tp, plan.ep if any(c.group == "ep" for c in lp.collectives) else 1
    local = np.arange(ep * tp).reshape(ep, tp)
    n = ep * tp
    demand, gaps, owner = [], [], []
    pending_gap = 0.0
    ci = -1
    for x in lp.items:
        if isinstance(x, OpCost):
            pending_gap += x.time_s
            continue
        ci += 1
        groups = local if x.group == "tp" else local.T if x.group == "ep" else None
        if groups is None or x.group_size < 2:
            continue
        tr = Trace.from_collective(x.kind, groups, x.nbytes, x.algorithm, n_gpus=n,
                                   fabric=fabric if needs_fabric(x.kind, x.algorithm) else None)
        for k, m in enumerate(tr.demand):
            demand.append(m)
            gaps.append(pending_gap if k == 0 else 0.0)
            owner.append(ci)
            pending_gap = 0.0
    n_coll = ci + 1
    reconf = np.zeros(n_coll)
    data = np.zeros(n_coll)
    if not demand:
        return data, reconf, None, 0
    # Identical layers reach a steady state after the first (whose first configuration is free):
    # solve a few layers and take the last one's times as every layer's.
    layers = int(min(prof.stage_layers.max(), STEADY_LAYERS))
    P1 = len(demand)
    # Layer r > 1 waits for the compute after the previous layer's last collective too.
    gap = np.array(gaps + ([pending_gap + gaps[0]] + gaps[1:]) * (layers - 1), dtype=float)
    trace = Trace(demand * layers, gap, meta={"sub-problem": f"{n} GPUs of one replica"})
    trace.period = trace.detect_period()
    prob = OCSProblem.from_trace(trace, ports=ocs.ports_per_gpu - (1 if plan.pp > 1 else 0) - reserved,
                                 circuit_Bps=ocs.circuit_Bps,
                                 reconfig_delay_s=ocs.reconfig_delay_s if reconfig_delay_s is None else reconfig_delay_s,
                                 name="layer circuits")
    sched = solve(prob, method=schedule_method, time_limit_s=time_limit_s, bound=bound)
    lat = ocs.circuit_latency_s
    for p in range(P1 * (layers - 1), P1 * layers):          # the last (steady-state) layer
        ph = sched.phases[p]
        # a slot's duration includes the exposed part of the reconfiguration before it
        exposed = float(sum(s.exposed_s for s in ph.slots if s.reconfig))
        data[owner[p % P1]] += (ph.end_s - ph.start_s) - exposed + lat
        reconf[owner[p % P1]] += exposed
    return data, reconf, sched, layers


def ocs_ideal_collective(fabric: Fabric, c: Collective, ports: int) -> float:
    """Circuit-ideal time: every step on ``ports`` circuits per pair, no reconfiguration."""
    ocs = fabric.ocs
    steps = group_steps(c.kind, c.group_size, c.nbytes, c.algorithm, fabric, np.arange(c.group_size))
    lat = ocs.circuit_latency_s
    total = 0.0
    p = c.group_size
    for src, dst, nb in steps:
        if not len(src):
            continue
        peers = np.bincount(src, minlength=p).max()
        per_pair = max(1, ports // max(int(peers), 1))
        total += lat + float(nb.max()) / (per_pair * ocs.circuit_Bps)
    return total
