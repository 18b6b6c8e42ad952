"""One row per die fraction: the figures ``ocsnet silicon`` prints and the study reports.

Stage 1 (silicon model; see docs/design.md, "Silicon").

Examples
--------
>>> from types import SimpleNamespace as NS
>>> h100 = NS(name="h100", die_area_mm2=814, hbm_bytes=80e9, hbm_Bps=3.35e12, scaleup_Bps=450e9,
...           tdp_W=700, bf16_flops=989.4e12)
>>> [r["fraction"] for r in fraction_rows(h100, ["1", "1/4"])]
['1', '1/4']
"""

from __future__ import annotations

from .. import units
from .design import lite_design, parse_fraction
from .params import params as get_params

__all__ = ["fraction_rows", "DEFAULT_FRACTIONS", "COLUMNS"]

from .names import DEFAULT_FRACTIONS

#: Row keys in print order (unit-suffixed).
COLUMNS = ("fraction", "die_mm2", "dies_per_wafer", "yield", "good_die_usd", "package_usd", "hbm_usd",
           "gpu_usd", "cost_per_h100e_usd", "cost_per_h100e", "power_W", "network_GBps",
           "bw_to_compute_vs_parent", "max_clock")


def fraction_rows(parent, fractions=DEFAULT_FRACTIONS, *, io: str = "cpo", params=None,
                  allow_stitching: bool = False) -> list[dict]:
    """The silicon model at each fraction of ``parent`` (full shoreline, nominal clock; max clock reported).

    ``cost_per_h100e`` is relative to the parent's own modelled cost; ``max_clock``
    is the highest clock under the cooling limit and the voltage curve.
    """
    p = get_params(params)
    rows = []
    for fr in fractions:
        f = parse_fraction(fr)
        d = lite_design(parent, f, io=io, network="shoreline", clock="nominal", params=p,
                        allow_stitching=allow_stitching)
        c = d.cost
        rows.append({
            "fraction": str(fr).strip(), "die_mm2": d.area_mm2, "dies_per_wafer": c.dies_per_wafer,
            "yield": c.yield_total, "good_die_usd": c.good_die_usd, "package_usd": c.package_usd,
            "hbm_usd": c.hbm_usd, "gpu_usd": c.gpu_usd, "cost_per_h100e_usd": c.gpu_usd / f,
            "cost_per_h100e": d.cost_per_h100e, "power_W": d.tdp_W,
            "network_GBps": units.from_si("x_GBps", d.network_Bps),
            "bw_to_compute_vs_parent": d.network_ratio_factor, "max_clock": d.max_clock_factor,
            "optics_usd": c.optics_usd, "width_mm": c.width_mm, "height_mm": c.height_mm,
        })
    return rows
