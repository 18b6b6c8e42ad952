"""validate / retime / Schedule: hand-timed schedules, every kind of violation, JSON round trip.

Every expected time below is worked out by hand in the comments from the
reference semantics (docs/design.md, ocsnet.schedule.problem).
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import ScheduleError
from ocsnet.schedule.io import Schedule
from ocsnet.schedule.problem import OCSProblem
from ocsnet.schedule.validate import validate


def mat(n, entries):
    M = np.zeros((n, n))
    for (i, j), v in entries.items():
        M[i, j] = v
    return M


# ---- hand-timed schedules ------------------------------------------------------------------

def allstop_problem():
    # N=3, d=1, b=1 GB/s, delta=2 ms.  Phase 0 (gap 1 ms): 0->1 1 MB, 1->2 2 MB.
    # Phase 1 (gap 0.5 ms): 0->2 3 MB.
    D0 = mat(3, {(0, 1): 1e6, (1, 2): 2e6})
    D1 = mat(3, {(0, 2): 3e6})
    return OCSProblem([D0, D1], [1e-3, 0.5e-3], ports=1, circuit_Bps=1e9, reconfig_delay_s=2e-3)


def test_all_stop_one_slot_by_hand():
    prob = allstop_problem()
    C0 = mat(3, {(0, 1): 1, (1, 2): 1})
    C1 = mat(3, {(0, 2): 1})
    s = Schedule.from_configs(prob, [[C0], [C1]], method="hand")
    # phase 0: ready 1 ms, lasts max(1 MB, 2 MB)/1 GB/s = 2 ms -> ends 3 ms.
    # phase 1: change exposed 2 - 0.5 = 1.5 ms; ready 3.5 ms; lasts 1.5 + 3 = 4.5 ms -> 8 ms.
    r = validate(prob, s)
    assert r.ok, r.violations
    assert r.makespan_s == pytest.approx(8e-3) and s.makespan_s == pytest.approx(8e-3)
    assert [ph.start_s for ph in s.phases] == pytest.approx([1e-3, 3.5e-3])
    assert [ph.end_s for ph in s.phases] == pytest.approx([3e-3, 8e-3])
    assert s.n_reconfigurations == 1 and s.phases[1].reconfig_at_start and not s.phases[0].reconfig_at_start
    assert s.exposed_reconfig_s == pytest.approx(1.5e-3) and s.hidden_reconfig_s == pytest.approx(0.5e-3)
    # DESIGN bound: gaps 1.5 ms + 2 MB/1 GB/s + 3 MB/1 GB/s = 6.5 ms
    assert prob.lower_bound_s() == pytest.approx(6.5e-3)
    # from_configs reports the best proven bound: here the forced change makes it tight
    assert s.lower_bound_s == pytest.approx(8e-3) and s.gap == pytest.approx(0.0, abs=1e-12)
    s2 = Schedule.from_configs(prob, [[C0], [C1]], lower_bound_s=prob.lower_bound_s())
    assert s2.gap == pytest.approx((8 - 6.5) / 8)


def test_gap_longer_than_delta_hides_the_change():
    prob = allstop_problem().replace(gap_s=[1e-3, 5e-3])
    s = Schedule.from_configs(prob, [[mat(3, {(0, 1): 1, (1, 2): 1})], [mat(3, {(0, 2): 1})]])
    # phase 1 ready at 3 + 5 = 8 ms, the 2 ms change is hidden, ends 11 ms
    assert validate(prob, s).makespan_s == pytest.approx(11e-3)
    assert s.exposed_reconfig_s == 0 and s.hidden_reconfig_s == pytest.approx(2e-3)


def test_same_config_needs_no_change_and_unused_circuits_are_harmless():
    D = mat(3, {(0, 1): 1e6})
    prob = OCSProblem([D, D], [0.0, 0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=1.0)
    C = mat(3, {(0, 1): 2, (1, 2): 1, (2, 0): 2})
    s = Schedule.from_configs(prob, [[C], [C]])
    assert s.n_reconfigurations == 0 and len(s.configs) == 1       # stored once
    assert validate(prob, s).makespan_s == pytest.approx(2 * 0.5e-3)


def test_multi_slot_lp_split_by_hand():
    # N=3, d=2, b=1 GB/s, delta=0.5 s, gap 1 s.  Demand 0->1 4 GB, 0->2 1 GB.
    # slot a: 2 circuits 0->1; slot b: 1 circuit 0->1 + 1 circuit 0->2 (exposure 0.5 s).
    # LP: min ha + hb s.t. 2 ha + hb >= 4, hb >= 1  ->  hb = 1, ha = 1.5; phase = 1.5 + 0.5 + 1 = 3 s.
    prob = OCSProblem([mat(3, {(0, 1): 4e9, (0, 2): 1e9})], [1.0], ports=2, circuit_Bps=1e9,
                      reconfig_delay_s=0.5)
    Ca, Cb = mat(3, {(0, 1): 2}), mat(3, {(0, 1): 1, (0, 2): 1})
    s = Schedule.from_configs(prob, [[Ca, Cb]])
    r = validate(prob, s)
    assert r.ok, r.violations
    assert [sl.duration_s for sl in s.phases[0].slots] == pytest.approx([1.5, 1.5])
    assert s.makespan_s == pytest.approx(4.0)
    # a within-phase change is fully exposed
    assert s.exposed_reconfig_s == pytest.approx(0.5) and s.hidden_reconfig_s == pytest.approx(0.0)
    # caller-given durations: slot a 1 s serves 2 GB of 0->1; slot b: 0.5 + max(2 GB/1, 1 GB/1) = 2.5 s
    s2 = Schedule.from_configs(prob, [[Ca, Cb]], durations=[[1.0, None]])
    assert validate(prob, s2).ok
    assert [sl.duration_s for sl in s2.phases[0].slots] == pytest.approx([1.0, 2.5])
    assert s2.makespan_s == pytest.approx(1.0 + 3.5)


def test_reserved_circuits_keep_carrying_during_a_change():
    # N=2, d=2, b=1 GB/s, delta=1 s; one circuit 0->1 reserved.
    # phase 0 (gap 0): 0->1 4 GB, 1->0 1 GB; C0 = {1->0: 1, 0->1: 1} -> 0->1 has 2 circuits: 2 s.
    # phase 1 (gap 0.25): 0->1 3 GB; C1 = {0->1: 1} differs -> x = 0.75 s.  The reserved circuit
    # moves 0.75 GB during x, the remaining 2.25 GB go at 2 circuits: 1.125 s; phase = 1.875 s.
    R = mat(2, {(0, 1): 1})
    prob = OCSProblem([mat(2, {(0, 1): 4e9, (1, 0): 1e9}), mat(2, {(0, 1): 3e9})], [0.0, 0.25], ports=2,
                      circuit_Bps=1e9, reconfig_delay_s=1.0, reserved=R)
    s = Schedule.from_configs(prob, [[mat(2, {(1, 0): 1, (0, 1): 1})], [mat(2, {(0, 1): 1})]])
    r = validate(prob, s)
    assert r.ok, r.violations
    assert [ph.end_s for ph in s.phases] == pytest.approx([2.0, 2.25 + 1.875])
    # a config that with the reserved circuit exceeds the ports of row 0
    bad = Schedule.from_configs(prob, [[mat(2, {(1, 0): 1, (0, 1): 2})], [mat(2, {(0, 1): 1})]])
    r = validate(prob, bad)
    assert not r.ok and any("row 0" in v and "1 reserved" in v for v in r.violations), r.violations


def test_partial_reconfiguration_keeps_unchanged_circuits_lit():
    # N=3, d=2, b=1 GB/s, delta=1 s.  phase 0: 0->1 4 GB, 1->2 1 GB, C0 = {0->1: 2, 1->2: 1}: 2 s.
    # phase 1 (gap 0.25): 0->1 3 GB, 1->0 1 GB; C1 = {0->1: 2, 1->0: 1} (1->2 torn down): x = 0.75.
    # 0->1 keeps both circuits: 3 GB / 2 GB/s = 1.5 s; 1->0 is new: 0.75 + 1 = 1.75 s.
    # all-stop would give 0.75 + max(1.5, 1) = 2.25 s.
    D0 = mat(3, {(0, 1): 4e9, (1, 2): 1e9})
    D1 = mat(3, {(0, 1): 3e9, (1, 0): 1e9})
    C0, C1 = mat(3, {(0, 1): 2, (1, 2): 1}), mat(3, {(0, 1): 2, (1, 0): 1})
    part = OCSProblem([D0, D1], [0.0, 0.25], ports=2, circuit_Bps=1e9, reconfig_delay_s=1.0,
                      partial_reconfig=True)
    s = Schedule.from_configs(part, [[C0], [C1]])
    assert validate(part, s).ok
    assert s.makespan_s == pytest.approx(2.0 + 0.25 + 1.75)
    stop = part.replace(partial_reconfig=False)
    assert Schedule.from_configs(stop, [[C0], [C1]]).makespan_s == pytest.approx(2.0 + 0.25 + 2.25)
    # kept circuits on one pair of a changed slot: C1' = {0->1: 1, 1->0: 1}: 0->1 keeps 1 circuit;
    # 0.75 GB during x, then 2.25 GB at 1 circuit: 0.75 + 2.25 = 3 s
    s3 = Schedule.from_configs(part, [[C0], [mat(3, {(0, 1): 1, (1, 0): 1})]])
    assert s3.makespan_s == pytest.approx(2.0 + 0.25 + 3.0)


def test_packet_fallback_by_hand():
    # N=3, d=1, b=1 GB/s, packet 0.5 GB/s, delta 1 s.  Each phase: 0->1 1 GB, 0->2 1 GB, 2->1 0.5 GB.
    D = mat(3, {(0, 1): 1e9, (0, 2): 1e9, (2, 1): 0.5e9})
    prob = OCSProblem([D, D], [0.0, 0.1], ports=1, circuit_Bps=1e9, reconfig_delay_s=1.0, packet_Bps=0.5e9)
    # phase 0, circuit 0->1: 1 s.  Packets 0->2, 2->1: GPU 0 sends 1 GB, GPU 2 receives 1 GB -> 2 s.
    # phase 1, circuit 0->2 (change, x = 0.9): 1.9 s.  Packets 0->1, 2->1: GPU 1 receives 1.5 GB -> 3 s.
    s = Schedule.from_configs(prob, [[mat(3, {(0, 1): 1})], [mat(3, {(0, 2): 1})]])
    r = validate(prob, s)
    assert r.ok, r.violations
    assert [ph.end_s for ph in s.phases] == pytest.approx([2.0, 2.1 + 3.0])
    np.testing.assert_allclose(r.timing.packet_s, [2.0, 3.0])
    # a pair with no circuit is refused without a packet network
    no_pkt = prob.replace(packet_Bps=0.0)
    r = validate(no_pkt, Schedule.from_configs(no_pkt, [[mat(3, {(0, 1): 1})], [mat(3, {(0, 2): 1})]]))
    assert not r.ok and math.isinf(r.makespan_s)
    assert any("phase 0: pair (0, 2)" in v for v in r.violations), r.violations


def test_zero_reconfig_delay_and_empty_phase():
    D = mat(2, {(0, 1): 1e9})
    prob = OCSProblem([D, np.zeros((2, 2)), D.T], [0.0, 0.5, 0.0], ports=1, circuit_Bps=1e9,
                      reconfig_delay_s=0.0)
    s = Schedule.from_configs(prob, [[mat(2, {(0, 1): 1})], [mat(2, {(1, 0): 1})], [mat(2, {(1, 0): 1})]])
    # 1 s + gap 0.5 + empty phase (a free change) + 1 s
    assert validate(prob, s).ok and s.makespan_s == pytest.approx(2.5)
    assert s.n_reconfigurations == 1 and s.exposed_reconfig_s == 0.0


# ---- independent re-implementation of the one-slot all-stop rules (hypothesis) -------------

@st.composite
def one_slot_case(draw):
    n = draw(st.integers(2, 4))
    P = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3))
    dem, cfg = [], []
    for _ in range(P):
        D = np.zeros((n, n))
        C = np.zeros((n, n), dtype=int)
        for i in range(n):
            for j in range(n):
                if i != j and draw(st.booleans()):
                    D[i, j] = draw(st.integers(1, 9)) * 1e6
        # give every demanded pair circuits, then trim rows/cols to d greedily (may leave pairs uncovered)
        for i, j in zip(*np.nonzero(D)):
            c = draw(st.integers(1, d))
            if C[i].sum() + c <= d and C[:, j].sum() + c <= d:
                C[i, j] = c
        dem.append(D)
        cfg.append(C)
    gaps = [draw(st.sampled_from([0.0, 1e-3, 5e-3])) for _ in range(P)]
    delta = draw(st.sampled_from([0.0, 2e-3, 1e-2]))
    return OCSProblem(dem, gaps, ports=d, circuit_Bps=1e9, reconfig_delay_s=delta), cfg


def reference_makespan(prob, cfg):
    t, prev = 0.0, None
    for p, (D, C) in enumerate(zip(prob.demand, cfg)):
        D = D.toarray()
        t += prob.gap_s[p]
        if prev is not None and not np.array_equal(prev, C):
            t += max(0.0, prob.reconfig_delay_s - prob.gap_s[p])
        longest = 0.0
        for i in range(prob.N):
            for j in range(prob.N):
                if D[i, j] > 0:
                    longest = max(longest, math.inf if C[i, j] == 0 else D[i, j] / (C[i, j] * prob.circuit_Bps))
        t += longest
        prev = C
    return t


@examples(60)
@given(one_slot_case())
def test_retime_matches_an_independent_reference(case):
    prob, cfg = case
    s = Schedule.from_configs(prob, [[C] for C in cfg])
    r = validate(prob, s)
    ref = reference_makespan(prob, cfg)
    if math.isinf(ref):
        assert not r.ok and math.isinf(r.makespan_s)
    else:
        assert r.ok, r.violations
        assert r.makespan_s == pytest.approx(ref, rel=1e-12)
        assert r.makespan_s >= prob.lower_bound_s() * (1 - 1e-12)


# ---- violations ------------------------------------------------------------------------------

def good():
    prob = allstop_problem()
    s = Schedule.from_configs(prob, [[mat(3, {(0, 1): 1, (1, 2): 1})], [mat(3, {(0, 2): 1})]])
    assert validate(prob, s).ok
    return prob, s


def violations_of(prob, s):
    r = validate(prob, s)
    assert not r.ok
    return " | ".join(r.violations)


@pytest.mark.parametrize("C, needle", [
    (mat(3, {(0, 1): 1, (0, 2): 1, (1, 2): 1}), "row 0 uses 2 transmit ports"),
    (mat(3, {(0, 1): 1, (2, 1): 1, (1, 2): 1}), "col 1 uses 2 receive ports"),
    (mat(3, {(0, 1): 1, (1, 2): 1, (2, 2): 1}), "row 2 col 2 is on the diagonal"),
    (mat(3, {(0, 1): 1, (1, 2): 1, (2, 0): -1}), "row 2 col 0 holds -1 circuits"),
])
def test_bad_circuit_matrix_is_named(C, needle):
    prob, s = good()
    s.configs[0] = sp.csr_matrix(C)
    assert needle in violations_of(prob, s)


def test_non_integer_circuits_and_disallowed_pairs():
    prob, s = good()
    s.configs[0] = sp.csr_matrix(mat(3, {(0, 1): 0.5, (1, 2): 1}))
    assert "row 0 col 1 holds 0.5 circuits, not an integer" in violations_of(prob, s)
    allowed = np.ones((3, 3), bool)
    allowed[2, 0] = False
    p2, s2 = good()
    p2 = p2.replace(allowed=allowed)
    s2.configs[1] = sp.csr_matrix(mat(3, {(0, 2): 1, (2, 0): 1}))
    assert "config 1 (phase 1 slot 0): row 2 col 0 is not an allowed pair" in violations_of(p2, s2)


def test_structure_violations():
    prob, s = good()
    s.phases[1].slots[0].config = 7
    assert "phase 1 slot 0: config index 7 out of range" in violations_of(prob, s)
    prob, s = good()
    s.phases.pop()
    assert "phases: the schedule has 1, the problem 2" in violations_of(prob, s)
    prob, s = good()
    s.phases[0].slots = []
    assert "phase 0: has no slot" in violations_of(prob, s)
    prob, s = good()
    s.configs[0] = sp.csr_matrix(np.zeros((4, 4)))
    assert "shape (4, 4)" in violations_of(prob, s)


def test_unserved_demand_is_named():
    prob, s = good()
    s.configs[0] = sp.csr_matrix(mat(3, {(0, 1): 1}))          # 1->2 has no circuit
    v = violations_of(prob, s)
    assert "phase 0: pair (1, 2) has demand but no circuit" in v


def test_time_violations():
    prob, s = good()
    s.makespan_s = 7e-3
    assert "makespan_s: reported 0.007, recomputed 0.008" in violations_of(prob, s)
    prob, s = good()
    s.phases[1].end_s = 9e-3
    assert "phase 1: end_s" in violations_of(prob, s)
    prob, s = good()
    s.phases[0].start_s = 0.0
    assert "phase 0: start_s" in violations_of(prob, s)
    prob, s = good()
    s.phases[0].slots[0].duration_s = 1e-3                    # needs 2 ms
    assert "phase 0 slot 0: duration_s 0.001 too short" in violations_of(prob, s)
    prob, s = good()
    s.lower_bound_s = 9e-3
    assert "lower_bound_s" in violations_of(prob, s)
    prob, s = good()
    s.phases[1].slots[0].reconfig = False
    assert "phase 1 slot 0: reconfig flag False but the configuration changes" in violations_of(prob, s)
    prob, s = good()
    s.phases[1].slots[0].exposed_s = 0.0
    assert "phase 1 slot 0: exposed_s 0" in violations_of(prob, s)


def test_slot_shorter_than_its_reconfiguration():
    prob = OCSProblem([mat(3, {(0, 1): 4e9, (0, 2): 1e9})], [1.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=0.5)
    Ca, Cb, Cc = mat(3, {(0, 1): 2}), mat(3, {(0, 1): 1, (0, 2): 1}), mat(3, {(0, 1): 2, (0, 2): 0})
    s = Schedule.from_configs(prob, [[Ca, Cb, Ca]], durations=[[1.0, 0.2, None]])
    v = violations_of(prob, s)
    assert "phase 0 slot 1: duration_s 0.2 is shorter than its reconfiguration (0.5 s exposed)" in v


def test_raise_if_invalid():
    prob, s = good()
    validate(prob, s).raise_if_invalid()
    s.makespan_s = 1.0
    with pytest.raises(ScheduleError, match="makespan_s"):
        validate(prob, s).raise_if_invalid()


# ---- JSON ------------------------------------------------------------------------------------

def test_json_round_trip_is_byte_identical(tmp_path):
    prob = OCSProblem([mat(3, {(0, 1): 4e9, (0, 2): 1e9}), mat(3, {(1, 0): 1e9 / 3})], [1.0, 0.1],
                      ports=2, circuit_Bps=1e9, reconfig_delay_s=0.5)
    s = Schedule.from_configs(prob, [[mat(3, {(0, 1): 2}), mat(3, {(0, 1): 1, (0, 2): 1})],
                                     [mat(3, {(1, 0): 2})]], method="hand", status="feasible",
                              meta={"note": "x", "arr": np.arange(3), "f": np.float64(1 / 3)}, solve_time_s=1.25)
    text = s.to_json()
    assert "solve_time_s" not in text                       # run-dependent, left out by default
    s2 = Schedule.from_json(text)
    assert s2.to_json() == text
    assert s2.makespan_s == s.makespan_s and s2.lower_bound_s == s.lower_bound_s
    assert s2.config_sequence() == s.config_sequence() and len(s2.configs) == 3
    assert all((a != b).nnz == 0 for a, b in zip(s.configs, s2.configs))
    assert validate(prob, s2).ok
    path = s.save(tmp_path / "s.json")
    assert Schedule.load(path).to_json() == text
    assert path.read_text() == text
    assert Schedule.from_json(s.to_json(timing=True)).solve_time_s == 1.25
    # same inputs, same bytes
    again = Schedule.from_configs(prob, [[mat(3, {(0, 1): 2}), mat(3, {(0, 1): 1, (0, 2): 1})],
                                         [mat(3, {(1, 0): 2})]], method="hand", status="feasible",
                                  meta={"note": "x", "arr": np.arange(3), "f": np.float64(1 / 3)})
    assert again.to_json() == text


def test_infinite_makespan_round_trips_as_null():
    prob = allstop_problem()
    s = Schedule.from_configs(prob, [[mat(3, {(0, 1): 1})], [mat(3, {(0, 2): 1})]])
    assert math.isinf(s.makespan_s)
    text = s.to_json()
    assert '"makespan_s": null' in text
    assert math.isinf(Schedule.from_json(text).makespan_s) and Schedule.from_json(text).to_json() == text


@pytest.mark.parametrize("text, needle", [
    ("{", "not valid JSON"),
    ('{"format": "other"}', "not an ocsnet-schedule"),
    ('{"format": "ocsnet-schedule", "version": 99}', "version"),
    ('{"format": "ocsnet-schedule", "version": 1}', "malformed"),
])
def test_bad_json_is_refused(text, needle):
    with pytest.raises(ScheduleError, match=needle):
        Schedule.from_json(text)


def test_from_configs_refuses_wrong_shapes():
    prob = allstop_problem()
    with pytest.raises(ScheduleError, match="per_phase_configs"):
        Schedule.from_configs(prob, [[mat(3, {(0, 1): 1})]])
    with pytest.raises(ScheduleError, match="per_phase_configs\\[1\\]"):
        Schedule.from_configs(prob, [[mat(3, {(0, 1): 1})], []])
    with pytest.raises(ScheduleError, match="config"):
        Schedule.from_configs(prob, [[mat(3, {(0, 1): 0.5})], [mat(3, {(0, 2): 1})]])
    with pytest.raises(ScheduleError, match="durations\\[0\\]"):
        Schedule.from_configs(prob, [[mat(3, {(0, 1): 1})], [mat(3, {(0, 2): 1})]], durations=[[1, 2], [1]])
    with pytest.raises(ScheduleError, match="status"):
        Schedule([], [], makespan_s=0.0, status="great")
