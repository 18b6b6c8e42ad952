"""Availability and goodput under failures: an analytic steady state and a seeded Monte Carlo.

Stage: reliability.  A deployment's components (every unit of every kind of
:func:`ocsnet.reliability.blast_matrices`) fail as independent Poisson
processes at the rates of :mod:`ocsnet.reliability.rates`; a failure takes
the capacity of its blast radius away for a down time that depends on the
*policy*:

``"none"``
    no spare: the part is repaired (``repair_s`` of its kind; software: a restart);
``"spares"``
    a pool of ``spares`` hot spare GPUs in the cluster: a GPU-level failure
    (``gpu``, ``hbm``, ``port``) is served by a spare after ``spare_swap_s``
    if one is free, and the failed part goes to repair and then back to the
    pool; with NVLink servers the spare unit is a whole server;
``"ocs"``
    the same pool, swapped in by the OCS: a circuit reconfiguration plus
    reloading the replica's weights of one GPU over its network bandwidth
    (seconds instead of minutes).  Only for fabrics with an OCS.

Hosts, switches and OCS planes are repaired in place under every policy.

Analytic steady state (:func:`analytic`).  Every failure sent to repair
stays ``repair_s``: the units in repair form an M/G/inf queue, Poisson with
mean ``Lambda repair_s``, so a failure finds a spare with probability
``P(Poisson(Lambda repair_s) <= S - 1)`` (PASTA) and its mean down time is
``p swap + (1 - p) repair``.  The expected unavailable capacity is
``sum over units of rate x mean down time x capacity lost`` (first order,
the issue's formula); for outages the exact product form
``1 - exp(-sum rate x down)`` per replica (a replica is up when none of its
units has a failure inside its down window) is also given.

Monte Carlo (:func:`monte_carlo`).  Seeded and vectorized: the number of
failures per kind is Poisson, their times uniform and their units drawn by
rate over ``[-warm-up, T]`` (steady state at 0); the spare pool is resolved
for all failures at once from their sorted times (units in repair at a
failure = failures in the preceding ``repair_s``); every failure is expanded
to the replicas it hits; a replica's outage windows are merged (a union per
replica, from the running maximum of sorted end times); slow-downs add up.
The result is the serving capacity over time (a step function), its mean
with a batch-means confidence interval, quantiles and the interruptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import FaultError
from .blast import Deployment, blast_matrices, server_of
from .rates import FailureModel, gpu_rates

__all__ = ["POLICIES", "Components", "components", "analytic", "monte_carlo", "goodput", "ocs_swap_s"]

#: Spare policies.
POLICIES = ("none", "spares", "ocs")
_SPARE_KINDS = ("gpu", "hbm", "port")
_GPU_KINDS = ("gpu", "hbm", "port", "software")


@dataclass
class Components:
    """Every failing unit of a deployment: its kind, rate, loss row and down times.

    ``B`` stacks the kinds' blast matrices (units x replicas); ``rate_per_s``,
    ``kind`` and ``spare`` (whether a spare may replace it) are per unit;
    ``repair_s`` per unit; ``swap_s`` and ``spare_units`` (per domain) for the pools;
    ``domain`` per unit (the spare domain of a spare-able unit, -1 otherwise).
    """

    B: sp.csr_matrix
    kind: np.ndarray
    rate_per_s: np.ndarray
    repair_s: np.ndarray
    spare: np.ndarray
    swap_s: float
    spare_units: int
    spare_repair_s: float
    n_replicas: int
    policy: str
    domain: np.ndarray | None = None
    n_domains: int = 1

    @property
    def outage(self) -> np.ndarray:
        """Mask of units whose failure stops at least one replica."""
        return np.asarray((self.B >= 1.0).sum(axis=1)).ravel() > 0


def ocs_swap_s(dep: Deployment, weights_B_per_gpu: float) -> float:
    """Time to wire a spare GPU in by the OCS: a reconfiguration plus loading one GPU's weights.

    The weights come over the spare's network links at the GPU's network
    bandwidth (the congestion-free transfer time of the flow model's
    alpha-beta fidelity); the reconfiguration delay is the fabric's OCS's.
    """
    f = dep.fabric
    ocs = f.meta.get("ocs") if isinstance(f.meta.get("ocs"), dict) else None
    info = getattr(f, "ocs", None)
    if ocs is None and info is None:
        raise FaultError(f"policy: 'ocs' needs a fabric with an OCS; {f.name!r} has none")
    delay = float(getattr(info, "reconfig_delay_s", None) or (ocs or {}).get("reconfig_delay_s", 0.0))
    bw = dep.gpu.network_Bps
    return delay + float(weights_B_per_gpu) / bw


def components(dep: Deployment, fm: FailureModel, *, policy: str = "none", spares: int = 0,
               weights_B_per_gpu: float = 0.0, matrices: dict | None = None,
               domain_gpus: int | None = None) -> Components:
    """The failing units of ``dep`` under a spare ``policy`` (see the module docstring).

    Parameters
    ----------
    spares : int
        Hot spare GPUs per spare domain (the whole cluster by default).
    domain_gpus : int, optional
        GPUs per spare domain (consecutive ranks, e.g. a pod or an OCS
        domain); each domain has its own pool of ``spares``.  Default: one
        domain, the cluster.

    Raises
    ------
    FaultError
        Unknown policy, negative spares or a pool larger than its domain,
        or policy ``"ocs"`` on a fabric with no OCS.
    """
    if policy not in POLICIES:
        raise FaultError(f"policy: {policy!r} is not one of {', '.join(POLICIES)}")
    N = dep.fabric.n_gpus
    if domain_gpus is None:
        domain_gpus = N
    if isinstance(domain_gpus, bool) or not float(domain_gpus).is_integer() or not 1 <= domain_gpus <= N:
        raise FaultError(f"domain_gpus: {domain_gpus!r} is out of range, allowed integers [1, {N}]")
    domain_gpus = int(domain_gpus)
    if isinstance(spares, bool) or not float(spares).is_integer() or spares < 0:
        raise FaultError(f"spares: {spares!r} is out of range, allowed integers [0, {domain_gpus}]")
    if spares > domain_gpus:
        what = "the cluster" if domain_gpus == N else "its spare domain"
        raise FaultError(f"spares: {spares} is larger than {what} ({domain_gpus} GPUs), allowed [0, {domain_gpus}]")
    mats = matrices or blast_matrices(dep)
    d = mats["ports_per_gpu"]
    per_gpu = gpu_rates(fm, dep.gpu, ports=1.0)
    parts, kinds, rates, rep, spare, dom = [], [], [], [], [], []
    for k in ("gpu", "hbm", "port", "software", "host", "switch", "ocs_plane"):
        B = mats[k][0]
        n = B.shape[0]
        if n == 0:
            continue
        if k == "port":
            # a GPU's ports fail independently; a unit row is "one of its ports"
            r = per_gpu["port"] * np.maximum(d, 0).astype(float)
            if fm.scaling["port"] == "per_gpu":
                r = np.full(n, gpu_rates(fm, dep.gpu, ports=0)["port"])
        elif k in _GPU_KINDS:
            r = np.full(n, per_gpu[k])
        elif k == "host":
            gpus_per_host = np.bincount(server_of(dep), minlength=n)
            r = gpus_per_host * gpu_rates(fm, dep.gpu, ports=1.0)["host"]
        else:
            r = np.full(n, fm.rate_per_s[k])
        parts.append(B)
        kinds.append(np.full(n, k, dtype=object))
        rates.append(r)
        rep.append(np.full(n, fm.repair_s[k]))
        spare.append(np.full(n, k in _SPARE_KINDS and policy != "none"))
        # spare-able units are GPU ranks (rows of the GPU-level matrices)
        dom.append(np.arange(n, dtype=np.int64) // domain_gpus if k in _SPARE_KINDS else np.full(n, -1, np.int64))
    B = sp.vstack(parts).tocsr() if parts else sp.csr_matrix((0, dep.n_replicas))
    unit = 1
    if (dep.fabric.kind == "nvswitch").any():
        srv = dep.fabric.node_attrs.get("node")
        unit = int(np.bincount(np.asarray(srv)[dep.fabric.gpus]).max()) if srv is not None else 8
    swap = fm.spare_swap_s if policy == "spares" else (ocs_swap_s(dep, weights_B_per_gpu) if policy == "ocs" else 0.0)
    return Components(B, np.concatenate(kinds), np.concatenate(rates), np.concatenate(rep),
                      np.concatenate(spare), float(swap), int(spares) // unit if policy != "none" else 0,
                      float(fm.repair_s["gpu"]), dep.n_replicas, policy, np.concatenate(dom),
                      -(-N // domain_gpus))


def _p_spare_units(c: Components) -> np.ndarray:
    """Per unit, the probability that its failure finds a free spare in its domain's pool
    (the units of a domain in repair are M/G/inf, Poisson; PASTA)."""
    p = np.zeros(len(c.rate_per_s))
    if c.spare_units <= 0 or not c.spare.any():
        return p
    from scipy.special import gammaincc    # P(Poisson(mu) <= k) = Q(k + 1, mu); scipy.stats imports slowly
    dom = c.domain[c.spare]
    lam = np.bincount(dom, weights=c.rate_per_s[c.spare], minlength=c.n_domains)
    pd = gammaincc(c.spare_units, lam * c.spare_repair_s)
    p[c.spare] = pd[dom]
    return p


def _p_spare(c: Components) -> float:
    """Rate-weighted probability that a spare-able failure finds a free spare."""
    if c.spare_units <= 0 or not c.spare.any():
        return 0.0
    p = _p_spare_units(c)
    w = c.rate_per_s[c.spare]
    return float((p[c.spare] * w).sum() / w.sum()) if w.sum() > 0 else 0.0


def _mean_down(c: Components) -> np.ndarray:
    p = _p_spare_units(c)
    return np.where(c.spare, p * c.swap_s + (1 - p) * c.repair_s, c.repair_s)


def analytic(c: Components) -> dict:
    """Steady state: expected share of capacity lost (first order and product form), the rate of
    interruptions (failures that stop some replica) and the chance a failure finds a spare."""
    D = _mean_down(c)
    lam_d = c.rate_per_s * D
    R = max(c.n_replicas, 1)
    row_loss = np.asarray(c.B.sum(axis=1)).ravel() / R
    first = float((lam_d * row_loss).sum())
    full = c.B.multiply(c.B >= 1.0).tocsc()
    partial = c.B - full
    exposure = np.asarray(full.T @ lam_d).ravel() if full.nnz else np.zeros(c.n_replicas)
    outage = float((1.0 - np.exp(-exposure)).sum() / R)
    slow = float((lam_d * np.asarray(partial.sum(axis=1)).ravel()).sum() / R)
    return {"lost_share_first_order": first, "lost_share": min(1.0, outage + slow),
            "outage_share": outage, "slowdown_share": slow,
            "interruptions_per_h": float(c.rate_per_s[c.outage].sum() * 3600.0),
            "failures_per_h": float(c.rate_per_s.sum() * 3600.0),
            "p_spare": _p_spare(c)}


def monte_carlo(c: Components, *, days: float = 30.0, seed: int = 0, batches: int = 30) -> dict:
    """Seeded, vectorized simulation of ``days`` of failures and repairs (see the module docstring).

    Returns
    -------
    dict
        ``mean_capacity`` (share of full serving capacity), ``ci95`` (half
        width, batch means), ``p01``/``p05``/``p50`` (time-weighted
        quantiles), ``min_capacity``, ``interruptions`` (replica outages that
        began in the period, and per hour), ``failures`` and
        ``outage_failures_per_h`` (failures that stop a replica: each one
        interrupts a synchronous job), ``times_s`` and
        ``capacity`` (the step function, at most 2,000 points, for plots).

    Raises
    ------
    FaultError
        ``days`` not > 0 or ``batches`` < 2.
    """
    if not (float(days) > 0 and math.isfinite(float(days))):
        raise FaultError(f"days: {days!r} is out of range, allowed (0, inf)")
    if int(batches) < 2:
        raise FaultError(f"batches: {batches!r} is out of range, allowed integers [2, inf)")
    rng = np.random.default_rng(seed)
    T = float(days) * 86400.0
    warm = float(c.repair_s.max()) if len(c.repair_s) else 0.0
    span = T + warm
    R = max(c.n_replicas, 1)
    total = float(c.rate_per_s.sum())
    n_ev = int(rng.poisson(total * span)) if total > 0 else 0
    cum = np.cumsum(c.rate_per_s)
    unit = np.searchsorted(cum, rng.uniform(0, total, n_ev), side="right") if n_ev else np.zeros(0, np.int64)
    unit = np.minimum(unit, len(cum) - 1)
    t = rng.uniform(-warm, T, n_ev)
    order = np.argsort(t, kind="stable")
    t, unit = t[order], unit[order]
    down = c.repair_s[unit].copy()
    sp_ev = c.spare[unit]
    if sp_ev.any() and c.spare_units > 0:
        # per domain, failures in its last repair_s hold its spares; sort by (domain, time) and
        # shift each domain's times apart so one searchsorted serves every domain
        ts = t[sp_ev]
        dm = c.domain[unit[sp_ev]]
        shift = dm * 4.0 * (span + warm + c.spare_repair_s + 1.0)
        key = ts + shift
        o = np.argsort(key, kind="stable")
        ks = key[o]
        n_before = np.arange(len(ks)) - np.searchsorted(ks, ks - c.spare_repair_s, side="left")
        in_repair = np.empty(len(ks), dtype=np.int64)
        in_repair[o] = n_before
        ok = in_repair < c.spare_units
        d_sp = np.where(ok, c.swap_s, c.spare_repair_s)
        down[sp_ev] = d_sp
    end = t + down
    # expand events to replicas
    B = c.B
    cnt = np.diff(B.indptr)[unit]
    ev = np.repeat(np.arange(n_ev), cnt)
    pos = np.repeat(B.indptr[unit], cnt) + (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    rep, loss = B.indices[pos].astype(np.int64), B.data[pos]
    s0, e0 = t[ev], end[ev]
    # outages: union per replica
    fo = loss >= 1.0
    r_o, s_o, e_o = rep[fo], s0[fo], e0[fo]
    o = np.lexsort((s_o, r_o))
    r_o, s_o, e_o = r_o[o], s_o[o], e_o[o]
    big = 4.0 * (span + warm + 1.0)
    shifted = np.maximum.accumulate(e_o + r_o * big) - r_o * big if len(e_o) else e_o
    prev_end = np.concatenate([[-np.inf], shifted[:-1]])
    new = np.ones(len(s_o), dtype=bool)
    if len(s_o):
        new[1:] = (r_o[1:] != r_o[:-1]) | (s_o[1:] > prev_end[1:])
    gid = np.cumsum(new) - 1
    ms = s_o[new]
    me = np.full(int(new.sum()), -np.inf)
    if len(gid):
        np.maximum.at(me, gid, e_o)
    interruptions = int(((ms >= 0) & (ms < T)).sum())
    # capacity timeline: outages (merged) and slow-downs (additive), clipped to [0, T]
    ps, pe, pl = s0[~fo], e0[~fo], loss[~fo]
    starts = np.concatenate([ms, ps])
    ends = np.concatenate([me, pe])
    w = np.concatenate([np.ones(len(ms)), pl]) / R
    starts, ends = np.clip(starts, 0, T), np.clip(ends, 0, T)
    keep = ends > starts
    starts, ends, w = starts[keep], ends[keep], w[keep]
    times = np.concatenate([[0.0], starts, ends, [T]])
    delta = np.concatenate([[0.0], -w, w, [0.0]])
    o = np.argsort(times, kind="stable")
    times, delta = times[o], delta[o]
    cap = np.clip(1.0 + np.cumsum(delta), 0.0, 1.0)
    dt = np.diff(times)
    val = cap[:-1]
    mean = float((val * dt).sum() / T)
    # batch means for a confidence interval
    edges = np.linspace(0, T, int(batches) + 1)
    cum_area = np.concatenate([[0.0], np.cumsum(val * dt)])
    area_at = np.interp(edges, times, cum_area)
    bm = np.diff(area_at) / np.diff(edges)
    ci = float(1.96 * bm.std(ddof=1) / math.sqrt(len(bm)))
    oq = np.argsort(val, kind="stable")
    cw = np.cumsum(dt[oq]) / T
    q = {f"p{int(p * 100):02d}": float(val[oq][min(np.searchsorted(cw, p), len(oq) - 1)]) if len(oq) else 1.0
         for p in (0.01, 0.05, 0.5)}
    step = max(1, len(times) // 2000)
    return {"days": float(days), "seed": int(seed), "mean_capacity": mean, "lost_share": 1.0 - mean, "ci95": ci,
            **q, "min_capacity": float(val.min()) if len(val) else 1.0,
            "interruptions": interruptions, "interruptions_per_h": interruptions / (T / 3600.0),
            "failures": int(((t >= 0) & (t < T)).sum()),
            "outage_failures_per_h": float((((t >= 0) & (t < T)) & c.outage[unit]).sum() / (T / 3600.0)),
            "times_s": times[::step].tolist(), "capacity": cap[::step].tolist()}


def goodput(tokens_per_s: float, capacity: float, *, h100_equivalents: float, power_kW: float | None = None,
            cost: float | None = None) -> dict:
    """Tokens/s delivered over the period (tokens/s x available capacity), per H100-equivalent
    (spares included in the silicon), per kW and per unit of cost."""
    g = float(tokens_per_s) * float(capacity)
    out = {"tokens_per_s": g, "tokens_per_s_per_h100e": g / h100_equivalents if h100_equivalents else 0.0}
    if power_kW:
        out["tokens_per_s_per_kW"] = g / power_kW
    if cost:
        out["tokens_per_s_per_cost"] = g / cost
    return out
