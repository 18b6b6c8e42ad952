"""Power and clock of a die: an alpha-power voltage-frequency curve and a cooling limit.

Stage 1 (silicon model; see docs/design.md, "Silicon").

* **Voltage-frequency curve** (Sakurai and Newton's alpha-power law): the
  clock a supply ``V`` sustains is proportional to ``(V - Vt)^alpha / V``;
  :func:`clock_factor` gives it relative to the nominal supply, and
  :func:`voltage_for_clock` inverts it (bisection).  A clock above the curve's
  value at the maximum supply is refused.
* **Logic power** per area, relative to nominal: dynamic ``(V/V0)^2 f/f0`` and
  leakage ``V/V0`` weighted by the leakage share (:func:`power_factor`).
* **Cooling limit**: the heat flux a package can remove rises as the die
  shrinks, because the lateral spreading part of the junction-to-coolant
  resistance scales as ``sqrt(area)``.  With the parent at its limit at TDP
  and a spreading share ``sigma``, a die of area ``A`` may dissipate
  ``1 / ((1 - sigma) + sigma sqrt(A / A_parent))`` times the parent's logic
  power density (:func:`flux_limit_factor`).  The highest clock under that
  limit and the maximum supply is :func:`max_clock_factor`: overclocking is
  what fits, not a constant.

Examples
--------
>>> p = {"nominal_vdd_V": 0.8, "threshold_V": 0.3, "alpha_power": 1.3, "max_vdd_V": 0.95, "static_share": 0.3}
>>> round(clock_factor(0.8, **{k: p[k] for k in ("nominal_vdd_V", "threshold_V", "alpha_power")}), 6)
1.0
"""

from __future__ import annotations

import math

from ..errors import SpecError

__all__ = ["clock_factor", "voltage_for_clock", "power_factor", "flux_limit_factor", "max_clock_factor",
           "curve_max_clock"]


def _check(nominal_vdd_V, threshold_V, alpha_power):
    if not 0 <= threshold_V < nominal_vdd_V:
        raise SpecError(f"power.threshold_V: {threshold_V!r} is out of range, allowed [0, nominal_vdd_V)")
    if not alpha_power >= 1:
        raise SpecError(f"power.alpha_power: {alpha_power!r} is out of range, allowed [1, 2]")


def clock_factor(vdd_V: float, *, nominal_vdd_V: float, threshold_V: float, alpha_power: float) -> float:
    """Clock at supply ``vdd_V`` over the clock at the nominal supply (alpha-power law)."""
    _check(nominal_vdd_V, threshold_V, alpha_power)
    if vdd_V <= threshold_V:
        return 0.0

    def g(v):
        return (v - threshold_V) ** alpha_power / v

    return g(vdd_V) / g(nominal_vdd_V)


def curve_max_clock(p) -> float:
    """The highest clock factor on the voltage curve (at the maximum supply)."""
    if p["power.max_vdd_V"] < p["power.nominal_vdd_V"]:
        raise SpecError(f"power.max_vdd_V: {p['power.max_vdd_V']!r} is out of range, "
                        f"allowed [nominal_vdd_V = {p['power.nominal_vdd_V']}, inf)")
    return clock_factor(p["power.max_vdd_V"], nominal_vdd_V=p["power.nominal_vdd_V"],
                        threshold_V=p["power.threshold_V"], alpha_power=p["power.alpha_power"])


def voltage_for_clock(clock: float, p) -> float:
    """Supply voltage that sustains ``clock`` (relative to nominal); refused beyond the curve's maximum supply."""
    v0, vt, a, vmax = (p["power.nominal_vdd_V"], p["power.threshold_V"], p["power.alpha_power"],
                       p["power.max_vdd_V"])
    top = curve_max_clock(p)
    if not 0 < clock <= top + 1e-12:
        raise SpecError(f"clock: {clock!r} is beyond the voltage curve, allowed (0, {top:.4g}] "
                        f"(the clock at the maximum supply {vmax:g} V)")
    lo, hi = vt, vmax
    for _ in range(100):   # clock_factor rises monotonically with V above Vt (alpha >= 1)
        mid = 0.5 * (lo + hi)
        if clock_factor(mid, nominal_vdd_V=v0, threshold_V=vt, alpha_power=a) < clock:
            lo = mid
        else:
            hi = mid
    return hi


def power_factor(clock: float, p) -> float:
    """Logic power per area at ``clock`` (on the voltage curve) over that at the nominal clock."""
    v = voltage_for_clock(clock, p) / p["power.nominal_vdd_V"]
    s = p["power.static_share"]
    if not 0 <= s <= 1:
        raise SpecError(f"power.static_share: {s!r} is out of range, allowed [0, 1]")
    return (1.0 - s) * v * v * clock + s * v


def flux_limit_factor(area_mm2: float, parent_area_mm2: float, p) -> float:
    """Heat flux the cooling removes from a die of ``area_mm2``, over the parent's (at its TDP)."""
    sigma = p["power.spreading_share"]
    if not 0 <= sigma < 1:
        raise SpecError(f"power.spreading_share: {sigma!r} is out of range, allowed [0, 1)")
    return 1.0 / ((1.0 - sigma) + sigma * math.sqrt(area_mm2 / parent_area_mm2))


def max_clock_factor(area_mm2: float, parent_area_mm2: float, p) -> float:
    """Highest clock (relative to nominal) whose logic power density fits the cooling limit and the curve."""
    limit = flux_limit_factor(area_mm2, parent_area_mm2, p)
    top = curve_max_clock(p)
    if power_factor(top, p) <= limit:
        return top
    lo, hi = 0.0, top
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid > 0 and power_factor(mid, p) <= limit:
            lo = mid
        else:
            hi = mid
    return lo
