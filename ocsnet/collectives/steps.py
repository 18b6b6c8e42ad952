"""Steps of an expanded collective: the compact form, CSR matrices, and the step cost model.

A collective expands into a sequence of **steps**; step ``s + 1`` starts when
step ``s`` has completed.  Inside this package a step is a triple of
read-only arrays ``(src, dst, nbytes)`` over the group's ranks ``0..p-1``,
sorted by ``(src, dst)``, without duplicate pairs or self-sends.  Steps that
are equal are the *same* triple object, so a ring all-reduce over 4,096 ranks
(8,190 equal steps) holds one step's arrays.  :func:`to_matrices` turns the
triples into ``scipy.sparse.csr_matrix`` objects (one per distinct triple,
repeated in the list like the triple is).

Cost model (alpha-beta, one-port full duplex).  Each rank can send at
``bandwidth_Bps`` and receive at ``bandwidth_Bps`` at the same time; a rank
that talks to several peers in one step shares its bandwidth over them.  A
step costs ``alpha_s + max(max row sum, max column sum) / bandwidth_Bps``.
For steps that are (partial) permutations (ring, rhd, pairwise, the pipelined
trees) this is ``alpha_s + (largest message) / bandwidth_Bps``, the model of
Thakur, Rabenseifner & Gropp (2005) and Chan et al. (2007).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Sequence, Union

import numpy as np
import scipy.sparse as sp

from ..errors import WorkloadError

__all__ = ["Step", "to_matrices", "step_time", "bytes_sent_per_rank", "bytes_received_per_rank"]

Step = tuple  # (src int32[n], dst int32[n], nbytes float64[n]), read-only, sorted by (src, dst)
Steps = Union[Sequence[sp.spmatrix], Sequence[Step]]

INDEX = np.int32  # rank indices; group sizes are far below 2**31


# ---- validation ------------------------------------------------------------------
def check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    """Return *value* as an int, or raise :class:`WorkloadError` naming the field and range."""
    if isinstance(value, bool):
        raise WorkloadError(f"{name}: expected an integer, got {value!r}")
    if not isinstance(value, Integral):
        if isinstance(value, Real) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise WorkloadError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        raise WorkloadError(f"{name}: {value} is out of range, allowed [{lo}, {'inf' if hi is None else hi}]")
    return value


def check_float(name: str, value, lo: float = 0.0, *, lo_open: bool = False) -> float:
    """Return *value* as a finite float ``>= lo`` (``> lo`` if *lo_open*), else raise WorkloadError."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise WorkloadError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= lo if lo_open else v < lo):
        left = "(" if lo_open else "["
        raise WorkloadError(f"{name}: {value!r} is out of range, allowed {left}{lo}, inf) and finite")
    return v


# ---- building steps ---------------------------------------------------------------
def readonly(*arrays: np.ndarray) -> tuple:
    """Mark arrays read-only (they may be shared by many steps) and return them as a tuple."""
    for a in arrays:
        a.flags.writeable = False
    return tuple(arrays)


def make_step(src, dst, nbytes, *, presorted: bool = False) -> Step:
    """One step from pair arrays: sorted by (src, dst), duplicate pairs summed, read-only.

    *nbytes* may be a scalar (the same message on every pair).  Arrays that
    already have the right dtype are used as they are (and marked read-only),
    so steps built from shared arrays share them.  *presorted* skips the sort
    check for builders that produce strictly increasing (src, dst) pairs.
    """
    src = np.asarray(src, dtype=INDEX)
    dst = np.asarray(dst, dtype=INDEX)
    nb = np.broadcast_to(np.asarray(nbytes, dtype=np.float64), src.shape)
    if src.size > 1 and not presorted and not _strictly_sorted(src, dst):
        order = np.lexsort((dst, src))
        src, dst, nb = src[order], dst[order], nb[order]
        first = np.ones(src.size, dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        if not first.all():
            idx = np.flatnonzero(first)
            nb = np.add.reduceat(nb, idx)
            src, dst = src[idx], dst[idx]
    return readonly(np.ascontiguousarray(src), np.ascontiguousarray(dst), np.ascontiguousarray(nb))


def _strictly_sorted(src: np.ndarray, dst: np.ndarray) -> bool:
    ds = np.diff(src)
    return bool(np.all((ds > 0) | ((ds == 0) & (np.diff(dst) > 0))))


def to_matrices(steps: Sequence[Step], p: int) -> list[sp.csr_matrix]:
    """CSR matrices of compact steps; equal (same-object) steps give the same matrix object.

    The matrices' arrays are read-only views of the steps' arrays: use
    ``m.copy()`` before changing one in place.
    """
    cache: dict[int, sp.csr_matrix] = {}
    indptrs: dict[int, np.ndarray] = {}
    out = []
    for st in steps:
        m = cache.get(id(st))
        if m is None:
            src, dst, nb = st
            indptr = indptrs.get(id(src))
            if indptr is None:
                indptr = np.zeros(p + 1, dtype=INDEX)
                np.cumsum(np.bincount(src, minlength=p), out=indptr[1:])
                readonly(indptr)
                indptrs[id(src)] = indptr
            m = sp.csr_matrix((nb, dst, indptr), shape=(p, p), copy=False)
            m.has_sorted_indices = True
            m.has_canonical_format = True
            cache[id(st)] = m
        out.append(m)
    return out


# ---- reading steps ----------------------------------------------------------------
def _triples(steps: Steps):
    """Yield (src, dst, nbytes, p) for compact steps or matrices; p is None for triples."""
    for st in steps:
        if sp.issparse(st):
            c = st.tocoo()
            yield c.row, c.col, np.asarray(c.data, dtype=np.float64), st.shape[0]
        else:
            src, dst, nb = st
            yield np.asarray(src), np.asarray(dst), np.asarray(nb, dtype=np.float64), None


def _group_size(steps: Steps, group_size: int | None) -> int:
    if group_size is not None:
        return check_int("group_size", group_size, 1)
    for st in steps:
        if sp.issparse(st):
            return st.shape[0]
        if len(st[0]):
            return int(max(np.max(st[0]), np.max(st[1]))) + 1
    return 1


def _loads(steps: Steps, group_size: int | None):
    """Per-step (bytes sent per rank, bytes received per rank), computed once per distinct step."""
    p = _group_size(steps, group_size)
    cache: dict[int, tuple] = {}
    for st in steps:
        hit = cache.get(id(st))
        if hit is None:
            src, dst, nb, q = next(_triples([st]))
            n = q or p
            hit = (np.bincount(src, weights=nb, minlength=n), np.bincount(dst, weights=nb, minlength=n))
            cache[id(st)] = hit
        yield hit


def step_time(steps: Steps, alpha_s: float, bandwidth_Bps: float, *, group_size: int | None = None) -> float:
    """Time of expanded steps under the alpha-beta model, seconds.

    Each step costs ``alpha_s + max(max bytes a rank sends, max bytes a rank
    receives) / bandwidth_Bps`` (one-port, full duplex; a rank with several
    peers in a step shares its bandwidth), and steps run one after another.

    Parameters
    ----------
    steps : list of csr_matrix or list of (src, dst, nbytes)
        As returned by :func:`ocsnet.collectives.expand`.
    alpha_s : float
        Per-step latency (software plus link), >= 0.
    bandwidth_Bps : float
        Per-rank send (and receive) bandwidth, > 0.
    group_size : int, optional
        Needed only for compact steps whose highest rank is idle.

    Returns
    -------
    float

    Raises
    ------
    WorkloadError
        ``alpha_s`` < 0 or ``bandwidth_Bps`` <= 0.

    Examples
    --------
    >>> from ocsnet.collectives import expand, step_time
    >>> round(step_time(expand("all-gather", 4, 4e6), alpha_s=1e-6, bandwidth_Bps=1e9), 12)  # 3 (1 us + 1 ms)
    0.003003
    """
    alpha_s = check_float("alpha_s", alpha_s)
    bandwidth_Bps = check_float("bandwidth_Bps", bandwidth_Bps, lo_open=True)
    total = 0.0
    for out, inn in _loads(steps, group_size):
        total += alpha_s + max(float(out.max(initial=0.0)), float(inn.max(initial=0.0))) / bandwidth_Bps
    return total


def bytes_sent_per_rank(steps: Steps, group_size: int | None = None) -> np.ndarray:
    """Total bytes each rank sends over all steps, shape ``(p,)``."""
    p = _group_size(steps, group_size)
    tot = np.zeros(p)
    for out, _ in _loads(steps, p):
        tot += out
    return tot


def bytes_received_per_rank(steps: Steps, group_size: int | None = None) -> np.ndarray:
    """Total bytes each rank receives over all steps, shape ``(p,)``."""
    p = _group_size(steps, group_size)
    tot = np.zeros(p)
    for _, inn in _loads(steps, p):
        tot += inn
    return tot
