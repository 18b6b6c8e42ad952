"""The flow model: routing and max-min rates at scale, against straightforward and LP baselines.

Tables (every case in a forked process; ratios are measured in the same run):

1. Routing and max-min rates for 1e4, 1e5 and 1e6 random flows on fat-tree
   and torus fabrics up to 65,536 GPUs: routing time, nonzeros, kernel time,
   filling rounds, kernel working memory (tracemalloc peak) and the peak RSS
   of the whole process (fabric, routes and kernel).
2. Adversarial instances: random routes (about 5 links per flow) over links
   with capacities drawn log-uniformly over three decades, so nearly every
   link saturates at a different level.
3. The kernel against textbook progressive filling in Python loops (sizes
   where that finishes in about a minute) and against the LP sequence
   (small sizes): time ratio and largest relative difference of the rates.
4. Time per filling round over the time of one sparse matrix-vector product
   with the same incidence matrix, for every instance above.

Goals on a 2-core machine: 1e6 flows on a 65,536-GPU fabric under 5 s and
4 GB; the adversarial 1e6 flows over 2e5 links under 10 s; at least 50x the
Python-loop version; a round within 5x of one sparse matvec.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from benchmarks._util import measure, mib, print_table
from ocsnet.flow import max_min_fair, route
from ocsnet.flow.reference import max_min_fair_loops, max_min_fair_lp

SEED = 0
LOOPS_TIMEOUT_S = 120.0


# ---- fabrics -------------------------------------------------------------------------

def _fat_tree(k: int):
    from ocsnet import topology
    try:
        return topology.fat_tree(k)
    except (AttributeError, ImportError):          # generator not available: a plain one here
        from ocsnet.fabric import Fabric
        h = k // 2
        n, ne, na = k ** 3 // 4, k * h, k * h
        g = np.arange(n)
        edge = n + g // h
        e = np.repeat(np.arange(ne), h)
        agg = n + ne + (e // h) * h + np.tile(np.arange(h), ne)
        a = np.repeat(np.arange(na), h)
        core = n + ne + na + (a % h) * h + np.tile(np.arange(h), na)
        u = np.concatenate([g, n + e, n + ne + a])
        v = np.concatenate([edge, agg, core])
        kind = ["gpu"] * n + ["packet_switch"] * (ne + na + h * h)
        return Fabric(kind, np.concatenate([u, v]), np.concatenate([v, u]), 100e9, 1e-7, "pluggable",
                      name=f"fat_tree(k={k})")


def _torus(dims):
    from ocsnet.topology import torus
    return torus(dims)


FABRICS = {
    "fat_tree(k=16)": lambda: _fat_tree(16),        # 1,024 GPUs
    "fat_tree(k=64)": lambda: _fat_tree(64),        # 65,536 GPUs
    "torus(16x8x8)": lambda: _torus((16, 8, 8)),    # 1,024 GPUs
    "torus(64x32x32)": lambda: _torus((64, 32, 32)),  # 65,536 GPUs
}


def _random_flows(n_gpus: int, n_flows: int, seed: int = SEED):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, n_gpus, n_flows)
    return s, (s + rng.integers(1, n_gpus, n_flows)) % n_gpus


def adversarial(n_links: int, n_flows: int, per_flow: int = 5, seed: int = SEED):
    """Random routes over links of log-uniform capacity (1 GB/s .. 1 TB/s)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_links, n_flows * per_flow)
    cols = np.repeat(np.arange(n_flows), per_flow)
    A = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_links, n_flows))
    A.data[:] = 1.0                                  # a link listed twice for a flow still counts once
    c = 10 ** rng.uniform(9, 12, n_links)
    return A, c


# ---- measured cases (run in a forked child) -----------------------------------------------

def _matvec_s(A) -> float:
    x = np.ones(A.shape[1])
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        A @ x
        best = min(best, time.perf_counter() - t0)
    return best


def _kernel(A, c) -> dict:
    gc.collect()
    t0 = time.perf_counter()
    rates, info = max_min_fair(A, c, return_info=True)
    dt = time.perf_counter() - t0
    del rates
    gc.collect()
    tracemalloc.start()
    max_min_fair(A, c)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    mv = _matvec_s(A)
    return {"maxmin_s": dt, "rounds": info["rounds"], "kernel_peak_B": peak, "nnz": A.nnz,
            "matvec_s": mv, "round_per_matvec": dt / max(info["rounds"], 1) / mv}


def _fabric_case(fabric_name: str, n_flows: int, method: str) -> dict:
    fabric = FABRICS[fabric_name]()
    s, d = _random_flows(fabric.n_gpus, n_flows)
    fabric.csr
    t0 = time.perf_counter()
    r = route(fabric, s, d, method=method)
    out = {"route_s": time.perf_counter() - t0, "n_gpus": fabric.n_gpus}
    out.update(_kernel(r.incidence, fabric.capacity_Bps))
    return out


def _adversarial_case(n_links: int, n_flows: int) -> dict:
    A, c = adversarial(n_links, n_flows)
    return _kernel(A, c)


def _timed(fn, *args) -> dict:
    t0 = time.perf_counter()
    rates = fn(*args)
    return {"time_s": time.perf_counter() - t0, "rates": rates}


def _compare(A, c, with_lp: bool) -> list:
    vec = measure(_timed, max_min_fair, A, c)
    loops = measure(_timed, max_min_fair_loops, A, c, timeout_s=LOOPS_TIMEOUT_S)
    lp = measure(_timed, max_min_fair_lp, A, c, timeout_s=LOOPS_TIMEOUT_S) if with_lp else None
    rv = vec["result"]["rates"]

    def diff(m):
        if not m or m["time_s"] is None:
            return None
        ro = m["result"]["rates"]
        return float(np.max(np.abs(rv - ro) / np.maximum(np.abs(ro), 1e-300)))

    def ratio(m):
        return None if not m or m["time_s"] is None else m["result"]["time_s"] / vec["result"]["time_s"]

    return [vec["result"]["time_s"] * 1e3,
            None if loops["time_s"] is None else loops["result"]["time_s"] * 1e3, ratio(loops), diff(loops),
            None if not lp or lp["time_s"] is None else lp["result"]["time_s"] * 1e3, ratio(lp), diff(lp)]


# ---- tables --------------------------------------------------------------------------------

def main(quick: bool = False) -> None:
    round_rows = []
    # 1. fabrics
    cases = ([("fat_tree(k=16)", 10_000, "shortest"), ("torus(16x8x8)", 10_000, "shortest")] if quick else
             [(fab, n, "shortest") for fab in ("fat_tree(k=64)", "torus(64x32x32)") for n in (10_000, 100_000, 1_000_000)]
             + [("fat_tree(k=16)", n, m) for n in (10_000, 100_000) for m in ("shortest", "ecmp")]
             + [("torus(16x8x8)", n, m) for n in (10_000, 100_000) for m in ("shortest", "ecmp")])
    rows = []
    for fab, n, method in cases:
        m = measure(_fabric_case, fab, n, method, timeout_s=900.0)
        r = m["result"] or {}
        rows.append([fab, r.get("n_gpus"), n, method, r.get("route_s"), r.get("nnz"), r.get("maxmin_s"),
                     r.get("rounds"), mib(r.get("kernel_peak_B")), mib(m["peak_rss_B"]), m.get("error", "")])
        if r:
            round_rows.append([f"{fab} {n} {method}", r["nnz"], r["rounds"], r["maxmin_s"] / r["rounds"] * 1e3,
                               r["matvec_s"] * 1e3, r["round_per_matvec"]])
    print_table("Routing and max-min rates on fabrics (random pairs)",
                ["fabric", "gpus", "flows", "routing", "route_s", "nnz", "maxmin_s", "rounds", "kernel_MiB",
                 "peak_rss_MiB", "error"], rows)

    # 2. adversarial
    sizes = [(2_000, 10_000)] if quick else [(2_000, 10_000), (20_000, 100_000), (200_000, 1_000_000)]
    rows = []
    for L, F in sizes:
        m = measure(_adversarial_case, L, F)
        r = m["result"] or {}
        rows.append([L, F, r.get("nnz"), r.get("maxmin_s"), r.get("rounds"), mib(r.get("kernel_peak_B")),
                     mib(m["peak_rss_B"]), m.get("error", "")])
        if r:
            round_rows.append([f"adversarial {L} x {F}", r["nnz"], r["rounds"], r["maxmin_s"] / r["rounds"] * 1e3,
                               r["matvec_s"] * 1e3, r["round_per_matvec"]])
    print_table("Adversarial: ~5 random links per flow, capacities log-uniform over 3 decades",
                ["links", "flows", "nnz", "maxmin_s", "rounds", "kernel_MiB", "peak_rss_MiB", "error"], rows)

    # 3. against the baselines
    rows = []
    comp = [("adversarial", 20, 30, True), ("adversarial", 200, 1_000, False)] if quick else \
        [("adversarial", 20, 30, True), ("adversarial", 60, 100, True), ("adversarial", 200, 1_000, False),
         ("adversarial", 2_000, 10_000, False), ("adversarial", 6_000, 30_000, False),
         ("fat_tree(k=16)", 0, 10_000, False), ("torus(16x8x8)", 0, 10_000, False)]
    for kind, L, F, with_lp in comp:
        if kind == "adversarial":
            A, c = adversarial(L, F)
            name = f"adversarial {L} links"
        else:
            fabric = FABRICS[kind]()
            A, c = route(fabric, *_random_flows(fabric.n_gpus, F)).incidence, fabric.capacity_Bps
            name = f"{kind} shortest"
            L = A.shape[0]
        rows.append([name, L, F, A.nnz] + _compare(A, c, with_lp))
    print_table("Vectorized kernel vs Python-loop progressive filling and the LP sequence (HiGHS)",
                ["instance", "links", "flows", "nnz", "vec_ms", "loops_ms", "loops_ratio", "loops_maxrel",
                 "lp_ms", "lp_ratio", "lp_maxrel"], rows)

    # 4. round cost
    print_table("Time per filling round / one sparse matvec (A @ x) on the same incidence",
                ["instance", "nnz", "rounds", "ms_per_round", "matvec_ms", "round_per_matvec"], round_rows)


if __name__ == "__main__":
    main()
