"""The flow model (stage 5): routing, max-min rates, completion times, latency and checks.

Given a fabric (with circuits applied, for an OCS fabric) and flows between
GPU ranks, :func:`route` builds the sparse link-by-flow incidence matrix,
:func:`max_min_fair` computes max-min fair rates, :func:`completion_times`
runs a fluid simulation over them, and :func:`phase_time` /
:func:`trace_time` time a phase or a trace with either fidelity
(``"max-min"`` or ``"alpha-beta"``).  :func:`transfer_time` is the
congestion-free point-to-point time, and :func:`check_phase` and friends
report links above capacity and flows or phases over budget.
"""

from ..lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "collective_time": "collective", "group_routes": "collective", "best_algorithm": "collective",
    "route": "routing", "Routes": "routing", "gpus_forward": "routing", "METHODS": "names",
    "UNREACHABLE": "names", "route_dor": "torus",
    "route_paths": "paths",
    "max_min_fair": "maxmin",
    "completion_times": "fluid", "phase_time": "fluid", "trace_time": "fluid", "flows_from_demand": "fluid",
    "PhaseResult": "fluid", "TraceResult": "fluid", "FIDELITIES": "names",
    "transfer_time": "latency", "alpha_beta_time": "latency", "bottleneck_Bps": "latency",
    "check_flows": "checks", "check_phase": "checks", "check_trace": "checks", "CheckReport": "checks",
    "CHECKS": "checks",
    "pattern_demand": "patterns", "pattern_flows": "patterns", "PATTERNS": "names",
})
