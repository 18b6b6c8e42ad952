"""Exact CP-SAT solver, brute force and bounds, checked against each other and by hand.

Independent truths: :mod:`ocsnet.schedule.brute` enumerates every
configuration (with its own closed-form timing and, for two slots, its own
vertex-enumeration LP); hand-computed optima; and the validator, which
re-times every schedule.
"""

import importlib
import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, event, given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import ScheduleError
from ocsnet.schedule.exact import OPTIMAL_REL_GAP, solve_exact
from ocsnet.schedule.problem import OCSProblem
from ocsnet.schedule.validate import validate

brute = importlib.import_module("ocsnet.schedule.brute")
bounds = importlib.import_module("ocsnet.schedule.bounds")



# ---- tiny random instances -------------------------------------------------------------------

@st.composite
def tiny(draw, extension=st.sampled_from(["none", "packet", "reserved", "partial", "allowed"]), max_n=4):
    ext = draw(extension)
    n = draw(st.integers(2, 3 if ext == "partial" else max_n))
    P = draw(st.integers(1, 3))
    d = draw(st.sampled_from([1, 2]))
    dem = []
    for _ in range(P):
        # the union of up to d (sometimes d + 1) random permutations: mostly one-slot feasible
        M = np.zeros((n, n))
        for _ in range(draw(st.integers(1, d + (draw(st.integers(0, 4)) == 0)))):
            perm = draw(st.permutations(range(n)))
            for i, j in enumerate(perm):
                if i != j:
                    M[i, j] = draw(st.integers(1, 6)) * 1e6
        dem.append(M)
    kw = {}
    if ext == "packet":
        kw["packet_Bps"] = draw(st.sampled_from([2e8, 1e9]))
    elif ext == "reserved":
        i = draw(st.integers(0, n - 1))
        j = draw(st.integers(0, n - 2))
        j = j + (j >= i)
        R = np.zeros((n, n), int)
        R[i, j] = 1
        kw["reserved"] = R
    elif ext == "partial":
        kw["partial_reconfig"] = True
    elif ext == "allowed":
        kw["allowed"] = np.array([[draw(st.integers(0, 4)) > 0 for _ in range(n)] for _ in range(n)])
        kw["packet_Bps"] = 5e8
    gaps = [draw(st.sampled_from([0.0, 1e-3, 4e-3])) for _ in range(P)]
    delta = draw(st.sampled_from([0.0, 2e-3, 1e-2, 1.0]))
    try:
        return OCSProblem(dem, gaps, ports=d, circuit_Bps=1e9, reconfig_delay_s=delta, **kw)
    except ScheduleError:
        assume(False)


def one_slot_optimum(prob):
    try:
        return brute.brute_force(prob, limit=2_000_000)
    except ScheduleError:
        return None


@examples(100)
@given(tiny())
def test_exact_equals_brute_force_with_one_slot(prob):
    b = one_slot_optimum(prob)
    event("one-slot infeasible" if b is None else f"{b.n_reconfigurations} changes")
    if b is None:                              # no one-slot schedule exists: exact says so too
        with pytest.raises(ScheduleError, match="max_slots_per_phase"):
            solve_exact(prob, time_limit_s=10)
        return
    # the brute force's own timing agrees with the validator's
    assert b.meta["dp_makespan_s"] == pytest.approx(b.makespan_s, rel=1e-9)
    assert validate(prob, b).ok
    s = solve_exact(prob, time_limit_s=10)
    r = validate(prob, s)
    assert r.ok, r.violations
    assert s.status == "optimal"
    assert s.makespan_s == pytest.approx(b.makespan_s, rel=1e-6)
    assert s.lower_bound_s <= b.makespan_s * (1 + 1e-9)
    assert 0 <= s.gap <= OPTIMAL_REL_GAP
    assert s.meta.get("model_schedule_invalid") is None


@examples(30)
@given(tiny(extension=st.just("none"), max_n=3))
def test_exact_equals_brute_force_with_two_slots(prob):
    b2 = brute.brute_force_two_slots(prob)
    b1 = one_slot_optimum(prob)
    assert b1 is None or b2 <= b1.makespan_s * (1 + 1e-12)      # more slots never hurt
    s = solve_exact(prob, time_limit_s=20, max_slots_per_phase=2)
    assert validate(prob, s).ok
    assert all(len(ph.slots) <= 2 for ph in s.phases)
    assert s.status == "optimal"
    assert s.makespan_s == pytest.approx(b2, rel=1e-6)
    assert s.lower_bound_s <= b2 * (1 + 1e-9)


@examples(25)
@given(tiny(extension=st.sampled_from(["packet", "reserved", "allowed"]), max_n=3))
def test_several_slots_with_extensions_never_lose_to_one_slot(prob):
    # no enumeration of several-slot schedules with these extensions exists here; the one-slot
    # optimum (brute force) is an upper bound and the proven bounds a lower one
    s = solve_exact(prob, time_limit_s=20, max_slots_per_phase=2)
    assert validate(prob, s).ok
    b = one_slot_optimum(prob)
    if b is not None:
        assert s.makespan_s <= b.makespan_s * (1 + 1e-6)
    assert bounds.lower_bound_s(prob) * (1 - 1e-9) <= s.lower_bound_s <= s.makespan_s


@examples(60)
@given(tiny())
def test_every_bound_is_below_the_optimum(prob):
    b = one_slot_optimum(prob)
    ab = bounds.all_bounds(prob, max_slots_per_phase=1)
    if b is None:
        return
    for name, v in ab.items():
        assert v <= b.makespan_s * (1 + 1e-9), (name, v, b.makespan_s)
    assert bounds.lower_bound_s(prob) >= prob.lower_bound_s() * (1 - 1e-12)


@examples(40)
@given(tiny(extension=st.just("none"), max_n=3))
def test_bounds_with_several_slots_are_below_the_two_slot_optimum(prob):
    b2 = brute.brute_force_two_slots(prob)
    for S in (None, 2):
        for name, v in bounds.all_bounds(prob, max_slots_per_phase=S).items():
            assert v <= b2 * (1 + 1e-9), (S, name, v, b2)


# ---- hand-computed cases -----------------------------------------------------------------------

def two_partner_problem(delta, gap=0.0):
    # GPU 0 sends 1 GB to GPU 1 in phase 0 and 1 GB to GPU 2 in phase 1; one port, 1 GB/s.
    a = np.zeros((3, 3)); a[0, 1] = 1e9
    b = np.zeros((3, 3)); b[0, 2] = 1e9
    return OCSProblem([a, b], [0.0, gap], ports=1, circuit_Bps=1e9, reconfig_delay_s=delta)


def test_forced_change_by_hand():
    prob = two_partner_problem(0.25, gap=0.1)
    # 1 s, then the change exposes 0.25 - 0.1 = 0.15 s, then 1 s: 0.1 + 2.15
    s = solve_exact(prob, time_limit_s=5)
    assert s.status == "optimal" and s.makespan_s == pytest.approx(2.25)
    assert s.n_reconfigurations == 1 and s.exposed_reconfig_s == pytest.approx(0.15)
    # the bound proves it alone: the conflict forces the change
    assert bounds.reconfiguration_bound_s(prob) == pytest.approx(2.25)
    assert prob.lower_bound_s() == pytest.approx(2.1)


def test_static_configuration_wins_when_delta_is_large():
    # GPU 0 sends 2 GB to 1 then 2 GB to 2; two ports.  Static {0->1, 0->2}: 2 s + 2 s.
    # Reconfiguring to give both ports to each partner: 1 s + delta + 1 s.
    a = np.zeros((3, 3)); a[0, 1] = 2e9
    b = np.zeros((3, 3)); b[0, 2] = 2e9
    for delta, expect, changes in ((0.5, 2.5, 1), (5.0, 4.0, 0)):
        prob = OCSProblem([a, b], [0.0, 0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=delta)
        s = solve_exact(prob, time_limit_s=5)
        assert s.makespan_s == pytest.approx(expect) and s.n_reconfigurations == changes
        assert s.status == "optimal"
    # with delta = 5 s the static-or-change bound proves that no change pays: min(4, 2 + 5) = 4
    assert bounds.static_or_change_bound_s(prob) == pytest.approx(4.0)
    assert bounds.lower_bound_s(prob) == pytest.approx(4.0)
    assert prob.lower_bound_s() == pytest.approx(2.0)


def test_all_to_all_needs_several_slots():
    # 4 GPUs all-to-all, 1 GB per pair, 1 port: 3 partners -> 3 slots, 2 changes of 0.1 s inside the phase.
    A = (np.ones((4, 4)) - np.eye(4)) * 1e9
    prob = OCSProblem([A], [0.0], ports=1, circuit_Bps=1e9, reconfig_delay_s=0.1)
    with pytest.raises(ScheduleError, match="max_slots_per_phase"):
        solve_exact(prob, time_limit_s=5)
    with pytest.raises(ScheduleError, match="max_slots_per_phase: 2 is too few"):
        solve_exact(prob, time_limit_s=5, max_slots_per_phase=2)
    assert bounds.slots_needed(prob).tolist() == [3]
    s = solve_exact(prob, time_limit_s=10, max_slots_per_phase=3)
    assert validate(prob, s).ok and s.status == "optimal"
    assert s.makespan_s == pytest.approx(3.2)               # 3 x 1 s + 2 x 0.1 s
    assert bounds.reconfiguration_bound_s(prob) == pytest.approx(3.2)


def test_slot_count_bound_by_hand():
    # 5 GPUs all-to-all (4 partners), 2 ports, 1 GB per pair: in 2 slots every port of every
    # slot carries a single circuit to one partner, so both slots last 1 s: 2 s + 1 change.
    A = (np.ones((5, 5)) - np.eye(5)) * 1e9
    prob = OCSProblem([A], [0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=0.01)
    assert prob.lower_bound_s() == pytest.approx(2.0)
    assert bounds.lower_bound_s(prob, max_slots_per_phase=2) == pytest.approx(2.01)
    s = solve_exact(prob, time_limit_s=20, max_slots_per_phase=2)
    assert s.status == "optimal" and s.makespan_s == pytest.approx(2.01)


def test_extensions_change_the_optimum_as_expected():
    # GPU 0 talks to 1 then to 2 (1 GB each); one port; delta 1 s.
    base = two_partner_problem(1.0)
    assert solve_exact(base, time_limit_s=5).makespan_s == pytest.approx(3.0)
    # a packet network of 0.5 GB/s: keep 0->1 on the circuit, send 0->2 by packets (2 s): 3 s,
    # or switch: 1 + 1 + 1 = 3 s; or hold 0->2's circuit from the start and send 0->1 by packets:
    # 2 s + 1 s = 3 s -- and a faster packet network (1 GB/s) gives 2 s.
    fast = base.replace(packet_Bps=1e9)
    s = solve_exact(fast, time_limit_s=5)
    assert s.makespan_s == pytest.approx(2.0) and s.n_reconfigurations == 0
    assert validate(fast, s).ok
    # a reserved circuit 0->1 leaves no free port at GPU 0: 0->2 cannot be served without packets
    R = np.zeros((3, 3), int); R[0, 1] = 1
    with pytest.raises(ScheduleError, match="demand\\[1\\]\\[0, 2\\]"):
        base.replace(reserved=R)
    two = base.replace(ports=2, reserved=R)
    s = solve_exact(two, time_limit_s=5)                    # 0->1 reserved, 0->2 on the free port
    assert s.makespan_s == pytest.approx(2.0) and s.n_reconfigurations == 0


def test_partial_reconfiguration_by_hand():
    # phase 0: 0->1 4 GB and 1->2 1 GB; phase 1: 0->1 4 GB and 1->0 2 GB; 2 ports, delta 1 s, no gap.
    a = np.zeros((3, 3)); a[0, 1] = 4e9; a[1, 2] = 1e9
    b = np.zeros((3, 3)); b[0, 1] = 4e9; b[1, 0] = 2e9
    stop = OCSProblem([a, b], [0.0, 0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=1.0)
    part = stop.replace(partial_reconfig=True)
    # all-stop best: static {0->1: 2, 1->2: 1, 1->0: 1}: 2 s + max(2, 2) = 4 s
    assert solve_exact(stop, time_limit_s=5).makespan_s == pytest.approx(4.0)
    # partial: same static config is 4 s; changing 1->2 into a second 1->0 circuit keeps 0->1 lit:
    # phase 1 = max(4/2, 1 + 2/2) = 2 s, total 4 s; the optimum is 4 s both ways
    s = solve_exact(part, time_limit_s=5)
    assert validate(part, s).ok and s.makespan_s == pytest.approx(4.0)
    assert brute.brute_force(part).makespan_s == pytest.approx(4.0)


# ---- limits, parameters, determinism -----------------------------------------------------------

def ring_hd(n, P, nbytes=64e6):
    """TP-style demand: halving-doubling reduce-scatter and all-gather steps, then a ring step."""
    out = []
    L = int(np.log2(n))
    i = np.arange(n)
    while len(out) < P:
        steps = [(i ^ (1 << s), nbytes / 2 ** (s + 1)) for s in range(L)]
        steps += steps[::-1] + [((i + 1) % n, nbytes / n)]
        for j, v in steps:
            out.append(sp.csr_matrix((np.full(n, v), (i, j)), shape=(n, n)))
    return out[:P]


def test_tp_trace_64_gpus_16_phases_is_proven_optimal():
    prob = OCSProblem(ring_hd(64, 16), np.resize([5e-6, 20e-6, 2e-6], 16), ports=4, circuit_Bps=25e9,
                      reconfig_delay_s=10e-6)
    s = solve_exact(prob, time_limit_s=30)
    assert s.status == "optimal" and validate(prob, s).ok
    from ocsnet.schedule.heuristic import solve_heuristic
    assert s.makespan_s <= solve_heuristic(prob).makespan_s * (1 + 1e-9)


def weighted_all_to_all(n, P, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(P):
        A = rng.integers(1, 5, (n, n)) * 2e6
        np.fill_diagonal(A, 0)
        out.append(A)
    return out


def test_time_limit_returns_a_valid_schedule_with_its_gap():
    prob = OCSProblem(weighted_all_to_all(8, 2), [5e-6, 2e-5], ports=2, circuit_Bps=25e9, reconfig_delay_s=1e-5)
    s = solve_exact(prob, time_limit_s=0.3, max_slots_per_phase=4)
    assert validate(prob, s).ok
    assert s.status == "time-limit" and s.meta["cp_sat_status"] in ("FEASIBLE", "UNKNOWN")
    assert 0 < s.gap < 1 and s.lower_bound_s >= bounds.lower_bound_s(prob, 4) * (1 - 1e-12)
    assert s.makespan_s <= s.meta["hint_makespan_s"] * (1 + 1e-12)


def test_all_to_all_16_gpus_8_phases_several_slots_proven_optimal():
    # equal demand: the slot-count bound (4 slots of 4 ports for 15 partners leave 14 partners with a
    # single circuit in a single slot) meets the rotated-slot heuristic's schedule
    A = (np.ones((16, 16)) - np.eye(16)) * 4e6
    prob = OCSProblem([A * (1 + p % 3) for p in range(8)], np.resize([5e-6, 2e-5], 8), ports=4,
                      circuit_Bps=25e9, reconfig_delay_s=1e-5)
    s = solve_exact(prob, time_limit_s=50, max_slots_per_phase=4)
    assert validate(prob, s).ok and s.status == "optimal"
    D_b = 4e6 / 25e9
    assert s.makespan_s == pytest.approx(prob.gap_s.sum() + 8 * 3e-5 + 4 * D_b * sum(1 + p % 3 for p in range(8)))


def test_without_hint_and_deterministic_with_one_worker():
    prob = OCSProblem(ring_hd(8, 6, 8e6), [1e-6, 3e-6, 0.0, 2e-6, 1e-6, 0.0], ports=2, circuit_Bps=25e9,
                      reconfig_delay_s=5e-6)
    a = solve_exact(prob, time_limit_s=10, num_workers=1)
    b = solve_exact(prob, time_limit_s=10, num_workers=1)
    c = solve_exact(prob, time_limit_s=10, hint=False)
    assert a.to_json() == b.to_json()
    assert set(a.timings) == {"hint_time_s", "build_time_s", "cp_sat_time_s"} and "timings" not in a.to_json()
    assert sum(a.timings.values()) <= a.solve_time_s * (1 + 1e-6) and c.timings["hint_time_s"] < a.solve_time_s
    assert c.makespan_s == pytest.approx(a.makespan_s, rel=1e-6) and c.status == a.status == "optimal"
    assert json.loads(a.to_json())["method"] == "exact"


@pytest.mark.parametrize("kw, field", [
    (dict(time_limit_s=0), "time_limit_s"),
    (dict(time_limit_s=-1.0), "time_limit_s"),
    (dict(max_slots_per_phase=0), "max_slots_per_phase"),
    (dict(max_slots_per_phase=1.5), "max_slots_per_phase"),
    (dict(num_workers=0), "num_workers"),
    (dict(resolution=0.5), "resolution"),
    (dict(parameters={"no_such_parameter": 1}), "parameters"),
])
def test_bad_parameters_name_the_field(kw, field):
    prob = two_partner_problem(0.1)
    with pytest.raises(ScheduleError) as e:
        solve_exact(prob, **kw)
    assert str(e.value).startswith(field)


def test_partial_reconfiguration_with_several_slots_is_refused():
    prob = two_partner_problem(0.1).replace(partial_reconfig=True)
    with pytest.raises(ScheduleError, match="partial_reconfig"):
        solve_exact(prob, max_slots_per_phase=2)


def test_brute_force_limits():
    A = (np.ones((6, 6)) - np.eye(6)) * 1e6
    prob = OCSProblem([A], [0.0], ports=3, circuit_Bps=1e9, reconfig_delay_s=0.0)
    with pytest.raises(ScheduleError, match="limit"):
        brute.brute_force(prob, limit=1000)
    with pytest.raises(ScheduleError, match="two slots"):
        brute.brute_force_two_slots(prob.replace(packet_Bps=1e9))


@pytest.mark.slow
def test_weighted_all_to_all_16_gpus_8_phases_within_a_minute():
    prob = OCSProblem(weighted_all_to_all(16, 8), np.resize([5e-6, 2e-5], 8), ports=4, circuit_Bps=25e9,
                      reconfig_delay_s=1e-5)
    s = solve_exact(prob, time_limit_s=50, max_slots_per_phase=4)
    assert validate(prob, s).ok and s.solve_time_s < 60
    assert 0 <= s.gap < 0.5 and s.lower_bound_s >= bounds.lower_bound_s(prob, 4) * (1 - 1e-12)
    assert s.makespan_s <= s.meta["hint_makespan_s"] * (1 + 1e-12)
