"""Dies per wafer: the exact count of whole dies on a round wafer, and the classic formula.

Stage 1 (silicon model; see docs/design.md, "Silicon").  A die of
``width_mm x height_mm`` sits on a grid of pitch ``(width + scribe, height +
scribe)``; a die counts when its whole rectangle lies inside the usable circle
(wafer diameter minus twice the edge exclusion).  :func:`dies_per_wafer` with
``method="exact"`` counts, for each candidate grid offset, the dies of every
column in closed form (vectorized over offsets and columns) and keeps the best
offset; ``"formula"`` is the classic approximation
``pi d^2 / (4 A) - pi d / sqrt(2 A)`` on the usable diameter ``d`` with the
scribe added to each edge of the die (``A = (w + s)(h + s)``).

Examples
--------
>>> dies_per_wafer(10, 10, edge_exclusion_mm=0, scribe_mm=0)
657
>>> round(dies_per_wafer(10, 10, edge_exclusion_mm=0, scribe_mm=0, method="formula"), 1)
640.2
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_range
from ..errors import SpecError

__all__ = ["dies_per_wafer", "dies_at_offsets", "die_dimensions", "check_reticle", "METHODS", "centered_offsets",
           "offset_grid"]

METHODS = ("exact", "formula")

#: Grid offsets searched per axis by the exact count (plus the centred layouts).
OFFSET_STEPS = 32
#: Dies across the wafer beyond which the exact count is refused (memory).
MAX_DIES_PER_SIDE = 5000


def die_dimensions(area_mm2: float, aspect_ratio: float = 1.0) -> tuple[float, float]:
    """Width and height (mm) of a rectangular die of ``area_mm2`` with ``height / width = aspect_ratio``."""
    check_range("area_mm2", area_mm2, 0, None, lo_open=True)
    check_range("aspect_ratio", aspect_ratio, 0, None, lo_open=True)
    w = math.sqrt(area_mm2 / aspect_ratio)
    return w, area_mm2 / w


def check_reticle(width_mm: float, height_mm: float, *, reticle_mm: tuple[float, float] = (26.0, 33.0),
                  allow_stitching: bool = False) -> None:
    """Refuse a die larger than the lithography field (either orientation) unless stitching is allowed."""
    a, b = sorted((float(width_mm), float(height_mm)))
    ra, rb = sorted(reticle_mm)
    if (a > ra + 1e-9 or b > rb + 1e-9) and not allow_stitching:
        raise SpecError(f"die: {width_mm:.2f} x {height_mm:.2f} mm does not fit the {ra:g} x {rb:g} mm reticle; "
                        f"allowed: each side within the reticle (or allow_stitching=True)")


def centered_offsets(pitch: float, size: float) -> list[float]:
    """Offsets (in [0, pitch)) that put a die, or the street between two dies, on the wafer's centre line."""
    return [(-size / 2.0) % pitch, ((pitch - size) / 2.0) % pitch]


def _count(w: float, h: float, px: float, py: float, R: float, ox: np.ndarray, oy: np.ndarray) -> np.ndarray:
    """Whole dies inside radius R for each offset pair (ox[k], oy[k]); vectorized over offsets and columns.

    Die (i, j) spans x in [ox + i px, ox + i px + w] and y in [oy + j py, oy + j py + h].
    """
    n = int(math.ceil(2 * R / px)) + 2
    i = np.arange(-n, n + 1)
    x0 = ox[:, None] + i[None, :] * px                      # (offsets, columns)
    x1 = x0 + w
    inside = (x0 >= -R) & (x1 <= R)
    xm = np.maximum(np.abs(x0), np.abs(x1))
    c = np.sqrt(np.clip(R * R - xm * xm, 0.0, None))         # half chord at the column's outer edge
    lo = np.ceil((-c - oy[:, None]) / py - 1e-12)
    hi = np.floor((c - h - oy[:, None]) / py + 1e-12)
    per_col = np.where(inside, np.clip(hi - lo + 1, 0, None), 0)
    return per_col.sum(axis=1).astype(np.int64)


def offset_grid(pitch: float, size: float, steps: int = OFFSET_STEPS) -> np.ndarray:
    """Grid offsets of one axis searched by the exact count: ``steps`` even steps and the centred layouts."""
    return np.concatenate([np.arange(max(int(steps), 1)) * (pitch / max(int(steps), 1)), centered_offsets(pitch, size)])


def dies_at_offsets(width_mm: float, height_mm: float, offset_x_mm, offset_y_mm, *, wafer_diameter_mm: float = 300.0,
                    edge_exclusion_mm: float = 3.0, scribe_mm: float = 0.1) -> np.ndarray:
    """Whole dies inside the usable circle for each grid offset pair (arrays of equal length).

    Die ``(i, j)`` spans ``[ox + i (w + s), ox + i (w + s) + w]`` by
    ``[oy + j (h + s), oy + j (h + s) + h]`` around the wafer centre.
    """
    ox = np.atleast_1d(np.asarray(offset_x_mm, dtype=float))
    oy = np.atleast_1d(np.asarray(offset_y_mm, dtype=float))
    R = float(wafer_diameter_mm) / 2.0 - float(edge_exclusion_mm)
    return _count(float(width_mm), float(height_mm), width_mm + scribe_mm, height_mm + scribe_mm, R, ox, oy)


def dies_per_wafer(width_mm: float, height_mm: float, *, wafer_diameter_mm: float = 300.0,
                   edge_exclusion_mm: float = 3.0, scribe_mm: float = 0.1, method: str = "exact",
                   offset_steps: int = OFFSET_STEPS) -> float:
    """Gross dies per wafer (whole dies inside the usable circle).

    Parameters
    ----------
    width_mm, height_mm : float
        Die size (without scribe).
    wafer_diameter_mm, edge_exclusion_mm, scribe_mm : float
        Wafer diameter, the unusable ring at its edge, and the street between dies.
    method : {"exact", "formula"}
        ``"exact"`` returns an integer count (the best of ``offset_steps**2``
        grid offsets and the centred layouts; each count is exact);
        ``"formula"`` the classic approximation, a float.

    Raises
    ------
    SpecError
        A non-positive size, an edge exclusion that leaves no wafer, an unknown method.
    """
    check_range("width_mm", width_mm, 0, None, lo_open=True)
    check_range("height_mm", height_mm, 0, None, lo_open=True)
    check_range("wafer_diameter_mm", wafer_diameter_mm, 0, None, lo_open=True)
    check_range("edge_exclusion_mm", edge_exclusion_mm, 0, wafer_diameter_mm / 2.0)
    check_range("scribe_mm", scribe_mm, 0, None)
    if method not in METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    d = float(wafer_diameter_mm) - 2.0 * float(edge_exclusion_mm)
    w, h, s = float(width_mm), float(height_mm), float(scribe_mm)
    if method == "formula":
        a = (w + s) * (h + s)
        return max(0.0, math.pi * d * d / (4.0 * a) - math.pi * d / math.sqrt(2.0 * a))
    R = d / 2.0
    px, py = w + s, h + s
    if d / min(px, py) > MAX_DIES_PER_SIDE:
        raise SpecError(f"die: {w:.3g} x {h:.3g} mm (pitch with scribe) is too small to count; allowed: at most "
                        f"{MAX_DIES_PER_SIDE} dies across the wafer")
    gx, gy = offset_grid(px, w, offset_steps), offset_grid(py, h, offset_steps)
    ox, oy = (a.ravel() for a in np.meshgrid(gx, gy, indexing="ij"))
    return int(_count(w, h, px, py, R, ox, oy).max())
