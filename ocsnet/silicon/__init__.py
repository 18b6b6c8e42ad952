"""The silicon model: dies per wafer, yield, cost, shoreline, power and clock of a GPU die.

Stage 1 of the pipeline, beside the catalog (see docs/design.md, "Silicon"):
it turns the size of a die into what the hardware specs need, so that
Lite-GPUs are derived (:func:`ocsnet.hardware.lite_gpu`) instead of assumed.
Parameters come from ``ocsnet/catalog/silicon.toml`` (:func:`params`).

Modules: :mod:`.wafer` (dies per wafer, reticle), :mod:`.yields` (yield
models), :mod:`.cost` (cost of a good GPU), :mod:`.power` (voltage-frequency
curve, cooling limit, maximum clock), :mod:`.design` (a Lite-GPU from its
parent), :mod:`.tco` (cost of ownership and cost per million tokens).
"""

from .cost import IO_KINDS, CostBreakdown, gpu_cost
from .design import NETWORKS, LiteDesign, lite_design, parse_fraction, shoreline_Bps
from .params import Params, params
from .power import clock_factor, curve_max_clock, flux_limit_factor, max_clock_factor, power_factor, voltage_for_clock
from .tco import capex_usd, tco_usd_per_s, usd_per_million_tokens
from .wafer import check_reticle, die_dimensions, dies_per_wafer
from .yields import YIELD_MODELS, die_yield

__all__ = ["params", "Params", "dies_per_wafer", "die_dimensions", "check_reticle", "die_yield", "YIELD_MODELS",
           "gpu_cost", "CostBreakdown", "IO_KINDS", "lite_design", "LiteDesign", "NETWORKS", "parse_fraction",
           "shoreline_Bps", "clock_factor", "voltage_for_clock", "power_factor", "flux_limit_factor",
           "max_clock_factor", "curve_max_clock", "capex_usd", "tco_usd_per_s", "usd_per_million_tokens"]
