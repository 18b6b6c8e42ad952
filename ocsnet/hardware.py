"""Typed, frozen hardware specs loaded from ``ocsnet/catalog/*.toml``.

Stage 1 of the pipeline.  Every number in the catalog has a ``source`` string;
loading checks that, rejects unknown and missing keys by name, and converts
unit-suffixed fields to SI (bytes, seconds, bytes/s, FLOP/s, watts, J/bit).

Examples
--------
>>> from ocsnet import hardware
>>> h100 = hardware.gpu("h100-sxm")
>>> lite = hardware.gpu("lite-base")
>>> round(lite.bf16_flops / h100.bf16_flops, 3)
0.25
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from . import units
from .errors import SpecError

__all__ = [
    "GPUSpec", "LinkSpec", "SwitchSpec", "OCSSpec",
    "gpu", "gpus", "link", "links", "switch", "switches", "ocs", "ocs_types",
    "lite_gpu", "load_table",
]


@dataclass(frozen=True)
class GPUSpec:
    """One accelerator, in SI units.  ``h100_equivalents`` is its silicon as a fraction of an H100."""

    name: str
    description: str
    bf16_flops: float          # dense BF16 FLOP/s
    fp8_flops: float           # dense FP8 FLOP/s
    hbm_bytes: float
    hbm_Bps: float
    scaleup_Bps: float         # per direction, whole GPU (NVLink or optical I/O)
    scaleout_Bps: float        # per direction, whole GPU (NIC)
    tdp_W: float
    die_area_mm2: float
    compute_efficiency: float  # achieved fraction of dense peak
    memory_efficiency: float   # achieved fraction of HBM bandwidth
    relative_cost: float       # H100 = 1
    h100_equivalents: float    # compute relative to the parent H100 (1 for the H100)
    clock_factor: float = 1.0
    parent: str | None = None
    source: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype`` in {"bf16", "fp8"}."""
        if dtype == "bf16":
            return self.bf16_flops
        if dtype == "fp8":
            if not self.fp8_flops > 0:
                raise SpecError(f"dtype: {self.name} has no FP8 tensor cores (fp8_dense_TFLOPs = 0); use 'bf16'")
            return self.fp8_flops
        raise SpecError(f"dtype: {dtype!r} is not one of 'bf16', 'fp8'")

    @property
    def network_Bps(self) -> float:
        """Total per-direction network bandwidth of the GPU (scale-up plus scale-out)."""
        return self.scaleup_Bps + self.scaleout_Bps


@dataclass(frozen=True)
class LinkSpec:
    """A link technology: per-port bandwidth (per direction), fixed latency, energy, reach, cost."""

    name: str
    tech: str                  # copper | pluggable | cpo | circuit
    description: str
    bandwidth_Bps: float
    latency_s: float
    energy_J_per_bit: float
    reach_m: float
    relative_cost: float       # per port end, H100 = 1
    source: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SwitchSpec:
    """A packet switch: radix, per-port bandwidth (per direction), port-to-port latency."""

    name: str
    description: str
    ports: int
    port_Bps: float
    latency_s: float
    power_W: float
    relative_cost: float
    port_link: str
    source: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class OCSSpec:
    """An optical circuit switch: port count, insertion latency and reconfiguration delay."""

    name: str
    description: str
    ports: int
    insertion_latency_s: float
    reconfig_delay_s: float
    insertion_loss_dB: float
    power_W: float
    relative_cost: float
    source: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


TECHS = ("copper", "pluggable", "cpo", "circuit")

# Schemas: TOML field -> (python field, required).  Numeric fields need a source.
_GPU_FIELDS = {
    "description": ("description", True),
    "bf16_dense_TFLOPs": ("bf16_flops", True),
    "fp8_dense_TFLOPs": ("fp8_flops", True),
    "hbm_GB": ("hbm_bytes", True),
    "hbm_bandwidth_GBps": ("hbm_Bps", True),
    "scaleup_bandwidth_GBps": ("scaleup_Bps", True),
    "scaleout_bandwidth_GBps": ("scaleout_Bps", True),
    "tdp_W": ("tdp_W", True),
    "die_area_mm2": ("die_area_mm2", True),
    "compute_efficiency": ("compute_efficiency", True),
    "memory_efficiency": ("memory_efficiency", True),
    "relative_cost": ("relative_cost", True),
}
_LITE_FIELDS = {
    "description": True, "parent": True, "compute_fraction": True,
    "hbm_capacity_fraction": True, "hbm_bandwidth_fraction": True,
    "network_ratio_factor": True, "clock_factor": True, "power_fraction": True,
    "cost_fraction": True, "die_area_mm2": True,
}
_LINK_FIELDS = {
    "tech": ("tech", True), "description": ("description", True),
    "bandwidth_Gbps": ("bandwidth_Bps", True), "latency_ns": ("latency_s", True),
    "energy_pJ_per_bit": ("energy_J_per_bit", True), "reach_m": ("reach_m", True),
    "relative_cost": ("relative_cost", True),
}
_SWITCH_FIELDS = {
    "description": ("description", True), "ports": ("ports", True),
    "port_bandwidth_Gbps": ("port_Bps", True), "latency_ns": ("latency_s", True),
    "power_W": ("power_W", True), "relative_cost": ("relative_cost", True),
    "port_link": ("port_link", True),
}
_OCS_FIELDS = {
    "description": ("description", True), "ports": ("ports", True),
    "insertion_latency_ns": ("insertion_latency_s", True),
    "reconfig_delay_us": ("reconfig_delay_s", True),
    "insertion_loss_dB": ("insertion_loss_dB", True),
    "power_W": ("power_W", True), "relative_cost": ("relative_cost", True),
}

# Dimensionless fields (no unit suffix): converted with factor 1.
_PLAIN = {"compute_efficiency", "memory_efficiency", "relative_cost", "ports",
          "compute_fraction", "hbm_capacity_fraction", "hbm_bandwidth_fraction",
          "network_ratio_factor", "clock_factor", "power_fraction", "cost_fraction"}


def load_table(filename: str) -> dict[str, dict[str, Any]]:
    """Read one catalog TOML file from the package data."""
    try:
        text = resources.files("ocsnet.catalog").joinpath(filename).read_text()
    except FileNotFoundError:
        raise SpecError(f"catalog: no file {filename!r}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"catalog/{filename}: {e}") from None


def _check_keys(where: str, entry: dict, allowed: dict | set, required: set) -> None:
    extra = set(entry) - set(allowed) - {"source"}
    if extra:
        raise SpecError(f"{where}: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(entry)
    if missing:
        raise SpecError(f"{where}: missing required key {sorted(missing)[0]!r}")
    src = entry.get("source", {})
    if not isinstance(src, dict):
        raise SpecError(f"{where}.source: must be a table of field = \"where the number comes from\"")
    for k, v in entry.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not isinstance(src.get(k), str) or not src.get(k):
                raise SpecError(f"{where}.{k}: number has no source string in [{where}.source]")
            if v < 0:
                raise SpecError(f"{where}.{k}: {v} is negative, allowed [0, inf)")
    extra_src = set(src) - set(entry)
    if extra_src:
        raise SpecError(f"{where}.source: source for unknown key {sorted(extra_src)[0]!r}")


def _convert(where: str, entry: dict, schema: dict) -> dict:
    _check_keys(where, entry, schema, {k for k, (_, req) in schema.items() if req})
    out = {}
    for key, (attr, _) in schema.items():
        if key not in entry:
            continue
        v = entry[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = float(v) if key in _PLAIN else units.to_si(key, v)
            if key == "ports":
                if v != int(v) or v < 1:
                    raise SpecError(f"{where}.ports: {entry[key]!r} must be an integer >= 1")
                v = int(v)
        out[attr] = v
    out["source"] = dict(entry.get("source", {}))
    return out


@functools.cache
def _gpus() -> dict[str, GPUSpec]:
    table = load_table("gpus.toml")
    out: dict[str, GPUSpec] = {}
    for name, entry in table.items():
        if "parent" not in entry:
            kw = _convert(f"gpus.{name}", entry, _GPU_FIELDS)
            out[name] = GPUSpec(name=name, h100_equivalents=1.0, **kw)
    for name, entry in table.items():
        if "parent" in entry:
            _check_keys(f"gpus.{name}", entry, _LITE_FIELDS, set(_LITE_FIELDS))
            parent = out.get(entry["parent"])
            if parent is None:
                raise SpecError(f"gpus.{name}.parent: unknown GPU {entry['parent']!r}; known: {', '.join(out)}")
            kw = {k: entry[k] for k in _LITE_FIELDS if k not in ("description", "parent")}
            spec = lite_gpu(parent, name=name, description=entry["description"], **kw)
            out[name] = dataclasses.replace(spec, source=dict(entry.get("source", {})))
    return out


def lite_gpu(parent: GPUSpec, *, name: str = "lite", description: str = "",
             compute_fraction: float = 0.25, hbm_capacity_fraction: float = 0.25,
             hbm_bandwidth_fraction: float = 0.25, network_ratio_factor: float = 1.0,
             clock_factor: float = 1.0, power_fraction: float | None = None,
             cost_fraction: float | None = None, die_area_mm2: float | None = None) -> GPUSpec:
    """Derive a Lite-GPU from a parent GPU.

    Compute is ``compute_fraction * clock_factor`` of the parent.  The network
    bandwidth keeps the parent's bandwidth-to-compute ratio (scale-up bandwidth
    over BF16 FLOP/s) times ``network_ratio_factor``, at the parent clock: an
    overclocked die runs faster but its optics do not.  All of a Lite-GPU's
    network is optical scale-out, so ``scaleout_Bps`` holds it and
    ``scaleup_Bps`` is zero.

    References
    ----------
    Canakci et al., "Good things come in small packages: Should we build AI
    clusters with Lite-GPUs?", HotOS 2025.
    """
    for field, v, hi in (("compute_fraction", compute_fraction, 1.0),
                         ("hbm_capacity_fraction", hbm_capacity_fraction, 1.0),
                         ("hbm_bandwidth_fraction", hbm_bandwidth_fraction, 1.0),
                         ("network_ratio_factor", network_ratio_factor, 16.0),
                         ("clock_factor", clock_factor, 4.0)):
        if not (0 < float(v) <= hi):
            raise SpecError(f"{name}.{field}: {v!r} is out of range, allowed (0, {hi}]")
    c = compute_fraction * clock_factor
    net = parent.scaleup_Bps * compute_fraction * network_ratio_factor
    return GPUSpec(
        name=name,
        description=description or f"Lite-GPU of {parent.name}",
        bf16_flops=parent.bf16_flops * c,
        fp8_flops=parent.fp8_flops * c,
        hbm_bytes=parent.hbm_bytes * hbm_capacity_fraction,
        hbm_Bps=parent.hbm_Bps * hbm_bandwidth_fraction,
        scaleup_Bps=0.0,
        scaleout_Bps=net,
        tdp_W=parent.tdp_W * (power_fraction if power_fraction is not None else c),
        die_area_mm2=die_area_mm2 if die_area_mm2 is not None else parent.die_area_mm2 * compute_fraction,
        compute_efficiency=parent.compute_efficiency,
        memory_efficiency=parent.memory_efficiency,
        relative_cost=parent.relative_cost * (cost_fraction if cost_fraction is not None else compute_fraction),
        h100_equivalents=parent.h100_equivalents * compute_fraction,
        clock_factor=clock_factor,
        parent=parent.name,
    )


_SIMPLE = {"links.toml": (LinkSpec, _LINK_FIELDS), "switches.toml": (SwitchSpec, _SWITCH_FIELDS),
           "ocs.toml": (OCSSpec, _OCS_FIELDS)}


@functools.cache
def _simple(filename: str) -> dict:
    cls, schema = _SIMPLE[filename]
    table = load_table(filename)
    out = {}
    stem = filename.removesuffix(".toml")
    for name, entry in table.items():
        kw = _convert(f"{stem}.{name}", entry, schema)
        if cls is LinkSpec and kw["tech"] not in TECHS:
            raise SpecError(f"{stem}.{name}.tech: {kw['tech']!r} is not one of {', '.join(TECHS)}")
        out[name] = cls(name=name, **kw)
    return out


def _get(kind: str, table: dict, name: str):
    try:
        return table[name]
    except KeyError:
        raise SpecError(f"{kind}: unknown name {name!r}; known: {', '.join(sorted(table))}") from None


def gpus() -> dict[str, GPUSpec]:
    """All GPUs in the catalog by name."""
    return dict(_gpus())


def gpu(name: str | GPUSpec) -> GPUSpec:
    """One GPU by catalog name (a spec passes through)."""
    return name if isinstance(name, GPUSpec) else _get("gpu", _gpus(), name)


def links() -> dict[str, LinkSpec]:
    """All link technologies by name."""
    return dict(_simple("links.toml"))


def link(name: str | LinkSpec) -> LinkSpec:
    """One link technology by name (a spec passes through)."""
    return name if isinstance(name, LinkSpec) else _get("link", _simple("links.toml"), name)


def switches() -> dict[str, SwitchSpec]:
    """All packet switches by name."""
    return dict(_simple("switches.toml"))


def switch(name: str | SwitchSpec) -> SwitchSpec:
    """One packet switch by name (a spec passes through)."""
    return name if isinstance(name, SwitchSpec) else _get("switch", _simple("switches.toml"), name)


def ocs_types() -> dict[str, OCSSpec]:
    """All optical circuit switches by name."""
    return dict(_simple("ocs.toml"))


def ocs(name: str | OCSSpec) -> OCSSpec:
    """One optical circuit switch by name (a spec passes through)."""
    return name if isinstance(name, OCSSpec) else _get("ocs", _simple("ocs.toml"), name)
