"""One-slot circuit configurations and the sparse-matrix helpers of the OCS scheduler.

Stage 4 of the pipeline (``ocsnet.schedule``).  Everything here is array in,
array out on N x N ``scipy.sparse`` matrices over GPU ranks; no Python loop
runs over pairs, ports or GPUs.  This module holds:

* :func:`best_config` -- the configuration that serves one demand matrix in a
  single slot as fast as possible (a bottleneck b-matching, solved exactly),
  and :func:`one_slot_time`, the time of a demand under a configuration;
  the caller merges the demand of several phases and asks :func:`best_config`
  for one configuration that serves them all (the heuristic does this for
  windows of consecutive phases);
* helpers on canonical CSR matrices keyed by pair ``i * N + j``
  (:func:`canonical`, :func:`pair_keys`, :func:`values_at`, :func:`mask_at`),
  shared by every solver.

Splitting a demand into several slots (stuffing, Birkhoff-von Neumann,
Solstice, the fewest slots, grouping into slots, LP re-timing) lives in
:mod:`.decompose`; its public names (``decompose``, ``retime``, ``stuff``,
``bvn``, ``solstice_slices``, ``group_slots``) stay reachable as attributes
of this module.

A configuration ``C`` is an integer CSR matrix: ``C[i, j]`` circuits from GPU
``i`` to GPU ``j``, zero diagonal, row sums at most the free transmit ports
of ``i`` and column sums at most the free receive ports of ``j``.  Circuits
already pinned (port reservation) are passed as ``base``: they carry demand
but take no free port.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from ..sparse import canonical

__all__ = [
    "pair_keys", "values_at", "mask_at", "one_slot_time", "best_config",
    "stuff", "bvn", "solstice_slices", "group_slots", "retime", "decompose",
]

# Names that moved to .decompose, still served from here.  Resolved lazily
# (PEP 562): .decompose imports this module's helpers, so an eager import at
# the top or bottom would be circular.
_DECOMPOSE = frozenset({"stuff", "bvn", "solstice_slices", "group_slots", "retime", "decompose"})


def __getattr__(name: str):
    if name in _DECOMPOSE:
        from . import decompose as _dec
        return getattr(_dec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Relative slack when comparing a duration against a candidate threshold, so
# that D / (T b) for T = D / (k b) rounds to k and not to k + 1.
_REL = 1e-12


def pair_keys(M: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys ``i * N + j`` of the stored entries of a canonical CSR matrix."""
    n = M.shape[1]
    rows = np.repeat(np.arange(M.shape[0], dtype=np.int64), np.diff(M.indptr))
    return rows * n + M.indices.astype(np.int64)


def values_at(M: sp.csr_matrix | None, keys: np.ndarray) -> np.ndarray:
    """Entries of a canonical CSR matrix at pair keys (0 where nothing is stored)."""
    if M is None or M.nnz == 0:
        return np.zeros(len(keys))
    mk = pair_keys(M)
    pos = np.searchsorted(mk, keys)
    pos_c = np.minimum(pos, len(mk) - 1)
    hit = mk[pos_c] == keys
    return np.where(hit, M.data[pos_c], 0).astype(float)


def _entries(D: sp.csr_matrix):
    rows = np.repeat(np.arange(D.shape[0], dtype=np.int64), np.diff(D.indptr))
    return rows, D.indices.astype(np.int64), D.data.astype(float)


def mask_at(mask, keys: np.ndarray) -> np.ndarray:
    """A boolean pair mask (dense array or sparse matrix) at pair keys ``i * N + j``.

    A dense mask is indexed directly: converting a 4,096 x 4,096 dense mask to
    sparse on every call would cost more than the whole solve.
    """
    if mask is None:
        return np.ones(len(keys), bool)
    if sp.issparse(mask):
        return values_at(canonical(mask, dtype=float), keys) > 0
    a = np.asarray(mask)
    n = a.shape[1]
    return a[keys // n, keys % n].astype(bool)


def _keep_pairs(D: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``D`` with only the stored entries where ``keep`` is true (canonical CSR)."""
    out = D.copy()
    out.data = np.where(keep, out.data, 0.0)
    out.eliminate_zeros()
    return out


def one_slot_time(demand, config, circuit_Bps: float, *, base=None) -> float:
    """Time to serve ``demand`` in one slot under ``config`` (+ pinned ``base``) circuits.

    ``max over D[i, j] > 0 of D[i, j] / ((C + base)[i, j] * b)``; infinite if a
    demanded pair has no circuit.  Zero for an empty demand.

    Examples
    --------
    >>> import numpy as np
    >>> D = np.array([[0, 4.0], [2.0, 0]]); C = np.array([[0, 2], [1, 0]])
    >>> one_slot_time(D, C, 1.0)
    2.0
    """
    D = canonical(demand)
    if D.nnz == 0:
        return 0.0
    keys = pair_keys(D)
    c = values_at(canonical(config), keys)
    if base is not None:
        c = c + values_at(canonical(base), keys)
    with np.errstate(divide="ignore"):
        t = np.where(c > 0, D.data / (np.maximum(c, 1e-300) * circuit_Bps), np.inf)
    return float(t.max())


def _caps(ports, n: int, name: str) -> np.ndarray:
    a = np.broadcast_to(np.asarray(ports, dtype=np.int64), (n,)).copy()
    if (a < 0).any():
        raise ScheduleError(f"{name}: free ports must be >= 0, got {int(a.min())}")
    return a


def best_config(demand, ports, circuit_Bps: float = 1.0, *, col_ports=None, base=None,
                allowed=None) -> tuple[sp.csr_matrix, float]:
    """The configuration that serves ``demand`` in one slot in the least time.

    Minimizes ``max D[i,j] / ((C[i,j] + base[i,j]) b)`` over integer ``C`` with
    row sums <= ``ports`` and column sums <= ``col_ports``, ``C`` zero outside
    ``allowed``.  For a threshold ``T`` each demanded pair needs
    ``ceil(D / (T b)) - base`` circuits independently of every other pair, so
    ``T`` is feasible iff those counts fit the row and column budgets; the
    test is monotone in ``T`` and the optimum is one of the values
    ``D[i,j] / (k b)``.  A binary search over those candidates with a
    vectorized feasibility test (``np.bincount`` row and column sums) is
    therefore exact.  No matching is needed: the degree-bounded multigraph is
    itself the answer (Konig's theorem splits it into ``d`` matchings when
    planes are wanted).  This beats bottleneck assignment with
    ``linear_sum_assignment`` (O(N^3), one circuit per pair) at N = 4,096.

    Parameters
    ----------
    demand : (N, N) array or sparse matrix
        Bytes from GPU i to GPU j.
    ports : int or (N,) array of int
        Free transmit ports per GPU (the row budget).
    circuit_Bps : float
        Rate of one circuit, bytes/s.
    col_ports : int or (N,) array of int, optional
        Free receive ports per GPU (default: ``ports``).
    base : (N, N) integer matrix, optional
        Circuits already present (reserved); they carry demand, take no free port.
    allowed : (N, N) boolean matrix, optional
        Pairs the OCS can connect; others get no new circuit.

    Returns
    -------
    config : scipy.sparse.csr_matrix of int64
        The new circuits (``base`` not included).
    time_s : float
        The one-slot time of ``demand`` under ``config + base``; ``inf`` if no
        configuration within the budgets gives every demanded pair a circuit
        (then ``config`` is empty).

    Raises
    ------
    ScheduleError
        Negative port budgets or a shape mismatch.

    Examples
    --------
    A ring step (every GPU sends 8 bytes to the next) with 4 ports per GPU:
    all four circuits of each GPU go to its successor.

    >>> import numpy as np
    >>> D = np.roll(np.eye(4), 1, axis=1) * 8.0
    >>> C, t = best_config(D, 4, 1.0)
    >>> C.toarray()[0].tolist(), t
    ([0, 4, 0, 0], 2.0)
    """
    D = canonical(demand)
    n = D.shape[0]
    rp = _caps(ports, n, "ports")
    cp = rp if col_ports is None else _caps(col_ports, n, "col_ports")
    empty = sp.csr_matrix((n, n), dtype=np.int64)
    if D.nnz == 0:
        return empty, 0.0
    D.setdiag(0)
    D.eliminate_zeros()
    rows, cols, w = _entries(D)
    keys = rows * n + cols
    r = values_at(canonical(base), keys) if base is not None else np.zeros(len(w))
    ok = mask_at(allowed, keys)
    b = float(circuit_Bps)
    # Pairs that may not get new circuits must live on their reserved ones.
    if (~ok & (r <= 0)).any():
        return empty, float("inf")
    t_floor = float((w[~ok] / (r[~ok] * b)).max()) if (~ok).any() else 0.0
    kmax = int(max(rp.max(), cp.max()) + (r.max() if len(r) else 0))
    if kmax <= 0:
        return empty, float("inf")

    def need(T):
        x = w / (T * b)
        k = np.ceil(x * (1 - _REL)) - r
        return np.where(ok, np.maximum(k, 0), 0)

    def feasible(T):
        k = need(T)
        return (np.bincount(rows, k, minlength=n) <= rp).all() and (np.bincount(cols, k, minlength=n) <= cp).all()

    # Candidate thresholds w / (k b), k = 1..kmax, at least the floor set by reserved-only pairs.
    ks = np.arange(1, kmax + 1, dtype=float)
    cand = np.unique((w[:, None] / (ks[None, :] * b)).ravel())
    cand = cand[cand >= t_floor * (1 - _REL)]
    if t_floor > 0:
        cand = np.unique(np.append(cand, t_floor))
    if len(cand) == 0 or not feasible(cand[-1]):
        return empty, float("inf")
    lo, hi = 0, len(cand) - 1          # cand[hi] feasible; find the first feasible
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(cand[mid]):
            hi = mid
        else:
            lo = mid + 1
    k = need(cand[hi]).astype(np.int64)
    keep = k > 0
    C = sp.csr_matrix((k[keep], (rows[keep], cols[keep])), shape=(n, n), dtype=np.int64)
    C.sort_indices()
    tot = k + r
    return C, float((w / (tot * b)).max())
