"""The one place where units are parsed and converted.

Inside ocsnet every quantity is in SI base units: bytes, seconds, bytes/s,
FLOP/s, watts, joules.  At the boundaries (TOML, JSON, CLI flags, table
headers) names carry their unit (``bandwidth_GBps``, ``latency_ns``); this
module converts between the two.  ``GB`` means 1e9 bytes, ``GiB`` 2**30.

Examples
--------
>>> parse_bandwidth("400Gbps")
50000000000.0
>>> parse_bandwidth("50GBps")
50000000000.0
>>> parse_time("10us")
1e-05
>>> parse_bytes("80GB")
80000000000.0
"""

from __future__ import annotations

import math
import re

from .errors import UnitError

# SI prefixes (decimal) and binary prefixes.
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BIN = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}

_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12, "min": 60.0, "h": 3600.0}

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_RE = re.compile(r"^\s*" + _NUM + r"\s*([A-Za-zµ/]*)\s*$")

# Conversion factors from SI base units for the unit suffixes used in field names.
BYTES_PER_GB = 1e9
BYTES_PER_GIB = 2.0**30
BITS_PER_BYTE = 8.0
MM2_PER_CM2 = 100.0                  # die areas (mm2) against defect densities (per cm2)
SECONDS_PER_YEAR = 365.25 * 86400.0  # amortization lives in years
J_PER_KWH = 3.6e6                    # electricity prices per kWh


def _split(text: str, what: str, field: str | None):
    m = _RE.match(str(text))
    if not m:
        raise UnitError(f"{field or what}: cannot parse {text!r} as a {what}")
    value = float(m.group(1))
    if math.isnan(value) or math.isinf(value):
        raise UnitError(f"{field or what}: {text!r} is not a finite number")
    return value, m.group(2)


def _prefix(unit: str, base: str, field: str | None, text: str) -> float:
    if not unit.endswith(base):
        raise UnitError(f"{field or 'quantity'}: unit of {text!r} must end in {base!r}")
    p = unit[: len(unit) - len(base)]
    if p in _BIN:
        return _BIN[p]
    if p in _SI:
        return _SI[p]
    raise UnitError(f"{field or 'quantity'}: unknown prefix {p!r} in {text!r}")


def parse_bandwidth(text: str | float, field: str | None = None) -> float:
    """Parse a bandwidth such as ``"400Gbps"``, ``"50GBps"``, ``"1.6Tb/s"`` into bytes/s.

    A lower-case ``b`` means bits, an upper-case ``B`` bytes.  A bare number is
    taken as bytes/s.
    """
    if isinstance(text, (int, float)):
        return float(text)
    value, unit = _split(text, "bandwidth", field)
    if unit == "":
        return value
    u = unit.replace("/s", "ps")
    if u.endswith("Bps"):
        return value * _prefix(u, "Bps", field, text)
    if u.endswith("bps"):
        return value * _prefix(u, "bps", field, text) / BITS_PER_BYTE
    raise UnitError(f"{field or 'bandwidth'}: unit of {text!r} must be bps, Bps (with a prefix such as G)")


def parse_time(text: str | float, field: str | None = None) -> float:
    """Parse a duration such as ``"10us"``, ``"500ns"``, ``"20ms"`` into seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    value, unit = _split(text, "duration", field)
    if unit == "":
        return value
    if unit not in _TIME:
        raise UnitError(f"{field or 'duration'}: unknown time unit {unit!r} in {text!r}; use s, ms, us, ns")
    return value * _TIME[unit]


def parse_bytes(text: str | float, field: str | None = None) -> float:
    """Parse a size such as ``"80GB"``, ``"16MiB"``, ``"4KB"`` into bytes."""
    if isinstance(text, (int, float)):
        return float(text)
    value, unit = _split(text, "size", field)
    if unit == "":
        return value
    return value * _prefix(unit, "B", field, text)


# --- conversions from the unit named in a field suffix to SI -------------------

_SUFFIX = {
    # bandwidth
    "Bps": 1.0, "GBps": 1e9, "TBps": 1e12, "MBps": 1e6,
    "Gbps": 1e9 / 8, "Tbps": 1e12 / 8, "Mbps": 1e6 / 8,
    # time
    "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "min": 60.0, "h": 3600.0, "days": 86400.0,
    # size
    "B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "GiB": 2.0**30, "MiB": 2.0**20,
    # compute, power, energy, length, area
    "FLOPs": 1.0, "TFLOPs": 1e12, "PFLOPs": 1e15, "GFLOPs": 1e9,
    "W": 1.0, "kW": 1e3, "MW": 1e6,
    "pJ_per_bit": 1e-12, "J_per_bit": 1.0,
    "m": 1.0, "mm2": 1.0, "dB": 1.0,
}


def suffix_factor(field: str) -> float:
    """The factor converting a field named ``<name>_<unit>`` to SI base units.

    >>> suffix_factor("latency_ns")
    1e-09
    >>> suffix_factor("bf16_TFLOPs")
    1000000000000.0
    """
    for unit in sorted(_SUFFIX, key=len, reverse=True):
        if field.endswith("_" + unit):
            return _SUFFIX[unit]
    raise UnitError(f"{field}: field name carries no known unit suffix")


def strip_suffix(field: str) -> str | None:
    """The name of a unit-suffixed field without its unit (None if it carries none).

    >>> strip_suffix("hbm_bandwidth_GBps"), strip_suffix("hbm_bandwidth_TBps"), strip_suffix("ports")
    ('hbm_bandwidth', 'hbm_bandwidth', None)
    """
    for unit in sorted(_SUFFIX, key=len, reverse=True):
        if field.endswith("_" + unit) and len(field) > len(unit) + 1:
            return field[: -len(unit) - 1]
    return None


def to_si(field: str, value: float) -> float:
    """Convert a value stored under a unit-suffixed field name to SI."""
    return float(value) * suffix_factor(field)


def from_si(field: str, value: float) -> float:
    """Convert an SI value to the unit named by a field's suffix."""
    return float(value) / suffix_factor(field)


def fmt_time(seconds: float) -> str:
    """Human-readable duration with an SI prefix, e.g. ``'12.5 us'``."""
    s = float(seconds)
    if math.isinf(s):
        return "inf"
    a = abs(s)
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if a >= f or unit == "ns":
            return f"{s / f:.3g} {unit}"
    return f"{s} s"


def fmt_bandwidth(Bps: float) -> str:
    """Human-readable bandwidth in bytes/s, e.g. ``'50 GB/s'``."""
    b = float(Bps)
    for unit, f in (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if abs(b) >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b:.3g} B/s"


def fmt_bytes(nbytes: float) -> str:
    """Human-readable size in bytes, e.g. ``'1.5 GB'``."""
    b = float(nbytes)
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(b) >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b:.3g} B"
