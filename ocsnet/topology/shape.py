"""Shapes of GPU groups on direct fabrics: tori, sub-tori, lines and cliques.

Stage 3 of the pipeline (topology).  The fabric-aware collectives
(:mod:`ocsnet.collectives.fabric_aware`) and the placement of parallel groups
(:mod:`ocsnet.workload.parallel`) both need to know whether a group of GPU
ranks is a block of a torus, and along which dimensions its links wrap.  The
answers come from the fabric's generator record (``meta["generator"] ==
"torus"`` with ``dims`` and ``wrap``: GPU rank = mixed-radix index, dimension
0 fastest, see :func:`ocsnet.topology.torus`) and, for cliques, from the
fabric's edges.  See docs/design.md, "Fabric-aware collectives".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fabric import Fabric

__all__ = ["TorusBlock", "torus_dims", "torus_block", "block_shapes", "torus_groups", "is_clique", "block_coords"]


@dataclass(frozen=True)
class TorusBlock:
    """A group that is a block (sub-torus, line, ring) of a torus fabric.

    Attributes
    ----------
    shape : tuple of int
        Extent ``m_i >= 2`` of the block along each of its dimensions.
    dims : tuple of int
        The fabric dimension of each block dimension.
    wrap : tuple of bool
        True where the block spans the whole fabric dimension and the fabric
        wraps there (a ring of unit hops); False for a line (the way back
        from the last GPU to the first is ``m_i - 1`` hops).
    pos : ndarray of int, shape (p,)
        ``pos[l]`` is the group position (index into the group's ranks) of
        the GPU with block-local mixed-radix index ``l`` (first block
        dimension fastest).
    """

    shape: tuple
    dims: tuple
    wrap: tuple
    pos: np.ndarray

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    def coords(self) -> np.ndarray:
        """Block-local coordinates of every block-local index, shape (p, n_dims)."""
        return block_coords(self.shape)


def block_coords(shape) -> np.ndarray:
    """Mixed-radix coordinates (first dimension fastest) of ``0..prod(shape)-1``, shape (p, n)."""
    p = int(math.prod(shape))
    r = np.arange(p, dtype=np.int64)
    out = np.empty((p, len(shape)), dtype=np.int64)
    stride = 1
    for i, k in enumerate(shape):
        out[:, i] = (r // stride) % k
        stride *= k
    return out


def torus_dims(fabric: Fabric) -> tuple[tuple, bool] | None:
    """``(dims, wrap)`` of a fabric built by :func:`ocsnet.topology.torus`, else None."""
    m = fabric.meta
    if m.get("generator") != "torus" or "dims" not in m:
        return None
    dims = tuple(int(k) for k in m["dims"])
    if math.prod(dims) != fabric.n_gpus:
        return None
    return dims, bool(m.get("wrap", True))


def _interval(vals: np.ndarray, k: int, wrap: bool):
    """(start, length) if the sorted distinct values form a (cyclic, if wrap) interval of 0..k-1."""
    m = len(vals)
    if m == k:
        return 0, k
    gaps = np.flatnonzero(np.diff(vals) != 1)
    if len(gaps) == 0:
        return int(vals[0]), m
    if wrap and len(gaps) == 1 and vals[0] == 0 and vals[-1] == k - 1:
        return int(vals[gaps[0] + 1]), m
    return None


def torus_block(fabric: Fabric, ranks) -> TorusBlock | None:
    """The block a group of GPU ranks forms on a torus fabric, or None if it is not one.

    A group is a block when its GPUs' coordinates are the product of one
    contiguous (cyclically, on a torus) interval per fabric dimension.  The
    order of ``ranks`` does not matter: :attr:`TorusBlock.pos` maps the
    block's own order onto it.

    Examples
    --------
    >>> from ocsnet.topology import torus
    >>> b = torus_block(torus((4, 4, 4)), range(16))     # a 4 x 4 plane
    >>> b.shape, b.dims, b.wrap
    ((4, 4), (0, 1), (True, True))
    >>> torus_block(torus((4, 4)), [0, 1, 5]) is None   # an L, not a block
    True
    """
    td = torus_dims(fabric)
    if td is None:
        return None
    dims, wrap = td
    ranks = np.asarray(ranks, dtype=np.int64).ravel()
    p = len(ranks)
    if p == 0 or len(np.unique(ranks)) != p or ranks.min() < 0 or ranks.max() >= fabric.n_gpus:
        return None
    coords = block_coords(dims)[ranks]
    shape, bdims, bwrap, local = [], [], [], []
    for d, k in enumerate(dims):
        vals = np.unique(coords[:, d])
        iv = _interval(vals, k, wrap)
        if iv is None:
            return None
        start, m = iv
        if m == 1:
            continue
        shape.append(m)
        bdims.append(d)
        bwrap.append(bool(wrap and m == k))
        local.append((coords[:, d] - start) % k)
    if math.prod(shape) != p:
        return None
    lidx = np.zeros(p, dtype=np.int64)
    stride = 1
    for m, c in zip(shape, local):
        lidx += c * stride
        stride *= m
    pos = np.empty(p, dtype=np.int64)
    pos[lidx] = np.arange(p)
    return TorusBlock(tuple(shape), tuple(bdims), tuple(bwrap), pos)


def block_shapes(dims, size: int) -> list[tuple]:
    """Block extents (one per fabric dimension) of ``size`` GPUs that tile a torus of ``dims``.

    Every extent divides its dimension; listed best first: most links per GPU
    inside the block (2 along a dimension spanned whole, a ring of unit hops;
    1 along a line), then most rings, then fewest dimensions used.

    Examples
    --------
    >>> block_shapes((4, 4, 4), 16)[0]
    (4, 4, 1)
    """
    out = []

    def rec(i, left, acc):
        if i == len(dims):
            if left == 1:
                out.append(tuple(acc))
            return
        for m in range(1, dims[i] + 1):
            if dims[i] % m == 0 and left % m == 0:
                rec(i + 1, left // m, acc + [m])

    rec(0, int(size), [])
    def links(s):   # links a GPU has inside the block: 2 along a ring of unit hops, 1 along a line
        return sum(2 if (m == k and k > 2) else 1 for m, k in zip(s, dims) if m > 1)

    return sorted(out, key=lambda s: (-links(s), -sum(m == k and k > 2 for m, k in zip(s, dims)),
                                     sum(m > 1 for m in s), tuple(-m for m in s)))


def is_clique(fabric: Fabric, ranks) -> bool:
    """True if every ordered pair of the group's GPUs has a direct GPU-to-GPU link."""
    ranks = np.asarray(ranks, dtype=np.int64).ravel()
    p = len(ranks)
    if p < 2:
        return True
    gr = fabric.gpu_rank
    s, d = gr[fabric.src], gr[fabric.dst]
    ok = (s >= 0) & (d >= 0)
    inv = np.full(fabric.n_gpus, -1, dtype=np.int64)
    inv[ranks] = np.arange(p)
    a, b = inv[s[ok]], inv[d[ok]]
    sel = (a >= 0) & (b >= 0)
    pairs = np.unique(a[sel] * p + b[sel])
    return len(pairs) == p * (p - 1)


def torus_groups(dims, size: int, n_groups: int | None = None) -> np.ndarray | None:
    """GPU ranks of torus blocks of ``size`` GPUs that tile a torus, one row per block.

    The block shape is the first of :func:`block_shapes` (most dimensions
    spanned whole, so the group's rings have unit hops); blocks are listed
    in mixed-radix order of the block grid (neighbouring blocks next to each
    other, first dimension fastest), ranks inside a block in the block's own
    mixed-radix order.  None if no block shape tiles the torus.

    Examples
    --------
    >>> torus_groups((3, 4), 4)[:2].tolist()       # two rings along the 4-long dimension
    [[0, 3, 6, 9], [1, 4, 7, 10]]
    """
    dims = tuple(int(k) for k in dims)
    shapes = block_shapes(dims, size)
    if not shapes:
        return None
    shape = shapes[0]
    grid = tuple(k // m for k, m in zip(dims, shape))
    inner = block_coords(shape)                           # (size, n)
    outer = block_coords(grid)                            # (n_blocks, n)
    coords = outer[:, None, :] * np.asarray(shape)[None, None, :] + inner[None, :, :]
    stride = np.concatenate([[1], np.cumprod(dims[:-1])]).astype(np.int64)
    ranks = (coords * stride).sum(axis=2)
    return ranks if n_groups is None else ranks[:n_groups]
