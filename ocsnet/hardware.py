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
from dataclasses import dataclass
from typing import Any

from . import checks, folders, units
from .errors import SpecError

__all__ = [
    "GPUSpec", "LinkSpec", "SwitchSpec", "OCSSpec",
    "gpu", "gpus", "link", "links", "switch", "switches", "ocs", "ocs_types",
    "lite_gpu", "load_table", "load_catalog", "catalog_entries", "catalog_kinds", "catalog_kind", "where",
    "CATALOG_KINDS",
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
    sm_count: int = 0          # streaming multiprocessors (0: unknown, so no wave quantization)
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
    in_network_reduction: bool = False   # reduces all-reduce data in the switch (NVLink SHARP, NVLS)
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
    "sm_count": ("sm_count", False),
}
# A Lite-GPU is the silicon model's design at a fraction of its parent (see ocsnet.silicon).
_LITE_FIELDS = {"description": True, "parent": True, "fraction": True, "io": False, "network": False, "clock": False}
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
    "in_network_reduction": ("in_network_reduction", False),
}
_OCS_FIELDS = {
    "description": ("description", True), "ports": ("ports", True),
    "insertion_latency_ns": ("insertion_latency_s", True),
    "reconfig_delay_us": ("reconfig_delay_s", True),
    "insertion_loss_dB": ("insertion_loss_dB", True),
    "power_W": ("power_W", True), "relative_cost": ("relative_cost", True),
}

# Text fields.
_TEXT = {"description", "tech", "port_link", "parent", "io", "network"}

# True/false fields (no source needed: a property, not a number).
_BOOL = {"in_network_reduction"}

# Dimensionless fields (no unit suffix): converted with factor 1.
_PLAIN = {"compute_efficiency", "memory_efficiency", "relative_cost", "ports", "fraction"}


#: Catalog kinds: the file a kind's entries live in (``<kind>.toml``) -> "module:function" that loads
#: and checks every entry of the kind (called by :func:`load_catalog`).  A built-in catalog file
#: without a line here is still a kind (its entries get the generic checks only).
CATALOG_KINDS = {
    "gpus": "ocsnet.hardware:gpus",
    "links": "ocsnet.hardware:links",
    "switches": "ocsnet.hardware:switches",
    "ocs": "ocsnet.hardware:ocs_types",
    "models": "ocsnet.workload.models:models",
    "slos": "ocsnet.serving.slo:presets",
    "workloads": "ocsnet.serving.requests:workloads",
    "calibration": "ocsnet.workload.calibration:calibrations",
    "measured": "ocsnet.evaluation.measured:cases",
    "memory": "ocsnet.memory.tiers:tiers",
}


def catalog_kinds() -> list[str]:
    """The catalog kinds: the stems of the built-in catalog files (``gpus``, ``links``, ...)."""
    return [f.name for f in folders.sources("catalog") if f.builtin]


def catalog_kind(path) -> str:
    """The kind of a catalog file from its name: ``gpus.toml`` and ``gpus-mine.toml`` hold GPUs.

    Raises
    ------
    SpecError
        The name does not start with a kind (the message lists them).
    """
    filename = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    stem = filename[:-5] if filename.endswith(".toml") else filename
    kind = stem.split("-", 1)[0]
    kinds = catalog_kinds()
    if kind not in kinds:
        raise SpecError(f"{path}: a catalog file is named after the kind of its entries, <kind>.toml or "
                        f"<kind>-<anything>.toml, with kind one of {', '.join(kinds)}")
    return kind


def _parse(f: folders.File) -> dict[str, Any]:
    where = f"catalog/{f.path.name}" if f.builtin else f.origin
    data = f.read_toml(where)
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise SpecError(f"{where}: {name}: expected a table [{name}] holding the entry's fields, "
                            f"got {checks.kind_of(entry)} {entry!r}")
    return data


@functools.lru_cache(maxsize=64)
def _entries(kind: str, key: tuple) -> dict[str, tuple[dict, str]]:
    out: dict[str, tuple[dict, str]] = {}
    for f in folders.sources("catalog"):
        k = f.name if f.builtin else catalog_kind(f.origin)
        if k != kind:
            continue
        for name, entry in _parse(f).items():
            if name in out:
                folders.note_override(f"catalog {kind} entry", name, f.origin, out[name][1])
            out[name] = (entry, f.origin)
    return out


def catalog_entries(kind: str) -> dict[str, tuple[dict, str]]:
    """Raw entries of a catalog kind with their origin: name -> (TOML table, "built-in" or file path).

    Built-in entries first, then user files in search order; a later entry
    replaces an earlier one of the same name (said once on stderr).
    """
    if kind not in catalog_kinds():
        raise SpecError(f"catalog: unknown kind {kind!r}; known: {', '.join(catalog_kinds())}")
    return _entries(kind, folders.state())


def load_table(filename: str) -> dict[str, dict[str, Any]]:
    """The entries of one catalog file by name (``"gpus.toml"``), built-in and user, merged."""
    return {name: e for name, (e, _) in catalog_entries(filename.removesuffix(".toml")).items()}


def where(kind: str, name: str) -> str:
    """How messages name an entry: ``gpus.h100-sxm``, prefixed by its file when it is a user's."""
    origin = catalog_entries(kind).get(name, (None, "built-in"))[1]
    return f"{kind}.{name}" if origin == "built-in" else f"{origin}: {kind}.{name}"


def load_catalog(path) -> dict[str, list[str]]:
    """Add a user catalog at run time: a TOML file, a folder of them, or a user folder holding ``catalog/``.

    A file's name says the kind of its entries (:func:`catalog_kind`).  Every
    entry of the kinds it touches is loaded and checked at once, exactly like
    a built-in one; an entry of the same name as an existing one replaces it
    (said once on stderr).  A user folder also brings its ``topologies/``,
    ``schedules/`` and ``studies/``.

    Returns
    -------
    dict
        Kind -> names of the entries the path defines.

    Raises
    ------
    SpecError
        Bad file name, TOML, key, unit, value or missing source; the message
        names the file, the entry and the field.  Nothing is added then.
    """
    import importlib
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir() and not (p / "catalog").is_dir():
        paths = sorted(p.glob("*.toml"))
        if not paths:
            raise SpecError(f"load_catalog: {str(path)!r} holds no catalog/ folder and no .toml file")
        added = [folders.add_file("catalog", q) for q in paths]
    elif p.is_dir():
        added = [folders.add_path(p)]
        paths = sorted((p / "catalog").glob("*.toml"))
    elif p.is_file():
        added = [folders.add_file("catalog", p)]
        paths = [p]
    else:
        raise SpecError(f"load_catalog: no such file or folder {str(path)!r}")
    try:
        out: dict[str, list[str]] = {}
        for q in paths:
            kind = catalog_kind(q)
            out.setdefault(kind, []).extend(_parse(folders.File(q.stem, q, str(q))))
        for kind in out:
            if kind in CATALOG_KINDS:
                mod, fn = CATALOG_KINDS[kind].split(":")
                getattr(importlib.import_module(mod), fn)()
            else:
                catalog_entries(kind)
    except Exception:
        for a in added:
            folders.remove_path(a)
        raise
    return out


def _check_keys(where: str, entry: dict, allowed: dict | set, required: set) -> None:
    extra = set(entry) - set(allowed) - {"source"}
    if extra:
        key = sorted(extra)[0]
        raise SpecError(f"{where}: unknown key {key!r}{_unit_hint(key, allowed)}; allowed: {', '.join(sorted(allowed))}")
    missing = required - set(entry)
    if missing:
        raise SpecError(f"{where}: missing required key {sorted(missing)[0]!r}")
    src = entry.get("source", {})
    if not isinstance(src, dict):
        raise SpecError(f"{where}.source: must be a table of field = \"where the number comes from\"")
    for k, v in entry.items():
        if k in _TEXT:
            checks.string(f"{where}.{k}", v, empty=k == "description")
        elif k in _BOOL:
            checks.boolean(f"{where}.{k}", v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if not isinstance(src.get(k), str) or not src.get(k).strip():
                raise SpecError(f"{where}.{k}: number has no source string in [{where.split(': ')[-1]}.source]")
            checks.nonnegative(f"{where}.{k}", v)
    extra_src = set(src) - set(entry)
    if extra_src:
        raise SpecError(f"{where}.source: source for unknown key {sorted(extra_src)[0]!r}")


def _unit_hint(key: str, allowed) -> str:
    """' (wrong unit: write hbm_GB)' when ``key`` is an allowed field with another unit suffix."""
    stem = units.strip_suffix(key)
    if stem is None:
        return ""
    for a in allowed:
        if units.strip_suffix(a) == stem:
            return f" (wrong unit: write {a})"
    return ""


def _convert(where: str, entry: dict, schema: dict) -> dict:
    _check_keys(where, entry, schema, {k for k, (_, req) in schema.items() if req})
    out = {}
    for key, (attr, _) in schema.items():
        if key not in entry:
            continue
        v = entry[key]
        if key in _TEXT:
            v = checks.string(f"{where}.{key}", v, empty=key == "description")
        elif key in _BOOL:
            v = checks.boolean(f"{where}.{key}", v)
        elif key in ("ports", "sm_count"):
            v = checks.integer(f"{where}.{key}", v, lo=1)
        else:
            v = checks.nonnegative(f"{where}.{key}", v)
            v = v if key in _PLAIN else units.to_si(key, v)
        out[attr] = v
    out["source"] = dict(entry.get("source", {}))
    return out


@functools.lru_cache(maxsize=16)
def _gpus(key: tuple) -> dict[str, GPUSpec]:
    table = catalog_entries("gpus")
    out: dict[str, GPUSpec] = {}
    for name, (entry, _) in table.items():
        if "parent" not in entry:
            kw = _convert(where("gpus", name), entry, _GPU_FIELDS)
            out[name] = GPUSpec(name=name, h100_equivalents=1.0, **kw)
    for name, (entry, _) in table.items():
        if "parent" in entry:
            w = where("gpus", name)
            _check_keys(w, entry, _LITE_FIELDS, {k for k, req in _LITE_FIELDS.items() if req})
            checks.string(f"{w}.description", entry["description"], empty=True)
            parent = out.get(checks.string(f"{w}.parent", entry["parent"]))
            if parent is None:
                raise SpecError(f"{w}.parent: unknown GPU {entry['parent']!r}; known: {', '.join(out)}")
            kw = {k: entry[k] for k in ("fraction", "io", "network", "clock") if k in entry}
            try:
                spec = lite_gpu(parent, name=name, description=entry["description"], **kw)
            except SpecError as e:   # "fraction: ..." -> "gpus.lite-x.fraction: ..."
                raise SpecError(f"{w}.{e}") from None
            out[name] = dataclasses.replace(spec, source=dict(entry.get("source", {})))
    return out


def lite_gpu(parent: GPUSpec, *, fraction: float | str = 0.25, io: str = "cpo", network: str = "shoreline",
             clock: str | float = "nominal", name: str = "lite", description: str = "", params=None,
             allow_stitching: bool = False) -> GPUSpec:
    """A Lite-GPU of ``fraction`` of ``parent``, derived by the silicon model (:mod:`ocsnet.silicon`).

    The die has ``fraction`` of the parent's area (same shape), HBM capacity
    and HBM bandwidth.  Its network bandwidth comes from the die's shoreline
    at the escape density of ``io`` (``network="shoreline"``: all of it, so
    ``1 / sqrt(fraction)`` times the parent's bandwidth-to-compute ratio at the
    same density; ``"parent-ratio"``: the parent's ratio).  ``clock`` is
    ``"nominal"``, ``"max"`` (the highest clock under the cooling limit and
    the voltage curve) or a factor; compute is ``fraction * clock`` of the
    parent, while the optics keep their rate.  Power follows the
    voltage-frequency curve; the relative cost is the ratio of the modelled
    costs of a good GPU (yield, test, HBM, packaging), the parent's margin kept.
    All of a Lite-GPU's network is optical scale-out (``scaleup_Bps`` is zero).

    Parameters
    ----------
    params : dict or ocsnet.silicon.Params, optional
        Overrides of the catalog's silicon parameters (``"wafer.price_usd"``...).

    Raises
    ------
    SpecError
        A fraction outside (0, 1], a clock beyond the voltage curve or the
        cooling limit, an unknown io or network (named).

    References
    ----------
    Canakci et al., "Good things come in small packages: Should we build AI
    clusters with Lite-GPUs?", HotOS 2025.
    """
    if not isinstance(parent, GPUSpec):
        raise SpecError(f"{name}.parent: expected a GPUSpec, got {checks.kind_of(parent)} {parent!r}")
    checks.string(f"{name}.io", io)
    checks.string(f"{name}.network", network)
    if not isinstance(clock, str):
        checks.positive(f"{name}.clock", clock)
    from .silicon import lite_design

    d = lite_design(parent, fraction, io=io, network=network, clock=clock, params=params,
                    allow_stitching=allow_stitching)
    c = d.fraction * d.clock_factor
    return GPUSpec(
        name=name,
        description=description or f"Lite-GPU, {d.fraction:g} of {parent.name} (silicon model)",
        bf16_flops=parent.bf16_flops * c,
        fp8_flops=parent.fp8_flops * c,
        hbm_bytes=d.hbm_bytes,
        hbm_Bps=d.hbm_Bps,
        scaleup_Bps=0.0,
        scaleout_Bps=d.network_Bps,
        tdp_W=d.tdp_W,
        die_area_mm2=d.area_mm2,
        compute_efficiency=parent.compute_efficiency,
        memory_efficiency=parent.memory_efficiency,
        relative_cost=parent.relative_cost * d.relative_cost,
        h100_equivalents=parent.h100_equivalents * d.fraction,
        clock_factor=d.clock_factor,
        parent=parent.name,
        sm_count=max(1, round(parent.sm_count * d.fraction)) if parent.sm_count else 0,
    )


_SIMPLE = {"links.toml": (LinkSpec, _LINK_FIELDS), "switches.toml": (SwitchSpec, _SWITCH_FIELDS),
           "ocs.toml": (OCSSpec, _OCS_FIELDS)}


@functools.lru_cache(maxsize=16)
def _simple(filename: str, key: tuple) -> dict:
    cls, schema = _SIMPLE[filename]
    stem = filename.removesuffix(".toml")
    out = {}
    for name, (entry, _) in catalog_entries(stem).items():
        w = where(stem, name)
        kw = _convert(w, entry, schema)
        if cls is LinkSpec:
            checks.choice(f"{w}.tech", kw["tech"], TECHS)
        out[name] = cls(name=name, **kw)
    return out


def _get(kind: str, table: dict, name: str):
    checks.string(kind, name)
    try:
        return table[name]
    except KeyError:
        raise SpecError(f"{kind}: unknown name {name!r}; known: {', '.join(sorted(table))}") from None


def gpus() -> dict[str, GPUSpec]:
    """All GPUs in the catalog by name."""
    return dict(_gpus(folders.state()))


def gpu(name: str | GPUSpec) -> GPUSpec:
    """One GPU by catalog name (a spec passes through)."""
    return name if isinstance(name, GPUSpec) else _get("gpu", _gpus(folders.state()), name)


def links() -> dict[str, LinkSpec]:
    """All link technologies by name."""
    return dict(_simple("links.toml", folders.state()))


def link(name: str | LinkSpec) -> LinkSpec:
    """One link technology by name (a spec passes through)."""
    return name if isinstance(name, LinkSpec) else _get("link", _simple("links.toml", folders.state()), name)


def switches() -> dict[str, SwitchSpec]:
    """All packet switches by name."""
    return dict(_simple("switches.toml", folders.state()))


def switch(name: str | SwitchSpec) -> SwitchSpec:
    """One packet switch by name (a spec passes through)."""
    return name if isinstance(name, SwitchSpec) else _get("switch", _simple("switches.toml", folders.state()), name)


def ocs_types() -> dict[str, OCSSpec]:
    """All optical circuit switches by name."""
    return dict(_simple("ocs.toml", folders.state()))


def ocs(name: str | OCSSpec) -> OCSSpec:
    """One optical circuit switch by name (a spec passes through)."""
    return name if isinstance(name, OCSSpec) else _get("ocs", _simple("ocs.toml", folders.state()), name)
