"""Per-layer evaluation of a model on a fabric (stage 6 of the pipeline).

:func:`evaluate` joins the stages before it: the per-layer ops of
:mod:`ocsnet.workload` (roofline compute time), the collectives of each layer
expanded by :mod:`ocsnet.collectives` and timed on the fabric with both
fidelities of :mod:`ocsnet.flow` (alpha-beta and max-min), and, on a fabric
with an optical circuit switch, the exposed reconfiguration time of the
circuit schedule solved by :mod:`ocsnet.schedule`.  The result is a
per-layer table and the model totals: time to first token (prefill), time
per output token (decode), tokens per second per GPU, per H100-equivalent of
silicon, per kilowatt and per unit of cost, and the memory fit.

Model of a step (documented assumptions)
----------------------------------------
- Every transformer layer is identical; a pipeline stage runs its layers one
  after the other.  A layer's time is its ops' roofline times plus its
  collectives (on the critical path, Megatron tensor parallelism) plus the
  exposed reconfiguration; with ``overlap=True`` communication and exposed
  reconfiguration hide under compute: ``max(compute, comm + reconfig)``.
- Latency (TTFT for prefill, TPOT for decode) is one micro-batch through
  every stage plus the ``pp - 1`` pipeline sends.  Throughput is the
  pipeline's steady state with ``pp`` micro-batches in flight: one
  micro-batch of tokens per slowest stage time.  Memory is checked for those
  ``pp`` micro-batches.
- Every data-parallel replica the fabric holds runs at once, so the max-min
  fidelity sees the congestion of all replicas' collectives together; the
  alpha-beta fidelity times one group along its routes with no congestion
  (each step costs its longest path latency plus the most bytes a rank sends
  or receives over the slowest link it uses).
- On an OCS fabric (``fabric.meta["ocs"]``) the GPUs of one replica's tensor
  (and expert) group hold circuits; the circuit schedule of one replica's
  layer trace is solved and its phases give the collective times (direct
  circuits, the reference semantics of DESIGN.md) and the exposed
  reconfiguration.  Replicas use disjoint GPUs, so one replica's schedule is
  every replica's.  Pipeline sends use one reserved circuit per GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from dataclasses import dataclass, field

import numpy as np

from .. import checks, hardware, units
from ..collectives import AUTO, expand
from ..errors import WorkloadError
from ..fabric import Fabric
from ..flow.latency import bottleneck_Bps
from ..workload import ParallelPlan
from ..workload.layers import Collective, OpCost
from ..workload.models import model as get_model
from ..workload.parallel import check_plan, place
from ..workload.calibration import ROOFLINE, Calibration, calibration as get_calibration
from ..workload.step import StepProfile, step_profile
from .algorithms import DEFAULT_AUTO, concrete, group_steps, needs_fabric

__all__ = ["evaluate", "Evaluation", "CollectiveTime", "FIDELITIES", "MODES", "time_collective"]

FIDELITIES = ("alpha-beta", "max-min")
MODES = ("prefill", "decode")
# Flag a collective whose congestion-aware time exceeds its congestion-free time by this factor.
CONGESTION_FACTOR = 1.25
# Flag exposed reconfiguration above this fraction of the layer time.
RECONFIG_FRACTION = 0.05
# Layers of the circuit sub-problem solved on an OCS fabric; the last one is the steady state.
STEADY_LAYERS = 3


@dataclass(frozen=True)
class CollectiveTime:
    """One collective of a layer, timed on the fabric (seconds, per occurrence)."""

    label: str
    kind: str
    group: str
    group_size: int
    nbytes: float
    algorithm: str
    after: str
    alpha_beta_s: float
    max_min_s: float | None
    reconfig_s: float = 0.0


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the per-layer table, the totals and the checks.

    All times are seconds, per micro-batch; throughputs are tokens per second.
    ``fidelity`` names the one the totals use.
    """

    model: str
    mode: str
    plan: ParallelPlan
    gpu: hardware.GPUSpec
    fabric: str
    fidelity: str
    algorithms: dict
    batch: int
    seq_len: int | None
    context: int | None
    profile: StepProfile
    ops: list[OpCost]
    collectives: list[CollectiveTime]
    pp_send_s: float
    overlap: bool
    replicas: int
    network_W_per_gpu: float
    network_cost_per_gpu: float
    failures: list[str] = field(default_factory=list)
    schedule: object | None = None
    schedule_layers: int = 0
    calibration: Calibration = ROOFLINE
    remote: object | None = None          # RemoteMemory (ocsnet.evaluation.remote) when memory tiers are used

    # ---- per layer ------------------------------------------------------------------
    @property
    def compute_s(self) -> float:
        return float(sum(o.time_s for o in self.ops))

    def comm_s(self, fidelity: str | None = None) -> float:
        f = fidelity or self.fidelity
        return float(sum((c.max_min_s if f == "max-min" and c.max_min_s is not None else c.alpha_beta_s)
                         for c in self.collectives))

    @property
    def reconfig_s(self) -> float:
        return float(sum(c.reconfig_s for c in self.collectives))

    @property
    def layer_s(self) -> float:
        net = self.comm_s() + self.reconfig_s
        t = max(self.compute_s, net) if self.overlap else self.compute_s + net
        return t + self.calibration.layer_overhead_s

    # ---- whole model ----------------------------------------------------------------
    @property
    def stage_s(self) -> np.ndarray:
        p = self.profile
        t = p.stage_layers.astype(float) * self.layer_s
        if self.remote is not None:
            t = t + self.remote.stage_extra_s(p.stage_layers)
        t[0] += p.embedding.time_s
        t[-1] += p.lm_head.time_s
        return t

    @property
    def latency_s(self) -> float:
        """TTFT (prefill) or TPOT (decode): one micro-batch through every stage."""
        return float(self.stage_s.sum() + (self.plan.pp - 1) * self.pp_send_s + self.calibration.step_overhead_s)

    @property
    def tokens_per_microbatch(self) -> float:
        return float(self.profile.layer.shape.tokens if self.mode == "prefill" else self.batch)

    @property
    def throughput_tps(self) -> float:
        """Tokens/s of one replica in pipeline steady state."""
        step = float(self.stage_s.max()) + (self.pp_send_s if self.plan.pp > 1 else 0.0) \
            + self.calibration.step_overhead_s
        return self.tokens_per_microbatch / step

    @property
    def gpus_per_replica(self) -> int:
        """GPUs of one replica, lending GPUs of memory sharing included."""
        return self.plan.tp * self.plan.pp + (self.remote.lenders if self.remote is not None else 0)

    @property
    def fits(self) -> bool:
        return self.remote.fits if self.remote is not None else self.profile.memory.fits

    def usd_per_million_tokens(self, params=None) -> float:
        """Cost of a million tokens (US dollars): the replica's GPUs, their network share and hosts,
        amortized, plus energy (:mod:`ocsnet.silicon.tco`; ``params`` overrides the catalog's)."""
        from ..silicon.tco import system_cost

        n = self.gpus_per_replica
        return float(system_cost(n_gpus=n, gpu_relative_cost=self.gpu.relative_cost,
                                 network_cost_per_gpu=self.network_cost_per_gpu,
                                 h100e_per_gpu=self.gpu.h100_equivalents,
                                 watts=n * (self.gpu.tdp_W + self.network_W_per_gpu),
                                 tokens_per_s=self.throughput_tps, params=params)["usd_per_million_tokens"])

    def totals(self) -> dict:
        """Model totals, unit-suffixed keys."""
        n = self.gpus_per_replica
        tps = self.throughput_tps
        r = self.remote
        mem_W, mem_cost = (r.W_per_gpu, r.cost_per_gpu) if r is not None else (0.0, 0.0)
        watts = n * (self.gpu.tdp_W + self.network_W_per_gpu + mem_W)
        cost = n * (self.gpu.relative_cost + self.network_cost_per_gpu + mem_cost)
        lat_key = "ttft_ms" if self.mode == "prefill" else "tpot_ms"
        return {
            "model": self.model, "mode": self.mode, "fabric": self.fabric, "gpu": self.gpu.name,
            "plan": str(self.plan), "algorithms": ",".join(f"{k}={v}" for k, v in sorted(self.algorithms.items())),
            "fidelity": self.fidelity, "batch": self.batch,
            "dtype": self.profile.layer.dtype, "kv_dtype": self.profile.layer.kv_dtype,
            "calibration": self.calibration.name,
            lat_key: units.from_si("x_ms", self.latency_s),
            "latency_ms": units.from_si("x_ms", self.latency_s),
            "layer_us": units.from_si("x_us", self.layer_s),
            "compute_us": units.from_si("x_us", self.compute_s),
            "comm_alpha_beta_us": units.from_si("x_us", self.comm_s("alpha-beta")),
            "comm_max_min_us": units.from_si("x_us", self.comm_s("max-min")),
            "reconfig_us": units.from_si("x_us", self.reconfig_s),
            "tokens_per_s": tps,
            "tokens_per_s_per_gpu": tps / n,
            "tokens_per_s_per_h100e": tps / (n * self.gpu.h100_equivalents),
            "tokens_per_s_per_kW": tps / (watts / 1e3),
            "tokens_per_s_per_cost": tps / cost,
            "usd_per_million_tokens": self.usd_per_million_tokens(),
            "gpus_per_replica": n, "replicas": self.replicas,
            "memory_GB": units.from_si("x_GB", self.profile.memory.total_bytes),
            "hbm_GB": units.from_si("x_GB", self.profile.memory.capacity_bytes),
            "fits": self.fits,
            "failures": len(self.failures),
            "memory_tiers": "+".join(r.config.names) if r is not None else "hbm",
            "remote_GB": units.from_si("x_GB", r.placement.remote_bytes) if r is not None and r.placement else 0.0,
            "remote_exposed_us": units.from_si("x_us", float(np.mean(r.exposed_s))) if r is not None else 0.0,
        }

    HEADER = ("item", "kind", "group", "size", "bound", "compute_us", "alpha_beta_us", "max_min_us", "reconfig_us")

    def table(self) -> list[list]:
        """Per-layer rows under :attr:`HEADER`, in execution order, and a total row."""
        us = functools.partial(units.from_si, "x_us")
        rows = []
        colls = {}
        for c in self.collectives:
            colls.setdefault(c.after, []).append(c)
        for o in self.ops:
            rows.append([o.op, "op", "", "", o.bound, us(o.time_s), None, None, None])
            for c in colls.get(o.op, []):
                rows.append([c.label or c.kind, f"{c.kind} {c.algorithm}", c.group, c.group_size, "",
                             None, us(c.alpha_beta_s), None if c.max_min_s is None else us(c.max_min_s),
                             us(c.reconfig_s)])
        for c in colls.get("start", []):
            rows.insert(0, [c.label or c.kind, f"{c.kind} {c.algorithm}", c.group, c.group_size, "",
                            None, us(c.alpha_beta_s), None if c.max_min_s is None else us(c.max_min_s),
                            us(c.reconfig_s)])
        rows.append(["layer total", "", "", "", "", us(self.compute_s), us(self.comm_s("alpha-beta")),
                     us(self.comm_s("max-min")), us(self.reconfig_s)])
        return rows

    def to_dict(self) -> dict:
        out = {"totals": self.totals(), "header": list(self.HEADER), "layer": self.table(),
               "failures": list(self.failures),
               "memory": dataclasses.asdict(self.profile.memory)}
        if self.remote is not None:
            out["remote_memory"] = self.remote.to_dict()
        return out


# ---------------------------------------------------------------------------------------
# groups of GPUs

def _groups(ranks: np.ndarray, group: str, plan: ParallelPlan) -> np.ndarray:
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


def _memo(fabric: Fabric) -> dict:
    m = _MEMO.get(fabric)
    if m is None:
        m = _MEMO[fabric] = {}
    return m


def _routes(fabric: Fabric, src, dst, method: str):
    """Routes of the (src, dst) GPU pairs, each pair routed once per fabric and method."""
    import scipy.sparse as sp

    from ..flow import group_routes
    from ..flow.routing import Routes

    memo = _memo(fabric)
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


def _place(plan: ParallelPlan, fabric: Fabric, strategy: str) -> np.ndarray:
    key = ("place", plan.tp, plan.pp, plan.dp, plan.ep, strategy)
    memo = _memo(fabric)
    if key not in memo:
        memo[key] = place(plan, fabric, strategy)
    return memo[key]


def _power_cost(fabric: Fabric) -> tuple[dict, dict]:
    """Power and cost of a fabric, computed once per fabric."""
    memo = _memo(fabric)
    if "priced" not in memo:
        from ..topology import metrics
        memo["priced"] = (metrics.power(fabric), metrics.cost(fabric))
    return memo["priced"]


def _check_choice(name, value, allowed):
    checks.choice(name, value, allowed, error=WorkloadError)


# ---------------------------------------------------------------------------------------
# collective timing on a packet or direct fabric

def _alpha_beta(fabric: Fabric, group: np.ndarray, c: Collective) -> float:
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
    r = _routes(fabric, group[keys // p], group[keys % p], "shortest")
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


def _max_min(fabric: Fabric, groups: np.ndarray, c: Collective) -> float:
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
            r = _routes(fabric, src, dst, "ecmp")
            t = times[id(m)] = float(phase_time(fabric, m, routes=r, fidelity="max-min").time_s)
        total += t
    return total


def _layer_demand(fabric: Fabric, ranks: np.ndarray, plan: ParallelPlan, collectives) -> object:
    """Bytes between GPU ranks of one layer's collectives, every step of every group summed (sparse)."""
    import scipy.sparse as sp

    from ..traffic import Trace

    total = sp.csr_matrix((fabric.n_gpus, fabric.n_gpus))
    for c in collectives:
        if c.kind == "send-recv" or c.group_size < 2:
            continue
        tr = Trace.from_collective(c.kind, _groups(ranks, c.group, plan), c.nbytes, c.algorithm, n_gpus=fabric.n_gpus,
                                   fabric=fabric if needs_fabric(c.kind, c.algorithm) else None)
        for m in tr.demand:
            total = total + m
    return total.tocsr()


def _pp_send(fabric: Fabric, ranks: np.ndarray, c: Collective | None) -> float:
    """Congestion-free time of one pipeline send (the slowest stage boundary of replica 0)."""
    if c is None or ranks.shape[1] < 2:
        return 0.0
    from ..flow.latency import alpha_beta_time

    src = ranks[0, :-1, :].ravel()
    dst = ranks[0, 1:, :].ravel()
    r = _routes(fabric, src, dst, "shortest")
    return float(np.max(alpha_beta_time(r, fabric.capacity_Bps, np.full(len(src), c.nbytes))))


def _crosses_network(fabric: Fabric, group) -> bool:
    """Whether a group's ring or reversed pairs route over a link other than copper (NVLink); memoized per fabric."""
    g = np.asarray(group, dtype=np.int64)
    if len(g) < 2:
        return False
    memo = _memo(fabric)
    key = ("crosses", g.tobytes())
    hit = memo.get(key)
    if hit is None:
        mask = memo.get("non-copper")
        if mask is None:
            mask = memo["non-copper"] = (np.asarray(fabric.tech) != "copper").astype(float)
        src = np.concatenate([g, g])
        dst = np.concatenate([np.roll(g, -1), g[::-1]])
        keep = src != dst
        r = _routes(fabric, src[keep], dst[keep], "shortest")
        hit = memo[key] = bool(len(src[keep]) and (r.incidence.T @ mask).max() > 0)
    return hit


def _calibrate(calib: Calibration, colls: list, fabric: Fabric, groups_of, is_ocs: bool) -> list:
    """Collective times with the calibration's protocol latencies and link efficiency (roofline: unchanged)."""
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
        net = True if is_ocs else _crosses_network(fabric, groups_of(c.group)[0])
        ab = calib.collective_time(c.alpha_beta_s, steps, net)
        mm = None if c.max_min_s is None else calib.collective_time(c.max_min_s, steps, net)
        out.append(dataclasses.replace(c, alpha_beta_s=ab, max_min_s=mm))
    return out


# ---------------------------------------------------------------------------------------
# OCS fabrics: the circuit schedule of one replica's layers

def _ocs_times(fabric: Fabric, prof: StepProfile, plan: ParallelPlan, schedule_method: str,
               reconfig_delay_s: float | None, time_limit_s: float | None, bound: str = "best",
               reserved: int = 0):
    """Collective and exposed-reconfiguration time per layer from a solved circuit schedule.

    The sub-problem holds one replica's TP group (times its EP peers): ``ep x tp``
    GPUs, the layer's collectives as phases with the compute between them as
    gaps, repeated for the layers of a stage.
    """
    from ..schedule import OCSProblem, solve
    from ..traffic import Trace

    ocs = fabric.meta["ocs"]
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
    prob = OCSProblem.from_trace(trace, ports=ocs["ports_per_gpu"] - (1 if plan.pp > 1 else 0) - reserved,
                                 circuit_Bps=ocs["circuit_Bps"],
                                 reconfig_delay_s=ocs["reconfig_delay_s"] if reconfig_delay_s is None else reconfig_delay_s,
                                 name="layer circuits")
    sched = solve(prob, method=schedule_method, time_limit_s=time_limit_s, bound=bound)
    lat = float(ocs.get("circuit_latency_s", 0.0))
    for p in range(P1 * (layers - 1), P1 * layers):          # the last (steady-state) layer
        ph = sched.phases[p]
        # a slot's duration includes the exposed part of the reconfiguration before it
        exposed = float(sum(s.exposed_s for s in ph.slots if s.reconfig))
        data[owner[p % P1]] += (ph.end_s - ph.start_s) - exposed + lat
        reconf[owner[p % P1]] += exposed
    return data, reconf, sched, layers


def _ocs_alpha_beta(fabric: Fabric, c: Collective, ports: int) -> float:
    """Circuit-ideal time: every step on ``ports`` circuits per pair, no reconfiguration."""
    ocs = fabric.meta["ocs"]
    steps = group_steps(c.kind, c.group_size, c.nbytes, c.algorithm, fabric, np.arange(c.group_size))
    lat = float(ocs.get("circuit_latency_s", 0.0))
    total = 0.0
    p = c.group_size
    for src, dst, nb in steps:
        if not len(src):
            continue
        peers = np.bincount(src, minlength=p).max()
        per_pair = max(1, ports // max(int(peers), 1))
        total += lat + float(nb.max()) / (per_pair * ocs["circuit_Bps"])
    return total


# ---------------------------------------------------------------------------------------
# "auto": one concrete algorithm per collective, chosen on the fabric for its group

def _resolve(prof: StepProfile, fabric: Fabric, ranks: np.ndarray, plan: ParallelPlan, is_ocs: bool,
             flow: bool, reconfig_delay_s: float | None) -> StepProfile:
    """The profile with every ``auto`` collective replaced by the algorithm its group runs."""
    lp = prof.layer
    if not any(getattr(x, "algorithm", None) == AUTO for x in lp.items):
        return prof
    memo = _memo(fabric)
    items = []
    for x in lp.items:
        if isinstance(x, Collective) and x.algorithm == AUTO:
            if is_ocs:
                group = np.arange(x.group_size)      # the circuit sub-problem's local ranks
            else:
                group = _groups(ranks, x.group, plan)[0]
            x = dataclasses.replace(x, algorithm=concrete(x.kind, AUTO, fabric, group, x.nbytes, memo, flow=flow,
                                                          reconfig_delay_s=reconfig_delay_s))
        items.append(x)
    return dataclasses.replace(prof, layer=dataclasses.replace(lp, items=tuple(items)))


def evaluate(model, plan: ParallelPlan, fabric: Fabric, mode: str, *, batch: int,
             seq_len: int | None = None, context: int | None = None, gpu=None,
             algorithms: dict | None = None, fidelity: str = "max-min", fidelities=FIDELITIES,
             overlap: bool = False, fill: bool = True, placement: str = "topology-aware",
             schedule_method: str = "heuristic", reconfig_delay_s: float | None = None,
             schedule_time_limit_s: float | None = 20.0, latency_budget_s: float | None = None,
             schedule: bool = True, schedule_bound: str = "best",
             dtype_bytes: float | None = None, dtype: str = "bf16", kv_dtype: str | None = None,
             calibration: "str | Calibration | None" = None, memory=None) -> Evaluation:
    """Evaluate one model step, layer by layer, on a fabric.

    Parameters
    ----------
    model : str or ModelSpec
    plan : ParallelPlan
        ``tp`` and ``pp`` (and ``ep``) of one replica; with ``fill=True`` the
        data-parallel degree is raised to fill the fabric (``n_gpus // (tp pp)``).
    fabric : Fabric
        Packet, direct or OCS fabric (an OCS fabric has ``meta["ocs"]``).
    mode : {"prefill", "decode"}
    batch, seq_len, context
        Sequences per micro-batch; prompt length (prefill); KV length (decode).
    gpu : str or GPUSpec, optional
        Default ``fabric.meta["gpu"]``.
    algorithms : dict, optional
        Collective kind -> algorithm, e.g. ``{"all-reduce": "rhd"}``.
    fidelity : {"max-min", "alpha-beta"}
        Which communication time the totals use (``max-min`` falls back to
        ``alpha-beta`` when not computed).
    fidelities : tuple
        Which fidelities to compute (``("alpha-beta",)`` is the fast screen).
    overlap : bool
        Hide communication and reconfiguration under compute (see module notes).
    schedule_method : str
        Circuit scheduler method on OCS fabrics (:func:`ocsnet.schedule.solve`).
    schedule : bool
        On an OCS fabric, solve the circuit schedule (else only the ideal
        circuit alpha-beta time is computed and no reconfiguration is counted:
        the fast screen of a plan search).
    schedule_bound : {"best", "design"}
        Lower bound the schedule reports (see :func:`ocsnet.schedule.solve`);
        ``"design"`` is cheaper on long traces.
    reconfig_delay_s : float, optional
        Override the OCS reconfiguration delay of the fabric.
    latency_budget_s : float, optional
        TTFT (prefill) or TPOT (decode) budget; missing it is listed in ``failures``.
    dtype, kv_dtype : {"bf16", "fp8"}
        Precision of weights and activations, and of the KV cache (default
        ``dtype``); see :mod:`ocsnet.workload.precision`.
    calibration : str or Calibration, optional
        Kernel and collective efficiency model (:mod:`ocsnet.workload.calibration`):
        ``"roofline"`` (default: constant efficiencies, no overheads) or a
        calibration of ``catalog/calibration.toml`` such as ``"measured"``.
    memory : MemoryConfig, optional
        Remote memory tiers (peer HBM, the fabric's memory nodes, host DRAM),
        the placement rule and prefetch (:class:`ocsnet.memory.MemoryConfig`);
        default local HBM only.  Remote reads are timed on the fabric with the
        layer's other traffic (:mod:`ocsnet.evaluation.remote`); memory sharing
        takes lending GPUs from the fabric.

    Returns
    -------
    Evaluation

    Raises
    ------
    WorkloadError
        Unknown mode or fidelity, a plan the model or fabric cannot hold.

    Examples
    --------
    >>> from ocsnet.topology import fat_tree
    >>> from ocsnet.workload import ParallelPlan
    >>> ev = evaluate("llama3-70b", ParallelPlan(tp=4, pp=2), fat_tree(4), "decode",
    ...               batch=4, context=1024, fidelities=("alpha-beta",))
    >>> ev.fits, ev.totals()["gpus_per_replica"]
    (True, 8)
    """
    _check_choice("mode", mode, MODES)
    _check_choice("fidelity", fidelity, FIDELITIES)
    for f in fidelities:
        _check_choice("fidelities", f, FIDELITIES)
    if not isinstance(fabric, Fabric):
        raise WorkloadError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    check_plan(plan)
    checks.boolean("overlap", overlap, error=WorkloadError)
    if latency_budget_s is not None:
        checks.positive("latency_budget_s", latency_budget_s, error=WorkloadError)
    if reconfig_delay_s is not None:
        checks.nonnegative("reconfig_delay_s", reconfig_delay_s, error=WorkloadError)
    if algorithms is not None and not isinstance(algorithms, dict):
        raise WorkloadError(f"algorithms: expected a table of collective kind -> algorithm, got {algorithms!r:.60}")
    m = get_model(model)
    g = hardware.gpu(gpu if gpu is not None else fabric.meta.get("gpu", "h100-sxm"))
    calib = get_calibration(calibration)
    per_replica = plan.tp * plan.pp
    if per_replica > fabric.n_gpus:
        raise WorkloadError(f"plan: {plan} needs {per_replica} GPUs per replica, the fabric has {fabric.n_gpus}")
    if memory is not None:
        from ..memory import MemoryConfig
        from .remote import lenders_per_replica
        if not isinstance(memory, MemoryConfig):
            raise WorkloadError(f"memory: expected an ocsnet.memory.MemoryConfig, got {type(memory).__name__}")
        lend = lenders_per_replica(memory, per_replica)
        if per_replica + lend > fabric.n_gpus:
            raise WorkloadError(f"plan: {plan} with {lend} lending GPUs needs {per_replica + lend} GPUs per replica, "
                                f"the fabric has {fabric.n_gpus}")
    else:
        lend = 0
    if fill:
        dp = fabric.n_gpus // (per_replica + lend)
        dp -= dp % plan.ep
        plan = dataclasses.replace(plan, dp=max(dp, plan.ep))
    prof = step_profile(m, plan, mode, batch=batch, seq_len=seq_len, context=context, gpu=g,
                        dtype_bytes=dtype_bytes, algorithms={**DEFAULT_AUTO, **(algorithms or {})},
                        micro_batches=plan.pp,
                        require_fit=False, dtype=dtype, kv_dtype=kv_dtype, calibration=calib)
    ranks = _place(plan, fabric, placement)
    is_ocs = bool(fabric.meta.get("ocs")) and not fabric.meta.get("packet_ports_per_gpu") and \
        fabric.meta.get("generator") == "ocs_fabric"
    prof = _resolve(prof, fabric, ranks, plan, is_ocs, "max-min" in fidelities, reconfig_delay_s)
    lp = prof.layer
    failures: list[str] = []
    if not prof.memory.fits and memory is None:
        failures.append(f"memory: {prof.memory.message()}")
    # memory traffic on an OCS fabric rides circuits of one port per GPU reserved for it
    mem_port = 1 if (memory is not None and is_ocs and any(memory.tier_kind(t) != "host" for t in memory.tiers)) else 0
    colls: list[CollectiveTime] = []
    sched, sched_layers = None, 0
    if is_ocs:
        ports = int(fabric.meta["ocs"]["ports_per_gpu"]) - (1 if plan.pp > 1 else 0) - mem_port
        data, reconf, sched, sched_layers = (_ocs_times(fabric, prof, plan, schedule_method, reconfig_delay_s,
                                                        schedule_time_limit_s, schedule_bound, mem_port) if schedule else
                                             (np.zeros(0), np.zeros(0), None, 0))
        for i, c in enumerate(lp.collectives):
            ab = _ocs_alpha_beta(fabric, c, ports)
            mm = float(data[i]) if "max-min" in fidelities and len(data) else None
            colls.append(CollectiveTime(c.label, c.kind, c.group, c.group_size, c.nbytes, c.algorithm,
                                        c.after, ab, mm, float(reconf[i]) if len(reconf) else 0.0))
        ocs = fabric.meta["ocs"]
        pp_send = 0.0 if prof.pp_send is None else float(
            ocs.get("circuit_latency_s", 0.0) + prof.pp_send.nbytes / ocs["circuit_Bps"])
    else:
        memo: dict = {}
        for c in lp.collectives:
            key = (c.kind, c.group, c.group_size, c.nbytes, c.algorithm)
            if key not in memo:
                groups = _groups(ranks, c.group, plan)
                ab = _alpha_beta(fabric, groups[0], c) if c.group_size > 1 else 0.0
                mm = _max_min(fabric, groups, c) if "max-min" in fidelities and c.group_size > 1 else None
                memo[key] = (ab, mm)
            ab, mm = memo[key]
            colls.append(CollectiveTime(c.label, c.kind, c.group, c.group_size, c.nbytes, c.algorithm,
                                        c.after, ab, mm))
        pp_send = _pp_send(fabric, ranks, prof.pp_send)
    if not calib.is_roofline:
        colls = _calibrate(calib, colls, fabric, lambda grp: _groups(ranks, grp, plan), is_ocs)
        if pp_send > 0:
            net = is_ocs or _crosses_network(fabric, ranks[0, :, 0])
            pp_send = calib.collective_time(pp_send, 1, net)
    pw, co = _power_cost(fabric)
    n = max(fabric.n_gpus, 1)
    ev = Evaluation(
        model=m.name, mode=mode, plan=plan, gpu=g, fabric=fabric.name,
        fidelity=fidelity if fidelity in fidelities else fidelities[0],
        algorithms=dict(lp.algorithms), batch=batch, seq_len=seq_len, context=context, profile=prof,
        ops=lp.ops, collectives=colls, pp_send_s=pp_send, overlap=overlap, replicas=plan.dp,
        network_W_per_gpu=(pw["total_W"] - pw["gpus_W"]) / n,
        network_cost_per_gpu=(co["total"] - co["gpus"]) / n,
        failures=failures, schedule=sched, schedule_layers=sched_layers, calibration=calib)
    if memory is not None:
        from .remote import remote_memory
        mm = "max-min" if "max-min" in fidelities else "alpha-beta"
        coll = _layer_demand(fabric, ranks, plan, lp.collectives) if (
            mm == "max-min" and memory.prefetch and not is_ocs) else None
        ev.remote = remote_memory(fabric, ranks, prof, plan, mode, g, memory, ev.layer_s, coll,
                                  fidelity=mm, is_ocs=is_ocs)
        failures.extend(f"memory: {m}" for m in ev.remote.failures)
    for c in colls:
        if c.max_min_s is not None and c.alpha_beta_s > 0 and c.max_min_s > CONGESTION_FACTOR * c.alpha_beta_s:
            ratio = f"{c.max_min_s / c.alpha_beta_s:.2f}x"
            times = f"({units.fmt_time(c.max_min_s)} vs {units.fmt_time(c.alpha_beta_s)})"
            if is_ocs:
                failures.append(f"circuits: {c.label or c.kind} takes {ratio} its ideal-circuit time {times}; "
                                "the schedule holds fewer circuits per pair than the algorithm's steps want")
            else:
                failures.append(f"congestion: {c.label or c.kind} takes {ratio} its congestion-free time {times}")
    if ev.reconfig_s > RECONFIG_FRACTION * ev.layer_s:
        failures.append(f"reconfiguration: {units.fmt_time(ev.reconfig_s)} exposed per layer, "
                        f"{100 * ev.reconfig_s / ev.layer_s:.0f}% of the layer time")
    if latency_budget_s is not None and ev.latency_s > latency_budget_s:
        what = "TTFT" if mode == "prefill" else "TPOT"
        failures.append(f"latency: {what} {units.fmt_time(ev.latency_s)} exceeds the budget {units.fmt_time(latency_budget_s)}")
    return ev


def time_collective(fabric: Fabric, kind: str, nbytes: float, ranks, *, algorithm: str | None = None,
                    calibration: "str | Calibration | None" = None) -> float:
    """Time (seconds) of one collective over the GPUs ``ranks`` of a packet or direct fabric.

    The alpha-beta time along the routes (as :func:`evaluate` times a
    layer's collectives), then the calibration's protocol latencies and link
    efficiency.  ``nbytes`` is the buffer per GPU in the nccl-tests convention.

    Examples
    --------
    >>> from ocsnet.topology import dgx_cluster
    >>> t = time_collective(dgx_cluster(1), "all-reduce", 1e9, range(8), algorithm="ring")
    >>> round(1e9 * 2 * 7 / 8 / t / 1e9)         # bus bandwidth in GB/s: NVLink line rate
    450
    """
    from ..workload.layers import DEFAULT_ALGORITHMS

    if kind not in DEFAULT_ALGORITHMS:
        raise WorkloadError(f"kind: {kind!r} is not one of {', '.join(DEFAULT_ALGORITHMS)}")
    group = np.asarray(list(ranks), dtype=np.int64)
    if group.ndim != 1 or len(group) < 2 or group.min() < 0 or group.max() >= fabric.n_gpus:
        raise WorkloadError(f"ranks: need at least 2 GPU ranks in [0, {fabric.n_gpus - 1}]")
    c = Collective(kind, "tp", len(group), float(nbytes), algorithm or DEFAULT_ALGORITHMS[kind])
    ab = _alpha_beta(fabric, group, c)
    calib = get_calibration(calibration)
    if calib.is_roofline:
        return ab
    from ..collectives import n_steps

    return calib.collective_time(ab, n_steps(c.kind, c.group_size, c.algorithm), _crosses_network(fabric, group))
