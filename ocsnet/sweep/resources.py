"""Named sweep specs: the TOML files with a ``[sweep]`` table in the studies folders.

Stage: sweep (see docs/design.md).  The studies folders are the built-in one
(shipped inside the package) and the ``studies/`` of every user folder
(``OCSNET_PATH``, ``--path``), found by :mod:`ocsnet.folders`.
"""

from __future__ import annotations

import tomllib

from .. import folders

__all__ = ["sweep_specs"]


def sweep_specs() -> dict:
    """Name -> file (a path or an importlib.resources Traversable) of every named sweep spec."""
    out = {}
    for name, f in folders.files("studies").items():
        try:
            if "sweep" in tomllib.loads(f.read_text()):
                out[name] = f.path
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            continue
    return out
