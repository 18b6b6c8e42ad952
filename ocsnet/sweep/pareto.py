"""Pareto fronts of sweep results: a vectorized non-dominated filter.

Stage: sweep (see docs/design.md).
"""

from __future__ import annotations

import numpy as np

from ..errors import SweepError

__all__ = ["non_dominated", "pareto_front"]


def non_dominated(values, senses) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (n x m) that no other row dominates.

    Row a dominates row b when a is at least as good on every objective and
    better on one; ``senses[j]`` is ``"max"`` or ``"min"``.  Rows with a NaN
    are never on the front; equal rows are all kept.  O(n x front size)
    vectorized comparisons.

    Examples
    --------
    >>> non_dominated([[1, 5], [2, 4], [0, 0], [2, 5]], ["max", "max"]).tolist()
    [False, False, False, True]
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise SweepError(f"values: expected an (n, m) array, got shape {v.shape}")
    if len(senses) != v.shape[1]:
        raise SweepError(f"senses: {len(senses)} senses for {v.shape[1]} objectives")
    for s in senses:
        if s not in ("max", "min"):
            raise SweepError(f"senses: {s!r} is not 'max' or 'min'")
    sign = np.array([1.0 if s == "max" else -1.0 for s in senses])
    g = v * sign                                  # larger is better on every column
    ok = ~np.isnan(g).any(axis=1)
    idx = np.flatnonzero(ok)
    g = g[idx]
    # Sweep the candidates in order: each one that survives removes every row it dominates, so
    # the loop runs once per front member and each pass is one vectorized comparison.
    alive = np.arange(len(idx))
    i = 0
    while i < len(alive):
        c = g[i]
        survive = (g > c).any(axis=1) | (g == c).all(axis=1)
        alive, g = alive[survive], g[survive]
        i = int(survive[:i].sum()) + 1
    keep = alive
    mask = np.zeros(len(v), bool)
    mask[idx[keep]] = True
    return mask


def pareto_front(table, objectives) -> list[int]:
    """Row indices of ``table`` (a dict of columns) on the front of ``objectives``, best first
    on the first objective."""
    cols = np.column_stack([np.asarray(table[o.metric], dtype=float) for o in objectives])
    mask = non_dominated(cols, [o.sense for o in objectives])
    rows = np.flatnonzero(mask)
    first = cols[rows, 0] * (1 if objectives[0].sense == "max" else -1)
    return rows[np.argsort(-first, kind="stable")].tolist()
