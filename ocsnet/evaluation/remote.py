"""Remote memory in the per-layer model: placement, reads timed on the fabric, cost.

Stage 6 of the pipeline (evaluation), used by :func:`ocsnet.evaluate` when it
is given a :class:`~ocsnet.memory.MemoryConfig` (see docs/design.md, "Memory
tiers and placement").

Model (documented assumptions)
------------------------------
- Placement: one GPU of the fullest stage, by :func:`ocsnet.memory.place`;
  every stage uses the same per-layer placement (conservative for the
  others).  Remote bytes are staged into HBM before use, so an op's roofline
  does not change; what changes is the time to bring the bytes in.
- Who serves whom: a GPU of rank ``r`` reads from memory node
  ``floor(r * M / N)`` (nodes are attached in rank order, so this is the
  nearest); with memory sharing, compute GPUs and lending GPUs (the GPUs
  the replicas leave free) are both sorted by rank and matched
  proportionally.  Host DRAM is a private link per GPU.
- Timing (max-min fidelity): every GPU of every replica reads at once; the
  reads are flows from their source node to the GPU, routed by ECMP on the
  fabric (a memory node is a node of the fabric), with one extra constraint
  per source for its device bandwidth (a memory node's, a lender's HBM).
  Without prefetch the read precedes the layer: it adds its fluid completion
  time plus latency (path plus the tier's access latency).  With prefetch
  the next layer's read runs during this layer, *together with the layer's
  collective traffic* (all steps of all groups at once, the link load they
  add): the layer takes ``max(layer, read completion + latency)``.
  Writes (the KV cache a prefill produces) are timed as reads of the same
  bytes (links are symmetric).  The alpha-beta fidelity (the plan screen)
  takes the most bytes any source or GPU moves over its own bandwidth, no
  congestion inside the fabric and no path latency.  The fluid model ends
  flows that finish within 2% of each other in one step (``FLUID_RTOL``).
- OCS fabrics: memory traffic rides circuits on one port per GPU reserved
  for it (the collectives' schedule gets one port fewer).  A source with
  ``P`` ports serving ``G`` GPUs gives each ``min(circuit, P x port / G,
  device / G)`` and, when ``G > P``, serves them in ``ceil(G / P)`` rounds of
  circuits with a reconfiguration between rounds.
- Bandwidth: ``need_Bps`` is what all GPUs must read per second to hide a
  layer's remote bytes under the layer (bytes over the layer time without
  remote memory), ``have_Bps`` the tiers' aggregate bandwidth (devices and
  attachment links), ``delivered_Bps`` what the fabric delivered in the
  timing (bytes over the reads' completion time, the slowest layer).
- Cost and power per GPU: memory nodes, their whole capacity (catalog cost
  and power per TB plus the box) over the fabric's GPUs; host DRAM, the
  bytes used; lending GPUs count as GPUs of the replica.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .. import hardware, units
from ..errors import WorkloadError
from ..fabric import Fabric
from ..memory import MemoryConfig, Placement, Share, demand, host_tier_for, local_tier, place, tier

__all__ = ["RemoteMemory", "remote_memory", "lenders_per_replica"]

_AUX: "weakref.WeakKeyDictionary[Fabric, Fabric]" = weakref.WeakKeyDictionary()
# Routes of the read flows and of a layer's collective flows, per fabric (a study evaluates many plans).
_ROUTES: "weakref.WeakKeyDictionary[Fabric, dict]" = weakref.WeakKeyDictionary()
# Flows finishing within this relative time of each other finish in one step of the fluid model.
FLUID_RTOL = 0.02


def _route(fabric: Fabric, src: np.ndarray, dst: np.ndarray, method: str):
    from ..flow import route
    import hashlib

    memo = _ROUTES.setdefault(fabric, {})
    key = (method, hashlib.sha1(np.ascontiguousarray(src, np.int64).tobytes()
                                + np.ascontiguousarray(dst, np.int64).tobytes()).hexdigest())
    r = memo.get(key)
    if r is None:
        r = memo[key] = route(fabric, src, dst, method=method)
    return r


@dataclass
class RemoteMemory:
    """Remote memory of one evaluation.

    Times are seconds per layer per micro-batch pass; ``exposed_s[l]`` is what
    layer ``l`` of a stage adds to the layer time; ``read_s[l]`` the fluid
    completion of its reads (with the collectives when they share the fabric).
    """

    config: MemoryConfig
    placement: Placement | None
    exposed_s: np.ndarray
    read_s: np.ndarray
    latency_s: float
    lenders: int
    need_Bps: float
    have_Bps: float
    cost_per_gpu: float
    W_per_gpu: float
    reserved_ports: int = 0
    failures: list = field(default_factory=list)
    delivered_Bps: float = 0.0

    @property
    def fits(self) -> bool:
        return self.placement is not None and self.placement.fits

    def stage_extra_s(self, stage_layers: np.ndarray) -> np.ndarray:
        """Exposed remote time of every stage (its first layers' rows)."""
        c = np.concatenate([[0.0], np.cumsum(self.exposed_s)])
        n = np.minimum(np.asarray(stage_layers, dtype=np.int64), len(self.exposed_s))
        return c[n]

    def to_dict(self) -> dict:
        return {"tiers": list(self.config.names), "peer_ratio": self.config.peer_ratio,
                "prefetch": self.config.prefetch, "lenders_per_replica": self.lenders,
                "placement": self.placement.to_dict() if self.placement is not None else None,
                "exposed_us_per_layer": units.from_si("x_us", float(self.exposed_s.mean()) if len(self.exposed_s) else 0.0),
                "read_us_per_layer": units.from_si("x_us", float(self.read_s.max()) if len(self.read_s) else 0.0),
                "latency_us": units.from_si("x_us", self.latency_s),
                "need_TBps": units.from_si("x_TBps", self.need_Bps),
                "have_TBps": units.from_si("x_TBps", self.have_Bps),
                "delivered_TBps": units.from_si("x_TBps", self.delivered_Bps),
                "fits": self.fits}


def lenders_per_replica(config: MemoryConfig | None, gpus_per_replica: int) -> int:
    """Lending GPUs per replica for memory sharing (``ceil(peer_ratio x compute GPUs)``)."""
    if config is None or config.peer_ratio <= 0:
        return 0
    return int(math.ceil(config.peer_ratio * gpus_per_replica - 1e-9))


def _aux(fabric: Fabric) -> Fabric:
    """The fabric with its memory nodes as extra GPU ranks (same edges, same edge ids), to route reads."""
    a = _AUX.get(fabric)
    if a is None:
        mem = np.flatnonzero(fabric.kind == "memory")
        kind = fabric.kind.copy()
        kind[mem] = "gpu"
        meta = dict(fabric.meta)
        from ..flow.routing import gpus_forward
        meta["gpu_forwarding"] = gpus_forward(fabric)      # memory nodes never forward (one attachment point)
        a = Fabric(kind, fabric.src, fabric.dst, fabric.capacity_Bps, fabric.latency_s, fabric.tech,
                   gpus=np.concatenate([fabric.gpus, mem]), name=fabric.name, meta=meta)
        _AUX[fabric] = a
    return a


def _sources(fabric: Fabric, cfg: MemoryConfig, compute: np.ndarray, lend: np.ndarray, g, is_ocs: bool):
    """Per remote tier: (tier, source aux-rank per compute GPU, device Bps per source, ports per source, node count)."""
    out = {}
    meta = fabric.meta.get("memory") or {}
    n = fabric.n_gpus
    for spec in cfg.tiers:
        t = tier(spec)
        name = t.name
        if t.kind == "host":
            out[name] = (host_tier_for(t, g), None, None, None, 0)
        elif t.kind == "peer":
            if not len(lend):
                raise WorkloadError("memory.peer_ratio: the fabric has no GPU left to lend HBM "
                                    f"({len(compute)} compute GPUs of {n})")
            order = np.argsort(compute, kind="stable")
            src = np.empty(len(compute), np.int64)
            src[order] = np.sort(lend)[(np.arange(len(compute)) * len(lend)) // len(compute)]
            out[name] = (t, src, np.full(n, g.hbm_Bps), None, len(lend))
        else:
            if meta.get("tier") != name:
                have = f"memory nodes of {meta['tier']!r}" if meta else "no memory nodes"
                raise WorkloadError(f"memory tier {name!r}: the fabric {fabric.name!r} has {have}; "
                                    "attach some with ocsnet.topology.attach_memory")
            m = int(meta["n_nodes"])
            src = n + (compute * m) // n
            out[name] = (t, src, np.full(n + m, t.bandwidth_Bps), int(meta["ports_per_node"]), m)
    return out


def _shares(fabric, cfg, src, g, n_compute, is_ocs) -> list[Share]:
    shares = [Share(local_tier(g), g.hbm_bytes, g.hbm_Bps)]
    meta = fabric.meta.get("memory") or {}
    for t, s, dev, ports, count in src.values():
        if t.kind == "host":
            shares.append(Share(t, t.capacity_bytes, t.bandwidth_Bps))
        elif t.kind == "peer":
            per = count / n_compute
            shares.append(Share(t, per * t.share_fraction * g.hbm_bytes, min(1.0, per) * g.network_Bps))
        else:
            link = float(meta["port_Bps"]) * int(meta["ports_per_node"])
            per_gpu = count * min(t.bandwidth_Bps, link) / n_compute
            shares.append(Share(t, count * t.capacity_bytes / n_compute, min(g.network_Bps, per_gpu)))
    return shares


def _ocs(fabric: Fabric) -> dict:
    """Circuit bandwidth, latency, reconfiguration delay and ports per GPU of an OCS fabric."""
    o = getattr(fabric, "ocs", None)
    if o is not None and not isinstance(o, dict):
        return {"circuit_Bps": o.circuit_Bps, "circuit_latency_s": o.circuit_latency_s,
                "reconfig_delay_s": o.reconfig_delay_s, "ports_per_gpu": o.ports_per_gpu}
    return fabric.meta["ocs"]


def _fluid(inc: sp.csc_matrix, cap: np.ndarray, size: np.ndarray) -> np.ndarray:
    from ..flow import completion_times
    return completion_times(inc, cap, size, rtol=FLUID_RTOL)


def _time_reads(fabric, src_by_tier, row, compute, coll, fidelity, is_ocs, g):
    """(read time alone, read time with the layer's collectives, latency) of one layer's remote bytes."""

    alone = shared = lat = 0.0
    flows_src, flows_dst, flows_b, dev_rows, dev_cap = [], [], [], [], []
    for k, (name, (t, s, dev, ports, count)) in enumerate(src_by_tier.items()):
        b = float(row[k + 1])
        if b <= 0:
            continue
        lat = max(lat, t.latency_s)
        if t.kind == "host":
            alone = max(alone, b / t.bandwidth_Bps)
            shared = max(shared, b / t.bandwidth_Bps)
            continue
        if is_ocs:
            ocs = _ocs(fabric)
            circ = float(ocs["circuit_Bps"])
            served = np.bincount(np.unique(s, return_inverse=True)[1])
            G = float(served.max())
            P = float(ports if ports is not None else ocs["ports_per_gpu"])
            port = float((fabric.meta.get("memory") or {}).get("port_Bps", circ)) if t.kind == "node" else circ
            rate = min(circ, P * port / G, float(dev[0]) / G)
            rounds = math.ceil(G / P)
            tt = b / rate + (rounds - 1) * float(ocs["reconfig_delay_s"])
            alone, shared = max(alone, tt), max(shared, tt)
            lat = max(lat, t.latency_s + float(ocs.get("circuit_latency_s", 0.0)))
            continue
        flows_src.append(s)
        flows_dst.append(compute)
        flows_b.append(np.full(len(compute), b))
        dev_rows.append(s)
        dev_cap.append(dev)
    if not flows_src:
        return alone, shared, lat
    s = np.concatenate(flows_src)
    d = np.concatenate(flows_dst)
    b = np.concatenate(flows_b)
    aux = _aux(fabric)
    if fidelity == "alpha-beta":
        out_cap = np.bincount(aux.gpu_rank[aux.src].clip(0), weights=aux.capacity_Bps * (aux.gpu_rank[aux.src] >= 0),
                              minlength=aux.n_gpus)
        in_cap = np.bincount(aux.gpu_rank[aux.dst].clip(0), weights=aux.capacity_Bps * (aux.gpu_rank[aux.dst] >= 0),
                             minlength=aux.n_gpus)
        dev_all = np.full(aux.n_gpus, np.inf)
        for rows, cap in zip(dev_rows, dev_cap):
            dev_all[np.unique(rows)] = cap[np.unique(rows)]
        sent = np.bincount(s, weights=b, minlength=aux.n_gpus)
        recv = np.bincount(d, weights=b, minlength=aux.n_gpus)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_src = np.where(sent > 0, sent / np.minimum(out_cap, dev_all), 0.0)
            t_dst = np.where(recv > 0, recv / in_cap, 0.0)
        tt = float(max(t_src.max(), t_dst.max()))
        return max(alone, tt), max(shared, tt), lat          # the screen leaves out path latency
    r = _route(aux, s, d, "ecmp")
    n_src = aux.n_gpus
    dev_all = np.full(n_src, np.inf)
    for rows, cap in zip(dev_rows, dev_cap):
        u = np.unique(rows)
        dev_all[u] = cap[u]
    used = np.unique(s)
    R = sp.csc_matrix((np.ones(len(s)), (np.searchsorted(used, s), np.arange(len(s)))), shape=(len(used), len(s)))
    inc = sp.vstack([r.incidence, R]).tocsc()
    cap = np.concatenate([fabric.capacity_Bps, dev_all[used]])
    path_lat = float(r.latency_s.max())
    if coll is not None and coll.nnz:
        from ..flow import flows_from_demand
        cs, cd, cb = flows_from_demand(coll, fabric.n_gpus)
        rc = _route(fabric, cs, cd, "ecmp")
        zero = sp.csc_matrix((len(used), len(cs)))
        both = sp.hstack([inc, sp.vstack([rc.incidence, zero])]).tocsc()
        done = _fluid(both, cap, np.concatenate([b, cb]))
        t_shared = float(done[:len(b)].max())
        return max(alone, t_shared), max(shared, t_shared), lat + path_lat   # prefetch needs only this one
    t_alone = float(_fluid(inc, cap, b).max())
    return max(alone, t_alone), max(shared, t_alone), lat + path_lat


def remote_memory(fabric: Fabric, ranks: np.ndarray, prof, plan, mode: str, gpu, config: MemoryConfig,
                  base_layer_s: float, coll_demand, *, fidelity: str, is_ocs: bool) -> RemoteMemory:
    """Placement, per-layer exposed read time, cost and power of remote memory for one evaluation.

    Parameters
    ----------
    fabric, ranks
        The fabric and the (dp, pp, tp) GPU ranks of the replicas.
    prof : StepProfile
        Its ``memory`` (the fullest stage) gives the demand.
    base_layer_s : float
        The layer time without remote memory (what prefetch can hide under).
    coll_demand : sparse matrix or None
        Bytes between GPU ranks of one layer's collectives (all steps, all
        groups): the traffic the prefetched reads share the fabric with.
    fidelity : {"max-min", "alpha-beta"}
    is_ocs : bool
        Memory traffic rides circuits (module notes).
    """
    g = hardware.gpu(gpu)
    compute = np.sort(ranks.ravel())
    lend = np.setdiff1d(np.arange(fabric.n_gpus), compute)
    src = _sources(fabric, config, ranks.ravel(), lend, g, is_ocs)
    shares = _shares(fabric, config, src, g, len(compute), is_ocs)
    L = int(prof.stage_layers.max())
    d = demand(prof.memory, mode, L, prof.micro_batches)
    failures = []
    try:
        p = place(d, shares, rule=config.rule, prefetch=config.prefetch)
    except WorkloadError as e:
        p = None
        failures.append(str(e))
    lenders = lenders_per_replica(config, plan.tp * plan.pp)
    meta = fabric.meta.get("memory") or {}
    # cost and power per GPU of the fabric
    cost = watts = 0.0
    for name, (t, s, dev, ports, count) in src.items():
        if t.kind == "node":
            cost += count * (t.capacity_bytes * t.cost_per_byte + t.cost_per_node) / fabric.n_gpus
            watts += count * t.capacity_bytes * t.power_W_per_byte / fabric.n_gpus
        elif t.kind == "host" and p is not None:
            k = p.tier_names.index(name)
            used = float(p.layer_bytes[:, :, k].sum())
            cost += used * t.cost_per_byte
            watts += used * t.power_W_per_byte
    have = 0.0
    for name, (t, s, dev, ports, count) in src.items():
        if t.kind == "node":
            have += count * min(t.bandwidth_Bps, float(meta["port_Bps"]) * int(meta["ports_per_node"]))
        elif t.kind == "peer":
            have += count * g.network_Bps
        else:
            have += len(compute) * t.bandwidth_Bps
    if p is None:
        return RemoteMemory(config, None, np.full(L, np.inf), np.full(L, np.inf), 0.0, lenders, np.inf, have,
                            cost, watts, 1 if is_ocs else 0, failures)
    traffic = p.traffic_bytes()
    rows, inv = np.unique(traffic, axis=0, return_inverse=True)
    inv = np.asarray(inv).ravel()
    ex = np.zeros(len(rows))
    rd = np.zeros(len(rows))
    lat_max = 0.0
    for i, row in enumerate(rows):
        if row[1:].sum() <= 0:
            continue
        alone, shared, lat = _time_reads(fabric, src, row, ranks.ravel(), coll_demand, fidelity, is_ocs, g)
        rd[i] = alone
        lat_max = max(lat_max, lat)
        ex[i] = max(0.0, shared + lat - base_layer_s) if config.prefetch else alone + lat
    per_layer = traffic[:, 1:].sum(axis=1) * len(compute)       # bytes all GPUs read per layer
    need = float(per_layer.max()) / base_layer_s if base_layer_s > 0 else 0.0
    reads = rd[inv]
    with np.errstate(divide="ignore", invalid="ignore"):
        got = np.where((per_layer > 0) & (reads > 0), per_layer / reads, 0.0)
    delivered = float(got[per_layer > 0].min()) if (per_layer > 0).any() else 0.0
    return RemoteMemory(config, p, ex[inv], reads, lat_max, lenders, need, have, cost, watts,
                        1 if is_ocs else 0, failures, delivered)
