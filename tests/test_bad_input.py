"""Bad input to every public constructor: the library's own error naming the field, never a bare TypeError.

Each case is a public callable, keyword arguments that work, and the fields to
spoil.  Every field gets every value of ``BAD`` (wrong type, wrong shape, NaN,
infinity, empty, negative, fractional...): the call either succeeds (the value
happens to be acceptable) or raises an :class:`~ocsnet.errors.OcsnetError`
whose message starts with a name of the field.  Anything else (TypeError,
IndexError, numpy's own ValueError, ZeroDivisionError...) is a leak.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from ocsnet import checks, hardware
from ocsnet.errors import OcsnetError

BAD = {
    "array": np.array([2, 2]),
    "matrix": np.ones((2, 2)),
    "string": "x",
    "nan": float("nan"),
    "inf": float("inf"),
    "negative": -1,
    "zero": 0,
    "fraction": 2.5,
    "empty-list": [],
    "table": {"a": 1},
    "bool": True,
    "none": None,
    "object": object(),
}


def _ring(n=4, nbytes=8e6):
    return np.roll(np.eye(n), 1, axis=1) * nbytes


def _cases():
    from ocsnet import topology
    from ocsnet.evaluation import evaluate, study_config
    from ocsnet.flow import max_min_fair, phase_time, transfer_time
    from ocsnet.schedule import OCSProblem, solve
    from ocsnet.traffic import build_trace
    from ocsnet.workload import ParallelPlan

    h100 = hardware.gpu("h100-sxm")
    ring = _ring()
    small = topology.build("small-ring")
    problem = OCSProblem([ring, ring.T], gap_s=[1e-3, 1e-3], ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-2)
    return [
        ("OCSProblem", OCSProblem, dict(demand=[ring, ring.T], gap_s=[1e-3, 1e-3], ports=2, circuit_Bps=1e9,
                                        reconfig_delay_s=1e-2),
         ["demand", "gap_s", "ports", "circuit_Bps", "reconfig_delay_s", "packet_Bps", "reserved", "allowed",
          "period", "partial_reconfig", "meta"]),
        ("ParallelPlan", ParallelPlan, dict(tp=2, pp=1), ["tp", "pp", "dp", "ep", "sp"]),
        ("lite_gpu", hardware.lite_gpu, dict(parent=h100), ["parent", "fraction", "io", "network", "clock"]),
        ("gpu", lambda gpu: hardware.gpu(gpu), dict(gpu="h100-sxm"), ["gpu"]),
        ("ocs_fabric", topology.ocs_fabric, dict(n_gpus=8, ports_per_gpu=2),
         ["n_gpus", "ports_per_gpu", "gpu", "ocs", "link", "port_Bps", "domain_shape", "planes_per_level"]),
        ("torus", topology.torus, dict(dims=(4, 4)), ["dims", "gpu", "link"]),
        ("fully_connected", topology.fully_connected, dict(n_gpus=4), ["n_gpus", "gpu", "link"]),
        ("fully_connected_groups", topology.fully_connected_groups, dict(n_gpus=8, group_size=4),
         ["n_gpus", "group_size"]),
        ("fat_tree", topology.fat_tree, dict(k=4), ["k", "gpu", "switch", "link", "host_Bps"]),
        ("leaf_spine", topology.leaf_spine, dict(n_gpus=8, gpus_per_leaf=4),
         ["n_gpus", "gpus_per_leaf", "oversubscription"]),
        ("clos", topology.clos, dict(n_gpus=16), ["n_gpus", "tiers", "radix", "oversubscription"]),
        ("rail_optimized", topology.rail_optimized, dict(n_nodes=2), ["n_nodes", "gpus_per_node", "nodes_per_leaf"]),
        ("dgx_cluster", topology.dgx_cluster, dict(n_nodes=2), ["n_nodes", "gpus_per_node", "nvswitch_chips"]),
        ("hybrid", topology.hybrid, dict(packet=topology.build("small-fat-tree"), ocs_ports_per_gpu=2), ["ocs_ports_per_gpu", "ocs"]),
        ("build", topology.build, dict(spec_or_name="small-ring"), ["spec_or_name"]),
        ("build_trace", build_trace, dict(model="llama3-70b", plan=ParallelPlan(tp=8), fabric=small, mode="decode",
                                          batch=2, context=128, require_fit=False),
         ["model", "plan", "fabric", "mode", "batch", "context", "seq_len", "algorithms", "placement", "gpu",
          "dtype_bytes", "micro_batches"]),
        ("evaluate", evaluate, dict(model="llama3-70b", plan=ParallelPlan(tp=8), fabric=small, mode="decode",
                                    batch=2, context=128, fidelities=("alpha-beta",), fidelity="alpha-beta",
                                    schedule=False),
         ["model", "plan", "fabric", "mode", "batch", "context", "gpu", "algorithms", "fidelity", "overlap",
          "reconfig_delay_s", "latency_budget_s", "dtype_bytes", "schedule_method"]),
        ("solve", solve, dict(problem=problem, method="heuristic"), ["problem", "method", "time_limit_s",
                                                                      "max_slots_per_phase", "bound"]),
        ("max_min_fair", max_min_fair, dict(incidence=np.eye(2), capacity=[1.0, 2.0]),
         ["incidence", "capacity", "demand"]),
        ("phase_time", phase_time, dict(fabric=small, demand=_ring(8)), ["fabric", "demand", "routing", "fidelity"]),
        ("transfer_time", transfer_time, dict(fabric=small, src=[0], dst=[1], nbytes=[1e6]),
         ["fabric", "src", "dst", "nbytes", "routing"]),
        ("study_config", study_config, dict(overrides={"models": ["llama3-70b"]}), ["overrides"]),
    ]


CASES = _cases()


# Values that are valid for the field but make another input invalid (the error names that one).
OTHER_FIELD = {("transfer_time", "src", "matrix"), ("transfer_time", "dst", "zero")}

# Fields whose messages use another name: the spec of topology.build, the study of study_config.
ALIASES = {"spec_or_name": "spec", "overrides": "study"}


def _call(fn, kw):
    try:
        fn(**kw)
    except OcsnetError as e:
        return e
    return None


@pytest.mark.parametrize("label,fn,base,fields", CASES, ids=[c[0] for c in CASES])
def test_base_call_works(label, fn, base, fields):
    assert _call(fn, base) is None


@pytest.mark.parametrize("label,fn,base,fields", CASES, ids=[c[0] for c in CASES])
def test_every_bad_value_gives_the_library_error_naming_the_field(label, fn, base, fields):
    leaks = []
    for field in fields:
        for kind, value in BAD.items():
            kw = dict(base, **{field: value})
            try:
                err = _call(fn, kw)
            except Exception as e:  # noqa: BLE001 - the point of the test
                leaks.append(f"{label}({field}={kind}): {type(e).__name__}: {e}")
                continue
            named = ALIASES.get(field, field)
            if err is not None and named not in str(err) and (label, field, kind) not in OTHER_FIELD:
                leaks.append(f"{label}({field}={kind}): message does not name the field: {err}")
    assert not leaks, "\n".join(leaks)


# -- the checks themselves: one answer for one value, everywhere -----------------------------------

@pytest.mark.parametrize("value,ok", [(4, True), (4.0, True), (np.int64(4), True), (np.float32(4.0), True),
                                      (4.5, False), (True, False), ("4", False), (float("nan"), False),
                                      (float("inf"), False), (np.array([4]), False), (None, False)])
def test_integer_accepts_integral_values_of_any_numeric_type(value, ok):
    if ok:
        assert checks.integer("n", value) == 4 and type(checks.integer("n", value)) is int
    else:
        with pytest.raises(OcsnetError, match=r"^n: "):
            checks.integer("n", value)


def test_optical_and_packet_count_checks_agree():
    """The bug this module fixed: as_int accepted 4.0 and count_param refused it."""
    from ocsnet.topology import fat_tree, ocs_fabric

    assert ocs_fabric(8.0, 2).n_gpus == ocs_fabric(8, 2).n_gpus
    assert fat_tree(4.0).n_gpus == fat_tree(4).n_gpus
    for bad in (8.5, "8", True):
        with pytest.raises(OcsnetError, match="n_gpus"):
            ocs_fabric(bad, 2)
    for bad in (4.5, "4", True):
        with pytest.raises(OcsnetError, match="k"):
            fat_tree(bad)


@pytest.mark.parametrize("fn,kw,match", [
    (checks.number, dict(value=-1, lo=0), r"x: -1 is out of range, allowed \[0, inf\)"),
    (checks.number, dict(value=2, lo=0, hi=1, lo_open=True), r"x: 2 is out of range, allowed \(0, 1\]"),
    (checks.positive, dict(value=0), r"x: 0 is out of range, allowed \(0, inf\)"),
    (checks.number, dict(value="a"), r"x: expected a number, got str 'a'"),
    (checks.number, dict(value=math.inf), r"x: inf is not finite"),
    (checks.choice, dict(value="c", options=("a", "b")), r"x: 'c' is not one of a, b"),
    (checks.choice, dict(value=np.array([1]), options=("a",)), r"x: array\(\[1\]\) is not one of a"),
    (checks.integers, dict(value=[1, 0], lo=1), r"x\[1\]: 0 is out of range"),
    (checks.array, dict(value=[[1, 2]], ndim=1), r"x: expected 1 dimension, got shape \(1, 2\)"),
    (checks.array, dict(value=[1, float("nan")]), r"x\[1\]: nan is NaN"),
    (checks.array, dict(value=[], ), r"x: expected at least one value"),
    (checks.array, dict(value=["a"]), r"x: expected an array of numbers"),
    (checks.array, dict(value=sp.eye(2)), r"x: expected an array of numbers"),
])
def test_check_messages_have_one_form(fn, kw, match):
    kw = dict(kw)
    value = kw.pop("value")
    with pytest.raises(OcsnetError, match=match):
        fn("x", value, **kw)
