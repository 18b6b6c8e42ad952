"""Checks: links above capacity and budget misses against brute-force loops."""

import json

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import FlowError
from ocsnet.flow import (CHECKS, check_flows, check_phase, check_trace, max_min_fair, pattern_demand, phase_time,
                         route)
from test_flow_fabrics import fat_tree, random_fabric, ring, star


@examples(30)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["shortest", "ecmp"]))
def test_overloaded_links_and_budget_misses_match_loops(seed, method):
    rng = np.random.default_rng(seed)
    fabric = random_fabric(seed, n_gpus=6, n_sw=4)
    n = 12
    s = rng.integers(0, 6, n)
    d = (s + rng.integers(1, 6, n)) % 6
    r = route(fabric, s, d, method=method)
    rates = rng.uniform(0.2e9, 2e9, n)
    bw = rng.uniform(0.5e9, 1.5e9)
    lat = float(np.median(r.latency_s))
    rep = check_flows(fabric, r, rates, bandwidth_budget_Bps=bw, latency_budget_s=lat)
    # brute force: loads edge by edge, flow by flow
    A = r.incidence.toarray()
    over = set()
    for e in range(fabric.n_edges):
        load = sum(A[e, f] * rates[f] for f in range(n))
        if load > fabric.capacity_Bps[e] * (1 + 1e-9):
            over.add(e)
    assert {x["index"] for x in rep.of("link_capacity")} == over
    assert {x["index"] for x in rep.of("flow_bandwidth")} == {f for f in range(n) if rates[f] < bw * (1 - 1e-9)}
    assert {x["index"] for x in rep.of("flow_latency")} == {f for f in range(n) if r.latency_s[f] > lat * (1 + 1e-9)}
    assert rep.ok == (not over and all(rates >= bw * (1 - 1e-9)) and all(r.latency_s <= lat * (1 + 1e-9)))
    util = rep.link_utilization
    assert np.allclose(util, A @ rates / fabric.capacity_Bps)
    # max-min rates never overload a link
    assert not check_flows(fabric, r).of("link_capacity")


def test_report_contents_table_and_json():
    f = star(3, cap=1e9, lat=1e-6)
    r = route(f, [0, 1], [2, 2])
    rep = check_flows(f, r, [0.8e9, 0.5e9], size_B=[1e6, 1e6], bandwidth_budget_Bps="600MBps",
                      latency_budget_s="1.5ms")
    assert not rep.ok
    link = rep.of("link_capacity")
    assert [x["subject"] for x in link] == ["packet_switch3 -> gpu2"]
    assert link[0]["value_Bps"] == pytest.approx(1.3e9) and link[0]["utilization"] == pytest.approx(1.3)
    assert [x["index"] for x in rep.of("flow_bandwidth")] == [1]
    # latency with sizes: 2 us of hops plus 1 MB over the flow's rate
    lat = rep.of("flow_latency")
    assert [x["index"] for x in lat] == [1] and lat[0]["value_s"] == pytest.approx(2e-6 + 1e6 / 0.5e9)
    table = rep.table()
    for head in ("load_GBps", "capacity_GBps", "utilization_%", "rate_GBps", "budget_GBps", "latency_us"):
        assert head in table
    j = rep.to_json()
    assert json.loads(j)["n_failures"] == 3 and j == rep.to_json()
    assert set(x["check"] for x in rep.failures) <= set(CHECKS)
    assert rep.busiest(1) == [("packet_switch3 -> gpu2", pytest.approx(1.3))]


def test_check_phase_time_budget_names_the_links():
    # incast of 8 flows of 1 MB through one 1 GB/s link: 8 ms needed
    n = 9
    f = star(n, cap=1e9, lat=0.0)
    d = pattern_demand("incast", n, 1e6)
    ok = check_phase(f, d, time_budget_s="8.5ms")
    assert ok.ok and ok.checked["phases"] == 1
    bad = check_phase(f, d, time_budget_s=4e-3)
    assert [x["check"] for x in bad.failures] == ["link_capacity", "phase_time"]
    assert bad.failures[0]["subject"] == "packet_switch9 -> gpu0"
    assert bad.failures[0]["utilization"] == pytest.approx(2.0)          # 8 MB in 4 ms on 1 GB/s
    assert bad.failures[1]["value_s"] == pytest.approx(8e-3)
    res = phase_time(f, d)
    again = check_phase(f, d, time_budget_s=4e-3, result=res)
    assert again.to_json() == bad.to_json()
    per_flow = check_phase(f, d, bandwidth_budget_Bps=0.2e9, latency_budget_s="5ms")
    assert len(per_flow.of("flow_bandwidth")) == 8 and len(per_flow.of("flow_latency")) == 8


def test_check_trace_per_phase():
    class T:
        demand = [pattern_demand("ring", 4, 1e6), pattern_demand("all-to-all", 4, 1e6)]
        gap_s = np.array([0.0, 1e-3])
        labels = ["ring", "a2a"]
    T.demand.append(T.demand[1])
    T.gap_s = np.append(T.gap_s, 0.0)
    T.labels.append("a2a again")
    f = ring(4, cap=1e9, lat=0.0)
    rep = check_trace(f, T(), time_budget_s="1.2ms")
    assert [x["index"] for x in rep.of("phase_time")] == [1, 2]
    assert rep.of("phase_time")[1]["subject"] == "2: a2a again"
    per = check_trace(f, T(), time_budget_s=[1e-3, 10e-3, 1e-3])
    assert [x["index"] for x in per.of("phase_time")] == [2]
    assert rep.checked["phases"] == 3


def test_bad_inputs():
    f = ring(4)
    r = route(f, [0, 1], [1, 2])
    with pytest.raises(FlowError, match="rates_Bps: expected 2 entries"):
        check_flows(f, r, [1.0])
    with pytest.raises(FlowError, match=r"rates_Bps\[0\] \(flow 0\): -1.0"):
        check_flows(f, r, [-1.0, 1.0])
    with pytest.raises(FlowError, match=r"bandwidth_budget_Bps\[1\]: -5.0"):
        check_flows(f, r, bandwidth_budget_Bps=[1.0, -5.0])
    with pytest.raises(FlowError, match="fidelity"):
        check_phase(f, np.zeros((4, 4)), fidelity="x")
    other = route(fat_tree(2), [0], [1])
    with pytest.raises(FlowError, match="edges"):
        check_flows(f, other)
    assert check_flows(f, r, max_min_fair(r.incidence, f.capacity_Bps)).ok
