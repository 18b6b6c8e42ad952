"""A Lite-GPU designed from its parent: size, shoreline bandwidth, clock, power and cost.

Stage 1 (silicon model; see docs/design.md, "Silicon").  A Lite-GPU of
fraction ``f`` has ``f`` of the parent's die area (same aspect ratio), HBM
capacity and HBM bandwidth.  From the rest of the silicon model:

* **Shoreline.**  The edge not given to HBM carries the network I/O at an
  escape density (Gb/s per mm, per direction) that depends on the I/O kind.
  Edge per area grows as ``1 / sqrt(f)``, so at the parent's density a
  quarter die has twice the parent's bandwidth-to-compute ratio:
  ``network="shoreline"`` uses all of it; ``network="parent-ratio"`` keeps
  the parent's ratio (and checks that the shoreline allows it).
* **Clock.**  ``"nominal"``, ``"max"`` (the highest clock under the cooling
  limit and the voltage curve, :func:`~ocsnet.silicon.power.max_clock_factor`)
  or a number (checked against both).
* **Power.**  Logic power scales with area and with the voltage-frequency
  curve; HBM power with its bandwidth.  The parent's TDP is split into the two
  with the HBM energy per bit.
* **Cost.**  :func:`~ocsnet.silicon.cost.gpu_cost` for the Lite-GPU and the
  parent; ``relative_cost`` is their ratio (the price keeps the parent's
  margin: an assumption).

The parent is any object with ``name``, ``die_area_mm2``, ``hbm_bytes``,
``hbm_Bps``, ``scaleup_Bps`` and ``tdp_W`` (an :class:`ocsnet.hardware.GPUSpec`).

Examples
--------
>>> from types import SimpleNamespace as NS
>>> h100 = NS(name="h100", die_area_mm2=814, hbm_bytes=80e9, hbm_Bps=3.35e12, scaleup_Bps=450e9, tdp_W=700)
>>> d = lite_design(h100, 0.25, network="shoreline")
>>> round(d.network_ratio_factor, 2), round(d.power_fraction, 3)
(2.0, 0.25)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import units
from ..checks import check_range
from ..errors import SpecError
from .cost import CostBreakdown, gpu_cost
from .params import Params, params as get_params
from .power import curve_max_clock, max_clock_factor, power_factor, voltage_for_clock
from .wafer import die_dimensions

__all__ = ["LiteDesign", "lite_design", "NETWORKS", "IO_DENSITY", "parse_fraction", "shoreline_Bps"]

from .names import NETWORKS
#: I/O kind -> the catalog's escape density (a pluggable module is reached by copper SerDes).
IO_DENSITY = {"cpo": "shoreline.cpo_Gbps_per_mm", "copper": "shoreline.copper_Gbps_per_mm",
              "pluggable": "shoreline.copper_Gbps_per_mm"}


@dataclass(frozen=True)
class LiteDesign:
    """The silicon model's Lite-GPU: what the hardware spec needs, and why."""

    parent: str
    fraction: float
    io: str
    network: str
    area_mm2: float
    width_mm: float
    height_mm: float
    io_edge_mm: float
    shoreline_Bps: float        # per direction, all of the I/O edge at the escape density
    network_Bps: float          # per direction, what the design uses
    network_ratio_factor: float  # bandwidth-to-compute over the parent's (at nominal clock)
    clock_factor: float
    max_clock_factor: float     # under the cooling limit and the voltage curve
    vdd_V: float
    hbm_bytes: float
    hbm_Bps: float
    tdp_W: float
    power_fraction: float       # TDP over the parent's
    cost: CostBreakdown
    parent_cost: CostBreakdown
    relative_cost: float        # gpu_usd over the parent's

    @property
    def cost_per_h100e(self) -> float:
        """Relative cost of ``1 / fraction`` Lite-GPUs (one parent's silicon)."""
        return self.relative_cost / self.fraction


def parse_fraction(text) -> float:
    """A fraction such as ``0.25``, ``"1/4"`` or ``"1"``; allowed (0, 1]."""
    s = str(text).strip()
    try:
        if "/" in s:
            a, b = s.split("/", 1)
            v = float(a) / float(b)
        else:
            v = float(s)
    except (ValueError, ZeroDivisionError):
        raise SpecError(f"fraction: cannot parse {text!r}; use a number or a ratio such as 1/4, allowed (0, 1]") from None
    if not (0 < v <= 1) or math.isnan(v):
        raise SpecError(f"fraction: {text!r} is out of range, allowed (0, 1]")
    return v


def _io_edge(area_mm2: float, p: Params) -> tuple[float, float, float]:
    w, h = die_dimensions(area_mm2, p["shoreline.aspect_ratio"])
    share = p["shoreline.hbm_edge_share"]
    if not 0 <= share < 1:
        raise SpecError(f"shoreline.hbm_edge_share: {share!r} is out of range, allowed [0, 1)")
    return w, h, 2.0 * (w + h) * (1.0 - share)


def shoreline_Bps(area_mm2: float, io: str = "cpo", params: Params | dict | None = None) -> float:
    """Per-direction bandwidth the die's I/O edge carries at the escape density of ``io``."""
    p = get_params(params)
    if io not in IO_DENSITY:
        raise SpecError(f"io: {io!r} is not one of {', '.join(IO_DENSITY)}")
    return _io_edge(area_mm2, p)[2] * units.to_si("x_Gbps", p[IO_DENSITY[io]])


def lite_design(parent, fraction: float = 0.25, *, io: str = "cpo", network: str = "shoreline",
                clock: str | float = "nominal", params: Params | dict | None = None,
                allow_stitching: bool = False) -> LiteDesign:
    """Design a Lite-GPU of ``fraction`` of ``parent`` with the silicon model.

    Raises
    ------
    SpecError
        A fraction outside (0, 1], an unknown io or network, a clock beyond
        the voltage curve or the cooling limit, a parent-ratio network that
        the shoreline cannot carry, a die larger than the reticle.
    """
    p = get_params(params)
    f = parse_fraction(fraction)
    if io not in IO_DENSITY:
        raise SpecError(f"io: {io!r} is not one of {', '.join(IO_DENSITY)}")
    if network not in NETWORKS:
        raise SpecError(f"network: {network!r} is not one of {', '.join(NETWORKS)}")
    pa = float(parent.die_area_mm2)
    check_range(f"{parent.name}.die_area_mm2", pa, 0, None, lo_open=True)
    area = f * pa
    w, h, edge = _io_edge(area, p)
    shore = edge * units.to_si("x_Gbps", p[IO_DENSITY[io]])
    need = parent.scaleup_Bps * f
    if network == "shoreline":
        net = shore
    else:
        if need > shore * (1 + 1e-3):   # the catalog densities are rounded to 4 digits
            raise SpecError(f"network: the parent's bandwidth-to-compute ratio needs {units.fmt_bandwidth(need)} "
                            f"but the {io} shoreline carries {units.fmt_bandwidth(shore)}; use a smaller fraction")
        net = need
    top = max_clock_factor(area, pa, p)
    if clock == "nominal":
        c = 1.0
    elif clock == "max":
        c = top
    else:
        try:
            c = float(clock)
        except (TypeError, ValueError):
            raise SpecError(f"clock: {clock!r} is not 'nominal', 'max' or a number") from None
        voltage_for_clock(c, p)  # refuses a clock beyond the voltage curve
        if c > top * (1 + 1e-9) and c > 1.0:
            raise SpecError(f"clock: {c:g} exceeds the cooling limit of a {area:.0f} mm2 die, allowed (0, {top:.4g}]")
    hbm_W = parent.hbm_Bps * units.BITS_PER_BYTE * units.to_si("x_pJ_per_bit", p["hbm.energy_pJ_per_bit"])
    logic_W = parent.tdp_W - hbm_W
    if logic_W <= 0:
        raise SpecError(f"hbm.energy_pJ_per_bit: HBM would use all of {parent.name}'s {parent.tdp_W:g} W TDP")
    tdp = logic_W * f * power_factor(c, p) + hbm_W * f
    hbm_GB = units.from_si("x_GB", parent.hbm_bytes * f)
    cost = gpu_cost(area, hbm_GB, network_Bps=net, io=io, params=p, allow_stitching=allow_stitching)
    pcost = gpu_cost(pa, units.from_si("x_GB", parent.hbm_bytes), network_Bps=parent.scaleup_Bps, io="copper",
                     params=p, allow_stitching=allow_stitching)
    return LiteDesign(
        parent=parent.name, fraction=f, io=io, network=network, area_mm2=area, width_mm=w, height_mm=h,
        io_edge_mm=edge, shoreline_Bps=shore, network_Bps=net, network_ratio_factor=net / need,
        clock_factor=c, max_clock_factor=top, vdd_V=voltage_for_clock(c, p) if c <= curve_max_clock(p) else float("nan"),
        hbm_bytes=parent.hbm_bytes * f, hbm_Bps=parent.hbm_Bps * f, tdp_W=tdp, power_fraction=tdp / parent.tdp_W,
        cost=cost, parent_cost=pcost, relative_cost=cost.gpu_usd / pcost.gpu_usd)
