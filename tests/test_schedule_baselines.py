"""Baselines (static, per-phase, BvN, Solstice) and the solve dispatcher.

Every schedule is validated by the reference re-timing; expected makespans
are closed forms worked out by hand for rings, alternating rings and
all-to-all, and the heuristic is checked against the brute-force optimum.
"""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from ocsnet.errors import ScheduleError
from ocsnet.schedule import METHODS, OCSProblem, Schedule, solve, validate
from ocsnet.schedule import decompose
from ocsnet.schedule.baselines import BASELINES, solve_baseline
from ocsnet.schedule.brute import brute_force
from ocsnet.schedule.scenario import synthetic_demand

BASE = ("static", "per-phase", "bvn", "solstice")


def ring(n, nbytes, step=1):
    g = np.arange(n)
    return sp.csr_matrix((np.full(n, float(nbytes)), (g, (g + step) % n)), shape=(n, n))


def valid(prob, s):
    v = validate(prob, s)
    assert v.ok, v.violations[:3]
    assert s.makespan_s == pytest.approx(v.makespan_s, rel=1e-9)
    assert s.makespan_s >= s.lower_bound_s * (1 - 1e-9)
    return v


@pytest.mark.parametrize("pattern", ["ring", "bidirectional-ring", "permutation", "random", "all-to-all"])
@pytest.mark.parametrize("delta", [1e-8, 1e-5, 1e-2])
@pytest.mark.parametrize("method", BASE)
def test_every_baseline_validates(pattern, delta, method):
    demand = synthetic_demand(pattern, 16, 4, 1e6, group=8, seed=3)
    prob = OCSProblem(demand, [5e-6] * 4, ports=3, circuit_Bps=1e10, reconfig_delay_s=delta)
    if method == "static" and pattern in ("all-to-all", "permutation", "random"):
        try:
            s = solve(prob, method)
        except ScheduleError as e:
            assert "no single configuration" in str(e)
            return
    else:
        s = solve(prob, method)
    valid(prob, s)
    assert s.method == method


def test_static_ring_closed_form():
    n, d, b, s_, P, g = 12, 4, 1e11, 2e6, 6, 3e-6
    prob = OCSProblem([ring(n, s_)] * P, [g] * P, ports=d, circuit_Bps=b, reconfig_delay_s=1e-2)
    s = solve(prob, "static")
    valid(prob, s)
    assert s.makespan_s == pytest.approx(P * g + P * s_ / (d * b))
    assert s.n_reconfigurations == 0 and len(s.configs) == 1


def test_static_and_per_phase_on_alternating_rings():
    # Rings +1 and +2 alternate.  Static holds both with d/2 circuits each; per-phase
    # gives each phase all d and pays max(0, delta - g) at every change.
    n, d, b, s_, P, g, delta = 12, 4, 1e11, 2e6, 6, 3e-6, 1e-5
    prob = OCSProblem([ring(n, s_, 1), ring(n, s_, 2)] * (P // 2), [g] * P, ports=d, circuit_Bps=b,
                      reconfig_delay_s=delta)
    st, pp = solve(prob, "static"), solve(prob, "per-phase")
    valid(prob, st), valid(prob, pp)
    assert st.makespan_s == pytest.approx(P * g + P * s_ / (d / 2 * b))
    assert pp.makespan_s == pytest.approx(P * g + P * s_ / (d * b) + (P - 1) * (delta - g))
    assert pp.n_reconfigurations == P - 1
    assert pp.exposed_reconfig_s == pytest.approx((P - 1) * (delta - g))
    assert pp.hidden_reconfig_s == pytest.approx((P - 1) * g)


@pytest.mark.parametrize("method", ["per-phase", "bvn", "solstice"])
def test_all_to_all_closed_form(method):
    # n GPUs, d ports, s bytes per pair: ceil((n-1)/d) slots of s/b each, fully exposed changes between them.
    n, d, b, s_, g, delta = 9, 3, 1e10, 2e6, 1e-6, 5e-5
    prob = OCSProblem([sp.csr_matrix((np.ones((n, n)) - np.eye(n)) * s_)], [g], ports=d, circuit_Bps=b,
                      reconfig_delay_s=delta)
    s = solve(prob, method)
    valid(prob, s)
    k = math.ceil((n - 1) / d)
    assert len(s.phases[0].slots) == k
    assert s.makespan_s == pytest.approx(g + k * s_ / b + (k - 1) * delta)


def test_bvn_of_a_permutation_uses_every_port():
    n, d, b, s_ = 8, 4, 1e10, 4e6
    prob = OCSProblem([ring(n, s_, 3)], [0.0], ports=d, circuit_Bps=b, reconfig_delay_s=1e-6)
    for method in ("bvn", "solstice"):
        s = solve(prob, method)
        valid(prob, s)
        assert s.makespan_s == pytest.approx(s_ / (d * b))


def test_solstice_slices_the_heavy_matching_first():
    # A heavy permutation (10) plus light uniform traffic (1): Solstice's
    # threshold (largest power of two with a perfect matching, 8) isolates the
    # heavy permutation in its first slice; every term is a perfect matching.
    n = 5
    heavy = np.roll(np.eye(n), 2, axis=1)
    D = 10 * heavy + (np.ones((n, n)) - np.eye(n) - heavy)
    S, L = decompose.stuff(sp.csr_matrix(D))
    terms = decompose.solstice_slices(S)
    first, w = terms[0]
    assert (first == np.argmax(heavy, axis=1)).all() and w == pytest.approx(10)
    assert sum(t[1] for t in terms) == pytest.approx(L)
    for m, _ in terms:
        assert sorted(m.tolist()) == list(range(n))


def test_static_refuses_all_to_all_without_packet_network_and_uses_it_otherwise():
    n = 8
    a2a = sp.csr_matrix((np.ones((n, n)) - np.eye(n)) * 1e6)
    prob = OCSProblem([a2a], [0.0], ports=2, circuit_Bps=1e10, reconfig_delay_s=1e-3)
    with pytest.raises(ScheduleError, match="static: no single configuration"):
        solve(prob, "static")
    pk = prob.replace(packet_Bps=5e9)
    s = solve(pk, "static")
    valid(pk, s)


def test_baselines_with_extensions_validate():
    rng = np.random.default_rng(2)
    n, d = 8, 3
    g = np.arange(n)
    R = sp.csr_matrix((np.ones(n, int), (g, (g + 4) % n)), shape=(n, n))
    demand = []
    for _ in range(4):
        D = rng.random((n, n)) * 1e6 * (rng.random((n, n)) < 0.3)
        np.fill_diagonal(D, 0)
        demand.append(D)
    allowed = np.ones((n, n), bool)
    allowed[0, 1] = allowed[1, 0] = False
    np.fill_diagonal(allowed, False)
    prob = OCSProblem(demand, [1e-6] * 4, ports=d, circuit_Bps=1e10, reconfig_delay_s=1e-5, reserved=R,
                      packet_Bps=1e9, partial_reconfig=True, allowed=allowed)
    for m in BASE:
        s = solve(prob, m)
        valid(prob, s)
        for C in s.configs:
            assert (C.toarray()[~allowed] == 0).all()


def test_heuristic_against_brute_force_optimum():
    rng = np.random.default_rng(9)
    for trial in range(6):
        n, d, P = 3, 1 + trial % 2, 3
        demand = []
        for _ in range(P):
            D = np.round(rng.random((n, n)) * 4) * 1e6 * (rng.random((n, n)) < 0.6)
            np.fill_diagonal(D, 0)
            demand.append(D)
        if not any(D.any() for D in demand):
            continue
        prob = OCSProblem(demand, rng.choice([0.0, 1e-4], size=P), ports=d, circuit_Bps=1e9,
                          reconfig_delay_s=float(rng.choice([1e-6, 1e-3])))
        try:
            opt = brute_force(prob)
        except ScheduleError:
            continue
        h = solve(prob, "heuristic", max_slots_per_phase=1)
        valid(prob, h)
        best = opt.makespan_s if hasattr(opt, "makespan_s") else float(opt["makespan_s"])
        assert h.makespan_s >= best * (1 - 1e-9)
        assert h.makespan_s <= best * 1.5 + 1e-12


def test_solve_dispatcher_rejects_bad_input():
    prob = OCSProblem([ring(4, 1e6)], [0.0], ports=1, circuit_Bps=1e9, reconfig_delay_s=0.0)
    with pytest.raises(ScheduleError, match="method"):
        solve(prob, "magic")
    with pytest.raises(ScheduleError, match="time_limit_s"):
        solve(prob, "heuristic", time_limit_s=-1)
    with pytest.raises(ScheduleError, match="baseline"):
        solve_baseline(prob, "heuristic")
    assert set(BASELINES) <= set(METHODS)


def test_auto_uses_exact_on_tiny_instances_and_is_never_worse_than_the_heuristic():
    a = np.zeros((3, 3)); a[0, 1] = a[1, 2] = 1e9
    b = np.zeros((3, 3)); b[0, 2] = 2e9
    prob = OCSProblem([a, b, a], [0.0, 0.1, 0.0], ports=1, circuit_Bps=1e9, reconfig_delay_s=0.5)
    s = solve(prob, "auto", time_limit_s=20)
    valid(prob, s)
    h = solve(prob, "heuristic")
    assert s.makespan_s <= h.makespan_s * (1 + 1e-9)
    assert "auto" in s.meta or s.method == "exact"


def test_baselines_share_work_across_equal_phases():
    # 400 phases of two distinct matrices: the baselines finish quickly and validate.
    n = 32
    prob = OCSProblem([ring(n, 1e6, 1), ring(n, 1e6, 5)] * 200, [1e-6] * 400, ports=4, circuit_Bps=1e10,
                      reconfig_delay_s=1e-5)
    for m in BASE:
        s = solve(prob, m, bound="design")
        valid(prob, s)
        assert len(s.configs) <= 2


@pytest.mark.parametrize("method", ["heuristic", *BASE])
def test_design_bound_option_reports_the_design_bound(method):
    n = 8
    prob = OCSProblem([ring(n, 1e6, 1), ring(n, 2e6, 3)] * 3, [1e-6, 2e-6] * 3, ports=2, circuit_Bps=1e10,
                      reconfig_delay_s=1e-5)
    s = solve(prob, method, bound="design")
    valid(prob, s)
    assert s.lower_bound_s == pytest.approx(prob.lower_bound_s(), rel=1e-12)
    with pytest.raises(ScheduleError, match="bound"):
        solve(prob, method, bound="magic")


def _mixed_problem():
    """Built afresh on every call: all-to-all phases (several slots) between ring phases (windows)."""
    demand = (synthetic_demand("random", 12, 3, 1e6, group=6, seed=7) + [ring(12, 2e6)] * 2
              + synthetic_demand("all-to-all", 12, 2, 1e6, group=6))
    return OCSProblem(demand, [2e-6] * 7, ports=2, circuit_Bps=1e10, reconfig_delay_s=1e-5, packet_Bps=1e9)


@pytest.mark.parametrize("method", ("heuristic",) + BASE)
def test_same_problem_twice_gives_byte_identical_json(method):
    # docs/design.md: same inputs and seed give byte-identical JSON.  Wall times
    # differ between runs, so they must stay out of the default JSON (and of meta).
    a, b = solve(_mixed_problem(), method), solve(_mixed_problem(), method)
    text = a.to_json()
    assert text == b.to_json()
    assert text == a.to_json(timing=False)
    assert not [k for k in a.meta if k.endswith("time_s")]
    timed = json.loads(a.to_json(timing=True))
    assert timed["solve_time_s"] == a.solve_time_s > 0
    assert set(timed) - set(json.loads(text)) == {"solve_time_s", "timings"}
    back = Schedule.from_json(a.to_json(timing=True))
    assert back.timings == a.timings and back.to_json() == text


def test_heuristic_reports_its_step_times_outside_meta():
    s = solve(_mixed_problem(), "heuristic")
    assert set(s.timings) == {"candidate_time_s", "dp_time_s", "retime_time_s"}
    assert all(t >= 0 for t in s.timings.values())
    assert sum(s.timings.values()) <= s.solve_time_s * (1 + 1e-9)
    assert "timings" not in json.loads(s.to_json())

