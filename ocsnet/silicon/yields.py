"""Die yield models: Poisson, Murphy, Seeds, Bose-Einstein and negative binomial.

Stage 1 (silicon model; see docs/design.md, "Silicon").  With ``AD`` the die
area (cm2) times the defect density (per cm2):

============================  =========================================
``poisson``                   ``exp(-AD)``
``murphy``                    ``((1 - exp(-AD)) / AD)^2``
``seeds``                     ``exp(-sqrt(AD))``
``bose-einstein``             ``(1 + AD / n)^-n``, ``n`` critical layers sharing the density
``negative-binomial``         ``(1 + AD / alpha)^-alpha``, ``alpha`` the clustering parameter
============================  =========================================

The negative binomial tends to Poisson as ``alpha`` grows; with ``alpha = 1``
it is the Seeds-like exponential ``1 / (1 + AD)``.  The wafer process yield
(wafers lost to gross process faults) multiplies any of them; see
:func:`ocsnet.silicon.cost.gpu_cost`.

References
----------
Cunningham, "The use and evaluation of yield models in integrated circuit
manufacturing", IEEE Trans. Semiconductor Manufacturing, 1990; Stapper,
"Modeling of defects in integrated circuit photolithographic patterns", IBM
J. Res. Dev., 1984 (negative binomial).

Examples
--------
>>> round(float(die_yield(100, 0.1, model="poisson")), 4)   # 1 cm2 at 0.1 per cm2
0.9048
>>> round(float(die_yield(814, 0.07)), 3)                    # an H100-size die, alpha = 2
0.606
"""

from __future__ import annotations

import numpy as np

from .. import units
from ..errors import SpecError

__all__ = ["die_yield", "YIELD_MODELS"]

from .names import YIELD_MODELS


def die_yield(area_mm2, defect_density_per_cm2, *, model: str = "negative-binomial", alpha: float = 2.0,
              critical_layers: float = 10.0):
    """Fraction of dies of ``area_mm2`` without a killer defect (array in, array out).

    Raises
    ------
    SpecError
        A negative defect density, a non-positive area, alpha or layer count, an unknown model.
    """
    if model not in YIELD_MODELS:
        raise SpecError(f"yield model: {model!r} is not one of {', '.join(YIELD_MODELS)}")
    a = np.asarray(area_mm2, dtype=float)
    d = np.asarray(defect_density_per_cm2, dtype=float)
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise SpecError(f"defect_density_per_cm2: {defect_density_per_cm2!r} is out of range, allowed [0, inf)")
    if np.any(~np.isfinite(a)) or np.any(a <= 0):
        raise SpecError(f"area_mm2: {area_mm2!r} is out of range, allowed (0, inf)")
    alpha = np.asarray(alpha, dtype=float)
    if not np.all(alpha > 0):
        raise SpecError(f"alpha: {alpha!r} is out of range, allowed (0, inf)")
    if not np.all(np.asarray(critical_layers) > 0):
        raise SpecError(f"critical_layers: {critical_layers!r} is out of range, allowed (0, inf)")
    ad = a / units.MM2_PER_CM2 * d
    if model == "poisson":
        y = np.exp(-ad)
    elif model == "murphy":
        safe = np.where(ad > 0, ad, 1.0)
        y = np.where(ad > 0, (-np.expm1(-safe) / safe) ** 2, 1.0)   # expm1: no cancellation at tiny AD
    elif model == "seeds":
        y = np.exp(-np.sqrt(ad))
    elif model == "bose-einstein":
        y = (1.0 + ad / critical_layers) ** (-critical_layers)
    else:
        y = (1.0 + ad / alpha) ** (-alpha)
    return y if y.ndim else float(y)
