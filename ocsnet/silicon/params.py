"""The parameters of the silicon model, read from ``ocsnet/catalog/silicon.toml``.

Stage 1 of the pipeline, beside the catalog (see docs/design.md, "Silicon").
A :class:`Params` maps ``"section.key"`` names (``"wafer.price_usd"``,
``"yield.defect_density_per_cm2"``) to numbers in the unit their name carries,
with the source of each and the low/high range of the economic ones.
``params({"wafer.price_usd": 20000})`` returns the defaults with overrides;
an unknown name is refused and named.

Examples
--------
>>> p = params()
>>> p["wafer.price_usd"], p["yield.clustering_alpha"]
(16988.0, 2.0)
>>> params({"hbm.usd_per_GB": 10})["hbm.usd_per_GB"]
10.0
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Mapping

from ..errors import SpecError

__all__ = ["Params", "params", "STRING_KEYS"]

#: Keys whose value is a word, not a number.
STRING_KEYS = {"yield.model"}


@dataclass(frozen=True)
class Params:
    """Silicon-model parameters: ``values``, their ``sources`` and the ``ranges`` of the economic ones."""

    values: Mapping[str, float | str]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict, compare=False, repr=False)
    range_sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __getitem__(self, key: str):
        try:
            return self.values[key]
        except KeyError:
            raise SpecError(f"silicon parameter {key!r} is unknown; known: {', '.join(sorted(self.values))}") from None

    def replace(self, updates: Mapping[str, float | str] | None = None) -> "Params":
        """A copy with ``updates`` applied; every name and value is checked."""
        if not updates:
            return self
        vals = dict(self.values)
        for k, v in updates.items():
            if k not in vals:
                raise SpecError(f"silicon parameter {k!r} is unknown; known: {', '.join(sorted(vals))}")
            vals[k] = _check_value(k, v)
        return Params(vals, self.sources, self.ranges, self.range_sources)

    def is_assumption(self, key: str) -> bool:
        """True when the catalog labels the number an assumption."""
        return str(self.sources.get(key, "")).lower().startswith("assumption")


#: Keys with a narrower allowed range than [0, inf): (low, high, low excluded).
LIMITS = {
    "yield.wafer_process_yield": (0.0, 1.0, True), "package.assembly_step_yield": (0.0, 1.0, True),
    "package.final_test_yield": (0.0, 1.0, True), "yield.clustering_alpha": (0.0, math.inf, True),
    "yield.critical_layers": (0.0, math.inf, True), "shoreline.aspect_ratio": (0.0, math.inf, True),
    "shoreline.hbm_edge_share": (0.0, 0.99, False), "power.static_share": (0.0, 1.0, False),
    "power.spreading_share": (0.0, 0.99, False), "power.alpha_power": (1.0, 2.5, False),
    "power.nominal_vdd_V": (0.0, math.inf, True), "wafer.diameter_mm": (0.0, math.inf, True),
    "tco.life_years": (0.0, math.inf, True), "tco.pue": (1.0, math.inf, False),
    "hbm.stack_GB": (0.0, math.inf, True), "package.interposer_margin": (1.0, math.inf, False),
}


def _check_value(key: str, v):
    if key in STRING_KEYS:
        if not isinstance(v, str):
            raise SpecError(f"silicon.{key}: expected a name, got {v!r}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SpecError(f"silicon.{key}: expected a number, got {v!r}")
    v = float(v)
    lo, hi, lo_open = LIMITS.get(key, (0.0, math.inf, False))
    if math.isnan(v) or math.isinf(v) or v < lo or (lo_open and v == lo) or v > hi:
        raise SpecError(f"silicon.{key}: {v!r} is out of range, allowed {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return v


@functools.cache
def _load() -> Params:
    try:
        text = resources.files("ocsnet.catalog").joinpath("silicon.toml").read_text()
        table = tomllib.loads(text)
    except (FileNotFoundError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"catalog/silicon.toml: {e}") from None
    values, sources = {}, {}
    rng = table.pop("range", {})
    rng_src = rng.pop("source", {})
    for section, entries in table.items():
        src = entries.get("source", {})
        for k, v in entries.items():
            if k == "source":
                continue
            key = f"{section}.{k}"
            values[key] = _check_value(key, v)
            if key not in STRING_KEYS:
                if not isinstance(src.get(k), str) or not src[k]:
                    raise SpecError(f"silicon.{key}: number has no source string in [{section}.source]")
                sources[key] = src[k]
    ranges = {}
    for key, lohi in rng.items():
        if key not in values or key in STRING_KEYS:
            raise SpecError(f"silicon.range: {key!r} is not a numeric silicon parameter")
        if not isinstance(rng_src.get(key), str):
            raise SpecError(f"silicon.range.{key}: range has no source string in [range.source]")
        lo, hi = (float(x) for x in lohi)
        if not lo <= values[key] <= hi:
            raise SpecError(f"silicon.range.{key}: default {values[key]} is outside [{lo}, {hi}]")
        ranges[key] = (lo, hi)
    return Params(values, sources, ranges, dict(rng_src))


def params(overrides: Mapping[str, float | str] | Params | None = None) -> Params:
    """The catalog's silicon parameters with ``overrides`` (a dict of ``"section.key"`` names) applied."""
    if isinstance(overrides, Params):
        return overrides
    return _load().replace(overrides)
