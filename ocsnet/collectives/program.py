"""Collective programs: steps of chunk moves, their demand matrices, and a symbolic check.

Stage 4 of the pipeline (collectives).  The fabric-aware algorithms
(:mod:`ocsnet.collectives.torus`, :mod:`ocsnet.collectives.rings`) are built
as **programs**: a sequence of steps, each a list of :class:`Move` records
(senders, receivers, bytes per transfer and, when asked for, the ids of the
data chunks each transfer carries and whether the receiver reduces them into
its partial sums or copies finished ones).  The demand matrices that the rest
of the pipeline times are the bytes of the moves (:meth:`Program.steps`);
:func:`simulate` follows the chunks symbolically and proves that the
algorithm computes the collective: every rank ends with every chunk reduced
over all ranks exactly once (all-reduce, all-gather), its own chunks
(reduce-scatter), or every piece addressed to it (all-to-all).  See
docs/design.md, "Fabric-aware collectives".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import WorkloadError
from .steps import INDEX, Step, make_step

__all__ = ["Move", "Program", "simulate", "SymbolicError"]

MODES = ("reduce", "copy", "move")


class SymbolicError(WorkloadError):
    """A program does not compute its collective (the message says which rank and chunk)."""


@dataclass
class Move:
    """Transfers of one kind inside a step.

    ``src``, ``dst`` are group positions (arrays of equal length E), ``nbytes``
    the bytes of each transfer; ``chunks`` (E, c) the chunk ids each transfer
    carries (None unless the program was built symbolically); ``mode``:
    ``"reduce"`` (the receiver adds the chunks to its partial sums),
    ``"copy"`` (finished chunks), ``"move"`` (all-to-all pieces).
    """

    src: np.ndarray
    dst: np.ndarray
    nbytes: np.ndarray
    chunks: np.ndarray | None = None
    mode: str = "reduce"


@dataclass
class Program:
    """A collective algorithm as steps of moves over a group of ``p`` ranks.

    ``n_chunks`` data chunks of ``chunk_bytes`` each (symbolic programs
    only); ``owner[c]`` is the rank that ends with chunk ``c`` in a
    reduce-scatter (and starts with it in an all-gather).  For all-to-all the
    chunks are the pieces ``part * p * p + origin * p + destination``.
    """

    kind: str
    p: int
    steps_moves: list = field(default_factory=list)
    n_chunks: int = 0
    chunk_bytes: np.ndarray | None = None
    owner: np.ndarray | None = None
    name: str = ""

    def steps(self) -> list[Step]:
        """Compact steps (see :mod:`ocsnet.collectives.steps`); empty steps vanish.

        Equal steps (same pairs and bytes) are one shared object, as
        :func:`ocsnet.collectives.expand` promises.
        """
        out = []
        seen: dict[bytes, Step] = {}
        for moves in self.steps_moves:
            moves = [m for m in moves if len(m.src)]
            if not moves:
                continue
            src = np.concatenate([m.src for m in moves]).astype(INDEX)
            dst = np.concatenate([m.dst for m in moves]).astype(INDEX)
            nb = np.concatenate([np.broadcast_to(np.asarray(m.nbytes, float), m.src.shape) for m in moves])
            keep = nb > 0
            if not keep.any():
                continue
            st = make_step(src[keep], dst[keep], nb[keep])
            key = hashlib.blake2b(st[0].tobytes() + b"|" + st[1].tobytes() + b"|" + st[2].tobytes(),
                                  digest_size=16).digest()
            out.append(seen.setdefault(key, st))
        return out


def simulate(prog: Program) -> None:
    """Follow a symbolic program's chunks and raise :class:`SymbolicError` if it is wrong.

    Reductions: every rank starts with its own contribution to every chunk;
    a ``reduce`` move adds the sender's partial sum (as of the start of the
    step) to the receiver's, and it is an error if the two already share a
    contribution (something would be counted twice).  A ``copy`` move may
    only send a chunk that holds every rank's contribution.  At the end, an
    all-reduce or all-gather leaves every chunk complete on every rank, a
    reduce-scatter every chunk complete on its owner.  All-to-all: a ``move``
    may only send pieces the sender holds; rank ``y`` must end with every
    piece ``q * p * p + o * p + y`` (any part ``q``).  Also checks that every move's bytes equal the
    bytes of its chunks.
    """
    p, C = prog.p, prog.n_chunks
    if prog.chunk_bytes is None:
        raise SymbolicError("program: built without chunks (pass symbolic=True)")
    cb = np.asarray(prog.chunk_bytes, float)
    for s, moves in enumerate(prog.steps_moves):
        for m in moves:
            if m.chunks is None:
                raise SymbolicError(f"step {s}: a move has no chunk ids")
            want = cb[m.chunks].sum(axis=1) if m.chunks.size else np.zeros(len(m.src))
            if not np.allclose(np.broadcast_to(m.nbytes, want.shape), want, rtol=1e-9, atol=1e-6):
                raise SymbolicError(f"step {s}: bytes of a {m.mode} move differ from its chunks' bytes")
    if prog.kind == "all-to-all":
        hold = np.zeros((p, C), dtype=bool)
        o = (np.arange(C) // p) % p
        hold[o, np.arange(C)] = True
        for s, moves in enumerate(prog.steps_moves):
            snap = hold.copy()
            for m in moves:
                have = snap[m.src[:, None], m.chunks]
                if not have.all():
                    e, j = np.argwhere(~have)[0]
                    raise SymbolicError(f"step {s}: rank {int(m.src[e])} sends piece {int(m.chunks[e, j])} it does not hold")
                hold[m.dst[:, None], m.chunks] = True
        y = np.arange(C) % p
        miss = ~hold[y, np.arange(C)]
        if miss.any():
            c = int(np.flatnonzero(miss)[0])
            raise SymbolicError(f"rank {c % p} never receives the piece from rank {(c // p) % p}")
        return
    full = np.ones(p, dtype=bool)
    if prog.kind == "all-gather":
        state = np.zeros((p, C, p), dtype=bool)
        state[prog.owner, np.arange(C), :] = True
    else:
        state = np.zeros((p, C, p), dtype=bool)
        r = np.arange(p)
        state[r, :, r] = True
    for s, moves in enumerate(prog.steps_moves):
        snap = state.copy()
        add = np.zeros((p, C, p), dtype=np.int16)
        for m in moves:
            if not len(m.src):
                continue
            part = snap[m.src[:, None], m.chunks]                   # (E, c, p)
            if m.mode == "copy":
                done = part.all(axis=2)
                if not done.all():
                    e, j = np.argwhere(~done)[0]
                    raise SymbolicError(f"step {s}: rank {int(m.src[e])} copies chunk {int(m.chunks[e, j])} "
                                        "before it is fully reduced")
                state[m.dst[:, None], m.chunks] = True
            else:
                np.add.at(add, (m.dst[:, None], m.chunks), part.astype(np.int16))
        tot = add + snap.astype(np.int16)
        twice = (tot > 1) & (add > 0)
        if twice.any():
            r, c, q = np.argwhere(twice)[0]
            raise SymbolicError(f"step {s}: rank {int(r)} would count rank {int(q)}'s contribution to chunk "
                                f"{int(c)} twice")
        state |= add > 0
    if prog.kind == "reduce-scatter":
        ok = state[prog.owner, np.arange(C)].all(axis=1)
        if not ok.all():
            c = int(np.flatnonzero(~ok)[0])
            raise SymbolicError(f"chunk {c} is not fully reduced on its owner, rank {int(prog.owner[c])}")
        return
    ok = state.all(axis=2)
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        raise SymbolicError(f"rank {int(r)} ends without the full result of chunk {int(c)}")
    del full
