"""Faults: degrading a fabric, and routing random flows on a torus with and without failures.

Table 1: dimension-order routing (``route_dor``) of random flows on tori up to
65,536 GPUs, intact and with failed links and GPUs (detours), against the
breadth-first ``route(method="shortest")`` measured in the same run (the
baseline runs only where it finishes in about a minute).  Goal: 1e6 flows on a
65,536-GPU torus under 10 s.

Table 2: ``degrade`` of fabrics up to 65,536 GPUs (connectivity groups included).

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


if __name__ == "__main__":
    main()
