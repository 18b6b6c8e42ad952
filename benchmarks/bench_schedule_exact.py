"""Exact OCS scheduling (CP-SAT): time, proof status and gap against brute force and the heuristic.

Tables:

1. Tiny instances, one slot per phase: the exact solver against brute-force
   enumeration (both optimal; the ratio shows where CP-SAT pays off).
2. Tensor-parallel traces (recursive halving-doubling all-reduce over all
   GPUs, ring all-reduce in groups of 8) on a fast OCS, one slot per phase,
   N = 8..64 GPUs x P = 4..16 phases: time, memory, status, gap, against the
   heuristic measured in the same run.
3. All-to-all on 16 GPUs x 8 phases with several slots per phase under a time
   limit: the schedule and its proven gap.

``main(quick=True)`` runs a small part of table 1 only.
"""

from __future__ import annotations

import importlib

import numpy as np

from benchmarks._util import measure, mib, print_table

OCS = "fast-ocs"
PORTS = 4


def _tiny(seed: int, n: int, P: int, d: int):
    from ocsnet.schedule.problem import OCSProblem
    rng = np.random.default_rng(seed)
    dem = []
    for _ in range(P):
        M = np.zeros((n, n))
        for _ in range(d):
            perm = rng.permutation(n)
            M[np.arange(n), perm] = rng.integers(1, 6, n) * 1e6
        np.fill_diagonal(M, 0.0)
        dem.append(M)
    return OCSProblem(dem, rng.choice([0.0, 1e-3, 4e-3], P), ports=d, circuit_Bps=1e9, reconfig_delay_s=2e-3)


def _run_brute(seed, n, P, d):
    brute = importlib.import_module("ocsnet.schedule.brute")
    s = brute.brute_force(_tiny(seed, n, P, d))
    return {"makespan_s": s.makespan_s, "configs": s.meta["n_configs_enumerated"]}


def _run_exact_tiny(seed, n, P, d):
    from ocsnet.schedule.exact import solve_exact
    s = solve_exact(_tiny(seed, n, P, d), time_limit_s=30, num_workers=1)
    return {"makespan_s": s.makespan_s, "status": s.status}


def _tp_problem(n: int, P: int):
    from ocsnet.schedule.problem import OCSProblem
    from ocsnet.topology import ocs_fabric
    from ocsnet.traffic import Trace
    fab = ocs_fabric(n, PORTS, ocs=OCS)
    rhd = Trace.from_collective("all-reduce", [list(range(n))], 64e6, "rhd", n_gpus=n, gap_s=20e-6)
    ring = Trace.from_collective("all-reduce", np.arange(n).reshape(-1, 8), 16e6, "ring", n_gpus=n, gap_s=5e-6)
    trace = Trace.concat([rhd, ring] * (1 + P // (len(rhd) + len(ring))))
    return OCSProblem.from_trace(trace.select(range(P)), fab)


def _run_exact_tp(n, P):
    from ocsnet.schedule.exact import solve_exact
    from ocsnet.schedule.validate import validate
    prob = _tp_problem(n, P)
    s = solve_exact(prob, time_limit_s=60)
    return {"status": s.status, "gap": s.gap, "makespan_s": s.makespan_s, "changes": s.n_reconfigurations,
            "valid": validate(prob, s).ok}


def _run_heuristic_tp(n, P):
    from ocsnet.schedule.heuristic import solve_heuristic
    s = solve_heuristic(_tp_problem(n, P))
    return {"makespan_s": s.makespan_s}


def _a2a_problem(n: int, P: int, weighted: bool):
    """All-to-all: 4, 8, 12 MB per pair in turn, or (weighted) 2-8 MB drawn per pair."""
    from ocsnet.schedule.problem import OCSProblem
    from ocsnet.topology import ocs_fabric
    from ocsnet.traffic import Trace
    fab = ocs_fabric(n, PORTS, ocs=OCS)
    rng = np.random.default_rng(0)
    dem = []
    for p in range(P):
        A = rng.integers(1, 5, (n, n)) * 2e6 if weighted else np.full((n, n), 4e6 * (1 + p % 3))
        np.fill_diagonal(A, 0.0)
        dem.append(A)
    return OCSProblem.from_trace(Trace(dem, np.resize([5e-6, 20e-6], P)), fab)


def _run_exact_a2a(n, P, S, limit, weighted):
    from ocsnet.schedule.exact import solve_exact
    from ocsnet.schedule.validate import validate
    prob = _a2a_problem(n, P, weighted)
    s = solve_exact(prob, time_limit_s=limit, max_slots_per_phase=S)
    return {"status": s.status, "gap": s.gap, "makespan_s": s.makespan_s, "lower_bound_s": s.lower_bound_s,
            "hint_s": s.meta.get("hint_makespan_s"), "valid": validate(prob, s).ok}


def _warm() -> None:
    """Import the solvers here so that the forked measurements time solving, not importing."""
    for mod in ("ocsnet.schedule.brute", "ocsnet.schedule.exact", "ocsnet.schedule.heuristic",
                "ocsnet.schedule.validate", "ocsnet.topology", "ocsnet.traffic"):
        importlib.import_module(mod)
    from ocsnet.topology import ocs_fabric
    ocs_fabric(8, PORTS, ocs=OCS)


def main(quick: bool = False) -> None:
    _warm()
    tiny = [(0, 3, 2, 1), (1, 4, 2, 1)] if quick else \
        [(0, 3, 2, 1), (1, 4, 2, 1), (2, 3, 3, 2), (3, 4, 2, 2), (4, 4, 3, 2)]
    rows = []
    for seed, n, P, d in tiny:
        b = measure(_run_brute, seed, n, P, d)
        e = measure(_run_exact_tiny, seed, n, P, d)
        same = (b["result"] and e["result"]
                and abs(b["result"]["makespan_s"] - e["result"]["makespan_s"]) <= 1e-6 * b["result"]["makespan_s"])
        rows.append([n, P, d, None if not b["result"] else b["result"]["configs"],
                     None if b["time_s"] is None else 1e3 * b["time_s"],
                     None if e["time_s"] is None else 1e3 * e["time_s"],
                     None if not (b["time_s"] and e["time_s"]) else e["time_s"] / b["time_s"],
                     "yes" if same else "NO"])
    print_table("exact (CP-SAT) vs brute force, one slot per phase, tiny random instances",
                ["n_gpus", "phases", "ports", "configs", "brute_ms", "exact_ms", "ratio_exact/brute", "same_makespan"],
                rows)
    if quick:
        return

    rows = []
    for n in (8, 16, 32, 64):
        for P in (4, 8, 16):
            e = measure(_run_exact_tp, n, P)
            h = measure(_run_heuristic_tp, n, P)
            r = e["result"] or {}
            excess = None
            if e["result"] and h["result"]:
                excess = h["result"]["makespan_s"] / r["makespan_s"] - 1
            rows.append([n, P, PORTS, e["time_s"], mib(e["peak_rss_B"]), r.get("status", e.get("error")),
                         r.get("gap"), r.get("changes"), None if not r else 1e6 * r["makespan_s"],
                         "yes" if r.get("valid") else "NO", h["time_s"], excess,
                         None if not (e["time_s"] and h["time_s"]) else e["time_s"] / h["time_s"]])
    print_table(f"exact, one slot per phase: TP all-reduce traces (rhd over all GPUs, ring in 8s) on {OCS}",
                ["n_gpus", "phases", "ports", "time_s", "peak_MiB", "status", "gap", "changes", "makespan_us",
                 "valid", "heuristic_time_s", "heuristic_excess", "ratio_time_exact/heuristic"], rows)

    rows = []
    for n, P, S, limit, weighted in ((16, 8, 4, 50.0, False), (16, 8, 4, 50.0, True), (16, 8, 6, 50.0, True)):
        e = measure(_run_exact_a2a, n, P, S, limit, weighted)
        r = e["result"] or {}
        rows.append(["weighted" if weighted else "uniform", n, P, S, limit, e["time_s"], mib(e["peak_rss_B"]),
                     r.get("status", e.get("error")), r.get("gap"),
                     None if not r else 1e6 * r["makespan_s"], None if not r else 1e6 * r["lower_bound_s"],
                     None if not r.get("hint_s") else 1e6 * r["hint_s"], "yes" if r.get("valid") else "NO"])
    print_table(f"exact, several slots per phase: all-to-all on {OCS} (uniform 4-12 MB or weighted 2-8 MB per pair)",
                ["demand", "n_gpus", "phases", "slots", "limit_s", "time_s", "peak_MiB", "status", "gap", "makespan_us",
                 "lower_bound_us", "heuristic_us", "valid"], rows)


if __name__ == "__main__":
    main()
