"""The OCS scheduling problem: demand per phase, ports, circuit rate, reconfiguration delay.

Stage 4 of the pipeline (``ocsnet.schedule``).  An :class:`OCSProblem` is the
validated input of every scheduler; :mod:`.validate` holds the one reference
implementation of the timing semantics below, and every solver's output is
re-timed by it.

Reference semantics (DESIGN.md, "The OCS scheduling problem")
--------------------------------------------------------------
N GPUs with ``d`` optical ports each; a *configuration* is an integer N x N
matrix ``C`` (zero diagonal, row and column sums <= ``d``); each circuit
carries ``b`` bytes/s.  Phase ``p`` has demand ``D_p`` (bytes) and a compute
gap ``g_p``.

* Phase ``p``'s traffic may start at its *ready time*
  ``t_p = e_{p-1} + g_p`` (``e_{-1} = 0``), where ``e_{p-1}`` is the time
  phase ``p-1``'s traffic ends.
* A phase is served by one or more *slots*, each holding one configuration.
  The first configuration is installed before time 0 at no cost.
* A slot whose configuration differs from the one before it starts with a
  reconfiguration of ``delta`` seconds.  At the start of a phase the change
  begins when the previous phase ends, so it overlaps the gap and only
  ``x = max(0, delta - g_p)`` is exposed (counted from the ready time); a
  change between two slots of a phase is fully exposed (``x = delta``).  A
  slot lasts at least its exposed delay ``x`` (a change completes before the
  next one may start) and data moves on the new circuits only after ``x``.
* In a one-slot phase pair ``(i, j)`` finishes ``D[i, j] / (C[i, j] b)``
  after the exposed delay; the phase lasts ``x`` plus the maximum of these
  (infinite if a demanded pair has no circuit).
* In a phase of several slots, slot ``k`` holds its configuration for
  ``duration_s`` (its exposed delay included) and pair ``(i, j)`` moves
  ``C_k[i, j] b (duration - x_k)`` bytes in it.  The durations of all but the
  last slot are the schedule's decision; the last slot lasts until the
  remaining demand is served.  When a caller gives only configurations,
  :meth:`Schedule.from_configs <ocsnet.schedule.io.Schedule.from_configs>`
  chooses the durations by a linear program that minimizes the phase time.
* The makespan is the end of the last phase.

Extensions (each off by default; B's heuristic implements the same rules)
--------------------------------------------------------------------------
``reserved`` (port reservation)
    A fixed integer matrix ``R`` of circuits pinned for the whole trace (for
    example pipeline sends).  They take ports: configurations must satisfy
    ``rowsum(C + R) <= d`` and ``colsum(C + R) <= d``.  They carry demand like
    any circuit (pair rate ``(C + R)[i, j] b``) and, never being switched, keep
    carrying it during a reconfiguration.  ``R`` need not respect ``allowed``
    (it may be wired separately); ``C`` must.
``partial_reconfig``
    Only changed circuits go dark.  At a change from ``C_old`` to ``C_new``
    the ``min(C_old, C_new)[i, j]`` circuits kept on each pair keep carrying
    data during the exposed delay; the others are usable after it.  (Ports
    are interchangeable: we assume the OCS can set up the new circuits on the
    freed ports without touching the kept ones, as a single non-blocking OCS
    can.)  A slot still lasts at least its exposed delay.
    With lit circuits ``L`` (``R``, plus ``min(C_old, C_new)`` under partial
    reconfiguration) and total circuits ``A = R + C``, pair ``(i, j)`` with
    ``r`` bytes left finishes ``r / (L b)`` after the slot start if
    ``r <= L b x``, else ``x + (r - L b x) / (A b)``.
``packet_Bps`` (packet fallback network)
    A non-blocking packet network in which every GPU may send at most
    ``packet_Bps`` and receive at most ``packet_Bps`` (the hose model).  In a
    phase, a demanded pair that has no circuit in any of the phase's slots
    (``R[i, j] = 0`` and ``C_k[i, j] = 0`` for every slot ``k``) is carried
    entirely by the packet network, every other pair entirely by circuits.
    Packet traffic starts at the ready time, runs during reconfigurations,
    and takes ``max(max row sum, max column sum) / packet_Bps`` of the
    packet-carried demand (constant rates ``X / T`` meet the hose limits).
    The phase ends when both its slots and its packet traffic are done.
``allowed``
    A boolean mask of the pairs the OCS wiring can connect; circuits of a
    configuration must lie inside it.

Lower bound (DESIGN.md): every phase needs at least
``max(max row sum, max column sum of D_p) / (d b + packet_Bps)`` of transfer
and the gaps are always paid; :mod:`.bounds` proves tighter bounds.

References
----------
DESIGN.md of this project, "The OCS scheduling problem".
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from .. import checks
from ..errors import ScheduleError
from ..sparse import as_sparse_2d

__all__ = ["OCSProblem"]


def _as_csr(m, name: str, n: int | None) -> sp.csr_matrix:
    c = as_sparse_2d(m, name, ScheduleError, what="N x N matrix")
    if c.shape[0] != c.shape[1]:
        raise ScheduleError(f"{name}: expected a square matrix, got shape {c.shape}")
    if n is not None and c.shape[0] != n:
        raise ScheduleError(f"{name}: shape {c.shape} does not match N = {n}")
    c.sum_duplicates()
    c.eliminate_zeros()
    c.sort_indices()
    return c


def _check_entries(c: sp.csr_matrix, name: str) -> None:
    if c.nnz == 0:
        return
    bad = np.flatnonzero(~np.isfinite(c.data))
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    if len(bad):
        k = int(bad[0])
        raise ScheduleError(f"{name}[{rows[k]}, {c.indices[k]}]: {float(c.data[k])!r} is not finite")
    bad = np.flatnonzero(c.data < 0)
    if len(bad):
        k = int(bad[0])
        raise ScheduleError(f"{name}[{rows[k]}, {c.indices[k]}]: {float(c.data[k])!r} is negative, allowed [0, inf)")
    bad = np.flatnonzero(rows == c.indices)
    if len(bad):
        k = int(bad[0])
        raise ScheduleError(f"{name}[{rows[k]}, {rows[k]}]: diagonal must be zero, got {float(c.data[k])!r}")


class OCSProblem:
    """An OCS scheduling instance (see the module docstring for the exact semantics).

    Parameters
    ----------
    demand : array (P, N, N) or sequence of P (N, N) matrices
        Bytes from GPU rank i to rank j in each phase; dense or scipy sparse;
        non-negative, finite, zero diagonal.  Stored as a list of float CSR.
    gap_s : array_like (P,)
        Compute time before each phase, seconds, >= 0.
    ports : int or array (N,) of int
        Optical ports per GPU ``d`` >= 1, or one budget per GPU (each >= 0,
        at least one >= 1): a GPU that lost ports (a dead transceiver, a
        failed OCS plane; see :func:`ocsnet.faults.ocs_ports`) has a smaller
        budget in every configuration.  ``self.ports`` is then the largest
        budget and ``self.port_counts`` the budgets.
    circuit_Bps : float
        Rate of one circuit ``b`` in bytes/s, > 0.
    reconfig_delay_s : float
        OCS reconfiguration delay ``delta`` in seconds, >= 0.
    packet_Bps : float
        Per-GPU rate of the packet fallback network (0 = none), >= 0.
    reserved : (N, N) integer matrix, optional
        Circuits pinned for the whole trace; they take ports and carry demand.
    partial_reconfig : bool
        Only changed circuits go dark during a change.
    allowed : (N, N) boolean matrix, optional
        Pairs the OCS can connect (None: every pair i != j).
    name : str
        A short name for tables.
    period : (start, length, repeats), optional
        A repeating block of phases (copied from a trace).
    meta : dict, optional
        Facts to carry along (e.g. the fabric's name).

    Raises
    ------
    ScheduleError
        A field has the wrong shape or type or is out of range (the message
        names it), or some demanded pair can never be served (no allowed
        circuit, no free port, no reserved circuit and no packet network).

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.roll(np.eye(4), 1, axis=1) * 8e6          # i -> i+1, 8 MB
    >>> prob = OCSProblem([ring, ring.T], gap_s=[1e-3, 1e-3], ports=2,
    ...                   circuit_Bps=1e9, reconfig_delay_s=1e-2)
    >>> prob.P, prob.N
    (2, 4)
    >>> round(prob.lower_bound_s(), 6)       # 2 gaps + 2 x 8 MB / (2 x 1 GB/s)
    0.01
    """

    def __init__(self, demand, gap_s, ports, circuit_Bps, reconfig_delay_s, *, packet_Bps=0.0,
                 reserved=None, partial_reconfig: bool = False, allowed=None, name: str = "",
                 period: tuple[int, int, int] | None = None, meta: dict | None = None):
        if isinstance(demand, np.ndarray) and not sp.issparse(demand):
            if demand.ndim != 3:
                raise ScheduleError(f"demand: expected shape (P, N, N), got {demand.shape}")
            demand = list(demand)
        try:
            demand = list(demand)
        except TypeError:
            raise ScheduleError("demand: expected an array (P, N, N) or a list of N x N matrices") from None
        if not demand:
            raise ScheduleError("demand: needs at least one phase")
        n = None
        mats = []
        canon: dict[int, sp.csr_matrix] = {}     # phases passing the same object share one matrix
        for p, m in enumerate(demand):
            c = canon.get(id(m))
            if c is None:
                c = _as_csr(m, f"demand[{p}]", n)
                n = c.shape[0]
                _check_entries(c, f"demand[{p}]")
                canon[id(m)] = c
            mats.append(c)
        self.demand: list[sp.csr_matrix] = mats
        first: dict[int, int] = {}
        self._distinct_idx = np.array([first.setdefault(id(c), len(first)) for c in mats], dtype=np.int64)
        self._distinct = list({id(c): c for c in mats}.values())
        P = len(mats)
        gap = checks.array("gap_s", gap_s, lo=0, empty=True, error=ScheduleError).ravel()
        if gap.shape != (P,):
            raise ScheduleError(f"gap_s: has {gap.size} entries, expected one per phase ({P})")
        self.gap_s: np.ndarray = gap.copy()
        self.port_counts: np.ndarray = self._check_ports(ports, self.N)
        self.ports: int = int(self.port_counts.max())
        self.circuit_Bps: float = checks.positive("circuit_Bps", circuit_Bps, error=ScheduleError)
        self.reconfig_delay_s: float = checks.nonnegative("reconfig_delay_s", reconfig_delay_s, error=ScheduleError)
        self.packet_Bps: float = checks.nonnegative("packet_Bps", packet_Bps, error=ScheduleError)
        self.partial_reconfig: bool = checks.boolean("partial_reconfig", partial_reconfig, error=ScheduleError)
        self.name: str = str(name)
        if meta is not None and not isinstance(meta, dict):
            raise ScheduleError(f"meta: expected a dict, got {checks.kind_of(meta)}")
        self.meta: dict = dict(meta or {})
        self.period = None if period is None else tuple(checks.integers("period", period, error=ScheduleError))
        if self.period is not None and len(self.period) != 3:
            raise ScheduleError(f"period: expected (start, length, repeats), got {period!r}")
        if self.period is not None:
            s, ln, r = self.period
            if s < 0 or ln < 1 or r < 1 or s + ln * r > P:
                raise ScheduleError(f"period: {self.period} does not fit {P} phases")

        N = self.N
        if reserved is None:
            R = sp.csr_matrix((N, N), dtype=np.int64)
        else:
            Rf = _as_csr(reserved, "reserved", N)
            _check_entries(Rf, "reserved")
            if Rf.nnz and not np.all(Rf.data == np.round(Rf.data)):
                raise ScheduleError("reserved: circuit counts must be integers")
            R = sp.csr_matrix(Rf, dtype=np.int64)
        self.reserved: sp.csr_matrix = R
        self.reserved_out: np.ndarray = np.asarray(R.sum(axis=1)).ravel().astype(np.int64)
        self.reserved_in: np.ndarray = np.asarray(R.sum(axis=0)).ravel().astype(np.int64)
        for what, sums in (("row", self.reserved_out), ("column", self.reserved_in)):
            over = np.flatnonzero(sums > self.port_counts)
            if len(over):
                i = int(over[0])
                raise ScheduleError(f"reserved: {what} {i} holds {int(sums[i])} circuits, "
                                    f"allowed at most ports = {int(self.port_counts[i])}")
        if allowed is None:
            self.allowed = None
        else:
            a = allowed.toarray() if sp.issparse(allowed) else np.asarray(allowed)
            if a.shape != (N, N):
                raise ScheduleError(f"allowed: shape {a.shape} does not match (N, N) = {(N, N)}")
            if a.dtype != bool and not np.isin(a, (0, 1)).all():
                raise ScheduleError("allowed: expected a boolean mask")
            a = a.astype(bool).copy()
            np.fill_diagonal(a, False)
            self.allowed = a
        self._check_servable()

    @staticmethod
    def _check_ports(ports, n: int) -> np.ndarray:
        a = np.asarray(ports)
        if a.dtype == bool or a.ndim > 1 or (a.ndim == 1 and len(a) != n):
            what = f"shape {a.shape}" if a.ndim else repr(ports)
            raise ScheduleError(f"ports: {what} is neither an integer nor one integer per GPU ({n})")
        try:
            f = a.astype(float)
        except (TypeError, ValueError):
            raise ScheduleError(f"ports: {ports!r} is not an integer") from None
        if a.ndim == 0:
            if not np.isfinite(f) or not float(f).is_integer() or f < 1:
                raise ScheduleError(f"ports: {ports!r} is out of range, allowed integers [1, inf)")
            return np.full(n, int(f), dtype=np.int64)
        bad = np.flatnonzero(~np.isfinite(f) | (f != np.round(f)) | (f < 0))
        if len(bad):
            i = int(bad[0])
            raise ScheduleError(f"ports[{i}]: {a[i]!r} is out of range, allowed integers [0, inf)")
        if n and f.max() < 1:
            raise ScheduleError("ports: every GPU has 0 ports; allowed at least one GPU with >= 1")
        return f.astype(np.int64)

    @property
    def uniform_ports(self) -> bool:
        """Whether every GPU has the same port budget."""
        return bool((self.port_counts == self.ports).all())

    # ---- sizes and derived arrays ---------------------------------------------------
    @property
    def P(self) -> int:
        """Number of phases."""
        return len(self.demand)

    @property
    def N(self) -> int:
        """Number of GPUs."""
        return self.demand[0].shape[0]

    @property
    def free_out(self) -> np.ndarray:
        """Transmit ports per GPU left for scheduled circuits: ``d_i - rowsum(reserved)``."""
        return self.port_counts - self.reserved_out

    @property
    def free_in(self) -> np.ndarray:
        """Receive ports per GPU left for scheduled circuits: ``d_i - colsum(reserved)``."""
        return self.port_counts - self.reserved_in

    def distinct(self) -> tuple[list[sp.csr_matrix], np.ndarray]:
        """The distinct demand matrix objects and, per phase, the index of its matrix.

        Phases built from the same object (a trace's compact repeats) share
        one entry, so per-matrix work is done once.
        """
        return self._distinct, self._distinct_idx

    def row_sums(self) -> np.ndarray:
        """Bytes each GPU sends in each phase, shape (P, N)."""
        u = np.stack([np.asarray(D.sum(axis=1)).ravel() for D in self._distinct])
        return u[self._distinct_idx]

    def col_sums(self) -> np.ndarray:
        """Bytes each GPU receives in each phase, shape (P, N)."""
        u = np.stack([np.asarray(D.sum(axis=0)).ravel() for D in self._distinct])
        return u[self._distinct_idx]

    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the pairs demanded in at least one phase (sorted)."""
        U = sp.csr_matrix((self.N, self.N), dtype=np.float64)
        for D in self._distinct:
            U = U + D
        U.eliminate_zeros()
        U = U.tocoo()
        order = np.lexsort((U.col, U.row))
        return U.row[order].astype(np.int64), U.col[order].astype(np.int64)

    def is_allowed(self, rows, cols) -> np.ndarray:
        """Whether the OCS may connect each pair (i, j)."""
        rows, cols = np.asarray(rows), np.asarray(cols)
        ok = rows != cols
        if self.allowed is not None:
            ok &= self.allowed[rows, cols]
        return ok

    def _check_servable(self) -> None:
        if self.packet_Bps > 0:
            return
        firsts = np.unique(self._distinct_idx, return_index=True)[1]
        for p in firsts:
            D = self.demand[p]
            if D.nnz == 0:
                continue
            rows = np.repeat(np.arange(self.N), np.diff(D.indptr))
            cols = D.indices
            res = np.asarray(self.reserved[rows, cols]).ravel() > 0
            ok = res | (self.is_allowed(rows, cols) & (self.free_out[rows] >= 1) & (self.free_in[cols] >= 1))
            bad = np.flatnonzero(~ok)
            if len(bad):
                k = int(bad[0])
                i, j = int(rows[k]), int(cols[k])
                why = ("the pair is not allowed" if not self.is_allowed([i], [j])[0]
                       else f"GPU {i} or {j} has no free port")
                raise ScheduleError(f"demand[{p}][{i}, {j}]: can never be served ({why}, "
                                    "no reserved circuit, packet_Bps = 0)")

    # ---- bounds ----------------------------------------------------------------------
    def phase_lower_bounds_s(self) -> np.ndarray:
        """Per-phase transfer time bound ``max over GPUs i of max(row_i, col_i sum) / (d_i b + packet_Bps)``, shape (P,)."""
        peak = np.array([self.peak_time_s(D) for D in self._distinct])
        return peak[self._distinct_idx]

    def peak_time_s(self, D) -> float:
        """The transfer bound of one demand matrix: ``max over GPUs i of max(row_i, col_i sum) / (d_i b + packet_Bps)``."""
        rate = self.port_counts * self.circuit_Bps + self.packet_Bps

        def worst(sums):
            sums = np.asarray(sums).ravel()
            with np.errstate(divide="ignore"):
                t = np.where(sums > 0, sums / np.where(rate > 0, rate, 0.0), 0.0)
            return float(t.max(initial=0.0))

        return max(worst(D.sum(axis=1)), worst(D.sum(axis=0)))

    def lower_bound_s(self) -> float:
        """The DESIGN.md lower bound: all gaps plus every phase's transfer bound.

        Valid under every extension: GPU ``i`` never sends or receives faster than
        ``d_i b`` over circuits (reserved ones included) plus ``packet_Bps``.
        """
        return float(self.gap_s.sum() + self.phase_lower_bounds_s().sum())

    # ---- construction helpers --------------------------------------------------------
    def replace(self, **changes: Any) -> "OCSProblem":
        """A copy with some constructor arguments changed (validated again)."""
        kw = dict(demand=self.demand, gap_s=self.gap_s,
                  ports=self.ports if self.uniform_ports else self.port_counts, circuit_Bps=self.circuit_Bps,
                  reconfig_delay_s=self.reconfig_delay_s, packet_Bps=self.packet_Bps,
                  reserved=self.reserved if self.reserved.nnz else None,
                  partial_reconfig=self.partial_reconfig, allowed=self.allowed, name=self.name,
                  period=self.period, meta=self.meta)
        kw.update(changes)
        return OCSProblem(**kw)

    def select(self, phases: Sequence[int]) -> "OCSProblem":
        """The sub-problem of some phases (in the given order); no period."""
        idx = [int(p) for p in phases]
        return self.replace(demand=[self.demand[p] for p in idx], gap_s=self.gap_s[idx], period=None)

    @classmethod
    def from_trace(cls, trace, fabric=None, *, ports=None, circuit_Bps=None, reconfig_delay_s=None,
                   packet_Bps=None, reserved=None, partial_reconfig: bool = False, allowed=None,
                   name: str | None = None) -> "OCSProblem":
        """The scheduling problem of a trace on an OCS fabric.

        Parameters
        ----------
        trace : ocsnet.traffic.Trace
            Phases (``demand`` over GPU ranks, ``gap_s``) and optional ``period``.
        fabric : ocsnet.fabric.Fabric, optional
            An OCS fabric: ``fabric.meta["ocs"]`` supplies ``ports_per_gpu``,
            ``circuit_Bps``, ``reconfig_delay_s`` and optionally ``packet_Bps``;
            when it is not ``all_to_all`` the allowed pairs come from
            :func:`ocsnet.topology.optical.allowed_pairs`.
        ports, circuit_Bps, reconfig_delay_s, packet_Bps : optional
            Override (or, without a fabric, give) the fabric's values.
        reserved, partial_reconfig, allowed, name
            As in :class:`OCSProblem`.

        Raises
        ------
        ScheduleError
            The fabric has no ``meta["ocs"]`` and a value is not given, the
            trace and fabric disagree on the number of GPUs, or the problem is invalid.
        """
        ocs = {}
        if fabric is not None:
            ocs = dict(getattr(fabric, "meta", {}).get("ocs") or {})
            if not ocs:
                raise ScheduleError("fabric: meta['ocs'] is missing; build it with ocsnet.topology.ocs_fabric")
            n_f = getattr(fabric, "n_gpus", None)
            if n_f is not None and int(n_f) != int(trace.demand[0].shape[0] if trace.demand else 0):
                raise ScheduleError(f"trace: has {trace.demand[0].shape[0]} GPUs but the fabric has {n_f}")

        def pick(value, key, default=None):
            if value is not None:
                return value
            if key in ocs:
                return ocs[key]
            if default is not None:
                return default
            raise ScheduleError(f"{key}: not given and not in fabric.meta['ocs']")

        meta = {"trace": dict(getattr(trace, "meta", {}) or {})}
        if fabric is not None:
            meta["fabric"] = getattr(fabric, "name", "")
            if allowed is None and ocs.get("all_to_all") is False:
                # a multi-level OCS grid connects only some pairs (per-level port
                # budgets are not modelled: any d ports may serve any allowed pair)
                from ..topology.optical import allowed_pairs
                allowed = allowed_pairs(fabric)
        return cls(trace.demand, trace.gap_s, pick(ports, "ports_per_gpu"), pick(circuit_Bps, "circuit_Bps"),
                   pick(reconfig_delay_s, "reconfig_delay_s"), packet_Bps=pick(packet_Bps, "packet_Bps", 0.0),
                   reserved=reserved, partial_reconfig=partial_reconfig, allowed=allowed,
                   name=name if name is not None else str(meta["trace"].get("name", "")),
                   period=getattr(trace, "period", None), meta=meta)

    def __repr__(self) -> str:
        ext = [k for k, on in (("packet", self.packet_Bps > 0), ("reserved", self.reserved.nnz > 0),
                               ("partial", self.partial_reconfig), ("allowed", self.allowed is not None)) if on]
        pt = str(self.ports) if self.uniform_ports else f"{int(self.port_counts.min())}..{self.ports}"
        return (f"OCSProblem({self.name!r}, P={self.P}, N={self.N}, ports={pt}, "
                f"circuit_Bps={self.circuit_Bps:g}, reconfig_delay_s={self.reconfig_delay_s:g}"
                + (f", {'+'.join(ext)}" if ext else "") + ")")
