"""Serving simulation: Llama3-70B on 8 H100 DGX replicas (tp=8), the synthetic Azure conversation trace at 100 req/s.

The simulator (:func:`ocsnet.serving.simulate`) jumps from event to event and
sums the identical decode iterations between events in closed form; the
baseline is the plain event loop (:mod:`ocsnet.serving.reference`), which steps
every iteration.  Both give the same per-request times (checked here on every
size both run).  The iteration-time table is built once (timed separately):
the simulation never evaluates the model.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._util import measure, mib, print_table
from ocsnet import serving as sv
from ocsnet import topology
from ocsnet.serving.reference import run_replica_plain
from ocsnet.workload import ParallelPlan

RATE = 100.0
REPLICAS = 8


def _run(dep, reqs, plain):
    res = sv.simulate(dep, reqs, runner=run_replica_plain if plain else sv.engine.run_replica)
    return {"p99_ttft_ms": 1e3 * float(np.percentile(res.ttft_s, 99)), "finish": res.finish_s}


def main(quick: bool = False) -> None:
    t0 = time.perf_counter()
    fabric = topology.build("h100-dgx", gpu="h100-sxm", n_nodes=32)
    model = sv.tabulate("llama3-70b", ParallelPlan(tp=8), fabric, gpu="h100-sxm")
    t_tab = time.perf_counter() - t0
    dep = sv.Deployment(model, replicas=REPLICAS)
    durations = [10.0] if quick else [60.0, 600.0, 3600.0]
    plain_max = 10.0 if quick else 600.0
    rows = []
    for dur in durations:
        reqs = sv.synthetic("azure-conv-2023", rate=RATE, duration_s=dur, seed=0)
        fast = measure(_run, dep, reqs, False)
        base = measure(_run, dep, reqs, True) if dur <= plain_max else None
        same = None
        if base is not None and fast.get("result") and base.get("result"):
            same = bool(np.allclose(fast["result"]["finish"], base["result"]["finish"], rtol=1e-9))
        ft, bt = fast.get("time_s"), base.get("time_s") if base else None
        rows.append([f"{dur:g} s", len(reqs), ft, mib(fast.get("peak_delta_B")), bt,
                     mib(base.get("peak_delta_B")) if base else None, (bt / ft) if bt and ft else None,
                     fast["result"]["p99_ttft_ms"] if fast.get("result") else None, same])
    print_table(f"serving simulation, {REPLICAS} replicas, {RATE:g} req/s (iteration table built once in "
                f"{t_tab:.2f} s)",
                ["trace", "requests", "event_jumps_s", "mem_MiB", "plain_loop_s", "plain_mem_MiB", "speedup",
                 "p99_ttft_ms", "same_times"], rows)


if __name__ == "__main__":
    main()
