"""The one JSON normalizer: Python and numpy values to the plain types ``json`` writes.

Ground floor of the pipeline.  Every writer of JSON (fabrics, traces,
schedules, flow checks, the study report) passes its data through
:func:`jsonable` and dumps it with sorted keys, so equal inputs give
byte-identical files.

Examples
--------
>>> import numpy as np
>>> jsonable({"n": np.int64(3), "dims": (4, 4), "x": np.float32(0.5), 2: [np.bool_(True)]})
{'n': 3, 'dims': [4, 4], 'x': 0.5, '2': [True]}
>>> jsonable({"t": float("inf")}, nonfinite="null")
{'t': None}
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

__all__ = ["jsonable"]


def jsonable(obj: Any, *, nonfinite: str = "keep", error: type[Exception] | None = None, where: str = "value") -> Any:
    """``obj`` with tuples as lists, numpy scalars and arrays as Python numbers and lists, keys as strings.

    Parameters
    ----------
    obj : any
        Dicts, lists, tuples, numpy arrays and scalars, dataclasses, numbers,
        strings, None.
    nonfinite : {"keep", "null"}
        Infinity and NaN kept as floats (``json`` writes ``Infinity``/``NaN``
        unless ``allow_nan=False``) or written as ``None``.
    error : exception type, optional
        Raised (naming ``where``) for a value of any other type; without it
        such a value becomes its ``str``.
    where : str
        The field named in the error message.
    """
    def conv(o):
        if o is None or isinstance(o, str):
            return o
        if isinstance(o, dict):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if type(o).__module__ == "numpy" and hasattr(o, "tolist"):     # arrays and numpy scalars
            return conv(o.tolist())
        if isinstance(o, bool):
            return o
        if isinstance(o, numbers.Integral):
            return int(o)
        if isinstance(o, numbers.Real):
            f = float(o)
            return None if nonfinite == "null" and not math.isfinite(f) else f
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return conv(dataclasses.asdict(o))
        if error is not None:
            raise error(f"{where}: must be JSON-serializable (got {type(o).__name__})")
        return str(o)

    return conv(obj)
