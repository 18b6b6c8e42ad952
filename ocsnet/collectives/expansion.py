"""One collective's steps, fabric-blind or on a fabric: :func:`expand`.

Stage 4 of the pipeline (see docs/design.md, "Collectives and traffic").
The fabric-blind algorithms live in :mod:`.algorithms`; with a ``fabric``
and the group's ``ranks`` the fabric-aware ones (:mod:`.fabric_aware`, which
builds on :mod:`.algorithms`) are reachable too, and ``"auto"`` picks one.
"""

from __future__ import annotations

import scipy.sparse as sp

from ..errors import WorkloadError
from .algorithms import ALGORITHMS, AUTO, PIPELINED, POW2_ONLY, expand_blind, resolve
from .steps import Step, to_matrices

__all__ = ["expand"]


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
        if (kind, algorithm) in POW2_ONLY and p & (p - 1):
            raise WorkloadError(f"group_size: {p} is not a power of two, which {kind} rhd requires "
                                f"(recursive halving/doubling); use ring or direct")
        steps = expand_blind(kind, p, N, algorithm, k)
    else:
        steps = [] if p == 1 else fa.fabric_program(kind, algorithm, fabric, r, N).steps()
    return steps if as_arrays else to_matrices(steps, p)
