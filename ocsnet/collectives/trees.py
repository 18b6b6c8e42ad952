"""Binary trees for pipelined reduce and broadcast, and NCCL's double binary tree.

A tree is given by ``parent`` (rank of each rank's parent, -1 at the root),
``depth`` and ``slot`` (0 or 1) arrays over the ranks.  Pipelined schedule in
the one-port full-duplex model (each rank sends to one peer and receives from
one peer per step): the message is cut into ``k`` chunks; in a reduction the
rank at depth ``d`` sends chunk ``c`` to its parent in step
``2 (c + H - d) + slot``, and in a broadcast the parent sends chunk ``c`` to
the child at depth ``d`` in step ``2 (c + d - 1) + slot`` (``H`` the tree's
depth).  Siblings have different slots, so a parent talks to one child per
step, and a rank has received chunk ``c`` from its children before it forwards
it.  Every step is a partial permutation carrying one chunk per pair.

The double binary tree (Sanders, Speck & Traeff 2009; NCCL 2.4) runs two trees
at once, each on half the data, such that every rank is an interior node of
at most one of them (a leaf in the other).  Choosing slots so that every rank
has different slots in the two trees keeps each step a partial permutation,
which halves the bandwidth term of a single pipelined binary tree.  (Such
slots always exist for any two trees with disjoint interiors: the constraints
"siblings differ" and "a rank's two slots differ" form a graph of maximum
degree 2 whose cycles alternate the two kinds of edge, so are even; for the
trees below slots by rank parity do it, see :func:`double_binary_tree`.)

Both trees here are complete binary trees in heap order (children of position
``i`` are ``2i+1``, ``2i+2``) of depth ``floor(log2 p)``; the second is the
mirror image (rank ``p-1-i`` at position ``i``).  Heap positions below
``p // 2`` are the interior ones, so the mirror's interior ranks are leaves of
the first tree.  NCCL numbers its trees in-order instead, which changes which
ranks pair up, not the step count or the volume.

References
----------
P. Sanders, J. Speck, J. L. Traeff, "Two-tree algorithms for full bandwidth
broadcast, reduction and scan", Parallel Computing 35(12), 2009.
S. Jeaugey, "Massively scale your deep learning training with NCCL 2.4", NVIDIA blog, 2019.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binary_tree", "double_binary_tree", "tree_steps", "tree_schedule"]


def _heap(p: int, rank_of_pos: np.ndarray):
    pos = np.arange(p)
    parent_pos = (pos - 1) // 2
    parent = np.full(p, -1, dtype=np.int64)
    depth = np.zeros(p, dtype=np.int64)
    slot = np.zeros(p, dtype=np.int64)
    parent[rank_of_pos[1:]] = rank_of_pos[parent_pos[1:]]
    # floor(log2(pos + 1)) exactly, via the bit length
    depth[rank_of_pos] = np.frexp(pos + 1)[1] - 1
    slot[rank_of_pos[1:]] = (pos[1:] + 1) % 2  # left child (odd position) 0, right 1
    return parent, depth, slot


def binary_tree(p: int):
    """Complete binary tree over ranks ``0..p-1`` in heap order, rooted at rank 0.

    Returns
    -------
    parent, depth, slot : ndarray of int, shape (p,)
        Parent rank (-1 at the root), depth (root 0), slot (0 for a left
        child, 1 for a right child; 0 at the root).

    Examples
    --------
    >>> parent, depth, slot = binary_tree(5)
    >>> parent.tolist(), depth.tolist()
    ([-1, 0, 0, 1, 1], [0, 1, 1, 2, 2])
    """
    return _heap(p, np.arange(p))


def double_binary_tree(p: int):
    """The two trees of a double binary tree over ranks ``0..p-1``.

    Tree A is :func:`binary_tree` (root rank 0); tree B is its mirror image
    (root rank ``p-1``).  Slots are re-chosen so that every rank has
    different slots in A and B (where it has a parent in both).

    Returns
    -------
    (parent_a, depth_a, slot_a), (parent_b, depth_b, slot_b)

    Examples
    --------
    >>> (pa, _, sa), (pb, _, sb) = double_binary_tree(6)
    >>> interior_a = set(pa[pa >= 0].tolist()); interior_b = set(pb[pb >= 0].tolist())
    >>> interior_a & interior_b
    set()
    """
    pa, da, sa = _heap(p, np.arange(p))
    pb, db, _ = _heap(p, np.arange(p)[::-1].copy())
    # Siblings are consecutive ranks in both trees (positions 2q+1, 2q+2 hold ranks
    # 2q+1, 2q+2 in A and p-2-2q, p-3-2q in B), so slots by parity satisfy both
    # constraints: in A an odd rank has slot 0 (the heap's left child), in B slot 1.
    sb = np.arange(p, dtype=np.int64) % 2
    sb[p - 1] = 0  # the root of B
    return (pa, da, sa), (pb, db, sb)


def tree_steps(p: int, chunks: int) -> int:
    """Number of non-empty steps of a pipelined reduce (or broadcast) on these trees.

    ``2 (H + k - 1)`` for ``H = floor(log2 p) >= 1`` and ``k`` chunks, less one
    when the deepest level holds a single rank (its slot-1 step is empty),
    and ``k`` for ``p = 2``; 0 for ``p = 1``.  The same for the single and the
    double binary tree.
    """
    if p <= 1:
        return 0
    if p == 2:
        return chunks
    H = p.bit_length() - 1
    m = p - (1 << H) + 1  # ranks at depth H
    return 2 * (H + chunks - 1) - (1 if m == 1 else 0)


def tree_schedule(parent, depth, slot, chunks: int, *, reduce: bool):
    """Events of a pipelined reduce (child to parent) or broadcast (parent to child).

    Returns
    -------
    step, src, dst : ndarray of int, one entry per (non-root rank, chunk)
    """
    kids = np.flatnonzero(parent >= 0)
    H = int(depth.max(initial=0))
    c = np.arange(chunks)
    d = depth[kids][:, None]
    s = slot[kids][:, None]
    if reduce:
        step = 2 * (c[None, :] + H - d) + s
        src, dst = kids, parent[kids]
    else:
        step = 2 * (c[None, :] + d - 1) + s
        src, dst = parent[kids], kids
    return step.ravel(), np.repeat(src, chunks), np.repeat(dst, chunks)
