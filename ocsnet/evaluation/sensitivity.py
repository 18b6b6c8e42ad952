"""Sensitivity of cost per million tokens to the economic parameters: tornado and Monte Carlo.

Stage: evaluation (see docs/design.md, "Silicon").  Throughput does not depend
on prices, so each system is reduced to a few numbers (:class:`CostInputs`:
tokens/s, GPUs, their silicon, network cost and power) and its cost per
million tokens is recomputed, vectorized, for any parameter values: the
GPU's relative cost comes from the silicon model at those values (the price
keeps the parent's margin), the rest from :func:`ocsnet.silicon.tco.system_cost`.

* :func:`tornado`: each parameter of the catalog's ``[range]`` at its low and
  high value, the others at their defaults.
* :func:`monte_carlo`: every parameter drawn at once from a triangular
  distribution (low, default, high), seeded; the probability that a system
  costs less per million tokens than the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..silicon import params as silicon_params
from ..silicon.cost import cost_terms
from ..silicon.params import Params
from ..silicon.tco import system_cost
from ..silicon.wafer import die_dimensions, dies_per_wafer

__all__ = ["CostInputs", "cost_inputs", "usd_per_mtok", "tornado", "monte_carlo"]


@dataclass(frozen=True)
class CostInputs:
    """What the cost of a system depends on, besides the prices."""

    label: str
    tokens_per_s: float
    n_gpus: int
    h100e_per_gpu: float
    network_cost_per_gpu: float     # H100 = 1
    watts: float                    # GPUs and their network share, at full load
    area_mm2: float                 # the GPU's die
    hbm_GB: float
    parent_area_mm2: float
    parent_hbm_GB: float
    is_parent: bool                 # the GPU is the parent itself (relative cost 1 at any price)


def cost_inputs(label: str, ev, parent) -> CostInputs:
    """The cost inputs of one evaluation (its replica) against the parent GPU of the silicon model."""
    n = ev.gpus_per_replica
    g = ev.gpu
    return CostInputs(label=label, tokens_per_s=float(ev.throughput_tps), n_gpus=n,
                      h100e_per_gpu=float(g.h100_equivalents), network_cost_per_gpu=float(ev.network_cost_per_gpu),
                      watts=float(n * (g.tdp_W + ev.network_W_per_gpu)), area_mm2=float(g.die_area_mm2),
                      hbm_GB=units.from_si("x_GB", g.hbm_bytes), parent_area_mm2=float(parent.die_area_mm2),
                      parent_hbm_GB=units.from_si("x_GB", parent.hbm_bytes),
                      is_parent=g.name == parent.name)


_DPW: dict = {}


def _dpw(area_mm2: float, p: Params) -> float:
    """Dies per wafer depend on geometry only (not on the sampled prices): computed once per area."""
    key = (round(area_mm2, 9), p["shoreline.aspect_ratio"], p["wafer.diameter_mm"], p["wafer.edge_exclusion_mm"],
           p["wafer.scribe_mm"])
    if key not in _DPW:
        w, h = die_dimensions(area_mm2, p["shoreline.aspect_ratio"])
        _DPW[key] = float(dies_per_wafer(w, h, wafer_diameter_mm=p["wafer.diameter_mm"],
                                         edge_exclusion_mm=p["wafer.edge_exclusion_mm"], scribe_mm=p["wafer.scribe_mm"]))
    return _DPW[key]


def usd_per_mtok(ci: CostInputs, p: Params):
    """Cost per million tokens of one system under parameters ``p`` (values may be arrays of samples)."""
    if ci.is_parent:
        rel = 1.0
    else:
        mine = cost_terms(ci.area_mm2, ci.hbm_GB, _dpw(ci.area_mm2, p), p)["gpu_usd"]
        par = cost_terms(ci.parent_area_mm2, ci.parent_hbm_GB, _dpw(ci.parent_area_mm2, p), p)["gpu_usd"]
        rel = mine / par
    return system_cost(n_gpus=ci.n_gpus, gpu_relative_cost=rel, network_cost_per_gpu=ci.network_cost_per_gpu,
                       h100e_per_gpu=ci.h100e_per_gpu, watts=ci.watts, tokens_per_s=ci.tokens_per_s,
                       params=p)["usd_per_million_tokens"]


def _with(p: Params, updates: dict) -> Params:
    """Parameters with some values replaced by arrays or numbers (no checks: they come from the catalog ranges)."""
    vals = dict(p.values)
    vals.update(updates)
    return Params(vals, p.sources, p.ranges, p.range_sources)


def tornado(system: CostInputs, baseline: CostInputs, p: Params | None = None) -> list[dict]:
    """Ratio of the system's cost per million tokens to the baseline's, each parameter at its low and high.

    Rows sorted by swing (largest first): ``parameter``, ``low``, ``high``,
    ``ratio_low``, ``ratio_high``, ``ratio_default``.
    """
    p = p or silicon_params()
    base = float(usd_per_mtok(system, p) / usd_per_mtok(baseline, p))
    rows = []
    for key, (lo, hi) in sorted(p.ranges.items()):
        r = [float(usd_per_mtok(system, q) / usd_per_mtok(baseline, q)) for q in (_with(p, {key: lo}), _with(p, {key: hi}))]
        rows.append({"parameter": key, "low": lo, "high": hi, "ratio_low": r[0], "ratio_high": r[1],
                     "ratio_default": base, "assumption": p.is_assumption(key)})
    rows.sort(key=lambda r: (-abs(r["ratio_high"] - r["ratio_low"]), r["parameter"]))
    return rows


def monte_carlo(systems: list[CostInputs], baseline: CostInputs, p: Params | None = None, *,
                samples: int = 4000, seed: int = 0) -> list[dict]:
    """P(system costs less per million tokens than the baseline) with every ranged parameter drawn at once.

    Each parameter is triangular on (low, default, high), independent of the
    others, drawn in sorted name order from ``numpy.random.default_rng(seed)``.
    """
    p = p or silicon_params()
    rng = np.random.default_rng(int(seed))
    draws = {k: rng.triangular(lo, p[k], hi, size=int(samples)) if hi > lo else np.full(int(samples), lo)
             for k, (lo, hi) in sorted(p.ranges.items())}
    q = _with(p, draws)
    base = usd_per_mtok(baseline, q)
    out = []
    for ci in systems:
        ratio = usd_per_mtok(ci, q) / base
        out.append({"system": ci.label, "p_beats_baseline": float(np.mean(ratio < 1.0)),
                    "ratio_p05": float(np.percentile(ratio, 5)), "ratio_p50": float(np.percentile(ratio, 50)),
                    "ratio_p95": float(np.percentile(ratio, 95)), "samples": int(samples)})
    return out
