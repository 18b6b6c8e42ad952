"""The parameters of the silicon model, read from ``ocsnet/catalog/silicon.toml``.

Stage 1 of the pipeline, beside the catalog (see docs/design.md, "Silicon").
User catalog folders may hold ``silicon.toml`` or ``silicon-*.toml`` files
whose values (each with its source) replace the built-in ones.
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
from typing import Mapping

from .. import folders
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


def _tables() -> list[tuple[str, dict]]:
    """The built-in silicon.toml, then user catalog files named silicon.toml or silicon-*.toml (in search order)."""
    out = []
    for f in folders.sources("catalog"):
        if f.name != "silicon" and not f.name.startswith("silicon-"):
            continue
        where = "catalog/silicon.toml" if f.builtin else f.origin
        try:
            out.append((where, tomllib.loads(f.read_text())))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SpecError(f"{where}: {e}") from None
    if not out:
        raise SpecError("catalog/silicon.toml: not found")
    return out


@functools.lru_cache(maxsize=8)
def _load(key: tuple = ()) -> Params:
    values, sources, rng, rng_src = {}, {}, {}, {}
    for n, (where, table) in enumerate(_tables()):
        r = dict(table.pop("range", {}))
        rng_src.update(r.pop("source", {}))
        rng.update(r)
        for section, entries in table.items():
            if not isinstance(entries, dict):
                raise SpecError(f"{where}: {section}: expected a table of parameters")
            src = entries.get("source", {})
            for k, v in entries.items():
                if k == "source":
                    continue
                key = f"{section}.{k}"
                if n and key not in values:
                    raise SpecError(f"{where}: silicon parameter {key!r} is unknown; known: {', '.join(sorted(values))}")
                values[key] = _check_value(key, v)
                if key not in STRING_KEYS:
                    if not isinstance(src.get(k), str) or not src[k]:
                        raise SpecError(f"{where}: silicon.{key}: number has no source string in [{section}.source]")
                    sources[key] = src[k]
    ranges = {}
    for key, lohi in sorted(rng.items()):
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
    return _load(folders.state()).replace(overrides)
