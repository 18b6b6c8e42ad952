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

from .collective import best_algorithm, collective_time, group_routes
from .checks import CHECKS, CheckReport, check_flows, check_phase, check_trace
from .fluid import (FIDELITIES, PhaseResult, TraceResult, completion_times, flows_from_demand,
                    phase_time, trace_time)
from .latency import alpha_beta_time, bottleneck_Bps, transfer_time
from .maxmin import max_min_fair
from .patterns import PATTERNS, pattern_demand, pattern_flows
from .paths import route_paths
from .routing import METHODS, UNREACHABLE, Routes, gpus_forward, route
from .torus import route_dor

__all__ = [
    "collective_time", "group_routes", "best_algorithm",
    "route", "route_paths", "route_dor", "Routes", "gpus_forward", "METHODS", "UNREACHABLE",
    "max_min_fair",
    "completion_times", "phase_time", "trace_time", "flows_from_demand", "PhaseResult", "TraceResult",
    "FIDELITIES",
    "transfer_time", "alpha_beta_time", "bottleneck_Bps",
    "check_flows", "check_phase", "check_trace", "CheckReport", "CHECKS",
    "pattern_demand", "pattern_flows", "PATTERNS",
]
