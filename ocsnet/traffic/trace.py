"""Trace: the ordered phases of a workload's traffic over a fabric's GPUs.

Stage 5 of the pipeline (after the workload and the collective algorithms).
A :class:`Trace` holds P phases; phase ``p`` is a demand matrix ``D_p``
(``N x N`` scipy CSR, bytes from GPU rank ``i`` to rank ``j``, zero
diagonal) and a gap ``g_p``: the compute time that must pass after phase
``p-1``'s traffic ends before phase ``p``'s may start (DESIGN.md, "The OCS
scheduling problem").  The schedule solver and the flow model consume it.

Compact repeats.  Phases that are equal may share one matrix *object*: a
list that holds the same CSR object 7,560 times costs one matrix of memory.
:func:`build_trace` and :meth:`Trace.from_collective` do this, so a
Llama3-405B decode step over 65,536 GPUs holds only a handful of distinct
matrices.  Everything here (validation, hashing, totals, ``save``) works per
distinct object, never per phase, where it can.

Periodicity.  Identical transformer layers make the trace periodic:
``period = (start, length, repeats)`` means phase ``start + r*length + i``
equals phase ``start + i`` (demand and gap) for ``r < repeats``.
:meth:`Trace.detect_period` finds it by exact comparison; :meth:`prefix`,
:meth:`one_period` and :meth:`suffix` cut the trace so a solver can solve one
period and repeat it.

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> ring = sp.csr_matrix(np.roll(np.eye(4), 1, axis=1) * 1e6)   # i -> i+1, 1 MB
>>> t = Trace([ring, ring, ring], [1e-3, 1e-3, 1e-3])
>>> t.n_gpus, len(t), t.total_bytes()
(4, 3, 12000000.0)
>>> t.detect_period()
(0, 1, 3)
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import WorkloadError
from ..jsonable import jsonable
from ..sparse import canonical, digest

__all__ = ["Trace", "place_steps", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)     # fixed timestamp: byte-identical files for equal traces
_DENSE_LIMIT_B = 8 * 2**30           # refuse dense() beyond this size


class Trace:
    """Ordered phases of demand (bytes between GPU ranks) separated by compute gaps.

    Parameters
    ----------
    demand : sequence of (N, N) matrices
        One per phase: scipy sparse or dense arrays of bytes from rank i to
        rank j; non-negative, finite, zero diagonal.  Converted to canonical
        float64 CSR; phases that pass the *same object* keep sharing one.
    gap_s : array_like, shape (P,)
        Compute time before each phase (after the previous phase's traffic
        ends; for phase 0 from time 0), seconds, >= 0.
    labels : sequence of str, optional
        One per phase, e.g. ``"L3 attn-out all-reduce ring 2/30"``.
    layer : array_like of int, optional
        Layer index of each phase, -1 if none (default all -1).
    meta : dict, optional
        JSON-serializable facts: model, mode, plan, algorithms, batch, lengths,
        fabric name.  Stored in JSON-normal form (tuples become lists).
    period : (start, length, repeats), optional
        A repeating block, checked against the phases.
    n_gpus : int, optional
        Required only for an empty trace; otherwise taken from the matrices.

    Raises
    ------
    WorkloadError
        Naming the field and phase: a matrix that is not square, of another
        size, negative, not finite or with traffic on its diagonal; a gap that
        is negative or not finite; lengths that differ; a period that does not
        hold.
    """

    def __init__(self, demand: Sequence, gap_s, *, labels: Sequence[str] | None = None,
                 layer=None, meta: dict | None = None,
                 period: tuple[int, int, int] | None = None, n_gpus: int | None = None):
        demand = list(demand)
        P = len(demand)
        if P == 0 and n_gpus is None:
            raise WorkloadError("n_gpus: an empty trace needs n_gpus")
        n = None if n_gpus is None else int(n_gpus)
        if n is not None and n < 0:
            raise WorkloadError(f"n_gpus: {n_gpus!r} is out of range, allowed [0, inf)")
        canon: dict[int, sp.csr_matrix] = {}
        out = []
        for p, m in enumerate(demand):
            c = canon.get(id(m))
            if c is None:
                c = canonical(m, f"demand[{p}]", WorkloadError, n=n, square=True, nonnegative=True, zero_diagonal=True,
                              index_dtype=np.int64)
                n = c.shape[0]
                canon[id(m)] = c
            out.append(c)
        self.n_gpus: int = int(n)
        self.demand: list[sp.csr_matrix] = out
        gap = np.asarray(gap_s, dtype=np.float64).ravel().copy()
        if gap.shape != (P,):
            raise WorkloadError(f"gap_s: has {gap.size} entries, expected one per phase ({P})")
        bad = np.flatnonzero(~(np.isfinite(gap) & (gap >= 0)))
        if len(bad):
            p = int(bad[0])
            raise WorkloadError(f"gap_s[{p}]: {gap[p]!r} is out of range, allowed [0, inf)")
        self.gap_s: np.ndarray = gap
        if labels is None:
            labels = [f"phase {p}" for p in range(P)]
        labels = [str(s) for s in labels]
        if len(labels) != P:
            raise WorkloadError(f"labels: has {len(labels)} entries, expected one per phase ({P})")
        self.labels: list[str] = labels
        lay = np.full(P, -1, dtype=np.int64) if layer is None else np.asarray(layer, dtype=np.int64).ravel().copy()
        if lay.shape != (P,):
            raise WorkloadError(f"layer: has {lay.size} entries, expected one per phase ({P})")
        if P and lay.min() < -1:
            raise WorkloadError(f"layer[{int(np.argmin(lay))}]: {int(lay.min())} is out of range, allowed [-1, inf)")
        self.layer: np.ndarray = lay
        self.meta: dict = jsonable(dict(meta or {}), error=WorkloadError, where="meta")
        self._keys: np.ndarray | None = None
        self.period: tuple[int, int, int] | None = None
        if period is not None:
            self.period = self._check_period(period)

    # ---- sizes and equality ----------------------------------------------------
    @property
    def n_phases(self) -> int:
        """Number of phases P."""
        return len(self.demand)

    def __len__(self) -> int:
        return len(self.demand)

    def __repr__(self) -> str:
        return (f"Trace({self.n_phases} phases, {self.n_gpus} GPUs, {self.total_bytes():.4g} B, "
                f"period={self.period})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (self.n_gpus == other.n_gpus and self.n_phases == other.n_phases
                and np.array_equal(self.gap_s, other.gap_s) and self.labels == other.labels
                and np.array_equal(self.layer, other.layer) and self.period == other.period
                and self.meta == other.meta and self._digests() == other._digests())

    __hash__ = None

    #: detect_period tries every length up to this many phases, anchored candidates beyond.
    EXACT_PHASES = 4096
    #: Number of windows (anchors) detect_period uses on longer traces.
    ANCHORS = 256

    def _unique(self) -> tuple[list[sp.csr_matrix], np.ndarray]:
        """Distinct matrix objects in first-use order and, per phase, the index of its object."""
        pos: dict[int, int] = {}
        uniq: list[sp.csr_matrix] = []
        idx = np.empty(self.n_phases, dtype=np.int64)
        for p, m in enumerate(self.demand):
            i = pos.get(id(m))
            if i is None:
                i = pos[id(m)] = len(uniq)
                uniq.append(m)
            idx[p] = i
        return uniq, idx

    def _digests(self) -> list[bytes]:
        uniq, idx = self._unique()
        d = [digest(m) for m in uniq]
        return [d[i] for i in idx]

    def phase_keys(self) -> np.ndarray:
        """An int64 code per phase: equal codes iff equal demand (exactly) and equal gap.

        Each distinct matrix object is hashed once (blake2b of its canonical
        CSR arrays); codes come from ``np.unique`` over (matrix hash, gap bits).
        """
        if self._keys is None:
            uniq, idx = self._unique()
            dig = [digest(m) for m in uniq]
            _, dcode = np.unique(np.array(dig, dtype="S16"), return_inverse=True) if uniq else (None, np.zeros(0, np.int64))
            pair = np.stack([np.asarray(dcode, np.int64).ravel()[idx], self.gap_s.view(np.int64)], axis=1)
            if self.n_phases:
                _, code = np.unique(pair, axis=0, return_inverse=True)
                self._keys = np.asarray(code, dtype=np.int64).ravel()
            else:
                self._keys = np.zeros(0, dtype=np.int64)
        return self._keys

    # ---- totals ----------------------------------------------------------------
    def phase_bytes(self) -> np.ndarray:
        """Total bytes of every phase, shape (P,) (each distinct matrix summed once)."""
        uniq, idx = self._unique()
        s = np.array([m.data.sum() for m in uniq], dtype=np.float64)
        return s[idx] if len(uniq) else np.zeros(0)

    def total_bytes(self) -> float:
        """Bytes moved by the whole trace."""
        return float(self.phase_bytes().sum())

    def total_gap_s(self) -> float:
        """Compute time the gaps add up to, seconds."""
        return float(self.gap_s.sum())

    def dense(self, p: int) -> np.ndarray:
        """Phase ``p``'s demand as a dense (N, N) array of bytes."""
        if not -self.n_phases <= p < self.n_phases:
            raise WorkloadError(f"phase: {p} is out of range, allowed [0, {self.n_phases - 1}]")
        if self.n_gpus ** 2 * 8 > _DENSE_LIMIT_B:
            raise WorkloadError(f"dense: a {self.n_gpus} x {self.n_gpus} dense matrix needs "
                                f"{self.n_gpus ** 2 * 8 / 1e9:.1f} GB; use demand[{p}] (sparse)")
        return self.demand[p].toarray()

    # ---- periodicity -----------------------------------------------------------
    def _check_period(self, period) -> tuple[int, int, int]:
        try:
            start, length, repeats = (int(x) for x in period)
        except (TypeError, ValueError):
            raise WorkloadError(f"period: {period!r} must be (start, length, repeats)") from None
        P = self.n_phases
        if start < 0 or length < 1 or repeats < 1 or start + length * repeats > P:
            raise WorkloadError(f"period: {(start, length, repeats)} does not fit {P} phases "
                                "(need start >= 0, length >= 1, repeats >= 1, start + length*repeats <= P)")
        k = self.phase_keys()[start:start + length * repeats].reshape(repeats, length)
        bad = np.flatnonzero(np.any(k != k[0], axis=1))
        if len(bad):
            r = int(bad[0])
            i = int(np.flatnonzero(k[r] != k[0])[0])
            raise WorkloadError(f"period: phase {start + r * length + i} differs from phase {start + i}")
        return (start, length, repeats)

    def detect_period(self, max_length: int | None = None) -> tuple[int, int, int] | None:
        """Find the repeating block that covers the most phases (demand and gap equal exactly).

        For a candidate length ``k`` the phase codes (:meth:`phase_keys`) are
        compared with themselves shifted by ``k`` in one vectorized
        comparison; the longest run of matches gives the best block of that
        length.  Among blocks covering the same number of phases the shortest
        period wins.

        Candidates: every ``k`` up to ``max_length`` when the trace has at most
        :attr:`EXACT_PHASES` phases (exact).  Longer traces are cut into
        :attr:`ANCHORS` windows; in each, the phase whose code is rarest is an
        anchor, and the candidates are the distances from an anchor to the
        later phases with the same code (plus every ``k <= 64``).  A block
        whose repeats after the first span at least two windows always
        contains an anchor, so it is found; shorter blocks may be missed.

        Parameters
        ----------
        max_length : int, optional
            Longest period to try (default P // 2).

        Returns
        -------
        (start, length, repeats) or None
            None if no block repeats at least twice.  Also stored in
            :attr:`period`.
        """
        keys = self.phase_keys()
        P = len(keys)
        kmax = P // 2 if max_length is None else min(int(max_length), P // 2)
        if P <= self.EXACT_PHASES:
            cands = np.arange(1, kmax + 1)
        else:
            w = -(-P // self.ANCHORS)
            counts = np.bincount(keys)
            c = np.full(self.ANCHORS * w, np.iinfo(np.int64).max)
            c[:P] = counts[keys]
            anchors = np.arange(self.ANCHORS) * w + np.argmin(c.reshape(self.ANCHORS, w), axis=1)
            anchors = anchors[anchors < P]
            order = np.argsort(keys, kind="stable")           # positions grouped by code, ascending
            first = np.searchsorted(keys[order], np.arange(len(counts)))
            found = [np.arange(1, min(64, kmax) + 1)]
            for a in anchors:
                pos = order[first[keys[a]]: first[keys[a]] + counts[keys[a]]]
                d = pos - a
                found.append(d[(d > 0) & (d <= kmax)])
            cands = np.unique(np.concatenate(found))
        best, best_cover = None, 0
        for k in cands.tolist():
            if (P // k) * k <= best_cover:       # cannot beat the best even if fully periodic
                continue
            eq = np.concatenate([[False], keys[k:] == keys[:-k], [False]])
            d = np.diff(eq.astype(np.int8))
            starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
            if not len(starts):
                continue
            runs = ends - starts                 # run of r matches: phases [s, s+r+k) are k-periodic
            reps = (runs + k) // k
            cover = reps * k
            j = int(np.argmax(cover))
            if reps[j] >= 2 and cover[j] > best_cover:
                best, best_cover = (int(starts[j]), k, int(reps[j])), int(cover[j])
        self.period = best
        return best

    def _period_or_detect(self) -> tuple[int, int, int]:
        if self.period is None:
            self.detect_period()
        return self.period if self.period is not None else (0, self.n_phases, 1)

    @property
    def repeats(self) -> int:
        """How many times :meth:`one_period` repeats (1 if the trace is not periodic)."""
        return self._period_or_detect()[2]

    def prefix(self) -> "Trace":
        """The phases before the periodic block."""
        s, _, _ = self._period_or_detect()
        return self.select(slice(0, s))

    def one_period(self) -> "Trace":
        """One period of the repeating block (the whole trace if none repeats).

        Its ``meta["repeats"]`` says how often it repeats.
        """
        s, k, r = self._period_or_detect()
        t = self.select(slice(s, s + k))
        t.meta["repeats"] = r
        return t

    periodic_part = one_period

    def suffix(self) -> "Trace":
        """The phases after the periodic block."""
        s, k, r = self._period_or_detect()
        return self.select(slice(s + k * r, self.n_phases))

    def select(self, phases) -> "Trace":
        """A new trace of the given phases (a slice or index array), sharing matrices."""
        idx = np.arange(self.n_phases)[phases]
        idx = np.atleast_1d(idx)
        return Trace([self.demand[i] for i in idx], self.gap_s[idx], labels=[self.labels[i] for i in idx],
                     layer=self.layer[idx], meta=self.meta, n_gpus=self.n_gpus)

    @classmethod
    def concat(cls, traces: Sequence["Trace"], meta: dict | None = None) -> "Trace":
        """Phases of several traces over the same GPUs, one after the other."""
        if not traces:
            raise WorkloadError("traces: need at least one trace to concatenate")
        n = traces[0].n_gpus
        for i, t in enumerate(traces):
            if t.n_gpus != n:
                raise WorkloadError(f"traces[{i}]: n_gpus {t.n_gpus} differs from {n}")
        return cls([m for t in traces for m in t.demand], np.concatenate([t.gap_s for t in traces]),
                   labels=[s for t in traces for s in t.labels],
                   layer=np.concatenate([t.layer for t in traces]),
                   meta=traces[0].meta if meta is None else meta, n_gpus=n)

    # ---- construction from collectives -------------------------------------------
    @classmethod
    def from_collective(cls, kind: str, groups, nbytes: float, algorithm: str = "ring", *,
                        n_gpus: int, chunks: int = 1, gap_s: float = 0.0, label: str | None = None,
                        layer: int = -1, meta: dict | None = None, fabric=None) -> "Trace":
        """The phases of one collective run by many identical groups at once.

        Expands the collective with :func:`ocsnet.collectives.expand` once for
        the group size, then places every step onto all groups together
        (:func:`place_steps`): phase ``s`` holds step ``s`` of every group.

        Parameters
        ----------
        kind, algorithm, chunks
            As in :func:`ocsnet.collectives.expand`.
        groups : array_like of int, shape (G, p)
            GPU ranks of each group, in the collective's rank order; groups
            must be disjoint.
        nbytes : float
            Buffer size per GPU in the nccl-tests convention.
        n_gpus : int
            Size N of the demand matrices (the fabric's GPU count).
        gap_s : float
            Gap before the first step; later steps follow at once.
        label : str, optional
            Prefix of the phase labels (default ``"<kind> <algorithm>"``);
            each gets ``" s/S"`` appended.

        Examples
        --------
        >>> t = Trace.from_collective("all-reduce", [[0, 1, 2, 3], [4, 5, 6, 7]], 8e6,
        ...                           "ring", n_gpus=8, label="attn-out all-reduce ring")
        >>> len(t), t.labels[1], float(t.demand[0][1, 2]), t.total_bytes()
        (6, 'attn-out all-reduce ring 2/6', 2000000.0, 96000000.0)

        With ``fabric`` the fabric-aware algorithms and ``"auto"`` apply
        (:mod:`ocsnet.collectives.fabric_aware`): ``auto`` is resolved once,
        on the first group; groups that are torus blocks of different shape
        or orientation get their own steps, other groups are assumed to have
        the first group's shape.
        """
        from .. import collectives
        groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
        if fabric is None:
            steps = collectives.expand(kind, groups.shape[1], nbytes, algorithm, chunks=chunks)
            mats = place_steps(steps, groups, n_gpus)
        else:
            mats, algorithm = _fabric_steps(kind, groups, nbytes, algorithm, chunks, fabric, n_gpus)
        S = len(mats)
        base = label or f"{kind} {algorithm}"
        gaps = np.zeros(S)
        if S:
            gaps[0] = gap_s
        return cls(mats, gaps, labels=[f"{base} {s + 1}/{S}" for s in range(S)],
                   layer=np.full(S, layer), meta=meta, n_gpus=n_gpus)

    # ---- files -------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the trace to a ``.npz`` file (a zip of ``.npy`` arrays plus ``trace.json``).

        Lossless and deterministic: equal traces give byte-identical files, and
        ``Trace.load(path) == self``.  Each distinct matrix is stored once
        (COO arrays, concatenated) and phases refer to it by index, so a
        periodic trace stays small.  The file is readable by ``numpy.load``.
        """
        path = Path(path)
        uniq, idx = self._unique()
        # Merge objects with equal content so the file depends only on values.
        dig = [digest(m) for m in uniq]
        first: dict[bytes, int] = {}
        remap = np.array([first.setdefault(d, len(first)) for d in dig], dtype=np.int64)
        keep = [uniq[dig.index(d)] for d in first]
        nnz = np.array([m.nnz for m in keep], dtype=np.int64)
        rows = [np.repeat(np.arange(self.n_gpus, dtype=np.int64), np.diff(m.indptr)) for m in keep]
        arrays = {
            "gap_s": self.gap_s,
            "layer": self.layer,
            "phase_matrix": remap[idx] if len(idx) else np.zeros(0, np.int64),
            "matrix_nnz": nnz,
            "rows": np.concatenate(rows) if rows else np.zeros(0, np.int64),
            "cols": np.concatenate([m.indices for m in keep]) if keep else np.zeros(0, np.int64),
            "bytes": np.concatenate([m.data for m in keep]) if keep else np.zeros(0),
        }
        head = {"format": "ocsnet-trace", "version": FORMAT_VERSION, "n_gpus": self.n_gpus,
                "labels": self.labels, "meta": self.meta,
                "period": list(self.period) if self.period else None}
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo("trace.json", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, json.dumps(head, sort_keys=True, separators=(",", ":")))
            for name in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, buf.getvalue())
        return path

    @classmethod
    def load(cls, path) -> "Trace":
        """Read a trace written by :meth:`save`.

        Raises
        ------
        WorkloadError
            The file is not an ocsnet trace or has an unknown format version.
        """
        path = Path(path)
        try:
            z = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise WorkloadError(f"{path.name}: not an ocsnet trace file (not a zip/.npz archive)") from None
        with z:
            names = set(z.namelist())
            if "trace.json" not in names:
                raise WorkloadError(f"{path.name}: not an ocsnet trace file (no trace.json)")
            head = json.loads(z.read("trace.json"))
            if head.get("format") != "ocsnet-trace" or head.get("version") != FORMAT_VERSION:
                raise WorkloadError(f"{path.name}: format {head.get('format')!r} version {head.get('version')!r}, "
                                    f"expected 'ocsnet-trace' version {FORMAT_VERSION}")
            arr = {}
            for name in ("gap_s", "layer", "phase_matrix", "matrix_nnz", "rows", "cols", "bytes"):
                with z.open(name + ".npy") as f:
                    arr[name] = np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False)
        n = int(head["n_gpus"])
        off = np.concatenate([[0], np.cumsum(arr["matrix_nnz"])])
        mats = []
        for u in range(len(arr["matrix_nnz"])):
            sl = slice(off[u], off[u + 1])
            mats.append(sp.csr_matrix((arr["bytes"][sl], (arr["rows"][sl], arr["cols"][sl])), shape=(n, n)))
        t = cls([mats[i] for i in arr["phase_matrix"]], arr["gap_s"], labels=head["labels"],
                layer=arr["layer"], meta=head["meta"], n_gpus=n)
        if head["period"] is not None:
            t.period = t._check_period(head["period"])
        return t


def _fabric_steps(kind, groups, nbytes, algorithm, chunks, fabric, n_gpus):
    """Placed steps of a possibly fabric-aware collective; the concrete algorithm name."""
    from .. import collectives
    from ..topology.shape import torus_block

    p = groups.shape[1]
    if algorithm == collectives.AUTO and p > 1:
        algorithm = collectives.choose_algorithm(kind, fabric, groups[0], nbytes, chunks=chunks)
    if algorithm not in collectives.FABRIC_ALGORITHMS.get(kind, ()):
        k = chunks if (kind, algorithm) in collectives.PIPELINED else 1
        steps = collectives.expand(kind, p, nbytes, algorithm, chunks=k)
        return place_steps(steps, groups, n_gpus), algorithm
    # torus blocks of one shape and orientation share their steps; others are placed apart
    sig: dict = {}
    for g, ranks in enumerate(groups):
        b = torus_block(fabric, ranks) if algorithm == "torus" else None
        key = None if b is None else (b.shape, b.dims, b.wrap, b.pos.tobytes())
        sig.setdefault(key, []).append(g)
    placed = []
    for idx in sig.values():
        steps = collectives.expand(kind, p, nbytes, algorithm, fabric=fabric, ranks=groups[idx[0]])
        placed.append(place_steps(steps, groups[idx], n_gpus))
    if len(placed) == 1:
        return placed[0], algorithm
    S = max(len(x) for x in placed)
    out = []
    for s in range(S):
        ms = [x[s] for x in placed if s < len(x)]
        m = ms[0]
        for x in ms[1:]:
            m = m + x
        out.append(m.tocsr())
    return out, algorithm


def place_steps(steps: Sequence, groups, n_gpus: int, *, disjoint: bool = True) -> list[sp.csr_matrix]:
    """Place a collective's per-step group matrices onto many disjoint groups at once.

    Parameters
    ----------
    steps : sequence of (p, p) matrices
        Bytes between the group's local ranks in each step (as from
        :func:`ocsnet.collectives.expand`).
    groups : array_like of int, shape (G, p)
        The GPU rank of local rank ``j`` in group ``g`` is ``groups[g, j]``.
    n_gpus : int
        Size of the returned matrices.
    disjoint : bool
        Require every rank in at most one group (collective groups).  Pass
        False for pipeline send pairs, where a stage's GPU receives from the
        previous stage and sends to the next (traffic of shared entries adds).

    Returns
    -------
    list of (n_gpus, n_gpus) csr_matrix
        Step ``s`` of every group in one matrix.  Steps with equal content
        share one returned object, so repeats cost no memory.

    Raises
    ------
    WorkloadError
        Groups of the wrong width, ranks out of range, or a rank in two groups.
    """
    groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
    n_gpus = int(n_gpus)
    G, p = groups.shape
    if groups.size and (groups.min() < 0 or groups.max() >= n_gpus):
        raise WorkloadError(f"groups: GPU rank out of range, allowed [0, {n_gpus - 1}]")
    if disjoint and len(np.unique(groups)) != groups.size:
        raise WorkloadError("groups: a GPU rank appears twice; groups must be disjoint")
    srt = np.sort(groups, axis=1)
    if (srt[:, 1:] == srt[:, :-1]).any():
        raise WorkloadError("groups: a group lists the same GPU rank twice")
    cache: dict[bytes, sp.csr_matrix] = {}
    by_id: dict[int, sp.csr_matrix] = {}
    out = []
    for s, m in enumerate(steps):
        if id(m) in by_id:                     # expand() returns equal steps as one object
            out.append(by_id[id(m)])
            continue
        if np.shape(m) != (p, p):
            raise WorkloadError(f"steps[{s}]: matrix is {np.shape(m)[0]} x {np.shape(m)[1]}, groups have {p} ranks")
        c = canonical(m, f"steps[{s}]", WorkloadError).tocoo()
        key = digest(c.tocsr())
        hit = cache.get(key)
        if hit is None:
            nz = c.data != 0
            r, k, v = c.row[nz], c.col[nz], c.data[nz].astype(np.float64)
            rows = groups[:, r].ravel()
            cols = groups[:, k].ravel()
            data = np.broadcast_to(v, (G, len(v))).ravel()
            hit = sp.csr_matrix((data, (rows, cols)), shape=(n_gpus, n_gpus))
            hit.sum_duplicates()
            hit.sort_indices()
            cache[key] = hit
        by_id[id(m)] = hit
        out.append(hit)
    return out
