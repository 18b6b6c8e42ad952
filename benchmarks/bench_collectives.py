"""Collectives: expansion speed, and every algorithm's time over the lower bound on each fabric family.

Table 1 (fabric-aware quality): for each family (2-D and 3-D torus, fully
connected CPO group, H100 DGX pair of nodes, OCS with 8 ports, 2-tier
leaf-spine Clos) and message size, every all-reduce algorithm's max-min time
(:func:`ocsnet.flow.collective_time`; on the OCS, the ideal-circuit step model
of :func:`ocsnet.collectives.fabric_aware.estimate_s`) divided by
:func:`ocsnet.collectives.lower_bound_s`; ``-`` where the algorithm does not
apply.  ``auto_flow`` is :func:`ocsnet.flow.best_algorithm` (what the
evaluation uses for ``auto``), ``auto_estimate`` the collectives stage's own
choice (:func:`ocsnet.collectives.choose_algorithm`, no flow model).  Goal:
the best within 1.15x at 1 GB on tori and fully connected groups.

Table 2 (scale): expanding plus timing an all-reduce on a 16x16x16 torus
(4,096 GPUs) with the torus algorithm, against the flat ring measured in the
same run (goal: under 5 s).

Table 3 (below): expansion of the fabric-blind algorithms,

For every (kind, algorithm) and group size p, the time and peak memory of
``ocsnet.collectives.expand`` (a list of CSR matrices) against a
straightforward construction that fills a dict-of-keys matrix entry by entry
in a Python loop per step and converts it to CSR, both measured in the same
run in forked processes.  The baseline is skipped (``-``) where it would set
more than BASELINE_MAX_ENTRIES entries (minutes of Python loops).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks._util import measure, mib, print_table
from ocsnet.collectives import ALGORITHMS, PIPELINED, binary_tree, double_binary_tree, expand

AR_ALGORITHMS = ("ring", "rhd", "double-binary-tree", "two-shot", "torus", "multi-ring", "hierarchical",
                 "synthesized")
SIZES_B = (64e3, 1e6, 16e6, 256e6, 1e9)
GIB = 1e9

NBYTES = float(2 ** 28)  # 256 MiB buffer
CHUNKS = 8  # for the pipelined algorithms
BASELINE_MAX_ENTRIES = 1_000_000


# ---- the baseline: one dict-of-keys matrix per step, filled pair by pair ------------------
def _loop_steps(kind: str, alg: str, p: int, N: float, k: int):
    """Yield each step as a list of (i, j, bytes), built with plain Python loops."""
    L = p.bit_length() - 1
    if alg == "ring" and kind in ("all-reduce", "reduce-scatter", "all-gather"):
        n = 2 * (p - 1) if kind == "all-reduce" else p - 1
        for _ in range(n):
            yield [(i, (i + 1) % p, N / p) for i in range(p)]
    elif alg == "direct" and kind == "broadcast":
        yield [(0, j, N) for j in range(1, p)]
    elif alg in ("direct", "two-shot"):
        per = N if (kind, alg) == ("all-reduce", "direct") else N / p
        for _ in range(2 if alg == "two-shot" else 1):
            yield [(i, j, per) for i in range(p) for j in range(p) if i != j]
    elif alg == "rhd":  # p a power of two here
        halving = [(p >> (s + 1), N / 2 ** (s + 1)) for s in range(L)]
        doubling = [(1 << s, N * 2 ** s / p) for s in range(L)]
        plan = {"reduce-scatter": halving, "all-gather": doubling, "all-reduce": halving + doubling}[kind]
        for d, b in plan:
            yield [(i, i ^ d, b) for i in range(p)]
    elif alg == "pairwise":
        for s in range(1, p):
            yield [(i, (i + s) % p, N / p) for i in range(p)]
    elif kind == "send-recv":
        for _ in range(k):
            yield [(i, (i + 1) % p, N / k) for i in range(p if alg == "ring" else p - 1)]
    elif (kind, alg) == ("broadcast", "ring"):
        for s in range(p - 2 + k):
            yield [(i, i + 1, N / k) for i in range(p - 1) if 0 <= s - i < k]
    else:  # trees: bucket (rank, chunk) events by step
        trees = [binary_tree(p)] if alg == "tree" else list(double_binary_tree(p))
        b = N / k / len(trees)
        phases = (True, False) if kind == "all-reduce" else (False,)
        for reduce in phases:
            buckets: dict[int, list] = {}
            for parent, depth, slot in trees:
                H = int(depth.max())
                for x in range(p):
                    if parent[x] < 0:
                        continue
                    for c in range(k):
                        if reduce:
                            buckets.setdefault(2 * (c + H - depth[x]) + slot[x], []).append((x, parent[x], b))
                        else:
                            buckets.setdefault(2 * (c + depth[x] - 1) + slot[x], []).append((parent[x], x, b))
            for s in sorted(buckets):
                yield buckets[s]


def baseline_expand(kind: str, alg: str, p: int, N: float, k: int):
    out = []
    for pairs in _loop_steps(kind, alg, p, N, k):
        d = sp.dok_matrix((p, p))
        for i, j, b in pairs:
            d[i, j] = d.get((i, j), 0.0) + b
        out.append(d.tocsr())
    return len(out), int(sum(m.nnz for m in out))


def fast_expand(kind: str, alg: str, p: int, N: float, k: int):
    out = expand(kind, p, N, alg, chunks=k)
    return len(out), int(sum(m.nnz for m in out))


def families(quick: bool):
    from ocsnet import topology
    g = "lite-netboost"
    fams = [("2-D torus 8x8", lambda: topology.torus((8, 8), gpu=g)),
            ("3-D torus 4x4x4", lambda: topology.torus((4, 4, 4), gpu=g)),
            ("fully connected 8", lambda: topology.fully_connected(8, gpu=g)),
            ("fully connected 7", lambda: topology.fully_connected(7, gpu=g)),
            ("CPO groups 16 (4 x 4 cliques)", lambda: topology.fully_connected_groups(16, 4, gpu=g)),
            ("H100 DGX 2 nodes", lambda: topology.dgx_cluster(2)),
            ("OCS 64 GPUs, 8 ports", lambda: topology.ocs_fabric(64, 8, gpu=g)),
            ("leaf-spine 64", lambda: topology.leaf_spine(64, gpus_per_leaf=8, gpu=g))]
    if quick:
        fams = [fams[1], fams[2], fams[5]]
    return fams


def _time(fabric, ranks, steps):
    from ocsnet.collectives.fabric_aware import estimate_s, ocs_info
    from ocsnet.flow import collective_time
    if ocs_info(fabric) is not None:
        return estimate_s(fabric, ranks, steps)
    return collective_time(fabric, ranks, steps)


def quality_rows(name, make, sizes):
    from ocsnet.collectives import choose_algorithm, lower_bound_s
    from ocsnet.collectives.synth import MAX_LP_VARIABLES
    from ocsnet.flow import best_algorithm
    from ocsnet.errors import WorkloadError
    f = make()
    p = f.n_gpus
    ranks = np.arange(p)
    rows = []
    for N in sizes:
        lb = lower_bound_s("all-reduce", f, ranks, N)
        ratios = []
        for alg in AR_ALGORITHMS:
            k = CHUNKS if ("all-reduce", alg) in PIPELINED else 1
            try:
                steps = expand("all-reduce", p, N, alg, fabric=f, ranks=ranks, as_arrays=True, chunks=k)
            except WorkloadError:
                ratios.append(None)
                continue
            ratios.append(_time(f, ranks, steps) / lb)
        est = choose_algorithm("all-reduce", f, ranks, N, chunks=CHUNKS)
        auto = best_algorithm("all-reduce", f, ranks, N, chunks=CHUNKS, lp_limit=MAX_LP_VARIABLES)[0]
        best = min((r, a) for r, a in zip(ratios, AR_ALGORITHMS) if r is not None)
        rows.append([name, p, f"{N / 1e6:g}", lb * 1e3, *ratios, best[1], best[0], auto, est])
    return rows


def scale_case(alg: str):
    from ocsnet import topology
    from ocsnet.flow import collective_time
    f = topology.torus((16, 16, 16), gpu="lite-netboost")
    p = f.n_gpus
    ranks = np.arange(p)
    import time
    t0 = time.perf_counter()
    steps = expand("all-reduce", p, GIB, alg, fabric=f, ranks=ranks, as_arrays=True)
    t1 = time.perf_counter()
    t = collective_time(f, ranks, steps)
    return len(steps), t1 - t0, time.perf_counter() - t1, t


def main(quick: bool = False) -> None:
    sizes_b = (64e3, 1e9) if quick else SIZES_B
    rows = []
    for name, make in families(quick):
        rows += quality_rows(name, make, sizes_b)
    print_table("all-reduce time over the lower bound (max-min flow model; OCS: ideal-circuit step model)",
                ["family", "gpus", "size_MB", "bound_ms", *AR_ALGORITHMS, "best", "best_ratio", "auto_flow",
                 "auto_estimate"], rows)
    if not quick:
        srows = []
        base = None
        for alg in ("ring", "torus"):
            m = measure(scale_case, alg)
            n_steps, t_exp, t_time, coll = m["result"]
            total = t_exp + t_time
            base = base or total
            srows.append(["16x16x16 torus, 1 GB", alg, n_steps, t_exp, t_time, total, mib(m["peak_delta_B"]),
                          coll * 1e3, base / total])
        print_table("expand + time a 4,096-GPU torus all-reduce (goal: under 5 s)",
                    ["case", "algorithm", "steps", "expand_s", "time_s", "total_s", "mem_MiB", "collective_ms",
                     "speedup_vs_ring"], srows)
    sizes = (8, 64) if quick else (8, 64, 512, 4096)
    rows = []
    for kind, algos in ALGORITHMS.items():
        for alg in algos:
            k = CHUNKS if (kind, alg) in PIPELINED else 1
            for p in sizes:
                entries = sum(len(s[0]) for s in expand(kind, p, NBYTES, alg, chunks=k, as_arrays=True))
                ours = measure(fast_expand, kind, alg, p, NBYTES, k)
                base = (measure(baseline_expand, kind, alg, p, NBYTES, k)
                        if entries <= BASELINE_MAX_ENTRIES else {"time_s": None, "peak_delta_B": None})
                if base["time_s"] is not None:
                    assert base["result"] == ours["result"], (kind, alg, p)  # same steps, same entries
                t, tb = ours["time_s"], base["time_s"]
                rows.append([kind, alg, p, ours["result"][0] if ours["result"] else None, entries,
                             None if t is None else t * 1e3, mib(ours["peak_delta_B"]),
                             None if tb is None else tb * 1e3, mib(base["peak_delta_B"]),
                             None if (t is None or tb is None) else tb / t])
    print_table(f"expand: vectorized vs per-step Python loop (dict-of-keys), nbytes = 256 MiB, "
                f"chunks = {CHUNKS} where pipelined",
                ["kind", "algorithm", "p", "steps", "entries", "time_ms", "mem_MiB",
                 "loop_time_ms", "loop_mem_MiB", "speedup"], rows)


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv)
