"""Closed-form step counts and alpha-beta times of the collective algorithms.

Model (the same as :func:`ocsnet.collectives.step_time`): a step costs
``alpha + (largest per-rank load) / B`` where a rank's load is the bytes it
sends or receives in the step, each rank sending and receiving at ``B`` at
once and sharing ``B`` over the peers it talks to in one step.  With
``p`` ranks, buffer ``N`` bytes (nccl-tests convention), ``k`` chunks,
``L = floor(log2 p)``, ``p' = 2^L``:

=================  ====================  ==========================================================
kind               algorithm             time
=================  ====================  ==========================================================
all-reduce         ring                  ``2 (p-1) (alpha + N / (p B))``
all-reduce         direct (one-shot)     ``alpha + (p-1) N / B``
all-reduce         two-shot              ``2 (alpha + (p-1) N / (p B))``
all-reduce         rhd                   ``2 L alpha + 2 (p'-1) N / (p' B)``, plus ``2 (alpha + N / B)`` if ``p != p'``
all-reduce         tree                  ``2 S (alpha + N / (k B))``
all-reduce         double-binary-tree    ``2 S (alpha + N / (2 k B))``
reduce-scatter,    ring                  ``(p-1) (alpha + N / (p B))``
all-gather         direct                ``alpha + (p-1) N / (p B)``
                   rhd (p = p')          ``L alpha + (p-1) N / (p B)``
all-to-all         pairwise              ``(p-1) (alpha + N / (p B))``
all-to-all         direct                ``alpha + (p-1) N / (p B)``
send-recv          pipeline, ring        ``k (alpha + N / (k B))``
broadcast          ring (chain)          ``(p-2+k) (alpha + N / (k B))``
broadcast          tree                  ``S (alpha + N / (k B))``
broadcast          direct                ``alpha + (p-1) N / B``
=================  ====================  ==========================================================

``S`` is the step count of a pipelined one-port binary-tree reduction
(:func:`ocsnet.collectives.trees.tree_steps`): ``2 (L + k - 1)``, less one if
the deepest level holds one rank, ``k`` for ``p = 2``.  Everything is 0 for
``p = 1``.  For "direct" the rank's bandwidth is shared over its ``p-1``
simultaneous peers, so direct wins on alpha only.  The ring, rhd and direct
reduce-scatter/all-gather/all-to-all send exactly the nccl-tests bus-bandwidth
volume per rank (:func:`bus_bandwidth_factor` times ``N``): ring and rhd are
bandwidth-optimal; a pipelined binary tree pays twice the bandwidth term of
the double binary tree.

References
----------
R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of collective
communication operations in MPICH", IJHPCA 19(1), 2005 (ring, recursive
halving/doubling, Rabenseifner's all-reduce and its non-power-of-two step).
E. Chan, M. Heimlich, A. Purkayastha, R. van de Geijn, "Collective
communication: theory, practice, and experience", CCPE 19(13), 2007 (lower
bounds and costs of the same model).
P. Sanders, J. Speck, J. L. Traeff, "Two-tree algorithms for full bandwidth
broadcast, reduction and scan", Parallel Computing 35(12), 2009.
NVIDIA nccl-tests, doc/PERFORMANCE.md (bus bandwidth factors).
"""

from __future__ import annotations

from .algorithms import resolve
from .steps import check_float, check_int
from .trees import tree_steps

__all__ = ["alpha_beta_time", "n_steps", "bus_bandwidth_factor"]


def _terms(kind: str, p: int, N: float, algorithm: str, k: int) -> tuple[int, float]:
    """(number of steps, sum over steps of the largest per-rank load in bytes)."""
    if p == 1:
        return 0, 0.0
    L = p.bit_length() - 1
    pp = 1 << L
    key = (kind, algorithm)
    if key == ("all-reduce", "ring"):
        return 2 * (p - 1), 2 * (p - 1) * N / p
    if key == ("all-reduce", "direct"):
        return 1, (p - 1) * N
    if key == ("all-reduce", "two-shot"):
        return 2, 2 * (p - 1) * N / p
    if key == ("all-reduce", "rhd"):
        extra = p != pp
        return 2 * L + 2 * extra, 2 * (pp - 1) * N / pp + 2 * extra * N
    if key == ("all-reduce", "tree"):
        S = tree_steps(p, k)
        return 2 * S, 2 * S * N / k
    if key == ("all-reduce", "double-binary-tree"):
        S = tree_steps(p, k)
        return 2 * S, S * N / k
    if kind in ("reduce-scatter", "all-gather", "all-to-all"):
        if algorithm in ("ring", "pairwise"):
            return p - 1, (p - 1) * N / p
        if algorithm == "direct":
            return 1, (p - 1) * N / p
        return L, (p - 1) * N / p  # rhd, p a power of two
    if kind == "send-recv":
        return k, N
    if key == ("broadcast", "ring"):
        return p - 2 + k, (p - 2 + k) * N / k
    if key == ("broadcast", "tree"):
        S = tree_steps(p, k)
        return S, S * N / k
    if key == ("broadcast", "direct"):
        return 1, (p - 1) * N
    raise AssertionError(key)  # resolve() admits only the pairs above


def n_steps(kind: str, group_size: int, algorithm: str | None = None, *, chunks: int = 1) -> int:
    """Number of steps :func:`~ocsnet.collectives.expand` returns, in closed form.

    Examples
    --------
    >>> n_steps("all-reduce", 4096)
    8190
    >>> n_steps("all-reduce", 12, "rhd")          # 2 log2(8) + pre and post step
    8
    """
    kind, p, _, algorithm, k = resolve(kind, group_size, 0.0, algorithm, chunks)
    return _terms(kind, p, 0.0, algorithm, k)[0]


def alpha_beta_time(kind: str, group_size: int, nbytes: float, algorithm: str | None = None, *,
                    alpha_s: float, bandwidth_Bps: float, chunks: int = 1) -> float:
    """Closed-form alpha-beta time of a collective algorithm, seconds.

    Parameters
    ----------
    kind, group_size, nbytes, algorithm, chunks
        As in :func:`ocsnet.collectives.expand`.
    alpha_s : float
        Per-step latency, >= 0.
    bandwidth_Bps : float
        Per-rank send (and receive) bandwidth, > 0.

    Returns
    -------
    float
        The formula of the table in :mod:`ocsnet.collectives.cost`; equal to
        ``step_time(expand(...), alpha_s, bandwidth_Bps)``.

    Raises
    ------
    WorkloadError
        A bad argument; the message names the field and the allowed range.

    Examples
    --------
    >>> round(alpha_beta_time("all-reduce", 8, 8e6, "ring", alpha_s=1e-6, bandwidth_Bps=1e9), 12)
    0.014014
    >>> round(alpha_beta_time("all-reduce", 8, 8e6, "rhd", alpha_s=1e-6, bandwidth_Bps=1e9), 12)
    0.014006

    References
    ----------
    Thakur, Rabenseifner & Gropp (2005); Chan et al. (2007); Sanders, Speck &
    Traeff (2009).
    """
    kind, p, N, algorithm, k = resolve(kind, group_size, nbytes, algorithm, chunks)
    a = check_float("alpha_s", alpha_s)
    B = check_float("bandwidth_Bps", bandwidth_Bps, lo_open=True)
    steps, load = _terms(kind, p, N, algorithm, k)
    return steps * a + load / B


def bus_bandwidth_factor(kind: str, group_size: int) -> float:
    """nccl-tests bus-bandwidth factor: bytes a rank must move, per byte of buffer.

    all-reduce ``2 (p-1) / p``; reduce-scatter, all-gather and all-to-all
    ``(p-1) / p``; send-recv and broadcast 1 (0 for ``p = 1``).  Bus
    bandwidth = ``nbytes / time * factor``; a bandwidth-optimal algorithm
    sends exactly ``factor * nbytes`` per rank.

    Examples
    --------
    >>> bus_bandwidth_factor("all-reduce", 8)
    1.75
    """
    from .algorithms import ALGORITHMS
    from ..errors import WorkloadError
    if kind not in ALGORITHMS:
        raise WorkloadError(f"kind: {kind!r} is not a collective, expected one of {', '.join(ALGORITHMS)}")
    p = check_int("group_size", group_size, 1)
    if p == 1:
        return 0.0
    if kind == "all-reduce":
        return 2 * (p - 1) / p
    if kind in ("reduce-scatter", "all-gather", "all-to-all"):
        return (p - 1) / p
    return 1.0
