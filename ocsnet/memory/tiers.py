"""Memory tiers: the GPU's own HBM, peers' HBM, memory nodes on the fabric, host DRAM.

Stage 2 of the pipeline (memory, next to the workload).  Tiers other than the
local HBM are read from ``ocsnet/catalog/memory.toml``; every number there has
a ``source`` string, and loading rejects unknown and missing keys by name and
a zero capacity or bandwidth.  Quantities are SI inside (bytes, bytes/s,
seconds, J/bit, W per byte, relative cost per byte).

Kinds (see docs/design.md, "Memory tiers"):

- ``local``: the GPU's HBM (:func:`local_tier` derives it from the GPU spec);
- ``peer``: HBM of other GPUs of the group, lent over the fabric
  (``share_fraction`` of each lender's HBM);
- ``node``: a memory node, a node of the fabric (``capacity_bytes`` and
  device ``bandwidth_Bps`` per node); its links congest like any other;
- ``host``: host DRAM over a private link per GPU, not on the fabric;
  capacity and bandwidth are per H100-equivalent of silicon.

Examples
--------
>>> t = tier("cxl-pool")
>>> t.kind, t.capacity_bytes / 1e9, t.latency_s * 1e9
('node', 2048.0, 250.0)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

from .. import folders, hardware, units
from ..errors import SpecError

__all__ = ["MemoryTier", "KINDS", "tier", "tiers", "local_tier", "host_tier_for", "tier_from_entry"]

KINDS = ("local", "peer", "node", "host")

# TOML field -> (attribute, required for kinds).  Per-TB fields are converted to per byte.
_FIELDS = {
    "kind": ("kind", KINDS),
    "description": ("description", KINDS),
    "capacity_GB": ("capacity_bytes", ("node", "host")),
    "bandwidth_GBps": ("bandwidth_Bps", ("node", "host")),
    "latency_ns": ("latency_s", KINDS),
    "energy_pJ_per_bit": ("energy_J_per_bit", KINDS),
    "share_fraction": ("share_fraction", ("peer",)),
    "power_W_per_TB": ("power_W_per_byte", ("node", "host")),
    "relative_cost_per_TB": ("cost_per_byte", ("node", "host")),
    "relative_cost_per_node": ("cost_per_node", ("node", "host")),
}
_PER_TB = {"power_W_per_TB", "relative_cost_per_TB"}
_PLAIN = {"share_fraction", "relative_cost_per_node"}


@dataclass(frozen=True)
class MemoryTier:
    """One memory tier, SI units.

    ``capacity_bytes`` and ``bandwidth_Bps`` are per node (``node``), per
    H100-equivalent (``host``), per GPU (``local``); a ``peer`` tier takes
    both from the lending GPU and the fabric (``share_fraction`` of its HBM).
    """

    name: str
    kind: str
    description: str = ""
    capacity_bytes: float = 0.0
    bandwidth_Bps: float = 0.0
    latency_s: float = 0.0
    energy_J_per_bit: float = 0.0
    share_fraction: float = 1.0
    power_W_per_byte: float = 0.0
    cost_per_byte: float = 0.0
    cost_per_node: float = 0.0
    source: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise SpecError(f"memory.{self.name}.kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        for f in ("capacity_bytes", "bandwidth_Bps", "latency_s", "energy_J_per_bit", "power_W_per_byte",
                  "cost_per_byte", "cost_per_node"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
                raise SpecError(f"memory.{self.name}.{f}: {v!r} is out of range, allowed [0, inf)")
        if self.kind in ("node", "host", "local"):
            for f in ("capacity_bytes", "bandwidth_Bps"):
                if not getattr(self, f) > 0:
                    raise SpecError(f"memory.{self.name}.{f}: {getattr(self, f)!r} is out of range, "
                                    f"a {self.kind} tier needs (0, inf)")
        if not (0 < self.share_fraction <= 1):
            raise SpecError(f"memory.{self.name}.share_fraction: {self.share_fraction!r} is out of range, allowed (0, 1]")


def tier_from_entry(name: str, entry: dict) -> MemoryTier:
    """A :class:`MemoryTier` from one catalog entry (TOML table), checked: unknown or missing keys,
    numbers without a source, and out-of-range values raise :class:`SpecError` naming the field."""
    where = f"memory.{name}"
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: expected a table of fields")
    kind = entry.get("kind")
    if kind not in KINDS or kind == "local":
        raise SpecError(f"{where}.kind: {kind!r} is not one of peer, node, host")
    extra = set(entry) - set(_FIELDS) - {"source"}
    if extra:
        raise SpecError(f"{where}: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(_FIELDS))}")
    missing = sorted(k for k, (_, kinds) in _FIELDS.items() if kind in kinds and k not in entry)
    if missing:
        raise SpecError(f"{where}: missing required key {missing[0]!r} for a {kind} tier")
    src = entry.get("source", {})
    if not isinstance(src, dict):
        raise SpecError(f"{where}.source: must be a table of field = \"where the number comes from\"")
    kw: dict = {}
    for key, value in entry.items():
        if key == "source":
            continue
        attr = _FIELDS[key][0]
        if key in ("kind", "description"):
            kw[attr] = str(value)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{where}.{key}: expected a number, got {value!r}")
        if not isinstance(src.get(key), str) or not src[key]:
            raise SpecError(f"{where}.{key}: number has no source string in [{where}.source]")
        if key in _PER_TB:
            kw[attr] = float(value) / units.to_si("x_TB", 1.0)
        elif key in _PLAIN:
            kw[attr] = float(value)
        else:
            kw[attr] = units.to_si(key, value)
    return MemoryTier(name=name, source=dict(src), **kw)


@functools.lru_cache(maxsize=16)
def _tiers_for(key: tuple) -> dict[str, MemoryTier]:
    return {name: tier_from_entry(name, entry) for name, entry in hardware.load_table("memory.toml").items()}


def _tiers() -> dict[str, MemoryTier]:
    """Built-in and user tiers (user folders, ``OCSNET_PATH``), cached per folder configuration."""
    return _tiers_for(folders.state())


def tiers() -> dict[str, MemoryTier]:
    """Every catalog tier by name (the local HBM is not listed: it is the GPU)."""
    return dict(_tiers())


def tier(name: str | MemoryTier) -> MemoryTier:
    """One tier by catalog name (a tier passes through).

    Raises
    ------
    SpecError
        An unknown name; the message lists the known ones.
    """
    if isinstance(name, MemoryTier):
        return name
    t = _tiers().get(name)
    if t is None:
        raise SpecError(f"memory tier: unknown name {name!r}; known: {', '.join(sorted(_tiers()))}")
    return t


def local_tier(gpu) -> MemoryTier:
    """The GPU's own HBM as a tier (capacity and bandwidth of the GPU spec)."""
    g = hardware.gpu(gpu)
    return MemoryTier(name="hbm", kind="local", description=f"HBM of {g.name}", capacity_bytes=g.hbm_bytes,
                      bandwidth_Bps=g.hbm_Bps)


def host_tier_for(t: MemoryTier, gpu) -> MemoryTier:
    """A ``host`` tier scaled to one GPU: capacity and bandwidth times its H100-equivalents."""
    g = hardware.gpu(gpu)
    if t.kind != "host":
        return t
    f = g.h100_equivalents
    return dataclasses.replace(t, capacity_bytes=t.capacity_bytes * f, bandwidth_Bps=t.bandwidth_Bps * f)
