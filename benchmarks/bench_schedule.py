"""OCS circuit scheduling: the heuristic against the lower bound, the exact solver and the baselines.

Instances:

* **decode**: one Llama3-405B decode step (TP=16 ring all-reduces, 4 pipeline
  stages, batch 64, context 4,096) built by ``ocsnet.traffic.build_trace`` on
  ``ocs_fabric(N, 8)`` for N >= 64; N = 8 uses a synthetic equivalent (126
  layers x 2 ring all-reduces over the 8 GPUs, 40/60 us compute gaps).  The
  OCS is scheduled as one non-blocking switch per plane (every pair allowed,
  8 ports), which is what the solver is measured on.
* **a2a**: 8 phases of an all-to-all inside groups of 16 GPUs (1 MB per pair,
  20 us gaps): 15 partners on 8 ports, so every phase needs several slots.
* **tiny**: random permutations and sparse random demand on 4..8 GPUs, where
  the exact CP-SAT solver finishes.

Tables: heuristic time and peak memory (forked child) with makespan, lower
bound and gap; time ratio to the per-phase baseline run on the same instance
in the same run; every baseline's makespan relative to the heuristic at
delta = 10 ns, 10 us and 10 ms; the heuristic's gap to the exact optimum.

Every solve reports the tightest bound of ``ocsnet.schedule.bounds`` (its
time is included in the solve time).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks._util import measure, mib, print_table

DELTAS = (("10ns", 1e-8), ("10us", 1e-5), ("10ms", 1e-2))
BASELINES = ("static", "per-phase", "bvn", "solstice")


def _synthetic_decode(n: int, layers: int, delta: float):
    from ocsnet.schedule import OCSProblem
    from ocsnet.schedule.scenario import synthetic_demand

    tp = min(16, n)
    ring = synthetic_demand("ring", n, 1, 64 * 16384 * 2 / tp, group=tp)[0]
    steps = 2 * (tp - 1)
    demand, gaps = [], []
    for _ in range(layers):
        for pre in (40e-6, 60e-6):
            demand += [ring] * steps
            gaps += [pre] + [0.5e-6] * (steps - 1)
    return OCSProblem(demand, gaps, ports=8, circuit_Bps=100e9, reconfig_delay_s=delta,
                      period=(0, 2 * steps, layers), name=f"decode-synthetic-{n}")


def decode_problem(n: int, delta: float, *, layers: int = 126):
    """The decode instance on ``n`` GPUs (see the module docstring)."""
    if n < 64:
        return _synthetic_decode(n, layers, delta)
    from ocsnet.schedule import OCSProblem
    from ocsnet.topology import ocs_fabric
    from ocsnet.traffic import build_trace
    from ocsnet.workload import ParallelPlan

    fab = ocs_fabric(n, 8, ocs="fast-ocs")
    tr = build_trace("llama3-405b", ParallelPlan(tp=16, pp=4, dp=n // 64), fab, "decode", batch=64, context=4096)
    return OCSProblem.from_trace(tr, fab, reconfig_delay_s=delta, name=f"decode-{n}")


def a2a_problem(n: int, delta: float, phases: int = 8):
    from ocsnet.schedule import OCSProblem
    from ocsnet.schedule.scenario import synthetic_demand

    demand = synthetic_demand("all-to-all", n, phases, 1e6, group=min(16, n))
    return OCSProblem(demand, [20e-6] * phases, ports=8, circuit_Bps=100e9, reconfig_delay_s=delta,
                      period=(0, 1, phases), name=f"a2a-{n}")


def tiny_problem(n: int, phases: int, delta: float, seed: int):
    from ocsnet.schedule import OCSProblem
    from ocsnet.schedule.scenario import synthetic_demand

    pattern = "permutation" if seed % 2 else "random"
    demand = synthetic_demand(pattern, n, phases, 4e6, density=0.35, seed=seed)
    return OCSProblem(demand, [5e-6] * phases, ports=2, circuit_Bps=100e9, reconfig_delay_s=delta,
                      name=f"tiny-{pattern}-{n}")


def _summary(s) -> dict:
    return {"makespan_s": s.makespan_s, "lower_bound_s": s.lower_bound_s, "gap": s.gap, "status": s.status,
            "reconfigs": s.n_reconfigurations, "slots": max(len(ph.slots) for ph in s.phases),
            "distinct": (s.meta.get("candidates") or {}).get("distinct_demands")}


def _run(prob, method: str, **kw) -> dict:
    from ocsnet.schedule import solve

    return _summary(solve(prob, method, **kw))


def _solve_valid(prob, method: str, **kw) -> dict:
    """Solve and validate (the benchmark never reports a schedule that does not validate)."""
    from ocsnet.schedule import solve, validate

    s = solve(prob, method, **kw)
    v = validate(prob, s)
    out = _summary(s)
    out["valid"] = v.ok
    return out


def _ms(x):
    return None if x is None else x * 1e3


def main(quick: bool = False) -> None:
    # Import the solvers here, once: every forked measurement inherits them.
    import ocsnet.schedule.baselines  # noqa: F401
    import ocsnet.schedule.exact  # noqa: F401
    import ocsnet.schedule.heuristic  # noqa: F401
    import ocsnet.schedule.validate  # noqa: F401

    sizes = (8,) if quick else (8, 64, 256, 1024, 4096)
    layers = 4 if quick else 126
    deltas = DELTAS[1:2] if quick else DELTAS

    # 1. heuristic scaling on the decode step, time ratio to per-phase (same run)
    rows = []
    problems = {}
    for n in sizes:
        prob = decode_problem(n, 1e-5, layers=layers) if n < 64 or not quick else _synthetic_decode(n, layers, 1e-5)
        problems[n] = prob
        h = measure(_solve_valid, prob, "heuristic")
        b = measure(_run, prob, "per-phase")
        r = h["result"] or {}
        ratio = h["time_s"] / b["time_s"] if h["time_s"] and b["time_s"] else None
        rows.append([n, prob.P, r.get("distinct"), h["time_s"], mib(h["peak_rss_B"]), mib(h["peak_delta_B"]),
                     _ms(r.get("makespan_s")), _ms(r.get("lower_bound_s")),
                     None if r.get("gap") is None else 100 * r["gap"], r.get("reconfigs"), r.get("valid"),
                     b["time_s"], ratio])
    print_table("heuristic on a Llama3-405B decode step (delta = 10 us)",
                ["N", "phases", "distinct", "time_s", "peak_MiB", "delta_MiB", "makespan_ms", "bound_ms",
                 "gap_pct", "reconfigs", "valid", "per_phase_time_s", "time_ratio"], rows)

    # 2. every baseline relative to the heuristic, decode and all-to-all, three delays
    rows = []
    for kind in ("decode", "a2a"):
        for n in sizes:
            for label, delta in deltas:
                prob = problems[n].replace(reconfig_delay_s=delta) if kind == "decode" else a2a_problem(n, delta)
                h = measure(_solve_valid, prob, "heuristic")
                hr = h["result"] or {}
                row = [kind, n, label, h["time_s"], _ms(hr.get("makespan_s")),
                       None if hr.get("gap") is None else 100 * hr["gap"], hr.get("reconfigs")]
                for m in BASELINES:
                    res = measure(_solve_valid, prob, m)
                    r = res["result"]
                    if r is None or not hr:
                        row.append(None)         # no schedule (static on an all-to-all wider than the ports)
                    else:
                        assert r["valid"], (kind, n, label, m)
                        row.append(r["makespan_s"] / hr["makespan_s"])
                rows.append(row)
    print_table("baselines: makespan relative to the heuristic ('-': no such schedule)",
                ["instance", "N", "delta", "heur_time_s", "heur_ms", "heur_gap_pct", "reconfigs",
                 *[f"{m}_x" for m in BASELINES]], rows)

    # 3. gap to the exact optimum where CP-SAT finishes
    rows = []
    cases = [(4, 4, 1e-5, 1)] if quick else [(n, P, d, seed) for n in (4, 6, 8) for P in (4, 6)
                                              for d in (1e-8, 1e-5, 1e-2) for seed in (1, 2)]
    limit = 1.0 if quick else 20.0
    for n, P, delta, seed in cases:
        prob = tiny_problem(n, P, delta, seed)
        h = measure(_run, prob, "heuristic")
        hr = h["result"] or {}
        slots = hr.get("slots", 1)
        e = measure(_run, prob, "exact", time_limit_s=limit, max_slots_per_phase=slots)
        er = e["result"] or {}
        gap = None
        if hr and er:
            gap = 100 * (hr["makespan_s"] - er["makespan_s"]) / er["makespan_s"]
        rows.append([prob.name, P, delta * 1e6, slots, h["time_s"], _ms(hr.get("makespan_s")), e["time_s"],
                     _ms(er.get("makespan_s")), er.get("status"), gap,
                     None if hr.get("gap") is None else 100 * hr["gap"]])
    print_table("heuristic against the exact CP-SAT schedule (same slots per phase)",
                ["instance", "phases", "delta_us", "slots", "heur_time_s", "heur_ms", "exact_time_s", "exact_ms",
                 "exact_status", "heur_over_exact_pct", "heur_gap_to_bound_pct"], rows)


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
