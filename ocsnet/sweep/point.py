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
from .spec import SCHEMA_VERSION

__all__ = ["evaluate_point", "run_chunk", "METRICS", "STATUSES"]

STATUSES = ("ok", "infeasible", "failed")

#: Metric columns of a result row (float unless named in :data:`TEXT_METRICS`), with units in the names.
METRICS = ("tokens_per_s_per_h100e", "tokens_per_s_per_gpu", "tokens_per_s_per_kW", "tokens_per_s_per_cost",
           "latency_ms", "layer_us", "compute_us", "comm_us", "reconfig_us", "memory_GB",
           "gpus_per_replica", "batch", "failures", "plans_evaluated", "elapsed_s")
TEXT_METRICS = ("plan", "algorithm")

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


@lru_cache(maxsize=8)
def _fabric(name: str, gpu: str, n_gpus: int | None, overrides_json: str):
    """Build (and keep, per worker process) one fabric."""
    from .. import hardware, units
    from ..topology.spec import build, load_spec

    spec = load_spec(name)
    over = json.loads(overrides_json)
    if n_gpus is not None:
        over.update(_size_overrides(spec["generator"], n_gpus, spec.get("params", {})))
    packet = spec["generator"] in ("clos", "fat_tree", "leaf_spine")
    if packet and "host_GBps" not in over:     # packet fabrics get the GPU's own network bandwidth
        over["host_GBps"] = units.from_si("x_GBps", hardware.gpu(gpu).network_Bps)
    return build(name, gpu=gpu, **over)


def _study_cfg(setup: PointSetup) -> dict:
    from ..evaluation.study import study_config

    sizes = dict(SIZE_DEFAULTS[setup.mode])
    sizes.update(setup.sizes)
    cfg = {**SEARCH_DEFAULTS, **setup.search, setup.mode: sizes, "models": [setup.model],
           "modes": [setup.mode], "variants": [], "analyses": [], "sweep_models": []}
    return study_config(cfg)


def _screen(cfg: dict, setup: PointSetup, fabric, model):
    """Best plan by the alpha-beta screen (ideal circuits), as the study's first step does."""
    import itertools

    from .. import hardware
    from ..evaluation import evaluate
    from ..evaluation.search import feasible_plans, objective, precision

    gpu = hardware.gpu(setup.gpu)
    plans, skipped = feasible_plans(cfg, model, setup.mode, gpu)
    best, n = None, 0
    for (plan, sizes), alg in itertools.product(plans, cfg["algorithms"]):
        if plan.tp * plan.pp > fabric.n_gpus:
            continue
        try:
            ev = evaluate(model, plan, fabric, setup.mode, gpu=gpu, algorithms={"all-reduce": alg},
                          fidelities=("alpha-beta",), fidelity="alpha-beta", schedule=False,
                          reconfig_delay_s=setup.reconfig_delay_s, **sizes, **precision(cfg))
        except OcsnetError as e:
            skipped.append(f"{plan} {alg}: {e}")
            continue
        n += 1
        if setup.latency_limit_s is not None and ev.latency_s > setup.latency_limit_s:
            skipped.append(f"{plan} {alg}: latency {ev.latency_s:.3g} s over the limit")
            continue
        if best is None or objective(ev, cfg["objective"]) > objective(best, cfg["objective"]):
            best = ev
    return best, n, skipped


def _full(cfg: dict, setup: PointSetup, fabric, model):
    from ..evaluation.records import System
    from ..evaluation.search import choose

    system = System(setup.gpu, setup.fabric, setup.gpu)
    c = choose(cfg, system, fabric, model, setup.mode, setup.reconfig_delay_s, setup.latency_limit_s)
    best = c.best
    if best is not None and setup.latency_limit_s is not None and best.latency_s > setup.latency_limit_s:
        best = None
        c.skipped.append("no plan meets the latency limit")
    return best, c.screened, c.skipped


def evaluate_point(values: dict, fidelity: str = "screen") -> dict:
    """Status and metrics of one design point (a dict ``knob -> value``); never raises."""
    t0 = time.perf_counter()
    row: dict = {"status": "ok", "reason": ""}
    try:
        from ..workload.models import model as get_model

        setup = resolve(values)
        fabric = _fabric(setup.fabric, setup.gpu, setup.n_gpus, json.dumps(setup.fabric_overrides, sort_keys=True))
        model = get_model(setup.model)
        cfg = _study_cfg(setup)
        best, n, skipped = (_screen if fidelity == "screen" else _full)(cfg, setup, fabric, model)
        row["plans_evaluated"] = float(n)
        if best is None:
            row.update(status="infeasible", reason=(skipped[-1] if skipped else "no plan fits this system"))
        else:
            t = best.totals()
            row.update({k: float(t[k]) for k in ("tokens_per_s_per_h100e", "tokens_per_s_per_gpu",
                                                 "tokens_per_s_per_kW", "tokens_per_s_per_cost", "latency_ms",
                                                 "layer_us", "compute_us", "reconfig_us", "memory_GB",
                                                 "gpus_per_replica", "batch", "failures")})
            row["comm_us"] = float(t["comm_max_min_us"] if fidelity == "full" else t["comm_alpha_beta_us"])
            row["plan"] = t["plan"]
            row["algorithm"] = best.algorithms.get("all-reduce", "")
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
