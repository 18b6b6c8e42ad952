"""Evaluating one design point, and a chunk of them (the engine's task).

Stage: sweep (see docs/design.md).  A point is resolved by
:func:`ocsnet.sweep.knobs.resolve`, its fabric built (and kept for the next
point of the same fabric in this process), and its best plan found by the
study's own plan search (:mod:`ocsnet.evaluation.search`):

- ``fidelity="screen"``: every feasible (tp, pp, batch, algorithm) timed by the
  alpha-beta model with ideal circuits, the best kept (milliseconds per plan);
- ``fidelity="full"``: the study's search (screen, then the top plans with the
  max-min flow model and the solved circuit schedule).

A point ends ``ok`` with its metrics, ``infeasible`` with the reason (no plan
fits, a knob the fabric does not take) or ``failed`` with the error; a failed
point never stops a sweep.
"""

from __future__ import annotations

import json
import time
import traceback
from functools import lru_cache

from ..errors import OcsnetError
from .knobs import PointSetup, resolve, torus_dims
from .metrics import FAILURE_METRICS, METRICS, STATUSES, TEXT_METRICS  # noqa: F401  (re-exported)
from .spec import SCHEMA_VERSION

__all__ = ["evaluate_point", "run_chunk", "gpu_of", "METRICS", "FAILURE_METRICS", "STATUSES"]

#: The plan search of a point, unless its knobs fix tp, pp or the algorithm.
SEARCH_DEFAULTS = {"tp": [1, 2, 4, 8, 16, 32, 64], "pp": [1, 2, 4, 8, 16], "max_gpus_per_replica": 256,
                   "algorithms": ["ring", "rhd", "double-binary-tree"], "top_k": 2,
                   "objective": "tokens_per_s_per_h100e", "schedule_time_limit_s": 10.0,
                   "latency_vs_baseline": None}
SIZE_DEFAULTS = {"prefill": {"batch": 1, "seq_len": 4096}, "decode": {"batch": [8, 16, 32], "context": 4096}}


def _size_overrides(generator: str, n_gpus: int, params: dict) -> dict:
    """The fabric family's own size parameter for ``n_gpus`` GPUs."""
    if generator in ("ocs_fabric", "clos", "leaf_spine", "fully_connected", "fully_connected_groups"):
        return {"n_gpus": n_gpus}
    if generator == "torus":
        return {"dims": torus_dims(n_gpus, len(params.get("dims", [0, 0, 0])))}
    if generator in ("dgx_cluster", "rail_optimized"):
        per = int(params.get("gpus_per_node", 8))
        if n_gpus % per:
            raise OcsnetError(f"n_gpus: {n_gpus} is not a multiple of the {per} GPUs per node of this fabric")
        return {"n_nodes": n_gpus // per}
    if generator == "fat_tree":
        k = round((4 * n_gpus) ** (1 / 3))
        if k ** 3 // 4 != n_gpus or k % 2:
            raise OcsnetError(f"n_gpus: a fat-tree holds k^3/4 GPUs for even k; {n_gpus} is not one")
        return {"k": k}
    raise OcsnetError(f"n_gpus: the {generator} generator has no size knob")


def gpu_of(setup: PointSetup):
    """The point's GPU: a catalog entry, or a Lite-GPU derived by the silicon model; HBM overridden."""
    import dataclasses

    from .. import hardware, units

    if setup.gpu_fraction is not None:
        parent = hardware.gpu(setup.parent_gpu)
        g = hardware.lite_gpu(parent, fraction=setup.gpu_fraction, io=setup.io, clock=setup.clock,
                              name=f"{setup.parent_gpu}/{setup.gpu_fraction:g}",
                              description=f"{setup.gpu_fraction:g} of {setup.parent_gpu}, {setup.io}, "
                                          f"{setup.clock} clock (silicon model)")
    else:
        g = hardware.gpu(setup.gpu)
    if setup.hbm_GB is not None:
        g = dataclasses.replace(g, hbm_bytes=units.to_si("x_GB", setup.hbm_GB))
    return g


def _bandwidth_overrides(generator: str, params: dict, net_GBps: float) -> dict:
    """Fabric overrides that give every GPU ``net_GBps`` of network (a derived Lite-GPU's)."""
    if generator == "ocs_fabric":
        return {"port_GBps": net_GBps / int(params.get("ports_per_gpu", 8))}
    if generator == "torus":
        return {"link_GBps": net_GBps / (2 * len(params.get("dims", [0, 0, 0])))}
    if generator in ("clos", "fat_tree", "leaf_spine"):
        return {"host_GBps": net_GBps}
    raise OcsnetError(f"gpu_fraction: the {generator} fabric cannot carry a derived Lite-GPU's bandwidth "
                      "(use an OCS, torus or packet Clos fabric)")


@lru_cache(maxsize=8)
def _fabric(name: str, gpu: str, n_gpus: int | None, overrides_json: str, net_GBps: float | None):
    """Build (and keep, per worker process) one fabric; ``net_GBps`` is a derived GPU's network."""
    from .. import hardware, units
    from ..topology.spec import build, load_spec

    spec = load_spec(name)
    params = dict(spec.get("params", {}))
    over = json.loads(overrides_json)
    if n_gpus is not None:
        over.update(_size_overrides(spec["generator"], n_gpus, params))
    params.update(over)
    if net_GBps is not None:
        over.update(_bandwidth_overrides(spec["generator"], params, net_GBps))
    packet = spec["generator"] in ("clos", "fat_tree", "leaf_spine")
    if packet and "host_GBps" not in over:     # packet fabrics get the GPU's own network bandwidth
        over["host_GBps"] = units.from_si("x_GBps", hardware.gpu(gpu).network_Bps)
    return build(name, gpu=gpu, **over)


def _memory(setup: PointSetup):
    """The memory config and the fabric overrides of the point's memory architecture."""
    if setup.memory == "local":
        return None, {}
    from ..memory import memory_config

    mem = memory_config(setup.memory, node_tier=setup.memory_tier)
    over = {"memory": {"tier": setup.memory_tier, "n_nodes": setup.memory_nodes}} \
        if setup.memory == "disaggregated" else {}
    return mem, over


def _latency_limit(setup: PointSetup) -> float | None:
    limits = [setup.latency_limit_s] if setup.latency_limit_s is not None else []
    if setup.slo is not None:
        from ..serving.slo import slo
        s = slo(setup.slo)
        limits.append(s.ttft_s if setup.mode == "prefill" else s.tpot_s)
    return min(limits) if limits else None


def _failure_metrics(setup: PointSetup, fabric, gpu, t: dict) -> dict:
    """Blast radius of one GPU, capacity lost in steady state and goodput under ``repair_policy``."""
    from ..reliability import analytic, blast_matrices, blast_summary, components, deployment, failure_model

    n = int(t["gpus_per_replica"])
    comm = min(1.0, t["comm_us"] / t["layer_us"]) if t["layer_us"] > 0 else 0.0
    dep = deployment(fabric, gpu, n, comm_fraction=comm, tokens_per_s=1.0)
    mats = blast_matrices(dep)
    summ = blast_summary(dep, mats)["gpu"]
    spares = int(round(setup.spare_fraction * fabric.n_gpus)) if setup.repair_policy != "none" else 0
    comp = components(dep, failure_model(), policy=setup.repair_policy, spares=spares,
                      weights_B_per_gpu=t["memory_GB"] * 1e9, matrices=mats)
    a = analytic(comp)
    avail = 1.0 - a["lost_share"]
    silicon = (fabric.n_gpus + spares) / fabric.n_gpus          # spares are silicon too
    return {"blast_radius_h100e": summ["h100e_stopped_max"], "blast_radius_share": summ["share_lost_max"],
            "capacity_lost_share": a["lost_share"], "failures_per_h": a["failures_per_h"],
            "goodput_tokens_per_s_per_h100e": t["tokens_per_s_per_h100e"] * avail / silicon,
            "goodput_tokens_per_s_per_kW": t["tokens_per_s_per_kW"] * avail / silicon,
            "goodput_tokens_per_s_per_cost": t["tokens_per_s_per_cost"] * avail / silicon}


def _study_cfg(setup: PointSetup) -> dict:
    from ..evaluation.study import study_config

    sizes = dict(SIZE_DEFAULTS[setup.mode])
    sizes.update(setup.sizes)
    cfg = {**SEARCH_DEFAULTS, **setup.search, setup.mode: sizes, "models": [setup.model],
           "modes": [setup.mode], "variants": [], "analyses": [], "sweep_models": []}
    return study_config(cfg)


def _screen(cfg: dict, setup: PointSetup, fabric, model, gpu, memory, limit_s):
    """Best plan by the alpha-beta screen (ideal circuits), as the study's first step does."""
    import itertools

    from ..evaluation import evaluate
    from ..evaluation.search import feasible_plans, objective, precision

    plans, skipped = feasible_plans(cfg, model, setup.mode, gpu, memory)
    best, best_score, n = None, None, 0
    for (plan, sizes), alg in itertools.product(plans, cfg["algorithms"]):
        if plan.tp * plan.pp > fabric.n_gpus:
            continue
        try:
            ev = evaluate(model, plan, fabric, setup.mode, gpu=gpu, algorithms={"all-reduce": alg},
                          fidelities=("alpha-beta",), fidelity="alpha-beta", schedule=False,
                          reconfig_delay_s=setup.reconfig_delay_s, memory=memory, **sizes, **precision(cfg))
        except OcsnetError as e:
            skipped.append(f"{plan} {alg}: {e}")
            continue
        n += 1
        if not ev.fits:
            skipped.append(f"{plan} {alg}: does not fit in the memory tiers")
            continue
        if limit_s is not None and ev.latency_s > limit_s:
            skipped.append(f"{plan} {alg}: latency {ev.latency_s:.3g} s over the limit of {limit_s:.3g} s")
            continue
        score = objective(ev, cfg["objective"])
        if best is None or score > best_score:
            best, best_score = ev, score
    return best, n, skipped


def _full(cfg: dict, setup: PointSetup, fabric, model, gpu, memory, limit_s):
    from ..evaluation.records import System
    from ..evaluation.search import choose

    system = System(gpu.name, setup.fabric, gpu)
    c = choose(cfg, system, fabric, model, setup.mode, setup.reconfig_delay_s, limit_s, memory)
    best = c.best
    if best is not None and limit_s is not None and best.latency_s > limit_s:
        best = None
        c.skipped.append("no plan meets the latency limit")
    return best, c.screened, c.skipped


def evaluate_point(values: dict, fidelity: str = "screen") -> dict:
    """Status and metrics of one design point (a dict ``knob -> value``); never raises."""
    t0 = time.perf_counter()
    row: dict = {"status": "ok", "reason": ""}
    try:
        from ..workload.models import model as get_model

        from .. import units

        setup = resolve(values)
        gpu = gpu_of(setup)
        memory, mem_over = _memory(setup)
        net = units.from_si("x_GBps", gpu.network_Bps) if setup.gpu_fraction is not None else None
        fabric = _fabric(setup.fabric, setup.gpu, setup.n_gpus,
                         json.dumps({**setup.fabric_overrides, **mem_over}, sort_keys=True), net)
        model = get_model(setup.model)
        cfg = _study_cfg(setup)
        limit = _latency_limit(setup)
        row.update({"gpu_h100e": gpu.h100_equivalents, "gpu_relative_cost": gpu.relative_cost,
                    "gpu_tdp_W": gpu.tdp_W, "gpu_network_GBps": units.from_si("x_GBps", gpu.network_Bps),
                    "gpu_hbm_GB": units.from_si("x_GB", gpu.hbm_bytes)})
        best, n, skipped = (_screen if fidelity == "screen" else _full)(cfg, setup, fabric, model, gpu, memory, limit)
        row["plans_evaluated"] = float(n)
        if best is None:
            row.update(status="infeasible", reason=(skipped[-1] if skipped else "no plan fits this system"))
        else:
            t = best.totals()
            row.update({k: float(t[k]) for k in ("tokens_per_s_per_h100e", "tokens_per_s_per_gpu",
                                                 "tokens_per_s_per_kW", "tokens_per_s_per_cost",
                                                 "usd_per_million_tokens", "latency_ms",
                                                 "layer_us", "compute_us", "reconfig_us", "memory_GB",
                                                 "gpus_per_replica", "batch", "failures")})
            row["comm_us"] = float(t["comm_max_min_us"] if fidelity == "full" else t["comm_alpha_beta_us"])
            row["plan"] = t["plan"]
            row["algorithm"] = best.algorithms.get("all-reduce", "")
            if setup.repair_policy is not None:
                row.update(_failure_metrics(setup, fabric, gpu, row))
    except OcsnetError as e:
        row.update(status="infeasible", reason=str(e))
    except Exception as e:  # noqa: BLE001 - a failed point is recorded, never stops the sweep
        tb = traceback.extract_tb(e.__traceback__)[-1]
        row.update(status="failed", reason=f"{type(e).__name__}: {e} (at {tb.name}:{tb.lineno})")
    row["elapsed_s"] = time.perf_counter() - t0
    return row


def run_chunk(points: list[tuple[str, dict]], fidelity: str = "screen") -> list[dict]:
    """Evaluate ``[(key, values), ...]``; one row per point, with its key, config and schema version."""
    out = []
    for key, values in points:
        row = {"key": key, "schema_version": SCHEMA_VERSION,
               "config_json": json.dumps(values, sort_keys=True, separators=(",", ":"))}
        row.update(evaluate_point(values, fidelity))
        out.append(row)
    return out
