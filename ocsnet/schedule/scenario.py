"""Scheduling scenarios: TOML files in ``schedules/`` naming a fabric, a workload and OCS parameters.

Stage 4 of the pipeline (``ocsnet.schedule``); the CLI and the benchmarks
build :class:`~ocsnet.schedule.problem.OCSProblem` instances from them.  A
scenario::

    description = "Llama3-405B decode, TP=16 over a 10 us OCS"

    [fabric]                       # a named topology spec ...
    spec = "lite-ocs"
    # ... or inline ocs_fabric parameters:
    # n_gpus = 1024
    # ports_per_gpu = 8
    # ocs = "fast-ocs"             # mems-3d | fast-ocs | ns-ocs
    # gpu = "lite-base"

    [workload]                     # a model step (ocsnet.traffic.build_trace) ...
    model = "llama3-405b"
    mode = "decode"                # prefill | decode | train
    plan = { tp = 16, pp = 4, dp = 16 }
    batch = 64
    context = 4096                 # decode; prefill takes seq_len
    algorithms = { all-reduce = "ring" }

    # ... or a synthetic pattern, which needs no workload model:
    # [synthetic]
    # pattern = "ring"             # ring | bidirectional-ring | all-to-all | permutation | random
    # n_gpus = 64
    # group = 16
    # phases = 60
    # message_MB = 1.0             # bytes per pair per phase
    # gap_us = 5.0
    # seed = 0

    [ocs]                          # optional overrides of the fabric's OCS
    reconfig_delay_us = 10
    ports_per_gpu = 8
    circuit_bandwidth_GBps = 100
    packet_bandwidth_GBps = 0      # a packet fallback network (0 = none)
    partial_reconfig = false

    [solve]                        # optional defaults for `ocsnet schedule solve`
    method = "heuristic"
    time_limit_s = 10
    max_slots_per_phase = 8
    bound = "best"                 # best | design (the docs/design.md bound only: cheap on long traces)

Parsing is strict: an unknown key, a missing required key, a value of the
wrong type or out of range raises :class:`~ocsnet.errors.SpecError` naming it.

Multi-level OCS wiring.  When the GPUs do not fit one OCS, the fabric's
planes are split into levels (:mod:`ocsnet.topology.optical`) and a pair can
only use the planes of its level.  The problem model has one port budget per
GPU, so a scenario on such a fabric schedules ``min(planes_per_level)``
ports per GPU by default (every configuration within that budget is
realizable on any level) and passes the fabric's allowed pairs; ``ports_per_gpu``
overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import folders, units
from ..errors import OcsnetError, ScheduleError, SpecError

__all__ = ["Scenario", "load_scenario", "list_scenarios", "build_problem", "synthetic_demand",
           "PATTERNS"]

PATTERNS = ("ring", "bidirectional-ring", "all-to-all", "permutation", "random")

_TOP = {"description": str, "fabric": dict, "workload": dict, "synthetic": dict, "ocs": dict, "solve": dict}
_FABRIC = {"spec": str, "n_gpus": int, "ports_per_gpu": int, "ocs": str, "gpu": str, "link": str,
           "port_GBps": float}
_WORKLOAD = {"model": str, "mode": str, "plan": dict, "batch": int, "seq_len": int, "context": int,
             "algorithms": dict, "placement": str, "micro_batches": int, "schedule": str, "dtype_bytes": float}
_WORKLOAD_REQUIRED = ("model", "mode", "plan", "batch")
_PLAN = {"tp": int, "pp": int, "dp": int, "ep": int, "sp": bool}
_SYNTHETIC = {"pattern": str, "n_gpus": int, "group": int, "phases": int, "message_MB": float, "gap_us": float,
              "density": float, "seed": int}
_SYNTHETIC_REQUIRED = ("pattern", "n_gpus", "phases", "message_MB")
_OCS = {"reconfig_delay_us": float, "ports_per_gpu": int, "circuit_bandwidth_GBps": float,
        "packet_bandwidth_GBps": float, "partial_reconfig": bool}
_SOLVE = {"method": str, "time_limit_s": float, "max_slots_per_phase": int, "bound": str}


@dataclass
class Scenario:
    """A parsed scenario file (see the module docstring)."""

    name: str
    description: str
    fabric: dict
    workload: dict | None = None
    synthetic: dict | None = None
    ocs: dict = field(default_factory=dict)
    solve: dict = field(default_factory=dict)
    path: Path | None = None


def list_scenarios() -> list[str]:
    """Names of the scenarios, built-in (``schedules/``) and from user folders, sorted."""
    return folders.names("schedules")


def _check_table(where: str, table: dict, schema: dict, required=()) -> dict:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table")
    for k, v in table.items():
        if k not in schema:
            raise SpecError(f"{where}.{k}: unknown key; allowed: {', '.join(schema)}")
        want = schema[k]
        ok = (isinstance(v, want) and not (want is int and isinstance(v, bool))) or \
             (want is float and isinstance(v, int) and not isinstance(v, bool))
        if not ok:
            raise SpecError(f"{where}.{k}: expected {want.__name__}, got {type(v).__name__} {v!r}")
        if want in (int, float) and v < 0:
            raise SpecError(f"{where}.{k}: {v!r} is out of range, allowed [0, inf)")
    for k in required:
        if k not in table:
            raise SpecError(f"{where}: missing required key {k!r}")
    return dict(table)


def load_scenario(name_or_path) -> Scenario:
    """Read and check a scenario by name (``schedules/<name>.toml``) or path.

    Raises
    ------
    SpecError
        No such scenario, bad TOML, an unknown or missing key, a wrong type or range.
    """
    f = folders.find("schedules", name_or_path, "scenario")
    path = f.path
    data = f.read_toml(f"scenario {path.name}")
    where = f.name
    for k in data:
        if k not in _TOP:
            raise SpecError(f"{where}.{k}: unknown key; allowed: {', '.join(_TOP)}")
    for k in ("description", "fabric"):
        if k not in data:
            raise SpecError(f"{where}: missing required key {k!r}")
    if not isinstance(data["description"], str):
        raise SpecError(f"{where}.description: expected a string")
    fab = _check_table(f"{where}.fabric", data["fabric"], _FABRIC)
    if "spec" in fab and len(fab) > 1:
        raise SpecError(f"{where}.fabric: give either spec or inline ocs_fabric parameters, not both "
                        f"(found {', '.join(k for k in fab if k != 'spec')})")
    if "spec" not in fab:
        for k in ("n_gpus", "ports_per_gpu"):
            if k not in fab:
                raise SpecError(f"{where}.fabric: missing required key {k!r} (or give spec)")
    has_w, has_s = "workload" in data, "synthetic" in data
    if has_w == has_s:
        raise SpecError(f"{where}: give exactly one of [workload] and [synthetic]")
    workload = synthetic = None
    if has_w:
        workload = _check_table(f"{where}.workload", data["workload"], _WORKLOAD, _WORKLOAD_REQUIRED)
        _check_table(f"{where}.workload.plan", workload["plan"], _PLAN)
        if "algorithms" in workload:
            for k, v in workload["algorithms"].items():
                if not isinstance(v, str):
                    raise SpecError(f"{where}.workload.algorithms.{k}: expected a string")
    else:
        synthetic = _check_table(f"{where}.synthetic", data["synthetic"], _SYNTHETIC, _SYNTHETIC_REQUIRED)
        if synthetic["pattern"] not in PATTERNS:
            raise SpecError(f"{where}.synthetic.pattern: {synthetic['pattern']!r} is not one of {', '.join(PATTERNS)}")
        if synthetic["n_gpus"] < 2 or synthetic["phases"] < 1:
            raise SpecError(f"{where}.synthetic: n_gpus must be >= 2 and phases >= 1")
        if "density" in synthetic and not 0 < synthetic["density"] <= 1:
            raise SpecError(f"{where}.synthetic.density: {synthetic['density']!r} is out of range, allowed (0, 1]")
    ocs = _check_table(f"{where}.ocs", data.get("ocs", {}), _OCS)
    if ocs.get("ports_per_gpu", 1) < 1:
        raise SpecError(f"{where}.ocs.ports_per_gpu: {ocs['ports_per_gpu']!r} is out of range, allowed [1, inf)")
    if ocs.get("circuit_bandwidth_GBps", 1) <= 0:
        raise SpecError(f"{where}.ocs.circuit_bandwidth_GBps: must be > 0")
    solve = _check_table(f"{where}.solve", data.get("solve", {}), _SOLVE)
    from . import METHODS
    if "method" in solve and solve["method"] not in METHODS:
        raise SpecError(f"{where}.solve.method: {solve['method']!r} is not one of {', '.join(METHODS)}")
    if "bound" in solve and solve["bound"] not in ("best", "design"):
        raise SpecError(f"{where}.solve.bound: {solve['bound']!r} is not one of 'best', 'design'")
    return Scenario(name=where, description=data["description"], fabric=fab, workload=workload,
                    synthetic=synthetic, ocs=ocs, solve=solve, path=path)


def synthetic_demand(pattern: str, n_gpus: int, phases: int, message_B: float, *, group: int | None = None,
                     density: float = 0.25, seed: int = 0) -> list:
    """Demand matrices of a synthetic pattern inside groups of ``group`` consecutive GPUs.

    ``ring``: every GPU sends to the next in its group, every phase the same
    matrix (a ring collective's steps).  ``bidirectional-ring``: to both
    neighbours.  ``all-to-all``: to every other GPU of its group.
    ``permutation``: a fresh random permutation inside each group per phase
    (seeded).  ``random``: each pair of a group with probability ``density``,
    uniform bytes in ``[0, 2 * message)`` (seeded).
    """
    n = int(n_gpus)
    G = int(group or n)
    if G < 2 or n % G:
        raise SpecError(f"group: {G} must be >= 2 and divide n_gpus = {n}")
    import scipy.sparse as sp

    g = np.arange(n)
    base = (g // G) * G
    rng = np.random.default_rng(seed)

    def mat(rows, cols, vals):
        M = sp.csr_matrix((np.broadcast_to(np.asarray(vals, float), rows.shape), (rows, cols)), shape=(n, n))
        M.sum_duplicates()
        return M

    if pattern == "ring":
        M = mat(g, base + (g - base + 1) % G, message_B)
        return [M] * phases
    if pattern == "bidirectional-ring":
        M = mat(np.concatenate([g, g]), np.concatenate([base + (g - base + 1) % G, base + (g - base - 1) % G]),
                message_B / 2)
        return [M] * phases
    if pattern == "all-to-all":
        off = np.arange(1, G)
        rows = np.repeat(g, G - 1)
        cols = (base[:, None] + (g[:, None] - base[:, None] + off[None, :]) % G).ravel()
        M = mat(rows, cols, message_B)
        return [M] * phases
    if pattern == "permutation":
        out = []
        for _ in range(phases):
            perm = np.concatenate([k * G + rng.permutation(G) for k in range(n // G)])
            keep = perm != g
            out.append(mat(g[keep], perm[keep], message_B))
        return out
    if pattern == "random":
        out = []
        for _ in range(phases):
            r = np.repeat(g, G)
            c = (base[:, None] + np.arange(G)[None, :]).ravel()
            keep = (rng.random(len(r)) < density) & (r != c)
            out.append(mat(r[keep], c[keep], rng.random(keep.sum()) * 2 * message_B))
        return out
    raise SpecError(f"pattern: {pattern!r} is not one of {', '.join(PATTERNS)}")


def _fabric(sc: Scenario):
    from ..topology import build, ocs_fabric

    f = sc.fabric
    if "spec" in f:
        return build(f["spec"])
    kw = {k: f[k] for k in ("ocs", "gpu", "link") if k in f}
    if "port_GBps" in f:
        kw["port_Bps"] = units.to_si("port_GBps", f["port_GBps"])
    return ocs_fabric(f["n_gpus"], f["ports_per_gpu"], **kw)


def build_problem(scenario: Scenario | str, *, reconfig_delay_s: float | None = None, with_trace: bool = False):
    """The :class:`~ocsnet.schedule.problem.OCSProblem` of a scenario.

    Parameters
    ----------
    scenario : Scenario or str
        A scenario or its name/path.
    reconfig_delay_s : float, optional
        Override the reconfiguration delay (e.g. from the CLI).
    with_trace : bool
        Also return the trace (None for a synthetic scenario).

    Returns
    -------
    OCSProblem, or (OCSProblem, Trace or None) with ``with_trace``.

    Raises
    ------
    SpecError, WorkloadError, ScheduleError
        From the fabric, the workload or the problem, naming the field.
    """
    from .problem import OCSProblem

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    fab = _fabric(sc)
    om = fab.ocs
    if om is None:
        raise SpecError(f"{sc.name}.fabric: {fab.name!r} has no optical circuit switch (fabric.ocs is None)")
    o = sc.ocs
    allowed = None
    ports = o.get("ports_per_gpu")
    note = ""
    if not om.all_to_all:
        from ..topology.circuits import allowed_pairs
        allowed = allowed_pairs(fab)
        if ports is None:
            ports = int(min(om.planes_per_level))
            note = (f"multi-level OCS wiring {list(om.domain_shape)}: scheduling min(planes_per_level) = "
                    f"{ports} ports per GPU so every configuration is realizable")
    kw = dict(
        ports=ports,
        circuit_Bps=units.to_si("circuit_bandwidth_GBps", o["circuit_bandwidth_GBps"])
        if "circuit_bandwidth_GBps" in o else None,
        reconfig_delay_s=reconfig_delay_s if reconfig_delay_s is not None else (
            units.to_si("reconfig_delay_us", o["reconfig_delay_us"]) if "reconfig_delay_us" in o else None),
        packet_Bps=units.to_si("packet_bandwidth_GBps", o["packet_bandwidth_GBps"])
        if "packet_bandwidth_GBps" in o else None,
        partial_reconfig=bool(o.get("partial_reconfig", False)),
        allowed=allowed,
    )
    trace = None
    if sc.workload is not None:
        from ..traffic import build_trace
        from ..workload import ParallelPlan

        w = sc.workload
        plan = ParallelPlan(**w["plan"])
        extra = {k: w[k] for k in ("seq_len", "context", "algorithms", "placement", "micro_batches",
                                   "schedule", "dtype_bytes") if k in w}
        trace = build_trace(w["model"], plan, fab, w["mode"], batch=w["batch"], **extra)
        prob = OCSProblem.from_trace(trace, fab, name=sc.name, **kw)
    else:
        s = sc.synthetic
        if s["n_gpus"] != fab.n_gpus:
            raise SpecError(f"{sc.name}.synthetic.n_gpus: {s['n_gpus']} does not match the fabric's {fab.n_gpus} GPUs")
        demand = synthetic_demand(s["pattern"], s["n_gpus"], s["phases"], units.to_si("message_MB", s["message_MB"]),
                                  group=s.get("group"), density=s.get("density", 0.25), seed=s.get("seed", 0))
        gap = units.to_si("gap_us", s.get("gap_us", 0.0))
        period = (0, 1, s["phases"]) if s["pattern"] in ("ring", "bidirectional-ring", "all-to-all") else None
        pick = {k: v for k, v in kw.items() if v is not None}
        ports = pick.pop("ports", om.ports_per_gpu)
        b = pick.pop("circuit_Bps", om.circuit_Bps)
        delta = pick.pop("reconfig_delay_s", om.reconfig_delay_s)
        try:
            prob = OCSProblem(demand, np.full(s["phases"], gap), ports, b, delta, name=sc.name, period=period,
                              meta={"fabric": fab.name}, **pick)
        except OcsnetError:
            raise
        except (TypeError, ValueError) as e:  # pragma: no cover - defensive
            raise ScheduleError(f"{sc.name}: {e}") from None
    prob.meta["scenario"] = sc.name
    if note:
        prob.meta["note"] = note
    return (prob, trace) if with_trace else prob


def solve_defaults(sc: Scenario) -> dict[str, Any]:
    """The scenario's ``[solve]`` table as keyword arguments of :func:`ocsnet.schedule.solve`."""
    out: dict[str, Any] = {}
    if "method" in sc.solve:
        out["method"] = sc.solve["method"]
    if "time_limit_s" in sc.solve:
        out["time_limit_s"] = float(sc.solve["time_limit_s"])
    if "max_slots_per_phase" in sc.solve:
        out["max_slots_per_phase"] = int(sc.solve["max_slots_per_phase"])
    if "bound" in sc.solve:
        out["bound"] = sc.solve["bound"]
    return out
