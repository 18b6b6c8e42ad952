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
- On a circuit-switched fabric (:attr:`ocsnet.fabric.Fabric.circuit_switched`:
  ``fabric.ocs`` set, no packet network) the GPUs of one replica's tensor
  (and expert) group hold circuits; the circuit schedule of one replica's
  layer trace is solved and its phases give the collective times (direct
  circuits, the reference semantics of docs/design.md) and the exposed
  reconfiguration.  Replicas use disjoint GPUs, so one replica's schedule is
  every replica's.  Pipeline sends use one reserved circuit per GPU.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import numpy as np

from .. import checks, hardware, units
from ..collectives import AUTO
from ..errors import WorkloadError
from ..fabric import Fabric
from ..workload import ParallelPlan
from ..workload.layers import Collective, OpCost
from ..workload.modes import INFERENCE_MODES
from ..workload.parallel import check_plan
from ..workload.calibration import ROOFLINE, Calibration, calibration as get_calibration
from ..workload.models import model as get_model
from ..workload.step import StepProfile, step_profile
from .algorithms import DEFAULT_AUTO, concrete
from .options import EvalOptions
from .timing import (alpha_beta_collective, calibrate_collectives, calibrated_collective_s, crosses_network,
                     fabric_memo, group_ranks, layer_demand,
                     max_min_collective, ocs_ideal_collective, ocs_layer_times, placed_ranks, power_and_cost,
                     pp_send_time)

__all__ = ["evaluate", "Evaluation", "CollectiveTime", "time_collective", "CONGESTION_FACTOR",
           "RECONFIG_FRACTION"]

# Flag a collective whose congestion-aware time exceeds its congestion-free time by this factor.
CONGESTION_FACTOR = 1.25
# Flag exposed reconfiguration above this fraction of the layer time.
RECONFIG_FRACTION = 0.05


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
    options: EvalOptions | None = None

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


def _resolve(prof: StepProfile, fabric: Fabric, ranks: np.ndarray, plan: ParallelPlan, is_ocs: bool,
             flow: bool, reconfig_delay_s: float | None) -> StepProfile:
    """The profile with every ``auto`` collective replaced by the algorithm its group runs."""
    lp = prof.layer
    if not any(getattr(x, "algorithm", None) == AUTO for x in lp.items):
        return prof
    memo = fabric_memo(fabric)
    items = []
    for x in lp.items:
        if isinstance(x, Collective) and x.algorithm == AUTO:
            if is_ocs:
                group = np.arange(x.group_size)      # the circuit sub-problem's local ranks
            else:
                group = group_ranks(ranks, x.group, plan)[0]
            x = dataclasses.replace(x, algorithm=concrete(x.kind, AUTO, fabric, group, x.nbytes, memo, flow=flow,
                                                          reconfig_delay_s=reconfig_delay_s))
        items.append(x)
    return dataclasses.replace(prof, layer=dataclasses.replace(lp, items=tuple(items)))


def evaluate(model, plan: ParallelPlan, fabric: Fabric, mode: str, options: EvalOptions | None = None,
             **kwargs) -> Evaluation:
    """Evaluate one model step, layer by layer, on a fabric.

    Parameters
    ----------
    model : str or ModelSpec
    plan : ParallelPlan
        ``tp`` and ``pp`` (and ``ep``) of one replica; with ``fill=True`` the
        data-parallel degree is raised to fill the fabric (``n_gpus // (tp pp)``).
    fabric : Fabric
        Packet, direct or OCS fabric (an OCS fabric has ``fabric.ocs``).
    mode : {"prefill", "decode"}
    options : EvalOptions, optional
        Sizes, fidelities, algorithms, scheduling and budgets (see :class:`EvalOptions`).
    **kwargs
        Fields of :class:`EvalOptions`: without ``options`` they build one
        (``batch`` is required), with it they replace its fields.

    Returns
    -------
    Evaluation

    Raises
    ------
    WorkloadError
        Unknown mode or fidelity, a plan the model or fabric cannot hold.
    TypeError
        An unknown option, or neither ``options`` nor ``batch``.

    Examples
    --------
    >>> from ocsnet.topology.packet import fat_tree
    >>> from ocsnet.workload import ParallelPlan
    >>> ev = evaluate("llama3-70b", ParallelPlan(tp=4, pp=2), fat_tree(4), "decode",
    ...               batch=4, context=1024, fidelities=("alpha-beta",))
    >>> ev.fits, ev.totals()["gpus_per_replica"]
    (True, 8)
    >>> screen = EvalOptions(batch=4, context=1024, fidelities=("alpha-beta",))
    >>> evaluate("llama3-70b", ParallelPlan(tp=4, pp=2), fat_tree(4), "decode", screen).latency_s == ev.latency_s
    True
    """
    o = EvalOptions.from_kwargs(options, **kwargs)
    checks.choice("mode", mode, INFERENCE_MODES, error=WorkloadError)
    if not isinstance(fabric, Fabric):
        raise WorkloadError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    check_plan(plan)
    m = get_model(model)
    g = hardware.gpu(o.gpu if o.gpu is not None else fabric.meta.get("gpu", "h100-sxm"))
    calib = get_calibration(o.calibration)
    per_replica = plan.tp * plan.pp
    if per_replica > fabric.n_gpus:
        raise WorkloadError(f"plan: {plan} needs {per_replica} GPUs per replica, the fabric has {fabric.n_gpus}")
    memory = o.memory
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
    if o.fill:
        dp = fabric.n_gpus // (per_replica + lend)
        dp -= dp % plan.ep
        plan = dataclasses.replace(plan, dp=max(dp, plan.ep))
    prof = step_profile(m, plan, mode, batch=o.batch, seq_len=o.seq_len, context=o.context, gpu=g,
                        dtype_bytes=o.dtype_bytes, algorithms={**DEFAULT_AUTO, **(o.algorithms or {})},
                        micro_batches=plan.pp,
                        require_fit=False, dtype=o.dtype, kv_dtype=o.kv_dtype, calibration=calib)
    ranks = placed_ranks(plan, fabric, o.placement)
    is_ocs = fabric.circuit_switched
    prof = _resolve(prof, fabric, ranks, plan, is_ocs, "max-min" in o.fidelities, o.reconfig_delay_s)
    lp = prof.layer
    failures: list[str] = []
    if not prof.memory.fits and memory is None:
        failures.append(f"memory: {prof.memory.message()}")
    # memory traffic on an OCS fabric rides circuits of one port per GPU reserved for it
    mem_port = 1 if (memory is not None and is_ocs and any(memory.tier_kind(t) != "host" for t in memory.tiers)) else 0
    colls: list[CollectiveTime] = []
    sched, sched_layers = None, 0
    if is_ocs:
        ocs = fabric.ocs
        ports = ocs.ports_per_gpu - (1 if plan.pp > 1 else 0) - mem_port
        data, reconf, sched, sched_layers = (
            ocs_layer_times(fabric, prof, plan, o.schedule_method, o.reconfig_delay_s, o.schedule_time_limit_s,
                            o.schedule_bound, mem_port) if o.schedule else (np.zeros(0), np.zeros(0), None, 0))
        for i, c in enumerate(lp.collectives):
            ab = ocs_ideal_collective(fabric, c, ports)
            mm = float(data[i]) if "max-min" in o.fidelities and len(data) else None
            colls.append(CollectiveTime(c.label, c.kind, c.group, c.group_size, c.nbytes, c.algorithm,
                                        c.after, ab, mm, float(reconf[i]) if len(reconf) else 0.0))
        pp_send = 0.0 if prof.pp_send is None else float(
            ocs.circuit_latency_s + prof.pp_send.nbytes / ocs.circuit_Bps)
    else:
        memo: dict = {}
        for c in lp.collectives:
            key = (c.kind, c.group, c.group_size, c.nbytes, c.algorithm)
            if key not in memo:
                groups = group_ranks(ranks, c.group, plan)
                ab = alpha_beta_collective(fabric, groups[0], c) if c.group_size > 1 else 0.0
                mm = max_min_collective(fabric, groups, c) if "max-min" in o.fidelities and c.group_size > 1 else None
                memo[key] = (ab, mm)
            ab, mm = memo[key]
            colls.append(CollectiveTime(c.label, c.kind, c.group, c.group_size, c.nbytes, c.algorithm,
                                        c.after, ab, mm))
        pp_send = pp_send_time(fabric, ranks, prof.pp_send)
    if not calib.is_roofline:
        colls = calibrate_collectives(calib, colls, fabric, lambda grp: group_ranks(ranks, grp, plan), is_ocs)
        if pp_send > 0:
            net = is_ocs or crosses_network(fabric, ranks[0, :, 0])
            pp_send = calib.collective_time(pp_send, 1, net)
    pw, co = power_and_cost(fabric)
    n = max(fabric.n_gpus, 1)
    ev = Evaluation(
        model=m.name, mode=mode, plan=plan, gpu=g, fabric=fabric.name,
        fidelity=o.fidelity if o.fidelity in o.fidelities else o.fidelities[0],
        algorithms=dict(lp.algorithms), batch=o.batch, seq_len=o.seq_len, context=o.context, profile=prof,
        ops=lp.ops, collectives=colls, pp_send_s=pp_send, overlap=o.overlap, replicas=plan.dp,
        network_W_per_gpu=(pw["total_W"] - pw["gpus_W"]) / n,
        network_cost_per_gpu=(co["total"] - co["gpus"]) / n,
        failures=failures, schedule=sched, schedule_layers=sched_layers, calibration=calib, options=o)
    if memory is not None:
        from .remote import remote_memory
        mm = "max-min" if "max-min" in o.fidelities else "alpha-beta"
        coll = layer_demand(fabric, ranks, plan, lp.collectives) if (
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
    if o.latency_budget_s is not None and ev.latency_s > o.latency_budget_s:
        what = "TTFT" if mode == "prefill" else "TPOT"
        failures.append(f"latency: {what} {units.fmt_time(ev.latency_s)} exceeds the budget "
                        f"{units.fmt_time(o.latency_budget_s)}")
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
    >>> round(float(1e9 * 2 * 7 / 8 / t / 1e9), 1)   # bus bandwidth in GB/s: NVLink's 450 less the hop latencies
    449.5
    """
    from ..workload.layers import DEFAULT_ALGORITHMS

    if kind not in DEFAULT_ALGORITHMS:
        raise WorkloadError(f"kind: {kind!r} is not one of {', '.join(DEFAULT_ALGORITHMS)}")
    group = np.asarray(list(ranks), dtype=np.int64)
    if group.ndim != 1 or len(group) < 2 or group.min() < 0 or group.max() >= fabric.n_gpus:
        raise WorkloadError(f"ranks: need at least 2 GPU ranks in [0, {fabric.n_gpus - 1}]")
    c = Collective(kind, "tp", len(group), float(nbytes), algorithm or DEFAULT_ALGORITHMS[kind])
    ab = alpha_beta_collective(fabric, group, c)
    calib = get_calibration(calibration)
    if calib.is_roofline:
        return ab
    from ..collectives import n_steps

    return calibrated_collective_s(calib, fabric, group, c, ab, n_steps(c.kind, c.group_size, c.algorithm),
                                   crosses_network(fabric, group), nvls=not algorithm or algorithm == "auto")
