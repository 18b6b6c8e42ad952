"""Design-space sweeps on Dask with resumable Parquet results and Pareto fronts.

Stage: sweep, the last model stage before the CLI (see docs/design.md).

- :mod:`.knobs`: every knob a sweep may vary (:data:`KNOBS`) and how a point resolves;
- :mod:`.spec`: sweep specs (TOML): axes, fixed knobs, grid / random / Latin-hypercube
  sampling, constraints that prune points, objectives;
- :mod:`.point`: one design point's evaluation (the study's plan search), never raising;
- :mod:`.store`: the results folder, one Parquet file per finished chunk;
- :mod:`.engine`: :func:`run_sweep` in-process, on a LocalCluster or on an existing scheduler;
- :mod:`.pareto`: the non-dominated filter; :mod:`.report`: tables and figures from the store.

Examples
--------
>>> from ocsnet.sweep import parse_sweep
>>> spec = parse_sweep({"axes": {"gpu": ["lite-base", "lite-netboost"], "batch": [8, 16]}})
>>> len(spec.points()[0])
4
"""

from .engine import SweepRun, run_sweep
from .pareto import non_dominated
from .spec import SweepSpec, load_sweep, parse_sweep

__all__ = ["run_sweep", "SweepRun", "SweepSpec", "load_sweep", "parse_sweep", "non_dominated"]
