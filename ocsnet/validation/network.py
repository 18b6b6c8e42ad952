"""Validation checks of the network stages: collectives, flow model, OCS scheduler.

Part of :mod:`ocsnet.validation` (see there for the report).  Every function
here is a generator of :class:`~ocsnet.validation.Check` taking ``quick``
and ``seed``; the reference numbers are computed here from closed forms
written out in this module, from an LP or a brute-force enumeration that
share no code with the component under test.
Components are looked up through their modules at call time (``flow.trace_time``),
so a test can replace one and watch the check that covers it fail.

References
----------
R. Thakur, R. Rabenseifner, W. Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 19(1), 2005 (alpha-beta costs of ring and
recursive halving-doubling).
NVIDIA nccl-tests, doc/PERFORMANCE.md (bus-bandwidth factors).
D. Bertsekas, R. Gallager, *Data Networks*, 2nd ed., 1992, section 6.5.2 (max-min fairness).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import scipy.sparse as sp

from .. import collectives, flow, schedule, topology
from ..errors import ScheduleError, SpecError
from .check import Check, worst_check, worst_pair

__all__ = ["collective_checks", "flow_checks", "schedule_checks"]

_THAKUR = "closed form, Thakur et al. 2005"


def _uniform(fabric, attr: str) -> float:
    """The one value an edge attribute takes on a homogeneous fabric (alpha or B of the closed forms)."""
    v = np.unique(getattr(fabric, attr))
    if len(v) != 1:
        raise SpecError(f"{fabric.name}: {attr} takes {len(v)} values, the closed form needs one")
    return float(v[0])


def _flow_time(fabric, kind: str, order, nbytes: float, algorithm: str) -> float:
    """A collective on the GPUs ``order`` (its rank order), timed by the max-min flow model."""
    from ..traffic import Trace

    tr = Trace.from_collective(kind, [list(order)], nbytes, algorithm, n_gpus=fabric.n_gpus)
    return flow.trace_time(fabric, tr, fidelity="max-min").makespan_s


def _snake(dims: tuple[int, int]) -> list[int]:
    """A Hamiltonian ring of a 2-D torus with an even second dimension (boustrophedon rows)."""
    kx, ky = dims
    return [x + kx * y for y in range(ky) for x in (range(kx) if y % 2 == 0 else range(kx - 1, -1, -1))]


# ---- 1. collectives ------------------------------------------------------------------

def collective_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """Collectives timed by the max-min flow model against alpha-beta closed forms.

    Ring fabrics are ``topology.torus(p)`` (and, in the full run, 4 x 4 and
    8 x 8 tori walked along a Hamiltonian ring), cliques ``fully_connected(p)``;
    ``alpha`` is the link latency and ``B`` the link bandwidth, read off the
    fabric.  Every flow of a step has a link of its own, so the flow model
    must reproduce the closed form exactly.
    """
    sizes = (4e3, 16e6) if quick else (4e3, 1e6, 64e6)
    rings = [("ring", 4)] if quick else [("ring", 4), ("ring", 8), ("ring", 16), ("torus", (4, 4)),
                                          ("torus", (8, 8))]
    cliques = (4,) if quick else (4, 8, 16, 32)
    kinds = (("all-reduce", 2), ("reduce-scatter", 1), ("all-gather", 1))
    cases: dict[str, list] = {k: [] for k, _ in kinds}
    for shape, dims in rings:
        f = topology.torus(dims)
        order = list(range(f.n_gpus)) if shape == "ring" else _snake(dims)
        a, B = _uniform(f, "latency_s"), _uniform(f, "capacity_Bps")
        p = f.n_gpus
        where = f"{f.name}, p={p}"
        for n in sizes:
            for kind, factor in kinds:
                want = factor * (p - 1) * (a + n / (p * B))
                cases[kind].append((_flow_time(f, kind, order, n, "ring"), want, f"{where}, {n:.0f} B"))
    for kind, factor in kinds:
        form = "2(p-1)" if factor == 2 else "(p-1)"
        yield worst_check(cases[kind], name=f"ring {kind} on a ring", group="collectives",
                          what=f"ring {kind} placed on a ring of GPUs (torus links), each step timed by the "
                                f"max-min fluid model, against {form}(alpha + n/(p B))",
                          quantity="time_us", source=_THAKUR, tolerance=1e-9)
    rhd, a2a = [], []
    for p in cliques:
        f = topology.fully_connected(p)
        a, B = _uniform(f, "latency_s"), _uniform(f, "capacity_Bps")
        for n in sizes:
            want = 2 * math.log2(p) * a + 2 * (p - 1) / p * n / B
            rhd.append((_flow_time(f, "all-reduce", range(p), n, "rhd"), want, f"{f.name}, {n:.0f} B"))
            want = (p - 1) * (a + n / (p * B))
            a2a.append((_flow_time(f, "all-to-all", range(p), n, "pairwise"), want, f"{f.name}, {n:.0f} B"))
    yield worst_check(rhd, name="rhd all-reduce on a clique", group="collectives",
                      what="recursive halving-doubling all-reduce on a fully connected fabric (p a power of "
                            "two), max-min fluid model, against 2 log2(p) alpha + 2 (p-1)/p n/B",
                      quantity="time_us", source=_THAKUR, tolerance=1e-9)
    yield worst_check(a2a, name="pairwise all-to-all on a clique", group="collectives",
                      what="pairwise-exchange all-to-all on a fully connected fabric, max-min fluid model, "
                            "against (p-1)(alpha + n/(p B))",
                      quantity="time_us", source=_THAKUR, tolerance=1e-9)
    yield _bus_factor_check(quick)


# nccl-tests doc/PERFORMANCE.md: busBw = algBw * factor; the factor is what a rank moves per buffer byte.
_NCCL_FACTOR = {"all-reduce": lambda p: 2 * (p - 1) / p, "reduce-scatter": lambda p: (p - 1) / p,
                "all-gather": lambda p: (p - 1) / p, "all-to-all": lambda p: (p - 1) / p}
_BANDWIDTH_OPTIMAL = (("all-reduce", "ring"), ("all-reduce", "rhd"), ("reduce-scatter", "ring"),
                      ("reduce-scatter", "rhd"), ("all-gather", "ring"), ("all-gather", "rhd"),
                      ("all-to-all", "pairwise"))


def _bus_factor_check(quick: bool) -> Check:
    groups = (8,) if quick else (4, 8, 16, 64)
    n = 1e6
    cases = []
    for p in groups:
        for kind, algo in _BANDWIDTH_OPTIMAL:
            want = _NCCL_FACTOR[kind](p)
            mats = collectives.expand(kind, p, n, algo)
            sent = sum(np.asarray(m.sum(axis=1)).ravel() for m in mats)       # bytes per rank, all steps
            recv = sum(np.asarray(m.sum(axis=0)).ravel() for m in mats)
            label = f"{kind} {algo} p={p}"
            cases += [(sent.max() / n, want, label + " (most sent)"), (sent.min() / n, want, label + " (least sent)"),
                      (recv.max() / n, want, label + " (most received)"),
                      (collectives.bus_bandwidth_factor(kind, p), want, f"bus_bandwidth_factor({kind}, {p})")]
    return worst_check(cases, name="bus-bandwidth factors", group="collectives",
                       what="bytes each rank sends and receives over the expanded steps of the bandwidth-optimal "
                             "algorithms, per buffer byte, against the nccl-tests bus-bandwidth factor "
                             "(all-reduce 2(p-1)/p, others (p-1)/p)",
                       quantity="bytes_per_buffer_byte", source="nccl-tests doc/PERFORMANCE.md", tolerance=1e-12)


# ---- 2. flow model against the LP ----------------------------------------------------

def _lp_rates(A, c, cap):
    """Max-min rates by the LP sequence, solved in units of the largest finite capacity.

    HiGHS works with absolute feasibility tolerances near 1e-7, so rates near
    1e10 bytes/s must be scaled to order one; max-min fairness commutes with
    scaling all capacities and caps by one factor.
    """
    from ..flow.reference import max_min_fair_lp

    fin = np.concatenate([c[np.isfinite(c)], cap[np.isfinite(cap)]])
    s = float(fin.max()) if len(fin) else 1.0
    return max_min_fair_lp(A, c / s, cap / s) * s


def _random_instance(rng, links: int, flows: int):
    fractions = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.25, 1 / 3])
    A = rng.choice(fractions, size=(links, flows))
    c = rng.uniform(1.0, 100.0, links) * 1e9                       # 1 to 100 GB/s
    c[rng.random(links) < 0.1] = np.inf
    cap = np.where(rng.random(flows) < 0.25, rng.uniform(0.5, 50.0, flows) * 1e9, np.inf)
    return sp.csr_matrix(A), c, cap


def flow_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """:func:`ocsnet.flow.max_min_fair` against the LP sequence, on random and on routed instances."""
    rng = np.random.default_rng(seed)
    n_inst, L, F = (3, 6, 8) if quick else (25, 10, 14)
    got, want = [], []
    for _ in range(n_inst):
        A, c, cap = _random_instance(rng, int(rng.integers(2, L + 1)), int(rng.integers(2, F + 1)))
        r_lp = _lp_rates(A, c, cap)
        ok = np.isfinite(r_lp)                                       # unbounded flows: both inf, nothing to compare
        got.append(flow.max_min_fair(A, c, cap)[ok])
        want.append(r_lp[ok])
    o, r, _ = worst_pair(np.concatenate(got), np.concatenate(want))
    yield Check(name="max-min rates vs LP, random", group="flow",
                what=f"max-min fair rates of {n_inst} random link-by-flow instances (up to {L} links, {F} flows, "
                     "ECMP fractions, infinite links, rate caps), progressive-filling kernel against an LP sequence",
                quantity="rate_GBps", ocsnet=o, reference=r, tolerance=1e-6,
                source="LP sequence (HiGHS), Bertsekas & Gallager 6.5.2",
                note=f"worst of {sum(len(x) for x in got)} flow rates; seed {seed}")
    fabrics = [topology.fat_tree(4)] if quick else [topology.fat_tree(4), topology.torus((4, 4)),
                                                     topology.leaf_spine(32, gpus_per_leaf=8)]
    got, want, labels = [], [], []
    n_flows = 16 if quick else 32
    for f in fabrics:
        src = rng.integers(0, f.n_gpus, n_flows)
        dst = (src + rng.integers(1, f.n_gpus, n_flows)) % f.n_gpus
        R = flow.route(f, src, dst, method="ecmp")
        cap = np.full(n_flows, np.inf)
        got.append(flow.max_min_fair(R.incidence, f.capacity_Bps))
        want.append(_lp_rates(R.incidence, f.capacity_Bps, cap))
        labels += [f.name] * n_flows
    o, r, i = worst_pair(np.concatenate(got), np.concatenate(want))
    yield Check(name="max-min rates vs LP, routed", group="flow",
                what=f"{n_flows} random flows ECMP-routed on {', '.join(f.name for f in fabrics)}: max-min fair "
                     "rates of the kernel against an LP sequence",
                quantity="rate_GBps", ocsnet=o, reference=r, tolerance=1e-6,
                source="LP sequence (HiGHS), Bertsekas & Gallager 6.5.2", note=f"worst flow on {labels[i]}")


# ---- 3. scheduler against brute force ------------------------------------------------

def _tiny_problems(rng, count: int, n: int, P: int):
    """Random tiny OCS problems that a one-slot-per-phase schedule can serve."""
    from ..schedule.brute import brute_force

    out = []
    while len(out) < count:
        d = int(rng.integers(1, 3))
        demand = []
        for _ in range(P):
            D = np.round(rng.random((n, n)) * 4) * 1e6 * (rng.random((n, n)) < 0.6)
            np.fill_diagonal(D, 0)
            demand.append(D)
        if not any(D.any() for D in demand):
            continue
        prob = schedule.OCSProblem(demand, rng.choice([0.0, 1e-4, 1e-3], size=P), ports=d, circuit_Bps=1e9,
                                   reconfig_delay_s=float(rng.choice([1e-6, 5e-4, 2e-3])))
        try:
            best = brute_force(prob)
        except ScheduleError:
            continue                          # needs more circuits at a GPU than it has ports
        out.append((prob, best.makespan_s))
    return out


def _ring_trace_problem(n_gpus: int, layers: int, ports: int, nbytes: float):
    """Per layer: ring reduce-scatter one way, then ring all-gather the other way, each after a gap
    longer than the reconfiguration delay.  The optimum holds every port on the current direction
    and reconfigures under each gap, so it reaches the lower bound."""
    from ..traffic import Trace

    order = list(range(n_gpus))
    gap, delta, b = 20e-6, 10e-6, 25e9
    parts = []
    for _ in range(layers):
        parts.append(Trace.from_collective("reduce-scatter", [order], nbytes, "ring", n_gpus=n_gpus, gap_s=gap))
        parts.append(Trace.from_collective("all-gather", [order[::-1]], nbytes, "ring", n_gpus=n_gpus, gap_s=gap))
    tr = Trace.concat(parts)
    prob = schedule.OCSProblem(tr.demand, tr.gap_s, ports=ports, circuit_Bps=b, reconfig_delay_s=delta)
    # Closed-form bound (docs/design.md): gaps plus, per phase, the busiest GPU's bytes over d b.
    rows = np.array([max(np.asarray(D.sum(axis=1)).max(), np.asarray(D.sum(axis=0)).max()) for D in tr.demand])
    bound = float(tr.gap_s.sum() + rows.sum() / (ports * b))
    return prob, bound


def schedule_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """Exact CP-SAT against brute force on tiny problems; heuristic against the bound on ring traces."""
    rng = np.random.default_rng(seed + 1)
    count, P = (2, 2) if quick else (12, 3)
    got, want = [], []
    statuses = []
    for prob, best in _tiny_problems(rng, count, 3, P):
        s = schedule.solve(prob, "exact", time_limit_s=20.0, max_slots_per_phase=1)
        got.append(s.makespan_s)
        want.append(best)
        statuses.append(s.status)
    o, r, i = worst_pair(got, want)
    yield Check(name="exact CP-SAT vs brute force", group="schedule",
                what=f"makespan of the exact CP-SAT schedule (one slot per phase) of {count} random 3-GPU, "
                     f"{P}-phase OCS problems against the optimum found by enumerating every configuration",
                quantity="makespan_us", ocsnet=o, reference=r, tolerance=1e-6,
                source="brute-force enumeration + DP (ocsnet.schedule.brute)",
                note=f"worst of {count} (status {statuses[i]}); seed {seed}")
    sizes = [(8, 1, 2)] if quick else [(8, 1, 2), (64, 4, 4), (256, 2, 8)]
    cases = []
    for n, layers, d in sizes:
        prob, bound = _ring_trace_problem(n, layers, d, 8e6)
        s = schedule.solve(prob, "heuristic")
        cases.append((s.makespan_s, bound, f"{n} GPUs, {layers} layer(s), {d} ports, {prob.P} phases"))
    yield worst_check(cases, name="heuristic vs lower bound, ring trace", group="schedule",
                      what="heuristic makespan of ring reduce-scatter then reverse-ring all-gather per layer "
                            "(gaps longer than the reconfiguration delay, so the bound is reachable) against the "
                            "closed-form lower bound: gaps + sum over phases of max row/column sum / (d b)",
                      quantity="makespan_us", source="closed-form lower bound (docs/design.md)", tolerance=1e-9)
