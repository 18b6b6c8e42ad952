"""The one place where input values are checked.

Ground floor of the pipeline, next to :mod:`ocsnet.units` and
:mod:`ocsnet.errors`.  Every public function checks its inputs with these
helpers, so that the same value gets the same answer everywhere and every
message has the same form::

    <field>: <value> is out of range, allowed [lo, hi]
    <field>: expected an integer, got float 4.5
    <field>: 'mobius' is not one of torus, ring

Rules shared by every helper:

- ``bool`` is never a number (``True`` is not ``1`` here);
- a number that is integral passes :func:`integer` whatever its type
  (``4``, ``4.0``, ``numpy.int64(4)``); ``4.5`` does not;
- NaN never passes, infinity only where ``finite=False``;
- a failure raises ``error`` (default :class:`~ocsnet.errors.SpecError`, an
  :class:`~ocsnet.errors.OcsnetError`), never a bare ``TypeError``.

Examples
--------
>>> integer("n_gpus", 4.0, lo=1)
4
>>> number("port_GBps", 50, lo=0, lo_open=True)
50.0
>>> choice("mode", "decode", ("prefill", "decode"))
'decode'
>>> integer("n_gpus", 0, lo=1)
Traceback (most recent call last):
...
ocsnet.errors.SpecError: n_gpus: 0 is out of range, allowed [1, inf)
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .errors import OcsnetError, SpecError

__all__ = ["number", "check_range", "integer", "positive", "nonnegative", "fraction", "choice", "boolean", "string",
           "integers", "array", "range_text", "kind_of"]


def kind_of(value: Any) -> str:
    """A short name of a value's type for messages (``int``, ``float``, ``str``, ``list``, ``table``...)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def range_text(lo=None, hi=None, *, lo_open: bool = False, hi_open: bool = False) -> str:
    """The allowed range as text: ``[1, inf)``, ``(0, 1]``..."""
    left = "(" if lo is None or lo_open else "["
    right = ")" if hi is None or hi_open else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def _real(name: str, value: Any, error: type[OcsnetError]) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name}: expected a number, got {kind_of(value)} {value!r}")
    v = float(value)
    if math.isnan(v):
        raise error(f"{name}: got NaN, expected a number")
    return v


def _in_range(name: str, value: Any, v: float, lo, hi, lo_open: bool, hi_open: bool, error) -> None:
    bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi))
    if bad:
        raise error(f"{name}: {value!r} is out of range, allowed {range_text(lo, hi, lo_open=lo_open, hi_open=hi_open)}")


def number(name: str, value: Any, *, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False,
           finite: bool = True, error: type[OcsnetError] = SpecError) -> float:
    """``value`` as a float inside ``[lo, hi]`` (ends open with ``lo_open``/``hi_open``).

    Raises ``error`` for a non-number (bool and str included), NaN, infinity
    (unless ``finite=False``) or a value out of range.
    """
    v = _real(name, value, error)
    if finite and math.isinf(v):
        raise error(f"{name}: {value!r} is not finite, allowed {range_text(lo, hi, lo_open=lo_open, hi_open=hi_open)}")
    _in_range(name, value, v, lo, hi, lo_open, hi_open, error)
    return v


def check_range(name: str, value: Any, lo=None, hi=None, *, lo_open: bool = False,
                error: type[OcsnetError] = SpecError) -> None:
    """Raise unless ``lo <= value <= hi`` (``lo < value`` with ``lo_open``); infinity passes where no bound stops it.

    :func:`number` with positional bounds and ``finite=False``.
    """
    number(name, value, lo=lo, hi=hi, lo_open=lo_open, finite=False, error=error)


def positive(name: str, value: Any, *, finite: bool = True, error: type[OcsnetError] = SpecError) -> float:
    """``value`` as a float > 0."""
    return number(name, value, lo=0, lo_open=True, finite=finite, error=error)


def nonnegative(name: str, value: Any, *, finite: bool = True, error: type[OcsnetError] = SpecError) -> float:
    """``value`` as a float >= 0."""
    return number(name, value, lo=0, finite=finite, error=error)


def fraction(name: str, value: Any, *, error: type[OcsnetError] = SpecError) -> float:
    """``value`` as a float in (0, 1]."""
    return number(name, value, lo=0, hi=1, lo_open=True, error=error)


def integer(name: str, value: Any, *, lo=None, hi=None, even: bool = False,
            error: type[OcsnetError] = SpecError) -> int:
    """``value`` as an int inside ``[lo, hi]``; integral floats (``4.0``) pass, ``4.5`` does not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name}: expected an integer, got {kind_of(value)} {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    else:
        f = float(value)
        if not math.isfinite(f) or f != int(f):
            raise error(f"{name}: expected an integer, got {kind_of(value)} {value!r}")
        v = int(f)
    _in_range(name, value, v, lo, hi, False, False, error)
    if even and v % 2:
        raise error(f"{name}: {value!r} is not even, allowed even integers in {range_text(lo, hi)}")
    return v


def integers(name: str, values: Any, *, lo=None, hi=None, min_len: int = 1,
             error: type[OcsnetError] = SpecError) -> list[int]:
    """A non-empty sequence of integers, each checked by :func:`integer` (``name[i]`` in messages)."""
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise error(f"{name}: expected a list of integers, got {kind_of(values)} {values!r}")
    out = [integer(f"{name}[{i}]", v, lo=lo, hi=hi, error=error) for i, v in enumerate(values)]
    if len(out) < min_len:
        raise error(f"{name}: expected at least {min_len} value{'s' if min_len > 1 else ''}, got {len(out)}")
    return out


def choice(name: str, value: Any, options: Iterable, *, error: type[OcsnetError] = SpecError):
    """``value`` if it is one of ``options`` (compared by equality, so unhashable values fail cleanly)."""
    opts = list(options)
    try:
        ok = any(value == o and type(value) is type(o) for o in opts)
    except Exception:       # noqa: BLE001 - e.g. an array compared with a string
        ok = False
    if not ok:
        raise error(f"{name}: {value!r} is not one of {', '.join(map(str, opts))}")
    return value


def boolean(name: str, value: Any, *, error: type[OcsnetError] = SpecError) -> bool:
    """``value`` as a bool if it is one (numpy's included); ``0``/``1``, strings and arrays do not pass."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise error(f"{name}: expected true or false, got {kind_of(value)} {value!r}")
    return bool(value)


def string(name: str, value: Any, *, empty: bool = False, error: type[OcsnetError] = SpecError) -> str:
    """``value`` if it is a string (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise error(f"{name}: expected a string, got {kind_of(value)} {value!r}")
    if not empty and not value.strip():
        raise error(f"{name}: expected a non-empty string")
    return value


def array(name: str, value: Any, *, ndim: int | None = None, shape: tuple | None = None, lo=None, hi=None,
          lo_open: bool = False, integral: bool = False, finite: bool = True, empty: bool = False,
          error: type[OcsnetError] = SpecError):
    """``value`` as a float (or int, with ``integral``) numpy array of the given rank or shape.

    ``shape`` may hold ``None`` for a free axis.  Values must be finite (unless
    ``finite=False``), within ``[lo, hi]``, and integral with ``integral``.
    """
    import numpy as np

    if isinstance(value, (str, bytes, dict)):
        raise error(f"{name}: expected an array of numbers, got {kind_of(value)}")
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise error(f"{name}: expected an array of numbers ({e})") from None
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise error(f"{name}: expected an array of numbers, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise error(f"{name}: expected {ndim} dimension{'s' if ndim != 1 else ''}, got shape {a.shape}")
    if shape is not None:
        if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise error(f"{name}: expected shape {want}, got {a.shape}")
    if not empty and a.size == 0:
        raise error(f"{name}: expected at least one value, got an empty array")
    f = a.astype(float)
    rng = range_text(lo, hi, lo_open=lo_open)

    def first(bad, why):
        if bad.any():
            idx = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), f.shape) if f.ndim else ()
            at = f"[{', '.join(map(str, idx))}]" if idx else ""
            raise error(f"{name}{at}: {float(f[idx])!r} {why}")

    first(np.isnan(f), "is NaN, expected a number")
    if finite:
        first(np.isinf(f), f"is not finite, allowed {rng}")
    if lo is not None:
        first(f <= lo if lo_open else f < lo, f"is out of range, allowed {rng}")
    if hi is not None:
        first(f > hi, f"is out of range, allowed {rng}")
    if integral:
        first(f != np.round(f), "is not an integer")
        return a.astype(np.int64)
    return f
