"""Checks: links above capacity, and flows or phases that miss a bandwidth, latency or time budget.

Stage 5 of the pipeline (flow model).  :func:`check_flows` checks given
flows and rates (e.g. rates from an external schedule, or the rates a naive
loading asks for); :func:`check_phase` times a phase and checks it;
:func:`check_trace` does every phase of a trace.  All return a
:class:`CheckReport` with ``.ok``, ``.failures`` (one dict per violation,
SI values under unit-suffixed keys), a readable :meth:`CheckReport.table`
and deterministic :meth:`CheckReport.to_json`.

Conventions: a link is above capacity when its load exceeds
``capacity * (1 + rtol)``; a flow misses its bandwidth budget when its rate
is below ``budget * (1 - rtol)``; a flow's latency is its path latency plus,
when sizes are known, its bytes over its rate (the time to deliver it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..jsonable import jsonable
from ..errors import FlowError
from ..fabric import Fabric
from ..tables import format_table
from .fluid import FIDELITIES, PhaseResult, phase_time, trace_time
from .maxmin import max_min_fair
from .routing import Routes

__all__ = ["CheckReport", "check_flows", "check_phase", "check_trace", "CHECKS"]

#: The kinds of failure a report can hold, with the SI unit of their values.
CHECKS = {"link_capacity": "Bps", "flow_bandwidth": "Bps", "flow_latency": "s", "phase_time": "s"}
_TITLES = {"link_capacity": "links above capacity", "flow_bandwidth": "flows below their bandwidth budget",
           "flow_latency": "flows above their latency budget", "phase_time": "phases above their time budget"}
_RTOL = 1e-9


@dataclass
class CheckReport:
    """The outcome of a check.

    Attributes
    ----------
    failures : list of dict
        One per violation: ``check`` (a key of :data:`CHECKS`), ``subject``
        (readable), ``index`` (link id, flow index or phase index) and the
        measured ``value_<unit>`` with its ``limit_<unit>`` (SI units:
        ``Bps`` or ``s``).  Links also give ``utilization``.
    link_utilization : ndarray
        Load over capacity of every directed edge.
    link_labels : list of str
        ``"src -> dst"`` of every edge, for tables.
    checked : dict
        What was checked: ``links``, ``flows``, ``phases`` and the budgets.
    """

    failures: list = field(default_factory=list)
    link_utilization: np.ndarray = field(default_factory=lambda: np.zeros(0))
    link_labels: list = field(default_factory=list, repr=False)
    checked: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def of(self, check: str) -> list:
        """The failures of one kind."""
        return [f for f in self.failures if f["check"] == check]

    def busiest(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` edges with the highest utilization, as (label, utilization); ties by edge id."""
        u = self.link_utilization
        if not len(u):
            return []
        top = np.lexsort((np.arange(len(u)), -u))[:k]
        return [(self.link_labels[i] if self.link_labels else str(i), float(u[i])) for i in top]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "n_failures": len(self.failures), "checked": self.checked,
                "failures": self.failures,
                "max_link_utilization": float(self.link_utilization.max()) if len(self.link_utilization) else 0.0}

    def to_json(self) -> str:
        """The report as JSON: sorted keys, SI values under unit-suffixed names; byte-identical for equal reports."""
        return json.dumps(jsonable(self.to_dict()), sort_keys=True, indent=1, allow_nan=False)

    def table(self, max_rows: int = 10) -> str:
        """A readable summary, one section per kind of failure, units in the headers."""
        lines = [f"checks: {'OK' if self.ok else f'{len(self.failures)} failure(s)'}  "
                 f"({', '.join(f'{k}: {v}' for k, v in self.checked.items() if isinstance(v, int))})"]
        for check in CHECKS:
            fs = self.of(check)
            if not fs:
                continue
            lines.append(f"{_TITLES[check]}: {len(fs)}")
            if check == "link_capacity":
                head = ["link", "load_GBps", "capacity_GBps", "utilization_%"]
                rows = [[f["subject"], _g(f["value_Bps"] / 1e9), _g(f["limit_Bps"] / 1e9),
                         _g(100 * f["utilization"])] for f in fs[:max_rows]]
            elif check == "flow_bandwidth":
                head = ["flow", "rate_GBps", "budget_GBps"]
                rows = [[f["subject"], _g(f["value_Bps"] / 1e9), _g(f["limit_Bps"] / 1e9)] for f in fs[:max_rows]]
            elif check == "flow_latency":
                head = ["flow", "latency_us", "budget_us"]
                rows = [[f["subject"], _g(f["value_s"] * 1e6), _g(f["limit_s"] * 1e6)] for f in fs[:max_rows]]
            else:
                head = ["phase", "time_us", "budget_us"]
                rows = [[f["subject"], _g(f["value_s"] * 1e6), _g(f["limit_s"] * 1e6)] for f in fs[:max_rows]]
            lines.append(format_table(head, rows, align="lr", indent="  "))
            if len(fs) > max_rows:
                lines.append(f"  ... and {len(fs) - max_rows} more")
        return "\n".join(lines)


def _g(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x:.4g}"


def _edge_labels(fabric: Fabric) -> list[str]:
    lab = [fabric.label(i) for i in range(fabric.n_nodes)]
    return [f"{lab[u]} -> {lab[v]}" for u, v in zip(fabric.src.tolist(), fabric.dst.tolist())]


def _budget(name: str, value, n: int, unit_parse) -> np.ndarray | None:
    """A budget given as a number (SI), a unit string, or one value per item; None if not given."""
    if value is None:
        return None
    if isinstance(value, str):
        value = unit_parse(value, name)
    b = np.broadcast_to(np.asarray(value, dtype=float), (n,)) if np.ndim(value) == 0 else np.asarray(value, float)
    if b.shape != (n,):
        raise FlowError(f"{name}: expected one value or {n} (one per item), got shape {b.shape}")
    bad = np.flatnonzero(~(b >= 0))
    if len(bad):
        raise FlowError(f"{name}[{int(bad[0])}]: {float(b[bad[0]])!r} is out of range, allowed [0, inf]")
    return b


def _flow_label(routes: Routes, f: int, prefix: str = "") -> str:
    return f"{prefix}flow {f} (gpu{int(routes.src[f])} -> gpu{int(routes.dst[f])})"


def _flow_failures(routes: Routes, rates, size, bw_budget, lat_budget, prefix="", phase=None) -> list:
    out = []
    where = {} if phase is None else {"phase": int(phase)}
    if bw_budget is not None:
        for f in np.flatnonzero(rates < bw_budget * (1 - _RTOL)).tolist():
            out.append({"check": "flow_bandwidth", "subject": _flow_label(routes, f, prefix), "index": f,
                        "value_Bps": float(rates[f]), "limit_Bps": float(bw_budget[f]), **where})
    if lat_budget is not None:
        lat = routes.latency_s.copy()
        if size is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                lat = lat + np.where(size > 0, size / rates, 0.0)
        for f in np.flatnonzero(lat > lat_budget * (1 + _RTOL)).tolist():
            out.append({"check": "flow_latency", "subject": _flow_label(routes, f, prefix), "index": f,
                        "value_s": float(lat[f]), "limit_s": float(lat_budget[f]), **where})
    return out


def _link_failures(load, cap, labels) -> list:
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(load > 0, load / cap, 0.0)
    out = []
    over = np.flatnonzero(load > cap * (1 + _RTOL))
    over = over[np.lexsort((over, -util[over]))]          # most loaded first, ties by edge id
    for e in over.tolist():
        out.append({"check": "link_capacity", "subject": labels[e], "index": e, "value_Bps": float(load[e]),
                    "limit_Bps": float(cap[e]), "utilization": float(util[e])})
    return out


def check_flows(fabric: Fabric, routes: Routes, rates_Bps=None, *, size_B=None,
                bandwidth_budget_Bps=None, latency_budget_s=None) -> CheckReport:
    """Check routed flows at given rates against link capacities and per-flow budgets.

    Parameters
    ----------
    fabric : Fabric
    routes : Routes
        The flows (from :func:`ocsnet.flow.route` or :func:`ocsnet.flow.route_paths`).
    rates_Bps : array, optional
        Rate of every flow, e.g. from an external schedule, or the rate a
        naive loading asks for (bytes over the time allowed).  Default: the
        max-min fair rates (which never exceed a capacity).
    size_B : array, optional
        Bytes of every flow; with them a flow's latency includes its delivery time.
    bandwidth_budget_Bps, latency_budget_s : float, str or array, optional
        Minimum rate and maximum latency of every flow (``"100GBps"``,
        ``"10us"`` or SI numbers; one value or one per flow).

    Returns
    -------
    CheckReport

    Raises
    ------
    FlowError
        Arrays of the wrong length or negative budgets.

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.fabric import Fabric
    >>> from ocsnet.flow import route
    >>> two = Fabric(["gpu", "gpu"], [0, 1], [1, 0], 1e9, 1e-6, "cpo")
    >>> r = route(two, [0, 0], [1, 1])
    >>> rep = check_flows(two, r, [0.8e9, 0.4e9])
    >>> rep.ok, rep.failures[0]["subject"]
    (False, 'gpu0 -> gpu1')
    """
    n = routes.n_flows
    if routes.n_edges != fabric.n_edges:
        raise FlowError(f"routes: have {routes.n_edges} edges but the fabric has {fabric.n_edges}")
    c = fabric.capacity_Bps
    rates = max_min_fair(routes.incidence, c) if rates_Bps is None else np.asarray(rates_Bps, dtype=float)
    if rates.shape != (n,):
        raise FlowError(f"rates_Bps: expected {n} entries (one per flow), got shape {rates.shape}")
    bad = np.flatnonzero(~(rates >= 0))
    if len(bad):
        raise FlowError(f"rates_Bps[{int(bad[0])}] (flow {int(bad[0])}): {float(rates[bad[0]])!r} is out of range, allowed [0, inf]")
    size = None if size_B is None else _budget("size_B", size_B, n, units.parse_bytes)
    bw = _budget("bandwidth_budget_Bps", bandwidth_budget_Bps, n, units.parse_bandwidth)
    lat = _budget("latency_budget_s", latency_budget_s, n, units.parse_time)
    load = routes.incidence @ np.where(np.isfinite(rates), rates, 0.0)
    labels = _edge_labels(fabric)
    fails = _link_failures(load, c, labels) + _flow_failures(routes, rates, size, bw, lat)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(load > 0, load / c, 0.0)
    checked = {"links": fabric.n_edges, "flows": n, **_budgets_checked(bw, lat, None)}
    return CheckReport(fails, util, labels, checked)


def _budgets_checked(bw, lat, tm) -> dict:
    out = {}
    for key, b in (("bandwidth_budget_Bps", bw), ("latency_budget_s", lat), ("time_budget_s", tm)):
        if b is not None and len(b):
            out[key] = float(b[0]) if np.all(b == b[0]) else "per item"
    return out


def check_phase(fabric: Fabric, demand, *, routing: str = "ecmp", fidelity: str = "max-min",
                bandwidth_budget_Bps=None, latency_budget_s=None, time_budget_s=None,
                gpu_forwarding: bool | None = None, result: PhaseResult | None = None) -> CheckReport:
    """Time a phase and check it: the phase time, every flow's rate and latency, and
    the links that could not carry the phase within its time budget.

    Parameters
    ----------
    fabric : Fabric
    demand : (N, N) matrix
        Bytes between GPU ranks (see :func:`ocsnet.flow.phase_time`).
    routing, fidelity, gpu_forwarding
        As in :func:`ocsnet.flow.phase_time`.
    bandwidth_budget_Bps, latency_budget_s : float or str, optional
        Per-flow budgets: the flow's rate at the start of the phase, and its
        time to deliver (its flow time in the phase).
    time_budget_s : float or str, optional
        Time allowed for the phase.  Links are then also loaded naively with
        the rate every flow needs to finish in time (bytes over the budget);
        every link that this loading puts above capacity is reported.
    result : PhaseResult, optional
        An already computed :func:`ocsnet.flow.phase_time` of this demand.

    Returns
    -------
    CheckReport
        ``link_utilization`` is the phase's mean utilization.
    """
    if fidelity not in FIDELITIES:
        raise FlowError(f"fidelity: {fidelity!r} is not one of {', '.join(FIDELITIES)}")
    res = result if result is not None else phase_time(fabric, demand, routing=routing, fidelity=fidelity,
                                                       gpu_forwarding=gpu_forwarding)
    return _check_result(fabric, res, bandwidth_budget_Bps, latency_budget_s, time_budget_s, _edge_labels(fabric))


def _check_result(fabric, res: PhaseResult, bw_budget, lat_budget, time_budget, labels, phase=None, label=None):
    n = res.n_flows
    bw = _budget("bandwidth_budget_Bps", bw_budget, n, units.parse_bandwidth)
    lat = _budget("latency_budget_s", lat_budget, n, units.parse_time)
    tb = _budget("time_budget_s", time_budget, 1, units.parse_time)
    prefix = "" if phase is None else f"phase {phase} "
    fails = []
    if tb is not None and n:
        with np.errstate(divide="ignore"):
            need = res.size_B / tb[0] if tb[0] > 0 else np.full(n, np.inf)
        load = res.routes.incidence @ need
        fails += _link_failures(load, fabric.capacity_Bps, labels)
    fails += _flow_failures(res.routes, res.rate_Bps, None, bw, None, prefix, phase)
    if lat is not None:
        for f in np.flatnonzero(res.flow_time_s > lat * (1 + _RTOL)).tolist():
            fails.append({"check": "flow_latency", "subject": _flow_label(res.routes, f, prefix), "index": f,
                          "value_s": float(res.flow_time_s[f]), "limit_s": float(lat[f]),
                          **({} if phase is None else {"phase": int(phase)})})
    if tb is not None and res.time_s > tb[0] * (1 + _RTOL):
        fails.append({"check": "phase_time", "subject": (label or "phase") if phase is None else f"{phase}: {label}",
                      "index": 0 if phase is None else int(phase), "value_s": float(res.time_s),
                      "limit_s": float(tb[0])})
    checked = {"links": fabric.n_edges, "flows": n, "phases": 1, **_budgets_checked(bw, lat, tb)}
    return CheckReport(fails, res.link_utilization, labels, checked)


def check_trace(fabric: Fabric, trace, *, routing: str = "ecmp", fidelity: str = "max-min",
                bandwidth_budget_Bps=None, latency_budget_s=None, time_budget_s=None,
                gpu_forwarding: bool | None = None, result=None) -> CheckReport:
    """Check every phase of a trace (see :func:`check_phase`); budgets apply to every phase.

    ``time_budget_s`` may also give one value per phase.  The report's
    ``link_utilization`` is, per edge, the largest mean utilization over the
    phases.  Phases holding the same matrix object are checked once.
    ``result`` is an already computed ``trace_time(..., keep_phases=True)``.
    """
    res = result
    if res is None or res.phases is None:
        res = trace_time(fabric, trace, routing=routing, fidelity=fidelity, gpu_forwarding=gpu_forwarding,
                         keep_phases=True)
    P = len(res.phase_time_s)
    tb = _budget("time_budget_s", time_budget_s, P, units.parse_time)
    labels = _edge_labels(fabric)
    fails: list = []
    util = np.zeros(fabric.n_edges)
    seen: dict[tuple, CheckReport] = {}
    n_flows = 0
    for p, ph in enumerate(res.phases):
        key = (id(ph), None if tb is None else float(tb[p]))
        rep = seen.get(key)
        if rep is None:
            rep = seen[key] = _check_result(fabric, ph, bandwidth_budget_Bps, latency_budget_s,
                                            None if tb is None else tb[p], labels, p, res.labels[p])
            np.maximum(util, rep.link_utilization, out=util)
            n_flows += ph.n_flows
            fails += rep.failures
        elif rep.failures:                    # a repeated phase fails the same way: report it under its index
            fails += [{**f, "phase": p, **({"index": p, "subject": f"{p}: {res.labels[p]}"}
                                          if f["check"] == "phase_time" else {})} for f in rep.failures]
    checked = {"links": fabric.n_edges, "flows": n_flows, "phases": P,
               **_budgets_checked(_budget("bandwidth_budget_Bps", bandwidth_budget_Bps, 1, units.parse_bandwidth),
                                  _budget("latency_budget_s", latency_budget_s, 1, units.parse_time), tb)}
    return CheckReport(fails, util, labels, checked)
