"""Memory tiers: the placement greedy against its LP, and remote reads in the per-layer model.

Tables (ratios measured in the same run):

1. Placement of one GPU's bytes over 4 tiers: the greedy (:func:`ocsnet.memory.place`,
   bisection over the offload) against solving the same transportation problem as
   an LP with scipy HiGHS for the greedy's offload; time ratio and relative gap of
   the objective (0: the greedy is optimal).
2. One decode evaluation of Llama3-405B (tp=8, pp=4) on a Lite-GPU fat-tree with
   memory nodes attached, every GPU reading its remote share at once: max-min
   evaluation with remote memory against the same evaluation with local HBM only
   (which does not fit, but is timed the same way); time, peak RSS, ratio.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._util import measure, mib, print_table


def _placement_case(layers: int):
    from ocsnet.memory import Demand, Share, local_tier, lp_bound, place, tier

    d = Demand(np.array([60e9, 30e9, 1e9, 0, 0]), np.array([1.0, 0.25, 2, 2, 2]),
               np.array([1.0, 0.25, 1, 1, 1]), layers)
    shares = [Share(local_tier("lite-base"), 20e9, 837e9), Share(tier("peer-hbm"), 18e9, 200e9),
              Share(tier("cxl-pool"), 64e9, 30e9), Share(tier("host-dram"), 64e9, 16e9)]
    t0 = time.perf_counter()
    for _ in range(20):
        p = place(d, shares)
    greedy = (time.perf_counter() - t0) / 20
    off = p.remote_bytes
    lp_bound(d, shares, off)                       # warm-up (imports scipy.optimize)
    t0 = time.perf_counter()
    for _ in range(20):
        lp, _ = lp_bound(d, shares, off)
    lp_t = (time.perf_counter() - t0) / 20
    gap = (p.estimate_s - lp) / lp if lp > 0 else 0.0
    return [layers, greedy * 1e3, lp_t * 1e3, lp_t / greedy, gap]


def _eval_case(n_gpus: int, remote: bool):
    from ocsnet import evaluate
    from ocsnet.memory import memory_config
    from ocsnet.topology import build
    from ocsnet.workload import ParallelPlan

    f = build("lite-fat-tree", n_gpus=n_gpus, tiers=2 if n_gpus <= 2048 else 3, gpu="lite-netboost",
              memory={"tier": "photonic-fabric-appliance", "n_nodes": max(2, n_gpus // 128), "ports": 16,
                      "port_GBps": 900})
    cfg = memory_config("disaggregated", node_tier="photonic-fabric-appliance") if remote else None
    ev = evaluate("llama3-405b", ParallelPlan(tp=8, pp=4), f, "decode", batch=16, context=4096, memory=cfg)
    return ev.totals()["tpot_ms"]


def main(quick: bool = False) -> None:
    rows = [_placement_case(L) for L in ((16,) if quick else (16, 126, 1000))]
    print_table("placement: greedy against its LP (scipy HiGHS), one GPU, 4 tiers",
                ["layers", "greedy_ms", "lp_ms", "lp/greedy", "objective_gap"], rows)
    rows = []
    for n in ((256,) if quick else (256, 1024, 4096)):
        base = measure(_eval_case, n, False)
        rem = measure(_eval_case, n, True)
        if base["time_s"] is None or rem["time_s"] is None:
            rows.append([n, None, None, None, None, base.get("error") or rem.get("error")])
            continue
        rows.append([n, base["time_s"], rem["time_s"], rem["time_s"] / base["time_s"],
                     mib(rem["peak_rss_B"]), f"{rem['result']:.1f}"])
    print_table("decode evaluation with memory nodes (max-min, all GPUs reading) against local HBM only",
                ["gpus", "local_s", "remote_s", "remote/local", "peak_MiB", "tpot_ms"], rows)


if __name__ == "__main__":
    main()
