"""Named sweep specs: the TOML files with a ``[sweep]`` table in the studies folders.

Stage: sweep (see docs/design.md).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

__all__ = ["sweep_specs"]


def _study_dirs() -> list[Path]:
    import ocsnet
    return [Path(ocsnet.__file__).resolve().parents[1] / "studies", Path.cwd() / "studies"]


def sweep_specs() -> dict[str, Path]:
    """Name -> file of every named sweep spec."""
    out = {}
    for d in _study_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.toml")):
            try:
                if "sweep" in tomllib.loads(p.read_text()):
                    out.setdefault(p.stem, p)
            except (tomllib.TOMLDecodeError, OSError):
                continue
    return out
