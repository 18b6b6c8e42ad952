"""Collectives on torus blocks: bucket algorithms over every dimension and both directions.

Stage 4 of the pipeline (collectives).  A group that is a block of a torus
(:class:`ocsnet.topology.shape.TorusBlock`: a sub-torus, a ring or a line)
runs reduce-scatter, all-gather and all-reduce **dimension by dimension**
(the bucket algorithm: a ring reduce-scatter along the first dimension, then
along the second on what is left, ...; all-gather the same in reverse), as
TPU pods do.  A single such pass drives one link of each GPU.  To drive every
link of every dimension in both directions at once, the buffer is cut into
**parts**, one per (dimension order, direction): part ``(pi, +)`` sends to
the ``+1`` neighbour along ``pi[0]`` first, part ``(pi', -)`` to the ``-1``
neighbour along ``pi'[0]``, and so on, so at every step different parts keep
different links busy.  The size of each part comes from a small linear
program (scipy HiGHS) that minimizes the sum of the step times, a step
lasting as long as its most loaded class of links (with equal dimensions it
gives the rotations equal shares and reaches the injection bound).

All-to-all runs dimension-ordered (each phase exchanges, along one dimension,
everything whose destination differs there), with the buffer cut into parts
whose dimension orders are rotated so that every dimension is busy in every
phase.

References
----------
N. Jouppi et al., "TPU v4", ISCA 2023 (per-dimension collectives on a 3-D torus).
P. Sack, W. Gropp, "Collective algorithms for multiported torus networks",
ACM TOPC 1(2), 2015 (bucket algorithms over all ports).
See docs/design.md, "Fabric-aware collectives".
"""

from __future__ import annotations

import itertools

import numpy as np

from ..topology.shape import TorusBlock, block_coords
from .program import Move, Program

__all__ = ["torus_program", "torus_parts", "torus_a2a_program", "link_classes"]

# Above this many block dimensions only the rotations of the dimension order are parts
# (n! orders would make the part LP large for no gain).
MAX_PERMUTED_DIMS = 4


def link_classes(block: TorusBlock, caps: dict | None = None) -> dict:
    """Capacity per class of links, keyed ``(i, +1)``, ``(i, -1)`` (rings) or ``(i, 0)``.

    Block dimension ``i`` is a ring of unit hops when it wraps with at least
    3 GPUs: its ``+1`` and ``-1`` links are two classes.  Otherwise (a line,
    or 2 GPUs) every part that runs along it loads every link of it in both
    directions: one class.  ``caps`` maps the same keys to bytes/s
    (default 1 for all).
    """
    out = {}
    for i, (m, w) in enumerate(zip(block.shape, block.wrap)):
        keys = [(i, 1), (i, -1)] if (w and m >= 3) else [(i, 0)]
        for k in keys:
            out[k] = float((caps or {}).get(k, 1.0))
    return out


def _class_of(block: TorusBlock, i: int, sigma: int):
    m, w = block.shape[i], block.wrap[i]
    return (i, sigma) if (w and m >= 3) else (i, 0)


def torus_parts(block: TorusBlock, caps: dict | None = None) -> list[tuple[tuple, int, float]]:
    """The parts ``(dimension order, direction, share of the buffer)`` with non-zero share.

    Candidate parts are every order of the block's dimensions (only the
    rotations above :data:`MAX_PERMUTED_DIMS` dimensions) in both directions;
    their shares minimize the sum over reduce-scatter steps of the largest
    class load over its capacity (:func:`link_classes`), an LP solved with
    scipy's HiGHS.

    Examples
    --------
    >>> from ocsnet.topology import torus
    >>> from ocsnet.topology.shape import torus_block
    >>> parts = torus_parts(torus_block(torus((4, 4)), range(16)))
    >>> sorted(round(w, 3) for _, _, w in parts)
    [0.25, 0.25, 0.25, 0.25]
    """
    from scipy.optimize import linprog

    n = len(block.shape)
    if n == 0:
        return []
    dims = range(n)
    orders = (list(itertools.permutations(dims)) if n <= MAX_PERMUTED_DIMS
              else [tuple((q + j) % n for j in dims) for q in dims])
    cands = [(o, s) for o in orders for s in (1, -1)]
    cls = link_classes(block, caps)
    ckeys = list(cls)
    S = sum(m - 1 for m in block.shape)
    Q = len(cands)
    # load[s, c, q]: bytes per unit buffer part q puts on every link of class c in step s
    load = np.zeros((S, len(ckeys), Q))
    for q, (order, sigma) in enumerate(cands):
        s, frac = 0, 1.0
        for d in order:
            m = block.shape[d]
            frac /= m
            c = ckeys.index(_class_of(block, d, sigma))
            load[s:s + m - 1, c, q] = frac
            s += m - 1
    # variables: w (Q), t (S); minimize sum t; load[s, c] . w / cap_c <= t_s; sum w = 1
    caps_arr = np.array([cls[k] for k in ckeys])
    caps_arr = caps_arr / caps_arr.max()          # scale-free: the LP solver drops tiny coefficients
    A = np.zeros((S * len(ckeys), Q + S))
    A[:, :Q] = (load / caps_arr[None, :, None]).reshape(S * len(ckeys), Q)
    A[np.arange(S * len(ckeys)), Q + np.repeat(np.arange(S), len(ckeys))] = -1.0
    res = linprog(np.r_[np.zeros(Q), np.ones(S)], A_ub=A, b_ub=np.zeros(len(A)),
                  A_eq=np.r_[np.ones(Q), np.zeros(S)][None, :], b_eq=[1.0],
                  bounds=[(0, None)] * (Q + S), method="highs")
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        w = np.full(Q, 1.0 / Q)
    else:
        w = np.clip(res.x[:Q], 0.0, None)
    w[w < 1e-9] = 0.0
    w /= w.sum()
    return [(o, s, float(x)) for (o, s), x in zip(cands, w) if x > 0]


def _strides(shape) -> np.ndarray:
    return np.concatenate([[1], np.cumprod(shape[:-1])]).astype(np.int64) if len(shape) else np.zeros(0, np.int64)


def torus_program(kind: str, block: TorusBlock, nbytes: float, *, caps: dict | None = None,
                  symbolic: bool = False, parts=None) -> Program:
    """Reduce-scatter, all-gather or all-reduce on a torus block as a :class:`Program`.

    ``nbytes`` follows the nccl-tests convention of :func:`ocsnet.collectives.expand`.
    Part ``q`` of share ``w`` owns chunks ``q * p + l`` (``l`` a block-local
    index, the chunk's owner), each ``w * nbytes / p`` bytes.
    """
    p = block.size
    shape = block.shape
    n = len(shape)
    parts = torus_parts(block, caps) if parts is None else parts
    X = block_coords(shape)
    st = _strides(shape)
    lidx = np.arange(p, dtype=np.int64)
    pos = block.pos
    S = sum(m - 1 for m in shape)
    rs = [[] for _ in range(S)]
    ag = [[] for _ in range(S)]
    for q, (order, sigma, w) in enumerate(parts):
        s = 0
        prefix = 1
        for j, d in enumerate(order):
            m = shape[d]
            prefix *= m
            nb = w * nbytes / prefix
            dst = lidx + (((X[:, d] + sigma) % m) - X[:, d]) * st[d]
            fixed = np.zeros(p, dtype=np.int64)
            for i in order[:j]:
                fixed += X[:, i] * st[i]
            free = order[j + 1:]
            if symbolic:
                F = block_coords(tuple(shape[i] for i in free)) if free else np.zeros((1, 0), np.int64)
                free_off = (F * st[list(free)]).sum(axis=1) if free else np.zeros(1, np.int64)
            for t in range(m - 1):
                for phase, rows, b in (("rs", rs, (X[:, d] - sigma * (t + 1)) % m),
                                       ("ag", ag, (X[:, d] - sigma * t) % m)):
                    ch = None
                    if symbolic:
                        ch = q * p + (fixed + b * st[d])[:, None] + free_off[None, :]
                    step = s + t if phase == "rs" else S - 1 - (s + t)
                    # all-gather runs the reduce-scatter backwards: mirror the step index
                    if phase == "ag":
                        tt = m - 2 - t
                        b = (X[:, d] - sigma * tt) % m
                        if symbolic:
                            ch = q * p + (fixed + b * st[d])[:, None] + free_off[None, :]
                    rows[step].append(Move(pos[lidx], pos[dst], np.full(p, nb), ch,
                                           "reduce" if phase == "rs" else "copy"))
            s += m - 1
    if kind == "reduce-scatter":
        steps = rs
    elif kind == "all-gather":
        steps = ag
    else:
        steps = rs + ag
    prog = Program(kind, p, steps, name="torus")
    if symbolic:
        prog.n_chunks = len(parts) * p
        prog.chunk_bytes = np.repeat([w * nbytes / p for _, _, w in parts], p)
        prog.owner = pos[np.tile(lidx, len(parts))]
    return prog


def torus_a2a_program(block: TorusBlock, nbytes: float, *, symbolic: bool = False) -> Program:
    """Dimension-ordered all-to-all on a torus block, as a :class:`Program`.

    The buffer (``nbytes`` per rank, ``nbytes / p`` per destination) is cut
    into ``n`` equal parts (``n`` block dimensions); part ``q`` visits the
    dimensions in the order ``q, q+1, ...`` (mod ``n``).  In the phase along
    dimension ``d`` a rank sends to each of the ``m_d - 1`` other ranks of its
    line everything it holds whose destination lies at that rank's coordinate
    (``nbytes / (n m_d)`` per peer and part): one step per phase.
    """
    p = block.size
    shape = block.shape
    n = len(shape)
    X = block_coords(shape)
    st = _strides(shape)
    pos = block.pos
    steps = [[] for _ in range(n)]
    for q in range(n):
        order = [(q + j) % n for j in range(n)]
        for j, d in enumerate(order):
            m = shape[d]
            for shift in range(1, m):
                v = (X[:, d] + shift) % m
                dst = np.arange(p) + (v - X[:, d]) * st[d]
                ch = None
                if symbolic:
                    done, todo = order[:j], order[j + 1:]
                    # pieces at x: origins agree with x on d and the dims still to do, free on done;
                    # destinations agree with x on done dims, equal v on d, free on todo
                    fo = block_coords(tuple(shape[i] for i in done)) if done else np.zeros((1, 0), np.int64)
                    fy = block_coords(tuple(shape[i] for i in todo)) if todo else np.zeros((1, 0), np.int64)
                    o_fixed = sum((X[:, i] * st[i] for i in [d, *todo]), np.zeros(p, np.int64))
                    o = o_fixed[:, None] + ((fo * st[list(done)]).sum(axis=1)[None, :] if done else 0)
                    y_fixed = v * st[d] + sum((X[:, i] * st[i] for i in done), np.zeros(p, np.int64))
                    y = y_fixed[:, None] + ((fy * st[list(todo)]).sum(axis=1)[None, :] if todo else 0)
                    ch = (q * p * p + pos[o][:, :, None] * p + pos[y][:, None, :]).reshape(p, -1)
                steps[j].append(Move(pos, pos[dst], np.full(p, nbytes / (n * m)), ch, "move"))
    prog = Program("all-to-all", p, steps, name="torus")
    if symbolic:
        prog.n_chunks = n * p * p
        prog.chunk_bytes = np.full(n * p * p, nbytes / (n * p))
    return prog


def block_ring_steps(block: TorusBlock) -> int:
    """Steps of the torus all-reduce on a block: ``2 sum(m_i - 1)``."""
    return 2 * sum(m - 1 for m in block.shape)


def injection_ratio(block: TorusBlock) -> float:
    """Links a block GPU has inside the block (2 per ring dimension, else 1 per direction)."""
    return float(sum(2 if (w and m >= 3) else 1 for m, w in zip(block.shape, block.wrap)))

