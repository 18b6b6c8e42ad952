"""Faults: degrading a fabric, and routing random flows on a torus with and without failures.

Table 1: dimension-order routing (``route_dor``) of random flows on tori up to
65,536 GPUs, intact and with failed links and GPUs (detours), against the
breadth-first ``route(method="shortest")`` measured in the same run (the
baseline runs only where it finishes in about a minute).  Goal: 1e6 flows on a
65,536-GPU torus under 10 s.

Table 2: ``degrade`` of fabrics up to 65,536 GPUs (connectivity groups included).

Table 3: blast radius of every component of fabrics up to 65,536 GPUs
(``blast_matrices`` + ``blast_summary``).  Goal: under 10 s at 65,536 GPUs.

Table 4: Monte Carlo of 30 days of failures and repairs on deployments up to
65,536 GPUs, with the analytic steady state for comparison.  Goal: under 10 s.

Table 5: re-solving an OCS schedule after port losses (warm-started repair)
against the heuristic from scratch: time and makespan.

Every case runs in a forked process (time and peak RSS).
"""

from __future__ import annotations

import numpy as np

from benchmarks._util import measure, mib, print_table

SEED = 0


def _flows(n_gpus, n_flows):
    rng = np.random.default_rng(SEED)
    s = rng.integers(0, n_gpus, n_flows)
    d = rng.integers(0, n_gpus, n_flows)
    keep = s != d
    return s[keep], d[keep]


def _faults(fabric, n_links, n_gpus):
    from ocsnet.faults import FaultSet
    rng = np.random.default_rng(SEED + 1)
    und = np.flatnonzero(fabric.src < fabric.dst)
    pick = rng.choice(und, size=n_links, replace=False)
    return FaultSet(links=[(int(fabric.src[e]), int(fabric.dst[e])) for e in pick],
                    gpus=rng.choice(fabric.n_gpus, size=n_gpus, replace=False).tolist())


def _route_case(dims, n_flows, method, n_links, n_gpus):
    from ocsnet.faults import degrade
    from ocsnet.flow import route
    from ocsnet.flow.torus import route_dor
    from ocsnet.topology import torus
    import time
    f = torus(dims, link_Bps=50e9)
    if n_links or n_gpus:
        f = degrade(f, _faults(f, n_links, n_gpus)).fabric
    s, d = _flows(f.n_gpus, n_flows)
    t0 = time.perf_counter()
    if method == "dor":
        r = route_dor(f, s, d, unreachable="report")
    else:
        r = route(f, s, d, method="shortest", unreachable="report")
    return time.perf_counter() - t0, int(r.incidence.nnz), int(len(r.unreachable))


def _degrade_case(kind, size, n_faults):
    import time
    from ocsnet.faults import degrade
    from ocsnet.topology import fat_tree, torus
    f = torus(size, link_Bps=50e9) if kind == "torus" else fat_tree(size)
    fs = _faults(f, n_faults, n_faults) if kind == "torus" else None
    if fs is None:
        from ocsnet.faults import FaultSet
        sw = np.flatnonzero(f.kind == "packet_switch")[:n_faults]
        fs = FaultSet(gpus=list(range(n_faults)), switches=sw.tolist())
    t0 = time.perf_counter()
    dg = degrade(f, fs)
    return time.perf_counter() - t0, f.n_gpus, int(len(dg.cut_off))


def main(quick: bool = False) -> None:
    cases = [([16, 16], 10_000), ([8, 8, 8, 8], 100_000), ([16, 16, 16, 16], 1_000_000)]
    if quick:
        cases = cases[:1]
    rows = []
    for dims, nf in cases:
        n = int(np.prod(dims))
        for faults in ((0, 0), (64, 8)):
            m = measure(_route_case, dims, nf, "dor", *faults)
            base = None
            if nf <= 100_000 or faults == (0, 0):     # the 1e6-flow baseline once: it takes minutes
                b = measure(_route_case, dims, nf, "shortest", *faults, timeout_s=400)
                base = b["result"][0] if b["result"] else None
            t = m["result"][0] if m["result"] else None
            rows.append(["x".join(map(str, dims)), n, nf, f"{faults[0]} links, {faults[1]} GPUs",
                         t, mib(m["peak_rss_B"]), base, (base / t) if (base and t) else None,
                         m["result"][2] if m["result"] else None])
    print_table("dimension-order routing with detours vs breadth-first shortest paths (same run)",
                ["torus", "GPUs", "flows", "failed", "dor_s", "peak_MiB", "bfs_s", "speedup", "unreachable"],
                rows)
    dcases = [("torus", [16, 16], 8), ("fat_tree", 16, 8)]
    if not quick:
        dcases += [("torus", [16, 16, 16, 16], 64), ("fat_tree", 64, 64)]
    rows = []
    for kind, size, nf in dcases:
        m = measure(_degrade_case, kind, size, nf)
        r = m["result"] or (None, None, None)
        rows.append([kind, r[1], nf, r[0], mib(m["peak_rss_B"]), r[2]])
    print_table("degrade (surviving fabric + connectivity groups)",
                ["fabric", "GPUs", "faults_per_kind", "time_s", "peak_MiB", "gpus_cut_off"], rows)
    tables_reliability(quick)


def _blast_case(kind, size, per_replica):
    import time
    from ocsnet import reliability as rl
    from ocsnet.topology import build, torus
    f = torus(size, link_Bps=50e9) if kind == "torus" else build(kind, gpu="lite-base", n_gpus=size)
    t0 = time.perf_counter()
    dep = rl.deployment(f, "lite-base", per_replica, comm_fraction=0.3)
    mats = rl.blast_matrices(dep)
    summ = rl.blast_summary(dep, mats)
    units = sum(v.get("units", 0) for v in summ.values())
    return time.perf_counter() - t0, f.n_gpus, units


def _mc_case(kind, size, per_replica, policy):
    import time
    from ocsnet import reliability as rl
    from ocsnet.topology import build, torus
    f = torus(size, link_Bps=50e9) if kind == "torus" else build(kind, gpu="lite-base", n_gpus=size)
    dep = rl.deployment(f, "lite-base", per_replica, comm_fraction=0.3)
    c = rl.components(dep, rl.failure_model(), policy=policy, spares=f.n_gpus // 32 if policy != "none" else 0,
                      weights_B_per_gpu=4e9)
    t0 = time.perf_counter()
    m = rl.monte_carlo(c, days=30, seed=0)
    dt = time.perf_counter() - t0
    a = rl.analytic(c)
    return dt, f.n_gpus, m["failures"], m["lost_share"], m["ci95"], a["lost_share"]


def _resolve_case(n, phases, lost):
    import time
    from ocsnet.schedule import OCSProblem, solve
    from ocsnet.schedule.repair import resolve_after_fault
    rng = np.random.default_rng(SEED)
    dem = []
    for p in range(phases):
        k = 1 << (p % max(1, int(np.log2(n)) - 1))
        D = np.zeros((n, n))
        i = np.arange(n)
        D[i, (i + k) % n] = rng.uniform(0.5, 2.0, n) * 16e6
        dem.append(D)
    prob = OCSProblem(dem, [2e-5] * phases, ports=4, circuit_Bps=50e9, reconfig_delay_s=1e-5)
    old = solve(prob, "heuristic")
    ports = np.full(n, 4)
    ports[rng.choice(n, lost, replace=False)] = 3
    new = prob.replace(ports=ports)
    t0 = time.perf_counter()
    r = resolve_after_fault(old, new, compare=True)
    return (r.repair_time_s, r.scratch_time_s, old.makespan_s, r.repair_makespan_s, r.scratch_makespan_s, new.lower_bound_s(), len(r.phases_resolved), time.perf_counter() - t0,
            r.source)


def tables_reliability(quick: bool) -> None:
    cases = [("torus", [16, 16], 32), ("lite-ocs", 1024, 32)]
    if not quick:
        cases += [("torus", [16, 16, 16, 16], 32), ("lite-fat-tree", 65536, 32), ("lite-ocs", 65536, 32)]
    rows = []
    for kind, size, rep in cases:
        m = measure(_blast_case, kind, size, rep)
        r = m["result"] or (None, None, None)
        rows.append([kind, r[1], rep, r[2], r[0], mib(m["peak_rss_B"])])
    print_table("blast radius of every component (all kinds, vectorized)",
                ["fabric", "GPUs", "gpus_per_replica", "units", "time_s", "peak_MiB"], rows)
    cases = [("torus", [16, 16], 32, "none"), ("lite-ocs", 1024, 32, "ocs")]
    if not quick:
        cases += [("torus", [16, 16, 16, 16], 32, "none"), ("lite-fat-tree", 65536, 32, "spares"),
                  ("lite-ocs", 65536, 32, "ocs")]
    rows = []
    for kind, size, rep, pol in cases:
        m = measure(_mc_case, kind, size, rep, pol)
        r = m["result"] or (None,) * 6
        rows.append([kind, r[1], pol, r[2], r[0], mib(m["peak_rss_B"]), r[3], r[4], r[5]])
    print_table("Monte Carlo of 30 days (seed 0) against the analytic steady state",
                ["fabric", "GPUs", "policy", "failures", "mc_time_s", "peak_MiB", "lost_mc", "ci95", "lost_analytic"],
                rows)
    cases = [(64, 12, 4)] if quick else [(64, 12, 4), (256, 24, 16), (1024, 24, 64)]
    rows = []
    for n, P, lost in cases:
        m = measure(_resolve_case, n, P, lost)
        r = m["result"]
        if r is None:
            rows.append([n, P, lost] + [None] * 8)
            continue
        rows.append([n, P, lost, r[0], r[1], (r[1] / r[0]) if r[0] else None, r[2], r[3], r[4], r[5], r[6]])
    print_table("re-solving the OCS schedule after port losses: warm-started repair vs heuristic from scratch",
                ["GPUs", "phases", "GPUs_losing_a_port", "repair_s", "scratch_s", "speedup", "old_makespan_s",
                 "repair_makespan_s", "scratch_makespan_s", "lower_bound_s", "phases_resolved"], rows)


if __name__ == "__main__":
    main()
