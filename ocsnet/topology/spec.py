"""Named fabric specs: TOML files in ``topologies/`` that say how to build a fabric.

Stage 3 of the pipeline (the CLI and notebooks build fabrics by name).  A spec::

    description = "4,096 Lite-GPUs on 8 OCS planes"
    generator = "ocs_fabric"

    [params]
    n_gpus = 4096
    ports_per_gpu = 8
    gpu = "lite-base"
    ocs = "mems-3d"
    port_GBps = 14.0625          # optional; units in the name

Top-level keys: ``description`` (str) and ``generator`` (str), both required,
and ``params`` (table).  ``generator`` is one of :data:`GENERATORS`.  Every
parameter is a keyword of the generator function; a bandwidth, time, size or
power is written with its unit in the name (``port_GBps``, ``host_Gbps``,
``latency_ns``) and converted to the function's SI keyword (``port_Bps``,
``host_Bps``, ``latency_s``) by :mod:`ocsnet.units`.  ``hybrid`` takes its
packet part as a sub-table ``[params.packet]`` holding ``generator`` and that
generator's parameters; ``astra`` takes ``config``, a YAML path relative to
the spec file.

Parsing is strict: an unknown key, a missing required key, a value of the
wrong type, an unknown generator or a value out of range raises
:class:`~ocsnet.errors.SpecError` naming the key.

Names are looked up in the built-in specs (the top-level ``topologies/``
folder, shipped inside the package as ``ocsnet.topologies``) and in the
``topologies/`` folder of every user folder (``OCSNET_PATH``, ``--path``; see
:mod:`ocsnet.folders`); a user spec replaces a built-in one of the same name.
"""

from __future__ import annotations

import importlib
import inspect
import math
from pathlib import Path
from typing import Any, Mapping

from .. import folders, units
from ..errors import OcsnetError, SpecError
from ..fabric import Fabric

__all__ = ["list_specs", "load_spec", "build", "GENERATORS"]

#: Generator name -> (module in ocsnet.topology, function).
GENERATORS = {
    "ocs_fabric": ("optical", "ocs_fabric"),
    "torus": ("direct", "torus"),
    "fully_connected": ("direct", "fully_connected"),
    "fully_connected_groups": ("direct", "fully_connected_groups"),
    "hybrid": ("hybrid", "hybrid"),
    "astra": ("astra", "from_astra_yaml"),
    "fat_tree": ("packet", "fat_tree"),
    "leaf_spine": ("packet", "leaf_spine"),
    "clos": ("packet", "clos"),
    "rail_optimized": ("packet", "rail_optimized"),
    "dgx_cluster": ("packet", "dgx_cluster"),
}
_TOP = {"description": str, "generator": str, "params": dict}
_REQUIRED_TOP = ("description", "generator")

# Unit suffix -> SI suffix of the same dimension (the generators' keyword names).
_DIMENSION = {
    **dict.fromkeys(("Bps", "KBps", "MBps", "GBps", "TBps", "Mbps", "Gbps", "Tbps"), "Bps"),
    **dict.fromkeys(("s", "ms", "us", "ns", "ps"), "s"),
    **dict.fromkeys(("B", "KB", "MB", "GB", "TB", "GiB", "MiB"), "B"),
    **dict.fromkeys(("W", "kW", "MW"), "W"),
}


def list_specs() -> list[str]:
    """Names of the specs, built-in and from user folders, sorted."""
    return folders.names("topologies")


def _function(generator: str, where: str):
    if not isinstance(generator, str) or generator not in GENERATORS:
        raise SpecError(f"{where}generator: {generator!r} is not one of {', '.join(sorted(GENERATORS))}")
    mod, fn = GENERATORS[generator]
    try:
        module = importlib.import_module(f"ocsnet.topology.{mod}")
    except ModuleNotFoundError as e:  # pragma: no cover - a part of the package not installed
        raise SpecError(f"{where}generator: {generator!r} needs ocsnet.topology.{mod}, which is missing ({e})") from None
    return getattr(module, fn)


def _split_unit(key: str):
    """('port', 'GBps') for 'port_GBps'; (key, None) without a known unit suffix."""
    for unit in sorted(_DIMENSION, key=len, reverse=True):
        if key.endswith("_" + unit) and len(key) > len(unit) + 1:
            return key[: -len(unit) - 1], unit
    return key, None


def _kind(param: inspect.Parameter) -> set[str]:
    """Value kinds a keyword accepts: from its annotation text, else its default."""
    ann = param.annotation
    text = "" if ann is inspect.Parameter.empty else (ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann)))
    kinds = set()
    if any(t in text for t in ("Sequence", "list", "tuple")):
        kinds.add("list")
    if "bool" in text:
        kinds.add("bool")
    if "float" in text:
        kinds.update({"float", "int"})
    if "int" in text.replace("Sequence[int]", "").replace("list[int]", "").replace("tuple[int", ""):
        kinds.add("int")
    if "str" in text:
        kinds.add("str")
    if "Fabric" in text:
        kinds.update({"table", "str"})
    if kinds:
        return kinds
    d = param.default
    if d is inspect.Parameter.empty or d is None:
        return set()                      # unknown: the generator checks
    if isinstance(d, bool):
        return {"bool"}
    if isinstance(d, int):
        return {"int"}
    if isinstance(d, float):
        return {"float", "int"}
    if isinstance(d, str):
        return {"str"}
    if isinstance(d, (list, tuple)):
        return {"list"}
    return set()


def _value_kind(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "table"
    return type(v).__name__


def _kwargs(generator: str, params: Mapping[str, Any], where: str, base: Path | None) -> dict:
    """Map spec params to the generator's keywords (units converted), strictly."""
    fn = _function(generator, where)
    sig = inspect.signature(fn)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    named = {k: p for k, p in sig.parameters.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    if generator == "hybrid":
        named.pop("packet")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if generator == "hybrid" and key == "packet":
            if not isinstance(value, dict):
                raise SpecError(f"{where}params.packet: expected a table with 'generator' and its parameters")
            sub = dict(value)
            if "generator" not in sub:
                raise SpecError(f"{where}params.packet: missing key 'generator'")
            gen = sub.pop("generator")
            if gen in ("hybrid", "astra", "ocs_fabric"):
                raise SpecError(f"{where}params.packet.generator: {gen!r} cannot be the packet part of a hybrid")
            out["packet"] = (gen, _kwargs(gen, sub, f"{where}params.packet.", base))
            continue
        kw, conv = key, None
        if key not in named:
            stem, unit = _split_unit(key)
            si = f"{stem}_{_DIMENSION[unit]}" if unit else None
            if si in named:
                kw, conv = si, key
            elif accepts_any and generator != "hybrid":
                kw = key
            else:
                allowed = sorted(named)
                raise SpecError(f"{where}params: unknown key {key!r} for generator {generator!r}; "
                                f"allowed: {', '.join(allowed)} (bandwidths and times with a unit, e.g. *_GBps, *_ns)")
        if kw in out:
            raise SpecError(f"{where}params.{key}: sets {kw!r}, which another key already sets")
        if conv is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{where}params.{key}: expected a number, got {_value_kind(value)} {value!r}")
            dim = _DIMENSION[_split_unit(key)[1]]
            if not math.isfinite(value) or (value <= 0 if dim in ("Bps", "B") else value < 0):
                rng = "(0, inf)" if dim in ("Bps", "B") else "[0, inf)"
                raise SpecError(f"{where}params.{key}: {value!r} is out of range, allowed {rng}")
            value = units.to_si(key, value)
        elif kw in named:
            kinds = _kind(named[kw])
            vk = _value_kind(value)
            if kinds and vk not in kinds:
                raise SpecError(f"{where}params.{key}: expected {' or '.join(sorted(kinds))}, got {vk} {value!r}")
        if generator == "astra" and kw == "config":
            if not isinstance(value, str):
                raise SpecError(f"{where}params.config: expected a path to an ASTRA-sim YAML file, got {value!r}")
            path = Path(value)
            if not path.is_absolute() and base is not None:
                path = base / path
            value = str(path)
        out[kw] = value
    missing = [k for k, p in named.items() if p.default is inspect.Parameter.empty and k not in out]
    if generator == "hybrid" and "packet" not in out:
        missing.insert(0, "packet")
    if missing:
        raise SpecError(f"{where}params: missing required key {missing[0]!r} for generator {generator!r}")
    return out


def _check_spec(spec: dict, where: str) -> None:
    for key in spec:
        if key not in _TOP:
            raise SpecError(f"{where}unknown key {key!r}; allowed: {', '.join(_TOP)}")
    for key in _REQUIRED_TOP:
        if key not in spec:
            raise SpecError(f"{where}missing required key {key!r}")
    for key, typ in _TOP.items():
        if key in spec and not isinstance(spec[key], typ):
            raise SpecError(f"{where}{key}: expected {'a table' if typ is dict else typ.__name__}, "
                            f"got {_value_kind(spec[key])} {spec[key]!r}")


def load_spec(name_or_path) -> dict:
    """Read and check one spec.

    Parameters
    ----------
    name_or_path : str or Path
        A spec name (built-in or from a user folder) or a path to a TOML file.

    Returns
    -------
    dict
        ``name``, ``description``, ``generator``, ``params`` (as written), ``path``
        and ``origin`` ("built-in" or the file's path).

    Raises
    ------
    SpecError
        Unknown name, unreadable TOML, or a bad key or value (named).

    Examples
    --------
    >>> s = load_spec("lite-ocs")
    >>> s["generator"], s["params"]["n_gpus"]
    ('ocs_fabric', 4096)
    """
    f = folders.find("topologies", name_or_path, "spec")
    data = f.read_toml(str(f.path))
    where = f"{f.path.name}: "
    _check_spec(data, where)
    spec = {"name": f.name, "description": data["description"], "generator": data["generator"],
            "params": dict(data.get("params", {})), "path": str(f.path), "origin": f.origin}
    _kwargs(spec["generator"], spec["params"], where, _base(f.path))
    return spec


def _base(path) -> Path | None:
    """The folder relative paths in a spec are resolved against (None inside a zip)."""
    return path.parent if isinstance(path, Path) else None


def _call(generator: str, kwargs: dict) -> Fabric:
    if generator == "hybrid":
        gen, pkw = kwargs["packet"]
        kwargs = dict(kwargs, packet=_function(gen, "")(**pkw))
    return _function(generator, "")(**kwargs)


def _kwargs_memory(memory: dict) -> dict:
    """Keyword arguments of attach_memory from a spec's ``memory`` table (``port_GBps`` converted)."""
    allowed = {"tier", "n_nodes", "ports", "attach", "link", "port_GBps"}
    extra = set(memory) - allowed
    if extra:
        raise SpecError(f"memory.{sorted(extra)[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")
    kw = {k: v for k, v in memory.items() if k != "port_GBps"}
    if "port_GBps" in memory:
        kw["port_Bps"] = units.to_si("port_GBps", memory["port_GBps"])
    return kw


def build(spec_or_name, **overrides) -> Fabric:
    """Build the fabric of a spec.

    Parameters
    ----------
    spec_or_name : str, Path or dict
        A spec name, a TOML path, or a dict as :func:`load_spec` returns (or
        with just ``generator`` and ``params``).
    **overrides
        Parameters replacing the spec's, written as in the spec
        (``n_gpus=64``, ``port_GBps=25``).

    Returns
    -------
    Fabric
        Named after the spec; ``meta["spec"]`` records the spec name.

    Raises
    ------
    SpecError
        A bad spec or override (the key is named); errors of the generator
        are re-raised with the spec's name in front.

    Examples
    --------
    >>> build("lite-ocs", n_gpus=64).n_gpus
    64
    """
    if isinstance(spec_or_name, dict):
        spec = dict(spec_or_name)
        spec.setdefault("name", spec.get("generator", "spec"))
        spec.setdefault("description", "")
        if "generator" not in spec:
            raise SpecError("spec: missing required key 'generator'")
        base = Path(spec["path"]).parent if spec.get("path") else None
    else:
        spec = load_spec(spec_or_name)
        base = Path(spec["path"]).parent if spec["origin"] != "built-in" or Path(spec["path"]).exists() else None
    params = dict(spec.get("params") or {})
    params.update(overrides)
    where = f"{spec['name']}: "
    memory = params.pop("memory", None)        # memory nodes: ocsnet.topology.memory_nodes.attach_memory
    kwargs = _kwargs(spec["generator"], params, where, base)
    kwargs.setdefault("name", spec["name"])
    try:
        fabric = _call(spec["generator"], kwargs)
        if memory is not None:
            from .memory_nodes import attach_memory
            if not isinstance(memory, dict):
                raise SpecError(f"memory: expected a table (tier, n_nodes, ports, attach, link), got {memory!r}")
            fabric = attach_memory(fabric, **_kwargs_memory(memory))
    except OcsnetError as e:
        raise type(e)(f"{where}{e}") from None
    fabric.meta["spec"] = spec["name"]
    return fabric
