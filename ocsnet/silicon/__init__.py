"""The silicon model: dies per wafer, yield, cost, shoreline, power and clock of a GPU die.

Stage 1 of the pipeline, beside the catalog (see docs/design.md, "Silicon"):
it turns the size of a die into what the hardware specs need, so that
Lite-GPUs are derived (:func:`ocsnet.hardware.lite_gpu`) instead of assumed.
Parameters come from ``ocsnet/catalog/silicon.toml`` (:func:`params`).

Modules: :mod:`.wafer` (dies per wafer, reticle), :mod:`.yields` (yield
models), :mod:`.cost` (cost of a good GPU), :mod:`.power` (voltage-frequency
curve, cooling limit, maximum clock), :mod:`.design` (a Lite-GPU from its
parent), :mod:`.tco` (cost of ownership and cost per million tokens),
:mod:`.table` (one row per fraction), :mod:`.names` (choices, no numpy).
Names are loaded on first use, so ``import ocsnet.silicon.names`` stays cheap.
"""

import importlib

from .names import DEFAULT_FRACTIONS, IO_KINDS, NETWORKS, YIELD_MODELS
from .params import Params, params   # no numpy; bound here so the name is the function, not the module

_WHERE = {
    "dies_per_wafer": "wafer", "die_dimensions": "wafer", "check_reticle": "wafer",
    "die_yield": "yields",
    "gpu_cost": "cost", "CostBreakdown": "cost", "cost_terms": "cost",
    "lite_design": "design", "LiteDesign": "design", "parse_fraction": "design", "shoreline_Bps": "design",
    "clock_factor": "power", "voltage_for_clock": "power", "power_factor": "power", "flux_limit_factor": "power",
    "max_clock_factor": "power", "curve_max_clock": "power",
    "capex_usd": "tco", "tco_usd_per_s": "tco", "usd_per_million_tokens": "tco", "system_cost": "tco",
    "fraction_rows": "table",
}

__all__ = sorted([*_WHERE, "params", "Params", "DEFAULT_FRACTIONS", "IO_KINDS", "NETWORKS", "YIELD_MODELS"])


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
