"""Validation of the silicon model: closed forms, a brute-force die count, published numbers.

Stage: validation (see docs/design.md, "Silicon" and "Validation").
"""

from __future__ import annotations

import math
from typing import Iterator

from .. import hardware, silicon
from ..silicon import wafer
from .check import Check

__all__ = ["silicon_checks", "corner_count"]


def corner_count(w: float, h: float, s: float, R: float, ox: float, oy: float, tol: float = 0.0) -> int:
    """Whole dies inside radius R (``R**2 + tol``) by testing every die's four corners (plain loops:
    independent of :func:`ocsnet.silicon.dies_per_wafer`, so it checks it)."""
    n = int(2 * R / min(w + s, h + s)) + 3
    count = 0
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            x0, y0 = ox + i * (w + s), oy + j * (h + s)
            if all(x * x + y * y <= R * R + tol for x in (x0, x0 + w) for y in (y0, y0 + h)):
                count += 1
    return count


def silicon_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """Dies per wafer against brute force and the formula; yields against closed forms; the H100's
    build cost against Epoch AI's; the quarter die's shoreline against Canakci et al.'s 2x."""
    p = silicon.params()
    sizes = [(25.3, 32.2)] if quick else [(25.3, 32.2), (12.7, 16.1), (6.3, 8.0)]
    for w, h in sizes:
        d = 300.0
        steps = 4
        gx, gy = wafer.offset_grid(w + 0.1, w, steps), wafer.offset_grid(h + 0.1, h, steps)
        ref = max(corner_count(w, h, 0.1, d / 2 - 3.0, x, y) for x in gx for y in gy)
        got = silicon.dies_per_wafer(w, h, offset_steps=steps)
        yield Check(name=f"dies per wafer {w:g}x{h:g} mm", group="silicon",
                    what=f"exact whole-die count on a 300 mm wafer (3 mm edge, 0.1 mm scribe), best of "
                         f"{len(gx) * len(gy)} grid offsets, against a corner-by-corner count of every die",
                    quantity="dies", ocsnet=float(got), reference=float(ref), source="brute force", tolerance=0.0)
        formula = silicon.dies_per_wafer(w, h, method="formula")
        yield Check(name=f"dies per wafer formula {w:g}x{h:g} mm", group="silicon",
                    what="exact count against the classic pi d^2/(4A) - pi d/sqrt(2A) on the usable diameter",
                    quantity="dies", ocsnet=float(got), reference=formula, tolerance=0.12,
                    source="closed form (an approximation of the edge loss; the best offset beats it)")
    for area, dd in ((814.0, 0.07), (203.5, 0.1)):
        yield Check(name=f"Poisson yield {area:g} mm2", group="silicon",
                    what=f"Poisson yield of a {area:g} mm2 die at {dd} per cm2 against exp(-AD)",
                    quantity="yield", ocsnet=silicon.die_yield(area, dd, model="poisson"),
                    reference=math.exp(-area / 100 * dd), source="closed form", tolerance=1e-12)
        yield Check(name=f"negative binomial to Poisson {area:g} mm2", group="silicon",
                    what="negative-binomial yield with alpha = 1e6 against the Poisson limit",
                    quantity="yield", ocsnet=silicon.die_yield(area, dd, alpha=1e6),
                    reference=math.exp(-area / 100 * dd), source="closed form (limit alpha -> inf)", tolerance=1e-5)
    h100 = hardware.gpu("h100-sxm")
    c = silicon.gpu_cost(h100.die_area_mm2, h100.hbm_bytes / 1e9)
    yield Check(name="H100 build cost", group="silicon",
                what="modelled cost of a good H100 (die with yield and test, HBM, 2.5-D packaging) against the "
                     "published estimate",
                quantity="cost_vs_estimate", ocsnet=c.gpu_usd, reference=p["tco.h100_build_usd"],
                source=p.sources["tco.h100_build_usd"], tolerance=0.5,
                note="the model leaves out design cost, the NVLink/PCIe substrate and margin; within 50%")
    q = silicon.lite_design(h100, 0.25)
    yield Check(name="quarter-die bandwidth-to-compute", group="silicon",
                what="a quarter H100 die's shoreline bandwidth over its compute, against the H100's, at the same "
                     "I/O density",
                quantity="ratio", ocsnet=q.network_ratio_factor, reference=2.0,
                source="Canakci et al., HotOS 2025: a quarter die has twice the shoreline per area", tolerance=1e-3)
