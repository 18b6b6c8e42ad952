"""Completion times: a fluid simulation over max-min rates, and phases and traces timed on a fabric.

Stage 5 of the pipeline (flow model).  :func:`completion_times` moves every
flow's bytes at its max-min fair rate and recomputes the rates whenever a
flow starts or finishes.  :func:`phase_time` times one phase (a demand
matrix over GPU ranks) on a fabric and :func:`trace_time` a sequence of
phases with compute gaps; both take a ``fidelity``:

* ``"max-min"``: congestion-aware, the fluid simulation above;
* ``"alpha-beta"``: congestion-unaware, path latency plus bytes over the
  flow's bottleneck bandwidth (:func:`ocsnet.flow.latency.alpha_beta_time`).

A flow's time is its fluid finish time plus its path latency (the last byte
still has to cross the path).  The diagonal of a demand matrix is data that
stays on its GPU and takes no network time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .. import checks
from ..errors import FlowError
from ..fabric import Fabric
from .latency import alpha_beta_time, bottleneck_Bps
from .maxmin import as_incidence, check_capacity, fill, max_min_fair
from .routing import METHODS, Routes, route

__all__ = ["completion_times", "phase_time", "trace_time", "flows_from_demand",
           "PhaseResult", "TraceResult", "FIDELITIES"]

#: The two fidelities that share one interface (DESIGN.md, "The flow model").
FIDELITIES = ("max-min", "alpha-beta")


def _check_nonneg(name: str, arr, n: int, what: str = "flow") -> np.ndarray:
    a = np.broadcast_to(np.asarray(arr, dtype=np.float64), (n,)) if np.ndim(arr) == 0 \
        else np.asarray(arr, dtype=np.float64)
    if a.shape != (n,):
        raise FlowError(f"{name}: expected {n} entries (one per {what}), got shape {a.shape}")
    bad = np.flatnonzero(~(np.isfinite(a) & (a >= 0)))
    if len(bad):
        raise FlowError(f"{name}[{int(bad[0])}] ({what} {int(bad[0])}): {float(a[bad[0]])!r} is out of range, allowed [0, inf)")
    return a


def completion_times(incidence, capacity, size_B, start_s=None, *, rtol: float = 1e-9,
                     return_info: bool = False):
    """Finish time of every flow in a fluid max-min simulation.

    Parameters
    ----------
    incidence : sparse matrix, shape (n_links, n_flows)
        Fraction of every flow on every link (see :func:`max_min_fair`).
    capacity : array, shape (n_links,)
        Link capacities, bytes/s.
    size_B : float or array, shape (n_flows,)
        Bytes of every flow, >= 0.
    start_s : array, shape (n_flows,), optional
        Time every flow starts, >= 0 (default all 0).
    rtol : float
        Flows whose finish times agree to this relative tolerance finish in
        the same step (one rate recomputation for all of them).
    return_info : bool
        Also return ``{"events": number of rate recomputations}``.

    Returns
    -------
    ndarray, shape (n_flows,)
        Time (s) at which each flow's last byte leaves; a flow of size 0
        finishes at its start; ``inf`` for a flow held at rate 0 (a
        zero-capacity link).

    Raises
    ------
    FlowError
        A negative or non-finite size or start, or bad incidence/capacity.

    Examples
    --------
    Two flows share a 1 GB/s link; the short one leaves at 1 s, then the
    long one runs alone at full rate:

    >>> completion_times([[1.0, 1.0]], [1e9], [0.5e9, 1.5e9]).tolist()
    [1.0, 2.0]
    """
    n_links = np.shape(incidence)[0] if not sp.issparse(incidence) else incidence.shape[0]
    c = check_capacity(capacity, n_links)
    a = as_incidence(incidence, n_links)
    n = a.shape[1]
    size = _check_nonneg("size_B", size_B, n)
    start = np.zeros(n) if start_s is None else _check_nonneg("start_s", start_s, n)
    finish = np.full(n, np.nan)
    rem = size.copy()
    order = np.argsort(start, kind="stable")
    nxt = 0
    active = np.zeros(0, dtype=np.int64)
    t = 0.0
    events = 0
    while True:
        # admit every flow that has started by now; empty flows finish on arrival
        hi = int(np.searchsorted(start[order], t * (1 + rtol), side="right"))
        if hi > nxt:
            new = order[nxt:hi]
            nxt = hi
            empty = size[new] == 0
            finish[new[empty]] = start[new[empty]]
            active = np.concatenate([active, new[~empty]])
        if not len(active):
            if nxt == n:
                break
            t = float(start[order[nxt]])
            continue
        events += 1
        rates = fill(a[:, active], c)[0]
        stuck = rates <= 0
        if stuck.any():                           # held at 0 on a zero-capacity link: never finishes
            finish[active[stuck]] = np.inf
            active, rates = active[~stuck], rates[~stuck]
            if not len(active):
                continue
        with np.errstate(divide="ignore"):
            left = rem[active] / rates           # time to finish at the current rates
        t_start = float(start[order[nxt]]) if nxt < n else np.inf
        dt = min(float(left.min()), t_start - t)
        t_new = t + dt
        done = t + left <= t_new * (1 + rtol) + 0.0
        finish[active[done]] = t + left[done]
        active, rates = active[~done], rates[~done]       # flows left run on at finite rates
        rem[active] -= rates * dt
        t = t_new
    if return_info:
        return finish, {"events": events}
    return finish


@dataclass
class PhaseResult:
    """One phase timed on a fabric.

    Attributes
    ----------
    time_s : float
        Completion time of the phase: the largest flow time (0 without flows).
    flow_time_s : ndarray
        Per flow: fluid finish (or alpha-beta transfer) plus path latency.
    src, dst : ndarray of int
        GPU ranks of the flows (the nonzero off-diagonal demand entries, row-major).
    size_B : ndarray
        Bytes of every flow.
    rate_Bps : ndarray
        Every flow's rate at the start of the phase (max-min), or its
        bottleneck rate (alpha-beta).
    link_bytes : ndarray, shape (n_edges,)
        Bytes every directed edge carries in the phase.
    link_utilization : ndarray, shape (n_edges,)
        ``link_bytes / (capacity * time_s)``: mean utilization over the phase.
    fidelity, routing : str
    routes : Routes
    """

    time_s: float
    flow_time_s: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    size_B: np.ndarray
    rate_Bps: np.ndarray
    link_bytes: np.ndarray
    link_utilization: np.ndarray
    fidelity: str
    routing: str
    routes: Routes = field(repr=False)

    @property
    def n_flows(self) -> int:
        return len(self.src)


def flows_from_demand(demand, n_gpus: int | None = None):
    """The flows of a demand matrix: ``(src, dst, size_B)`` of its nonzero
    off-diagonal entries in row-major order.

    Raises
    ------
    FlowError
        Not a square matrix of ``n_gpus`` ranks, or a negative or non-finite entry
        (the message names it).
    """
    m = sp.csr_matrix(demand, dtype=np.float64) if (sp.issparse(demand) or np.ndim(demand) == 2) else None
    if m is None or m.shape[0] != m.shape[1]:
        raise FlowError(f"demand: expected a square N x N matrix over GPU ranks, got shape {np.shape(demand)}")
    if n_gpus is not None and m.shape[0] != n_gpus:
        raise FlowError(f"demand: is {m.shape[0]} x {m.shape[1]} but the fabric has {n_gpus} GPUs")
    m = m.copy()
    m.sum_duplicates()
    coo = m.tocoo()
    r, c, v = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    bad = np.flatnonzero(~(np.isfinite(v) & (v >= 0)))
    if len(bad):
        k = int(bad[0])
        raise FlowError(f"demand[{int(r[k])}, {int(c[k])}]: {float(v[k])!r} bytes is out of range, allowed [0, inf)")
    keep = (v > 0) & (r != c)
    r, c, v = r[keep], c[keep], v[keep]
    o = np.lexsort((c, r))
    return r[o], c[o], v[o]


def _check_choice(name, value, allowed):
    checks.choice(name, value, allowed, error=FlowError)


def _time_flows(fabric: Fabric, routes: Routes, size: np.ndarray, fidelity: str, routing: str,
                src, dst) -> PhaseResult:
    c = fabric.capacity_Bps
    A = routes.incidence
    if fidelity == "max-min":
        finish = completion_times(A, c, size)
        rate = max_min_fair(A, c) if len(size) else np.zeros(0)
        ft = finish + routes.latency_s
    else:
        ft = alpha_beta_time(routes, c, size)
        rate = bottleneck_Bps(routes, c)
    T = float(ft.max()) if len(ft) else 0.0
    lb = A @ size if len(size) else np.zeros(fabric.n_edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(lb > 0, lb / (c * T), 0.0) if T > 0 else np.zeros(fabric.n_edges)
    return PhaseResult(T, ft, src, dst, size, rate, lb, util, fidelity, routing, routes)


def phase_time(fabric: Fabric, demand, *, routing: str = "ecmp", fidelity: str = "max-min",
               gpu_forwarding: bool | None = None, routes: Routes | None = None) -> PhaseResult:
    """Time one phase of traffic on a fabric.

    Parameters
    ----------
    fabric : Fabric
        With circuits applied, for an OCS fabric.
    demand : (N, N) sparse or dense matrix
        Bytes from GPU rank i to rank j; N = ``fabric.n_gpus``.
    routing : {"shortest", "ecmp"}
    fidelity : {"max-min", "alpha-beta"}
        Congestion-aware fluid max-min, or congestion-unaware alpha-beta.
    gpu_forwarding : bool, optional
        See :func:`ocsnet.flow.route`.
    routes : Routes, optional
        Routes of exactly these flows (``flows_from_demand`` order), e.g. from
        :func:`ocsnet.flow.route_paths`; then ``routing`` is ignored.

    Returns
    -------
    PhaseResult

    Raises
    ------
    FlowError
        A bad demand matrix, an unknown routing or fidelity, routes that do
        not match the flows, or a flow with no path.

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.fabric import Fabric
    >>> two = Fabric(["gpu", "gpu"], [0, 1], [1, 0], 1e9, 1e-6, "cpo")
    >>> phase_time(two, np.array([[0, 1e9], [0, 0]])).time_s    # 1 s of bytes + 1 us
    1.000001
    """
    if not isinstance(fabric, Fabric):
        raise FlowError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    _check_choice("fidelity", fidelity, FIDELITIES)
    if routes is None:
        _check_choice("routing", routing, METHODS)
    s, d, size = flows_from_demand(demand, fabric.n_gpus)
    if routes is None:
        routes = route(fabric, s, d, method=routing, gpu_forwarding=gpu_forwarding)
    elif routes.n_flows != len(s) or not (np.array_equal(routes.src, s) and np.array_equal(routes.dst, d)):
        raise FlowError(f"routes: they route {routes.n_flows} flows that differ from the demand's "
                        f"{len(s)} nonzero entries (row-major order)")
    return _time_flows(fabric, routes, size, fidelity, routes.method, s, d)


@dataclass
class TraceResult:
    """A trace timed on a fabric: phase ``p`` starts ``gap_s[p]`` after phase ``p-1`` ends.

    Attributes
    ----------
    phase_start_s, phase_time_s, phase_end_s : ndarray, shape (P,)
    makespan_s : float
        End of the last phase (the sum of gaps and phase times).
    labels : list of str
    phases : list of PhaseResult or None
        Per phase, when ``keep_phases`` was set (phases with the same matrix
        object share one result).
    """

    phase_start_s: np.ndarray
    phase_time_s: np.ndarray
    phase_end_s: np.ndarray
    makespan_s: float
    labels: list
    phases: list | None = field(default=None, repr=False)


def trace_time(fabric: Fabric, trace, *, routing: str = "ecmp", fidelity: str = "max-min",
               gpu_forwarding: bool | None = None, keep_phases: bool = False) -> TraceResult:
    """Time a trace (phases with compute gaps) on a fabric, phase after phase.

    Parameters
    ----------
    fabric : Fabric
    trace : ocsnet.traffic.Trace
        Or any object with ``demand`` (list of N x N matrices) and ``gap_s``.
    routing, fidelity, gpu_forwarding
        As in :func:`phase_time`.
    keep_phases : bool
        Keep every phase's :class:`PhaseResult`.

    Returns
    -------
    TraceResult

    Notes
    -----
    Every distinct pair is routed once for the whole trace, and phases that
    hold the same matrix object (a trace's repeated layers) are timed once.
    """
    _check_choice("fidelity", fidelity, FIDELITIES)
    _check_choice("routing", routing, METHODS)
    demand = list(getattr(trace, "demand", []))
    P = len(demand)
    gap = _check_nonneg("gap_s", getattr(trace, "gap_s", np.zeros(P)), P, "phase")
    labels = list(getattr(trace, "labels", None) or [f"phase {p}" for p in range(P)])
    # distinct matrix objects, and the flows of each
    pos: dict[int, int] = {}
    uniq = []
    idx = np.empty(P, dtype=np.int64)
    for p, m in enumerate(demand):
        i = pos.get(id(m))
        if i is None:
            i = pos[id(m)] = len(uniq)
            uniq.append(m)
        idx[p] = i
    flows = []
    first = np.unique(idx, return_index=True)[1] if P else np.zeros(0, np.int64)
    for p_first, m in zip(first.tolist(), uniq):
        try:
            flows.append(flows_from_demand(m, fabric.n_gpus))
        except FlowError as e:
            raise FlowError(f"phase {p_first}: {e}") from None
    # route every distinct pair once
    n = fabric.n_gpus
    keys = np.unique(np.concatenate([f[0] * n + f[1] for f in flows])) if flows else np.zeros(0, np.int64)
    all_routes = route(fabric, keys // n, keys % n, method=routing, gpu_forwarding=gpu_forwarding)
    results = []
    for s, d, size in flows:
        sub = all_routes.subset(np.searchsorted(keys, s * n + d))
        results.append(_time_flows(fabric, sub, size, fidelity, routing, s, d))
    ptime = np.array([results[i].time_s for i in idx]) if P else np.zeros(0)
    start = np.zeros(P)
    end = np.zeros(P)
    t = 0.0
    for p in range(P):                      # a running sum: phase p waits for p-1 and its gap
        start[p] = t + gap[p]
        end[p] = t = start[p] + ptime[p]
    return TraceResult(start, ptime, end, float(t), labels,
                       [results[i] for i in idx] if keep_phases else None)
