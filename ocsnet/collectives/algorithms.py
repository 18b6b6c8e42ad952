"""Collective algorithms expanded into steps (demand matrices over the group).

Stage 4 of the pipeline (after the workload, before the trace).  Each builder
takes the group size ``p``, the buffer size ``N`` in bytes (nccl-tests
convention, see :func:`expand`) and the chunk count ``k``, and returns the
steps in the compact form of :mod:`ocsnet.collectives.steps`.  All index
arithmetic is vectorized; Python loops run over steps only, and equal steps
are one shared object.

References
----------
R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of collective
communication operations in MPICH", IJHPCA 19(1), 2005.
E. Chan, M. Heimlich, A. Purkayastha, R. van de Geijn, "Collective
communication: theory, practice, and experience", CCPE 19(13), 2007.
P. Sanders, J. Speck, J. L. Traeff, "Two-tree algorithms for full bandwidth
broadcast, reduction and scan", Parallel Computing 35(12), 2009.
NVIDIA nccl-tests, doc/PERFORMANCE.md (buffer-size convention, bus bandwidth).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..errors import WorkloadError
from . import trees
from .steps import INDEX, Step, check_float, check_int, make_step, readonly, to_matrices

__all__ = ["ALGORITHMS", "FABRIC_ALGORITHMS", "PIPELINED", "AUTO", "expand", "expand_blind", "resolve"]

#: Algorithms that need a fabric and the group's ranks (:mod:`ocsnet.collectives.fabric_aware`).
FABRIC_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "all-reduce": ("torus", "multi-ring", "hierarchical", "synthesized"),
    "reduce-scatter": ("torus", "multi-ring", "hierarchical", "synthesized"),
    "all-gather": ("torus", "multi-ring", "hierarchical", "synthesized"),
    "all-to-all": ("torus",),
}

#: The algorithm name that picks the fastest algorithm that applies (see :func:`expand`).
AUTO = "auto"

#: Supported algorithms per collective kind; the first one is the default.
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "all-reduce": ("ring", "direct", "two-shot", "rhd", "tree", "double-binary-tree"),
    "reduce-scatter": ("ring", "direct", "rhd"),
    "all-gather": ("ring", "direct", "rhd"),
    "all-to-all": ("pairwise", "direct"),
    "send-recv": ("pipeline", "ring"),
    "broadcast": ("ring", "tree", "direct"),
}

#: (kind, algorithm) pairs that cut the message into ``chunks`` pipelined pieces.
PIPELINED: frozenset[tuple[str, str]] = frozenset({
    ("all-reduce", "tree"), ("all-reduce", "double-binary-tree"),
    ("send-recv", "pipeline"), ("send-recv", "ring"),
    ("broadcast", "ring"), ("broadcast", "tree"),
})

_POW2_ONLY = frozenset({("reduce-scatter", "rhd"), ("all-gather", "rhd")})


def resolve(kind, group_size, nbytes, algorithm, chunks, *, fabric_aware: bool = False
            ) -> tuple[str, int, float, str, int]:
    """Validate the arguments of :func:`expand` and return them normalized.

    With ``fabric_aware`` the fabric-aware algorithms
    (:data:`ocsnet.collectives.fabric_aware.FABRIC_ALGORITHMS`) and
    ``"auto"`` are accepted too.

    Raises
    ------
    WorkloadError
        Unknown kind, unsupported (kind, algorithm) pair, ``group_size`` < 1,
        ``nbytes`` negative or not finite, ``chunks`` < 1 or ``chunks`` > 1
        for an algorithm that does not pipeline, rhd reduce-scatter or
        all-gather on a group size that is not a power of two.
    """
    if kind not in ALGORITHMS:
        raise WorkloadError(f"kind: {kind!r} is not a collective, expected one of {', '.join(ALGORITHMS)}")
    algos = ALGORITHMS[kind]
    if algorithm is None:
        algorithm = algos[0]
    aware = FABRIC_ALGORITHMS.get(kind, ())
    if algorithm not in algos:
        if algorithm in aware or algorithm == AUTO:
            if not fabric_aware:
                raise WorkloadError(f"algorithm: {algorithm!r} needs the fabric and the group's ranks "
                                    f"(expand(..., fabric=, ranks=)); without them use one of {', '.join(algos)}")
        else:
            more = [*aware, AUTO]
            raise WorkloadError(f"algorithm: {algorithm!r} is not supported for {kind}, "
                                f"supported: {', '.join(algos)} (and with a fabric: {', '.join(more)})")
    p = check_int("group_size", group_size, 1)
    N = check_float("nbytes", nbytes)
    k = check_int("chunks", chunks, 1)
    if k != 1 and (kind, algorithm) not in PIPELINED and algorithm != AUTO:
        pipe = sorted(f"{a} {b}" for a, b in PIPELINED)
        raise WorkloadError(f"chunks: {k} given, but {kind} {algorithm} does not pipeline "
                            f"(allowed [1, 1]); chunks > 1 applies to: {', '.join(pipe)}")
    if (kind, algorithm) in _POW2_ONLY and p & (p - 1) and not fabric_aware:
        raise WorkloadError(f"group_size: {p} is not a power of two, which {kind} rhd requires "
                            f"(recursive halving/doubling); use ring or direct")
    return kind, p, N, algorithm, k


# ---- patterns ---------------------------------------------------------------------
def _ring(p: int, nb: float) -> Step:
    src = np.arange(p, dtype=INDEX)
    return make_step(src, (src + 1) % p, nb, presorted=True)


def _all_pairs(p: int, nb: float) -> Step:
    """Every rank to every other rank (one shot), built directly in (src, dst) order."""
    if p * (p - 1) > np.iinfo(INDEX).max:
        raise WorkloadError(f"group_size: {p} too large for a direct (all-pairs) step, "
                            f"allowed [1, {int((1 + (1 + 4 * np.iinfo(INDEX).max) ** 0.5) / 2)}]")
    src = np.repeat(np.arange(p, dtype=INDEX), p - 1)
    dst = np.tile(np.arange(p - 1, dtype=INDEX), p)
    dst += dst >= src  # skip the diagonal
    return make_step(src, dst, nb, presorted=True)


def _events_to_steps(step: np.ndarray, src: np.ndarray, dst: np.ndarray, nb: float) -> list[Step]:
    """Group (step, src, dst) events with equal message size into steps; empty steps vanish."""
    order = np.lexsort((dst, src, step))
    step, src, dst = step[order], src[order].astype(INDEX), dst[order].astype(INDEX)
    cut = np.flatnonzero(np.diff(step)) + 1
    return [make_step(s, d, nb) for s, d in zip(np.split(src, cut), np.split(dst, cut))]


# ---- all-reduce, reduce-scatter, all-gather ---------------------------------------
def _ring_rs(p, N, k):
    # Ring reduce-scatter / all-gather: p-1 steps, rank i sends one N/p chunk to i+1.
    return [_ring(p, N / p)] * (p - 1)


def _ring_ar(p, N, k):
    # Ring all-reduce = ring reduce-scatter + ring all-gather: 2(p-1) steps of N/p.
    return [_ring(p, N / p)] * (2 * (p - 1))


def _direct_rs(p, N, k):
    # One step: rank i sends chunk j (N/p) to every rank j (also all-gather, all-to-all).
    return [_all_pairs(p, N / p)]


def _direct_ar(p, N, k):
    # One-shot: every rank sends its whole buffer to every other rank and reduces locally.
    return [_all_pairs(p, N)]


def _two_shot_ar(p, N, k):
    # Direct reduce-scatter then direct all-gather: 2 steps of N/p per pair.
    return [_all_pairs(p, N / p)] * 2


def _rhd_rs(p, N, k):
    # Recursive halving: step j pairs i with i XOR p/2^(j+1) and sends N/2^(j+1).
    src = np.arange(p, dtype=INDEX)
    L = p.bit_length() - 1
    return [make_step(src, src ^ (p >> (j + 1)), N / 2 ** (j + 1), presorted=True) for j in range(L)]


def _rhd_ag(p, N, k):
    # Recursive doubling: step j pairs i with i XOR 2^j and sends N 2^j / p.
    src = np.arange(p, dtype=INDEX)
    L = p.bit_length() - 1
    return [make_step(src, src ^ (1 << j), N * 2 ** j / p, presorted=True) for j in range(L)]


def _rhd_ar(p, N, k):
    # Rabenseifner: recursive-halving reduce-scatter + recursive-doubling all-gather on
    # p' = 2^floor(log2 p) ranks.  If p is not a power of two, r = p - p' extra ranks are
    # folded in first (Thakur et al. 2005, Sec. 4.5): among ranks 0..2r-1 the even rank
    # sends its buffer to the odd one above it, which takes part in the power-of-two
    # algorithm, and sends the result back at the end.
    L = p.bit_length() - 1
    pp = 1 << L
    r = p - pp
    nr = np.arange(pp, dtype=INDEX)
    old = np.where(nr < r, 2 * nr + 1, nr + r).astype(INDEX)  # new rank -> group rank
    readonly(old)
    steps = []
    if r:
        steps.append(make_step(np.arange(0, 2 * r, 2), np.arange(1, 2 * r, 2), N, presorted=True))
    steps += [make_step(old, old[nr ^ (pp >> (j + 1))], N / 2 ** (j + 1), presorted=True) for j in range(L)]
    steps += [make_step(old, old[nr ^ (1 << j)], N * 2 ** j / pp, presorted=True) for j in range(L)]
    if r:
        steps.append(make_step(np.arange(1, 2 * r, 2), np.arange(0, 2 * r, 2), N, presorted=True))
    return steps


def _tree_ar(p, N, k):
    # Pipelined binary tree: reduce to rank 0, then broadcast from it (see trees.py).
    parent, depth, slot = trees.binary_tree(p)
    return (_events_to_steps(*trees.tree_schedule(parent, depth, slot, k, reduce=True), N / k)
            + _events_to_steps(*trees.tree_schedule(parent, depth, slot, k, reduce=False), N / k))


def _dbt_ar(p, N, k):
    # Double binary tree: each tree reduces and broadcasts half of the buffer.
    a, b = trees.double_binary_tree(p)
    out = []
    for reduce in (True, False):
        ev = [trees.tree_schedule(*t, k, reduce=reduce) for t in (a, b)]
        out += _events_to_steps(*(np.concatenate(x) for x in zip(*ev)), N / (2 * k))
    return out


# ---- all-to-all, send-recv, broadcast ------------------------------------------------
def _pairwise_a2a(p, N, k):
    # Step s = 1..p-1: rank i sends its chunk for rank (i+s) mod p (N/p bytes).
    src = np.arange(p, dtype=INDEX)
    nb = np.full(p, N / p)
    twice = np.concatenate([src, src])  # (i + s) mod p for all i is the view twice[s:s+p]
    readonly(twice)
    return [make_step(src, twice[s:s + p], nb, presorted=True) for s in range(1, p)]


def _pipeline_sr(p, N, k):
    # Pipeline stages: rank i sends to i+1 (i < p-1), the message cut into k chunks.
    src = np.arange(p - 1, dtype=INDEX)
    return [make_step(src, src + 1, N / k, presorted=True)] * k


def _ring_sr(p, N, k):
    # Cyclic shift: rank i sends to (i+1) mod p, the message cut into k chunks.
    return [_ring(p, N / k)] * k


def _ring_bcast(p, N, k):
    # Pipelined chain from rank 0: in step s rank i forwards chunk s-i to i+1.
    cache: dict[tuple[int, int], Step] = {}
    out = []
    for s in range(p - 2 + k):
        lo, hi = max(0, s - k + 1), min(s, p - 2)
        st = cache.get((lo, hi))
        if st is None:
            src = np.arange(lo, hi + 1, dtype=INDEX)
            st = cache[(lo, hi)] = make_step(src, src + 1, N / k, presorted=True)
        out.append(st)
    return out


def _tree_bcast(p, N, k):
    parent, depth, slot = trees.binary_tree(p)
    return _events_to_steps(*trees.tree_schedule(parent, depth, slot, k, reduce=False), N / k)


def _direct_bcast(p, N, k):
    # One step: rank 0 sends the message to every other rank.
    return [make_step(np.zeros(p - 1, dtype=INDEX), np.arange(1, p, dtype=INDEX), N, presorted=True)]


_BUILDERS: dict[tuple[str, str], Callable[[int, float, int], list[Step]]] = {
    ("all-reduce", "ring"): _ring_ar,
    ("all-reduce", "direct"): _direct_ar,
    ("all-reduce", "two-shot"): _two_shot_ar,
    ("all-reduce", "rhd"): _rhd_ar,
    ("all-reduce", "tree"): _tree_ar,
    ("all-reduce", "double-binary-tree"): _dbt_ar,
    ("reduce-scatter", "ring"): _ring_rs,
    ("reduce-scatter", "direct"): _direct_rs,
    ("reduce-scatter", "rhd"): _rhd_rs,
    ("all-gather", "ring"): _ring_rs,
    ("all-gather", "direct"): _direct_rs,
    ("all-gather", "rhd"): _rhd_ag,
    ("all-to-all", "pairwise"): _pairwise_a2a,
    ("all-to-all", "direct"): _direct_rs,
    ("send-recv", "pipeline"): _pipeline_sr,
    ("send-recv", "ring"): _ring_sr,
    ("broadcast", "ring"): _ring_bcast,
    ("broadcast", "tree"): _tree_bcast,
    ("broadcast", "direct"): _direct_bcast,
}
assert set(_BUILDERS) == {(kd, a) for kd, al in ALGORITHMS.items() for a in al}


def expand_blind(kind: str, p: int, N: float, algorithm: str, chunks: int = 1) -> list[Step]:
    """Compact steps of a fabric-blind algorithm (arguments already checked by :func:`resolve`)."""
    return [] if p == 1 else _BUILDERS[(kind, algorithm)](p, N, chunks)


def expand(kind: str, group_size: int, nbytes: float, algorithm: str | None = None, *,
           chunks: int = 1, as_arrays: bool = False, fabric=None, ranks=None
           ) -> list[sp.csr_matrix] | list[Step]:
    """The steps of a collective as demand matrices over the group.

    Parameters
    ----------
    kind : str
        ``"all-reduce"``, ``"reduce-scatter"``, ``"all-gather"``,
        ``"all-to-all"``, ``"send-recv"`` or ``"broadcast"`` (root rank 0).
    group_size : int
        Number of ranks p, >= 1.  A group of one has no steps.
    nbytes : float
        Buffer size in bytes, >= 0, in the nccl-tests convention: all-reduce,
        the buffer each rank reduces; all-gather, the gathered output per
        rank; reduce-scatter, the input per rank; all-to-all, everything one
        rank sends including its own chunk; send-recv and broadcast, the
        message.  Chunks are fractional bytes (a fluid model); ``nbytes = 0``
        keeps every step with explicit zero entries (each still costs alpha).
    algorithm : str, optional
        One of ``ALGORITHMS[kind]``; default the first of them (ring,
        pairwise for all-to-all, pipeline for send-recv).

        - ``"ring"``: p-1 steps (2(p-1) for all-reduce) of N/p, rank i to i+1
          mod p.  send-recv: cyclic shift; broadcast: pipelined chain from rank 0.
        - ``"direct"``: one step, every rank to every other (all-reduce:
          one-shot, the whole buffer to each peer; broadcast: root to all).
        - ``"two-shot"``: all-reduce as direct reduce-scatter + direct all-gather.
        - ``"rhd"``: recursive halving-doubling, step j pairs i with
          i XOR 2^m.  all-reduce handles any p with the pre/post step of
          Thakur et al. (2005); reduce-scatter and all-gather need p a power of two.
        - ``"tree"``: pipelined binary tree (reduce to rank 0, then broadcast),
          one-port, see :mod:`ocsnet.collectives.trees`.
        - ``"double-binary-tree"``: two such trees, each on half the buffer.
        - ``"pairwise"``: all-to-all in p-1 steps, step s rank i to (i+s) mod p.
        - ``"pipeline"``: send-recv, rank i to i+1 for i < p-1.

        With ``fabric`` (fabric-aware algorithms, see
        :mod:`ocsnet.collectives.fabric_aware`):

        - ``"torus"``: bucket algorithm over every dimension and both
          directions of a torus block (sub-torus, ring, line), buffer split
          over rotated dimension orders; dimension-ordered all-to-all.
        - ``"multi-ring"``: several rings over edge-disjoint cycles (clique,
          OCS ports, torus block), each with its share of the buffer.
        - ``"hierarchical"``: reduce-scatter inside locality domains,
          all-reduce across them, all-gather inside.
        - ``"synthesized"``: pipelined trees packed from the broadcast LP
          (:mod:`ocsnet.collectives.synth`), small direct-linked groups.
        - ``"auto"``: the fastest that applies, fabric-aware or not
          (:func:`ocsnet.collectives.fabric_aware.choose`); without a fabric
          the kind's default.
    chunks : int
        Pieces the message is cut into for pipelined algorithms
        (:data:`PIPELINED`); must be 1 for the others.
    as_arrays : bool
        If true, return the compact steps: a list of ``(src, dst, nbytes)``
        read-only array triples (int32 ranks, float64 bytes, sorted by src
        then dst, no duplicate pairs), equal steps being the same object.  Cheaper at scale than matrices; ``step_time`` and
        ``bytes_sent_per_rank`` accept both forms.

    Returns
    -------
    list of scipy.sparse.csr_matrix, shape (p, p)
        Step s: bytes rank i sends to rank j in that step, zero diagonal.
        Step s+1 starts when step s has completed.  Equal steps are the same
        object and share read-only arrays: ``copy()`` before changing one.

    Raises
    ------
    WorkloadError
        A bad argument (see :func:`resolve`); the message names the field and
        the allowed values; a fabric-aware algorithm that does not apply to
        the group (the message names the algorithm, the group and why).
    fabric : Fabric, optional
        The fabric the group runs on; needed by the fabric-aware algorithms.
    ranks : sequence of int, optional
        The group's GPU ranks on ``fabric`` in group order (default
        ``0..group_size-1``).

    Examples
    --------
    >>> from ocsnet.collectives import expand
    >>> steps = expand("all-reduce", 4, 8e6)          # ring: 2 (p - 1) steps
    >>> len(steps), steps[0].toarray()[0].tolist()
    (6, [0.0, 2000000.0, 0.0, 0.0])
    >>> [m.nnz for m in expand("all-reduce", 8, 1e6, "rhd")]
    [8, 8, 8, 8, 8, 8]

    References
    ----------
    Thakur, Rabenseifner & Gropp (2005); Chan et al. (2007); Sanders, Speck &
    Traeff (2009); nccl-tests doc/PERFORMANCE.md.
    """
    if fabric is None:
        if algorithm == AUTO and kind in ALGORITHMS:
            algorithm = None
        kind, p, N, algorithm, k = resolve(kind, group_size, nbytes, algorithm, chunks)
        steps = expand_blind(kind, p, N, algorithm, k)
        return steps if as_arrays else to_matrices(steps, p)
    from . import fabric_aware as fa
    kind, p, N, algorithm, k = resolve(kind, group_size, nbytes, algorithm, chunks, fabric_aware=True)
    r = fa.group_ranks(fabric, ranks, p)
    if algorithm == AUTO:
        algorithm = fa.choose(kind, fabric, r, N, chunks=k)
        if k != 1 and (kind, algorithm) not in PIPELINED:
            k = 1
    if algorithm in ALGORITHMS[kind]:
        if (kind, algorithm) in _POW2_ONLY and p & (p - 1):
            raise WorkloadError(f"group_size: {p} is not a power of two, which {kind} rhd requires "
                                f"(recursive halving/doubling); use ring or direct")
        steps = expand_blind(kind, p, N, algorithm, k)
    else:
        steps = [] if p == 1 else fa.fabric_program(kind, algorithm, fabric, r, N).steps()
    return steps if as_arrays else to_matrices(steps, p)
