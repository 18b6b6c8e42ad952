"""Fluid completion times, phases and traces: hand-computed cases, bounds, and an
independent event simulation over LP rates."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import FlowError
from ocsnet.flow import (completion_times, flows_from_demand, pattern_demand, phase_time, route, route_paths,
                         trace_time)
from ocsnet.flow.reference import max_min_fair_lp
from test_flow_fabrics import fat_tree, random_fabric, ring, star, torus2


def test_two_flows_share_a_link():
    # 1 GB/s shared: both at 0.5 GB/s until the small one ends at 1 s, then the big one alone
    assert completion_times([[1.0, 1.0]], [1e9], [0.5e9, 1.5e9]).tolist() == [1.0, 2.0]


def test_staggered_starts():
    # flow 0 alone for 0.5 s (0.5 B of 1 B), then both at 0.5 B/s: flow 0 ends at 1.5 s,
    # flow 1 has moved 0.5 B by then and finishes alone at 2 s
    t = completion_times([[1.0, 1.0]], [1.0], [1.0, 1.0], [0.0, 0.5])
    np.testing.assert_allclose(t, [1.5, 2.0], rtol=1e-12)
    # a flow that starts after everything ended runs alone
    t = completion_times([[1.0, 1.0]], [2.0], [2.0, 2.0], [0.0, 5.0])
    np.testing.assert_allclose(t, [1.0, 6.0], rtol=1e-12)


def test_chain_of_bottlenecks_by_hand():
    # links: a (cap 3) carries flows 0, 1; b (cap 1) carries flows 1, 2.
    # max-min: flows 1, 2 at 0.5 (b), flow 0 at 2.5.  Sizes 5, 1, 3:
    # flow 1 ends at t=2 (1 B at 0.5); then b gives flow 2 1 B/s and a gives flow 0 3 B/s.
    # At t=2 flow 0 has 5 - 5 = 0 left: it also ends at 2.  Flow 2 has 3 - 1 = 2 left: ends at 4.
    A = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    t, info = completion_times(A, [3.0, 1.0], [5.0, 1.0, 3.0], return_info=True)
    np.testing.assert_allclose(t, [2.0, 2.0, 4.0], rtol=1e-12)
    assert info["events"] == 2                      # flows 0 and 1 finish in one step


def test_simultaneous_completions_are_one_step():
    n = 300
    t, info = completion_times(sp.identity(n, format="csc") * 1.0, np.full(n, 2.0), np.full(n, 4.0),
                               return_info=True)
    assert info["events"] == 1 and np.all(t == 2.0)


def test_empty_zero_and_stuck_flows():
    A = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    t = completion_times(A, [1.0, 0.0], [0.0, 2.0, 1.0], [3.0, 0.0, 0.0])
    assert t[0] == 3.0                # empty flow: finishes when it starts
    assert t[1] == 2.0                # alone on link 0 (flow 0 is empty)
    assert np.isinf(t[2])             # held at rate 0 on a zero-capacity link
    assert completion_times(sp.csc_matrix((2, 0)), [1.0, 1.0], []).shape == (0,)


def reference_fluid(A, c, size, start):
    """A straightforward event loop over LP max-min rates: one flow event at a time."""
    A = np.asarray(A, dtype=float)
    n = len(size)
    rem = np.asarray(size, dtype=float).copy()
    fin = np.full(n, np.nan)
    t = 0.0
    while np.isnan(fin).any():
        act = np.flatnonzero(np.isnan(fin) & (start <= t + 1e-12))
        empty = act[rem[act] <= 1e-12 * np.maximum(size[act], 1)]
        fin[empty] = np.maximum(t, start[empty])
        act = np.setdiff1d(act, empty)
        future = start[np.isnan(fin) & (start > t + 1e-12)]
        if not len(act):
            t = future.min()
            continue
        r = max_min_fair_lp(A[:, act], c)
        dt = min((rem[act] / r).min(), (future.min() - t) if len(future) else np.inf)
        rem[act] -= r * dt
        t += dt
        done = act[rem[act] <= 1e-9 * size[act]]
        fin[done] = t
        rem[done] = 0.0
    return fin


@examples(60)
@given(seed=st.integers(0, 2**31), staggered=st.booleans())
def test_matches_an_independent_event_simulation(seed, staggered):
    rng = np.random.default_rng(seed)
    L, F = rng.integers(1, 5), rng.integers(1, 6)
    A = (rng.random((L, F)) < 0.6) * rng.choice([1.0, 0.5], (L, F))
    A[rng.integers(L), :] += (A.sum(axis=0) == 0)          # every flow on some link
    c = rng.uniform(1.0, 10.0, L)
    size = rng.uniform(0.5, 20.0, F)
    start = rng.uniform(0.0, 3.0, F) if staggered else np.zeros(F)
    np.testing.assert_allclose(completion_times(A, c, size, start), reference_fluid(A, c, size, start), rtol=1e-6)


@examples(80)
@given(seed=st.integers(0, 2**31), grow=st.floats(1.01, 3.0), scale=st.floats(0.1, 10.0))
def test_bounds_monotonicity_and_scaling(seed, grow, scale):
    rng = np.random.default_rng(seed)
    L, F = rng.integers(2, 12), rng.integers(2, 30)
    A = sp.csc_matrix((rng.random((L, F)) < 0.4) * rng.choice([1.0, 0.5, 0.25], (L, F)))
    c = 10 ** rng.uniform(0, 2, L)
    size = rng.uniform(1.0, 100.0, F)
    t = completion_times(A, c, size)
    Ad = A.toarray()
    on = Ad.sum(axis=0) > 0
    assert np.all(t[~on] == 0.0)
    if not on.any():            # a draw with no flow on any link: nothing more to check
        return
    # no link delivers more than its capacity: the makespan is at least every link's bytes over capacity
    assert t[on].max() >= (Ad @ size / c).max() * (1 - 1e-9)
    # no flow beats its bottleneck alone
    alone = size * (Ad / c[:, None]).max(axis=0)
    assert np.all(t[on] >= alone[on] * (1 - 1e-9))
    assert np.all(t[~on] == 0.0)
    # a flow with more bytes finishes later
    f = int(rng.integers(F))
    big = size.copy()
    big[f] *= grow
    t2 = completion_times(A, c, big)
    assert t2[f] > t[f] or not on[f]
    # the model is scale-free: bytes times s gives times times s
    np.testing.assert_allclose(completion_times(A, c, size * scale), t * scale, rtol=1e-9)


def test_bad_sizes_named():
    with pytest.raises(FlowError, match=r"size_B\[1\] \(flow 1\): -1.0"):
        completion_times([[1.0, 1.0]], [1.0], [1.0, -1.0])
    with pytest.raises(FlowError, match=r"start_s\[0\] \(flow 0\): nan"):
        completion_times([[1.0, 1.0]], [1.0], [1.0, 1.0], [np.nan, 0.0])
    with pytest.raises(FlowError, match="size_B: expected 2 entries"):
        completion_times([[1.0, 1.0]], [1.0], [1.0, 1.0, 1.0])


# ---- phases on fabrics ----------------------------------------------------------------

def test_phase_ring_closed_form():
    f = ring(8, cap=2e9, lat=0.5e-6)
    for fidelity in ("max-min", "alpha-beta"):
        res = phase_time(f, pattern_demand("ring", 8, 1e6), fidelity=fidelity)
        assert res.time_s == pytest.approx(1e6 / 2e9 + 0.5e-6, rel=1e-12)
        assert res.n_flows == 8
        used = res.link_bytes > 0
        assert used.sum() == 8 and np.allclose(res.link_utilization[used], 0.5e-3 / res.time_s)


def test_phase_incast_closed_form():
    # n-1 GPUs into GPU 0 through one switch: the switch->GPU 0 link carries everything
    n = 9
    f = star(n, cap=1e9, lat=1e-6)
    res = phase_time(f, pattern_demand("incast", n, 2e6))
    assert res.time_s == pytest.approx((n - 1) * 2e6 / 1e9 + 2e-6, rel=1e-12)
    np.testing.assert_allclose(res.rate_Bps, 1e9 / (n - 1))
    ab = phase_time(f, pattern_demand("incast", n, 2e6), fidelity="alpha-beta")
    assert ab.time_s == pytest.approx(2e6 / 1e9 + 2e-6, rel=1e-12)   # congestion-free: optimistic
    # ... and the links say so: (n - 1) flows' bytes through one link in one flow's time
    assert ab.link_utilization.max() == pytest.approx((n - 1) * 2e-3 / ab.time_s, rel=1e-12)


def test_all_to_all_fat_tree_full_bisection():
    # ECMP on a full-bisection fat-tree: every GPU's uplink is the bottleneck
    f = fat_tree(4, cap=1e9, lat=0.0)
    res = phase_time(f, pattern_demand("all-to-all", 16, 1e6), routing="ecmp")
    assert res.time_s == pytest.approx(15 * 1e6 / 1e9, rel=1e-9)


@examples(15)
@given(seed=st.integers(0, 10_000), routing=st.sampled_from(["shortest", "ecmp"]),
       pattern=st.sampled_from(["all-to-all", "permutation", "random", "incast"]))
def test_alpha_beta_never_slower_than_max_min(seed, routing, pattern):
    fabric = random_fabric(seed, n_gpus=7, n_sw=4)
    d = pattern_demand(pattern, 7, 3e5, seed=seed)
    mm = phase_time(fabric, d, routing=routing)
    ab = phase_time(fabric, d, routing=routing, fidelity="alpha-beta")
    assert np.all(ab.flow_time_s <= mm.flow_time_s * (1 + 1e-9))
    assert np.all(mm.rate_Bps <= ab.rate_Bps * (1 + 1e-9))


def test_phase_with_given_routes_and_validation():
    f = ring(6)
    dem = sp.csr_matrix(([1e6, 2e6], ([0, 1], [3, 2])), shape=(6, 6))
    r = route_paths(f, [[0, 1, 2, 3], [0, 5, 4, 3], [1, 2]], flow=[0, 0, 1])
    res = phase_time(f, dem, routes=r)
    # flow 0 half on each side: its slower half shares link 1->2 with flow 1
    assert res.routing == "paths" and res.n_flows == 2
    with pytest.raises(FlowError, match="routes"):
        phase_time(f, dem, routes=route(f, [0], [3]))
    with pytest.raises(FlowError, match=r"demand\[2, 4\]: -5.0 bytes"):
        phase_time(f, sp.csr_matrix(([-5.0], ([2], [4])), shape=(6, 6)))
    with pytest.raises(FlowError, match="fabric has 6 GPUs"):
        phase_time(f, np.zeros((4, 4)))
    with pytest.raises(FlowError, match="fidelity"):
        phase_time(f, np.zeros((6, 6)), fidelity="packet")
    assert phase_time(f, np.eye(6) * 5).time_s == 0.0          # the diagonal stays local


def test_flows_from_demand_order():
    d = np.zeros((4, 4))
    d[2, 1], d[0, 3], d[0, 1], d[3, 3] = 5, 6, 7, 9
    s, t, b = flows_from_demand(d)
    assert s.tolist() == [0, 0, 2] and t.tolist() == [1, 3, 1] and b.tolist() == [7, 6, 5]


class _Trace:
    def __init__(self, demand, gap_s, labels=None):
        self.demand, self.gap_s, self.labels = demand, np.asarray(gap_s, float), labels


def test_trace_gaps_and_repeats():
    f = torus2(3, 3)
    a = pattern_demand("ring", 9, 1e6)
    b = pattern_demand("all-to-all", 9, 1e5)
    tr = _Trace([a, b, a, a], [1e-3, 0.0, 2e-3, 5e-4])
    res = trace_time(f, tr, keep_phases=True)
    ta, tb = phase_time(f, a).time_s, phase_time(f, b).time_s
    np.testing.assert_allclose(res.phase_time_s, [ta, tb, ta, ta], rtol=1e-12)
    np.testing.assert_allclose(res.phase_start_s, [1e-3, 1e-3 + ta, 3e-3 + ta + tb, 3.5e-3 + 2 * ta + tb],
                               rtol=1e-12)
    assert res.makespan_s == pytest.approx(3.5e-3 + 3 * ta + tb, rel=1e-12)
    assert res.phases[0] is res.phases[2]              # the same matrix object is timed once
    empty = trace_time(f, _Trace([], []))
    assert empty.makespan_s == 0.0


def test_trace_with_real_trace_class():
    Trace = pytest.importorskip("ocsnet.traffic").Trace
    f = ring(4)
    ring_d = pattern_demand("ring", 4, 1e6)
    tr = Trace([ring_d, ring_d], [1e-4, 1e-4])
    res = trace_time(f, tr, fidelity="alpha-beta")
    assert res.makespan_s == pytest.approx(2 * (1e-4 + 1e6 / 1e9 + 1e-6), rel=1e-12)


def test_trace_errors_name_the_phase():
    f = ring(4)
    bad = np.zeros((4, 4))
    bad[1, 2] = -3.0
    with pytest.raises(FlowError, match=r"phase 1: demand\[1, 2\]"):
        trace_time(f, _Trace([pattern_demand("ring", 4, 1.0), bad], [0.0, 0.0]))
    with pytest.raises(FlowError, match=r"gap_s\[0\] \(phase 0\)"):
        trace_time(f, _Trace([bad * 0], [-1.0]))


def test_ocs_fabric_with_circuits_applied():
    """On the physical OCS fabric nothing routes; with a ring of circuits applied, a ring
    phase takes bytes over one circuit plus the circuit latency, and the docs/design.md one-slot
    phase time max D[i,j] / (C[i,j] b) for direct routing."""
    from ocsnet.topology import apply_circuits, ocs_fabric
    phys = ocs_fabric(8, 2)
    d = pattern_demand("ring", 8, 4e6)
    with pytest.raises(FlowError, match="apply circuits first"):
        phase_time(phys, d)
    ring_c = np.roll(np.eye(8, dtype=int), 1, axis=1)
    logical = apply_circuits(phys, 2 * ring_c)          # both ports of every GPU on i -> i+1
    b = phys.ocs.circuit_Bps
    lat = phys.ocs.circuit_latency_s
    for fidelity in ("max-min", "alpha-beta"):
        res = phase_time(logical, d, fidelity=fidelity)
        assert res.time_s == pytest.approx(4e6 / (2 * b) + lat, rel=1e-12)
    assert res.routes.hops.tolist() == [1] * 8
