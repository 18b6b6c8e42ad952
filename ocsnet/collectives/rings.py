"""Multi-ring and hierarchical collectives as programs.

Stage 4 of the pipeline (collectives).

- **Multi-ring** (NCCL's channels): ``R`` rings over the group, each a
  cyclic order of all its ranks, each carrying ``1/R`` of the buffer.  On a
  clique (fully connected CPO group) or through an OCS, the rings are
  edge-disjoint Hamiltonian cycles of the complete graph (Walecki's
  construction), each used in both directions, so a GPU drives up to
  ``2 floor((p-1)/2)`` of its ``p - 1`` links at once; on an OCS with ``d``
  ports per GPU, ``d`` directed rings, one configuration for the whole
  collective.
- **Hierarchical**: reduce-scatter inside each fast domain (NVLink node,
  package, CPO group), all-reduce of each rank's share across domains (rank
  ``l`` of every domain together), all-gather inside the domains.

References
----------
B. Alspach, "The wonderful Walecki construction", Bull. ICA 52, 2008.
S. Jeaugey, "NCCL: optimized primitives for collective multi-GPU
communication", GTC 2017 (rings as channels).  See docs/design.md,
"Fabric-aware collectives".
"""

from __future__ import annotations

import numpy as np

from .program import Move, Program

#: Search steps allowed to fit the last vertex of an even clique into Walecki's cycles.
DFS_BUDGET = 3000

__all__ = ["walecki_cycles", "ring_moves", "multi_ring_program", "hierarchical_program"]


def walecki_cycles(p: int) -> list[list[int]]:
    """Edge-disjoint Hamiltonian cycles of the complete graph on ``0..p-1``.

    ``(p - 1) // 2`` cycles for odd ``p`` (every edge used); for even ``p``
    Walecki's cycles on ``p - 1`` vertices with the last vertex inserted into
    each in place of an edge: ``p // 2 - 1`` cycles (one matching left over)
    when a search within :data:`DFS_BUDGET` steps finds the insertion,
    else fewer.
    ``[[0, 1, 2]]`` for ``p = 3``; none for ``p < 3``.

    Examples
    --------
    >>> walecki_cycles(5)
    [[4, 0, 1, 3, 2], [4, 1, 2, 0, 3]]
    """
    if p < 3:
        return []
    if p % 2 == 1:
        m = (p - 1) // 2
        out = []
        for i in range(m):
            z = [i]
            for j in range(1, m + 1):
                z.append((i + j) % (2 * m))
                if j < m:
                    z.append((i - j) % (2 * m))
            out.append([p - 1] + z)
        return out
    # Walecki's cycles on p - 1 vertices, and the last vertex v put into each in place of an
    # edge (a, b); the neighbours v gets must all differ.  A depth-first search over the
    # choice of edge per cycle, with a budget (no library offers this small exact-cover
    # step); when the budget runs out, one cycle fewer (fewer rings, still edge-disjoint).
    v = p - 1
    base = walecki_cycles(p - 1)
    m = len(base)
    if m % 2 == 1:
        # Explicit when m = (p - 2) / 2 is odd: cycle i of K_{2m+1} holds the edges {i - j, i + j + 1}
        # (sum 2i + 1 mod 2m); the pairs {2t, 2t + 1} have the sums 4t + 1, which meet every odd
        # residue once, so v replaces {2t, 2t + 1} in cycle i = 2t mod m.
        out = [None] * m
        for t in range(m):
            i = (2 * t) % m
            cyc = base[i]
            n = len(cyc)
            k = next(k for k in range(n) if {cyc[k], cyc[(k + 1) % n]} == {2 * t, 2 * t + 1})
            out[i] = cyc[:k + 1] + [v] + cyc[k + 1:]
        return out
    while base:
        choice: list[int] = []
        budget = [DFS_BUDGET]

        def dfs(i: int, used: frozenset) -> bool:
            if i == len(base):
                return True
            cyc = base[i]
            n = len(cyc)
            for k in range(n):
                a, b = cyc[k], cyc[(k + 1) % n]
                if a not in used and b not in used:
                    budget[0] -= 1
                    if budget[0] < 0:
                        return False
                    choice.append(k)
                    if dfs(i + 1, used | {a, b}):
                        return True
                    choice.pop()
            return False

        if dfs(0, frozenset()):
            return [cyc[:k + 1] + [v] + cyc[k + 1:] for cyc, k in zip(base, choice)]
        base = base[:-1]
    return []


def ring_moves(orders: np.ndarray, blocks: np.ndarray | None, nbytes, phase: str) -> list[list[Move]]:
    """Steps of ring reduce-scatter (``phase="rs"``) or all-gather (``"ag"``) on many rings at once.

    ``orders`` (R, m): group positions of each ring in ring order.  ``blocks``
    (R, m, c): chunk ids of block ``b`` of ring ``r`` (None: no symbols);
    block ``b`` ends (reduce-scatter) or starts (all-gather) at ring index
    ``b``.  ``nbytes``: bytes of one block, scalar or per ring.
    """
    R, m = orders.shape
    i = np.arange(m)
    nb = np.broadcast_to(np.asarray(nbytes, float), (R,))
    src = orders.ravel()
    dst = np.roll(orders, -1, axis=1).ravel()
    steps = []
    for t in range(m - 1):
        b = (i - t - 1) % m if phase == "rs" else (i - t) % m
        ch = None
        if blocks is not None:
            ch = blocks[np.arange(R)[:, None], b[None, :]].reshape(R * m, -1)
        steps.append([Move(src, dst, np.repeat(nb, m), ch, "reduce" if phase == "rs" else "copy")])
    return steps


def _combine(kind, rs, ag):
    return rs if kind == "reduce-scatter" else ag if kind == "all-gather" else rs + ag


def multi_ring_program(kind: str, p: int, nbytes: float, rings: list[list[int]], *,
                       symbolic: bool = False) -> Program:
    """Reduce-scatter, all-gather or all-reduce over ``R`` directed rings (each a cyclic order of 0..p-1).

    Ring ``r`` carries ``nbytes / R``; its chunk ``r * p + q`` is owned by rank ``q``.
    """
    orders = np.asarray(rings, dtype=np.int64).reshape(len(rings), p)
    R = len(orders)
    blocks = None
    if symbolic:
        blocks = (np.arange(R)[:, None] * p + orders)[:, :, None]
    rs = ring_moves(orders, blocks, nbytes / (R * p), "rs")
    ag = ring_moves(orders, blocks, nbytes / (R * p), "ag")
    prog = Program(kind, p, _combine(kind, rs, ag), name="multi-ring")
    if symbolic:
        prog.n_chunks = R * p
        prog.chunk_bytes = np.full(R * p, nbytes / (R * p))
        prog.owner = np.tile(np.arange(p), R)
    return prog


def hierarchical_program(kind: str, members: np.ndarray, nbytes: float, *, symbolic: bool = False) -> Program:
    """Hierarchical collective; ``members`` (G, L): group positions of the L ranks of each of G domains.

    Local ring reduce-scatter (blocks of ``N / L``), cross-domain ring
    reduce-scatter and all-gather of each local share (``N / (L G)``), local
    ring all-gather.  Chunk ``l * G + g`` is owned by ``members[g, l]``.
    """
    members = np.asarray(members, dtype=np.int64)
    G, L = members.shape
    p = G * L
    cid = np.arange(L)[None, :] * G + np.arange(G)[:, None]        # (G, L): chunk owned by members[g, l]
    loc_blocks = cross_blocks = None
    if symbolic:
        # local ring of domain g, block b = local index b: all chunks b * G + g'
        loc_blocks = np.broadcast_to((np.arange(L)[:, None] * G + np.arange(G)[None, :])[None], (G, L, G))
        cross_blocks = cid.T[:, :, None]                           # ring l over domains, block g: chunk l G + g
    loc_rs = ring_moves(members, loc_blocks, nbytes / L, "rs")
    loc_ag = ring_moves(members, loc_blocks, nbytes / L, "ag")
    cr_rs = ring_moves(members.T.copy(), cross_blocks, nbytes / (L * G), "rs")
    cr_ag = ring_moves(members.T.copy(), cross_blocks, nbytes / (L * G), "ag")
    prog = Program(kind, p, _combine(kind, loc_rs + cr_rs, cr_ag + loc_ag), name="hierarchical")
    if symbolic:
        prog.n_chunks = p
        prog.chunk_bytes = np.full(p, nbytes / p)
        owner = np.empty(p, dtype=np.int64)
        owner[cid.ravel()] = members.ravel()
        prog.owner = owner
    return prog
