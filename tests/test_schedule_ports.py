"""Per-GPU optical ports in OCSProblem (a GPU that lost ports): every solver, bound, the brute
force and validate honour them; re-solving after a fault, warm-started from the old schedule."""

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from ocsnet.errors import ScheduleError
from ocsnet.faults import ocs_ports
from ocsnet.schedule import OCSProblem, solve, validate
from ocsnet.schedule.repair import clip_config, resolve_after_fault
from ocsnet.topology import ocs_fabric

brute = importlib.import_module("ocsnet.schedule.brute")
bounds = importlib.import_module("ocsnet.schedule.bounds")
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def ring(n, k=1, size=8e6):
    return np.roll(np.eye(n), k, axis=1) * size


def test_ports_array_and_errors():
    p = OCSProblem([ring(4)], [0.0], ports=[1, 2, 2, 2], circuit_Bps=1e9, reconfig_delay_s=0.0)
    assert p.ports == 2 and not p.uniform_ports and p.free_out.tolist() == [1, 2, 2, 2]
    assert "ports=1..2" in repr(p)
    assert OCSProblem([ring(4)], [0.0], ports=3, circuit_Bps=1e9, reconfig_delay_s=0.0).uniform_ports
    for bad, msg in (([1, 2], "one integer per GPU"), ([1, -1, 2, 2], r"ports\[1\]"),
                     ([0, 0, 0, 0], "every GPU has 0 ports"), ([1.5, 1, 1, 1], r"ports\[0\]"), (0, "ports")):
        with pytest.raises(ScheduleError, match=msg):
            OCSProblem([ring(4)], [0.0], ports=bad, circuit_Bps=1e9, reconfig_delay_s=0.0)
    with pytest.raises(ScheduleError, match=r"demand\[0\]\[0, 1\]: can never be served"):
        OCSProblem([ring(4)], [0.0], ports=[0, 2, 2, 2], circuit_Bps=1e9, reconfig_delay_s=0.0)
    R = np.zeros((4, 4), int)
    R[0, 1] = 2
    with pytest.raises(ScheduleError, match="allowed at most ports = 1"):
        OCSProblem([ring(4)], [0.0], ports=[1, 2, 2, 2], circuit_Bps=1e9, reconfig_delay_s=0.0, reserved=R)


def test_lower_bound_uses_each_gpus_ports():
    # GPU 0 sends 8 MB over its only port; the others have 4 ports
    p = OCSProblem([ring(4)], [0.0], ports=[1, 4, 4, 4], circuit_Bps=1e9, reconfig_delay_s=0.0)
    assert p.lower_bound_s() == pytest.approx(8e-3)
    assert bounds.slots_needed(p).tolist() == [1]
    a2a = np.ones((4, 4)) - np.eye(4)
    q = OCSProblem([a2a], [0.0], ports=[1, 3, 3, 3], circuit_Bps=1e9, reconfig_delay_s=0.0)
    assert bounds.slots_needed(q).tolist() == [3]            # GPU 0 has 3 partners, 1 port


def test_validate_names_gpu_and_lost_port():
    p2 = OCSProblem([ring(4)], [0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=0.0)
    s = solve(p2, "per-phase")
    C = s.configs[0].toarray()
    C[0, 1] = 2                                               # uses both ports of GPU 0
    from ocsnet.schedule import Schedule
    sch = Schedule.from_configs(p2, [[C]])
    p1 = p2.replace(ports=[1, 2, 2, 2])
    r = validate(p1, sch)
    assert not r.ok
    assert any("row 0 uses 2 transmit ports" in v and "GPU 0 lost 1 of its 2 ports" in v and "phase 0" in v
               for v in r.violations), r.violations


@st.composite
def tiny_ports(draw):
    n = draw(st.integers(2, 4))
    P = draw(st.integers(1, 3))
    dem = []
    for _ in range(P):
        M = np.zeros((n, n))
        for _ in range(draw(st.integers(1, 2))):
            perm = draw(st.permutations(range(n)))
            for i, j in enumerate(perm):
                if i != j:
                    M[i, j] = draw(st.integers(1, 6)) * 1e6
        dem.append(M)
    ports = [draw(st.integers(1, 2)) for _ in range(n)]
    gaps = [draw(st.sampled_from([0.0, 1e-3, 4e-3])) for _ in range(P)]
    delta = draw(st.sampled_from([0.0, 2e-3, 1e-2]))
    try:
        return OCSProblem(dem, gaps, ports=ports, circuit_Bps=1e9, reconfig_delay_s=delta)
    except ScheduleError:
        assume(False)


@settings(max_examples=40, **SETTINGS)
@given(tiny_ports())
def test_solvers_and_bounds_against_brute_force(prob):
    try:
        b = brute.brute_force(prob, limit=500_000)
    except ScheduleError:
        assume(False)
    assert validate(prob, b).ok
    lb = bounds.lower_bound_s(prob, max_slots_per_phase=1)
    assert lb <= b.makespan_s * (1 + 1e-9)
    assert bounds.lower_bound_s(prob) <= b.makespan_s * (1 + 1e-9)
    for method in ("heuristic", "per-phase", "bvn"):
        s = solve(prob, method)
        r = validate(prob, s)
        assert r.ok, (method, r.violations)
        assert s.lower_bound_s <= s.makespan_s * (1 + 1e-9)
    ex = solve(prob, "exact", time_limit_s=10, max_slots_per_phase=1)
    assert validate(prob, ex).ok
    assert ex.makespan_s == pytest.approx(b.makespan_s, rel=1e-6)


def test_failed_plane_gives_every_gpu_one_port_less():
    f = ocs_fabric(8, 3)
    ports = ocs_ports(f, "plane:2")
    assert ports.tolist() == [2] * 8
    p = OCSProblem([ring(8), ring(8, 2)], [0.0, 0.0], ports=ports, circuit_Bps=1e9, reconfig_delay_s=1e-3)
    assert p.uniform_ports and p.ports == 2


def test_clip_config_keeps_pairs_when_it_can():
    C = np.zeros((3, 3), int)
    C[0, 1], C[0, 2] = 2, 1
    out = clip_config(C, np.array([2, 3, 3]), np.array([3, 3, 3])).toarray()
    assert out[0].tolist() == [0, 1, 1]
    out = clip_config(C, np.array([1, 3, 3]), np.array([3, 3, 3])).toarray()
    assert out[0].sum() == 1


@pytest.mark.parametrize("seed", range(4))
def test_resolve_after_port_loss(seed):
    rng = np.random.default_rng(seed)
    n = 16
    dem = [ring(n, k) * rng.uniform(0.5, 2) for k in (1, 2, 3, 1, 2, 3)]
    prob = OCSProblem(dem, [1e-3] * 6, ports=2, circuit_Bps=1e9, reconfig_delay_s=5e-3)
    old = solve(prob, "heuristic")
    ports = np.full(n, 2)
    ports[rng.choice(n, 3, replace=False)] = 1
    new = prob.replace(ports=ports)
    r = resolve_after_fault(old, new, compare=True)
    assert validate(new, r.schedule).ok
    assert r.makespan_s >= new.lower_bound_s() * (1 - 1e-9)
    assert r.makespan_s <= r.scratch_makespan_s * (1 + 1e-9)
    assert r.old_makespan_s == old.makespan_s
    # nothing lost: the repair keeps the schedule
    same = resolve_after_fault(old, prob)
    assert same.makespan_s == pytest.approx(old.makespan_s) and same.configs_clipped == 0
