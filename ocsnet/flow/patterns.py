"""Synthetic traffic patterns as demand matrices over GPU ranks.

Stage 5 of the pipeline (flow model): quick phases to load a fabric with,
for the ``ocsnet flow`` command and the benchmarks.  Real workloads come as
an :class:`ocsnet.traffic.Trace`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .. import checks
from ..errors import FlowError

__all__ = ["PATTERNS", "pattern_demand", "pattern_flows"]

#: Pattern names: every ordered pair, a random cyclic permutation, i -> i+1,
#: everyone -> rank 0, and every rank to one uniformly random other rank.
PATTERNS = ("all-to-all", "permutation", "ring", "incast", "random")
#: Largest number of flows a pattern may have (all-to-all grows as N^2; routing
#: and the kernel hold a few tens of bytes per flow and hop).
MAX_FLOWS = 20_000_000


def pattern_flows(name: str, n_gpus: int, *, seed: int = 0):
    """Source and destination ranks of a pattern's flows (``src != dst``).

    Parameters
    ----------
    name : str
        One of :data:`PATTERNS`.
    n_gpus : int
        GPU ranks, >= 1 (one GPU has no flows).
    seed : int
        Seed of ``permutation`` and ``random``; the same seed gives the same flows.

    Returns
    -------
    (src, dst) : ndarrays of int

    Raises
    ------
    FlowError
        Unknown pattern, negative ``n_gpus``, or more than :data:`MAX_FLOWS` flows.

    Examples
    --------
    >>> s, d = pattern_flows("ring", 4)
    >>> list(zip(s.tolist(), d.tolist()))
    [(0, 1), (1, 2), (2, 3), (3, 0)]
    """
    if name not in PATTERNS:
        raise FlowError(f"pattern: {name!r} is not one of {', '.join(PATTERNS)}")
    n = int(n_gpus)
    if n < 0:
        raise FlowError(f"n_gpus: {n_gpus!r} is out of range, allowed [0, inf)")
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(checks.integer("seed", seed, lo=0, error=FlowError))
    if name == "all-to-all":
        if n * (n - 1) > MAX_FLOWS:
            raise FlowError(f"pattern: all-to-all over {n} GPUs has {n * (n - 1):,} flows, more than the "
                            f"{MAX_FLOWS:,} allowed; use fewer GPUs or a trace of the groups that talk")
        s = np.repeat(r, n - 1)
        d = (s + np.tile(np.arange(1, n), n)) % n
        o = np.lexsort((d, s))
        return s[o], d[o]
    if name == "ring":
        return r, (r + 1) % n
    if name == "incast":
        return r[1:], np.zeros(n - 1, dtype=np.int64)
    if name == "permutation":
        # one n-cycle through a random order: a permutation without fixed points
        p = rng.permutation(n)
        d = np.empty(n, dtype=np.int64)
        d[p] = np.roll(p, -1)
        return r, d
    return r, (r + rng.integers(1, n, size=n)) % n      # random


def pattern_demand(name: str, n_gpus: int, size_B: float, *, seed: int = 0) -> sp.csr_matrix:
    """A pattern as an ``n_gpus x n_gpus`` CSR demand matrix of ``size_B`` bytes per flow.

    Raises
    ------
    FlowError
        Unknown pattern, or a negative or non-finite size.
    """
    if not (np.isfinite(size_B) and size_B >= 0):
        raise FlowError(f"size_B: {size_B!r} is out of range, allowed [0, inf)")
    s, d = pattern_flows(name, n_gpus, seed=seed)
    n = max(int(n_gpus), 0)
    return sp.csr_matrix((np.full(len(s), float(size_B)), (s, d)), shape=(n, n))
