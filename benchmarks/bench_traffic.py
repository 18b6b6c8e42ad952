"""Trace building: a Llama3-405B decode step over 4,096 and 65,536 Lite-GPUs.

``build_trace`` places every distinct collective call once, vectorized over
all groups, and shares the resulting matrices between identical layers.  The
baseline places the same calls with Python loops over phases, groups and
step entries, one matrix per phase (what a direct transcription of "for each
layer, for each group, add the step's traffic" does); it runs only at the
sizes where it finishes in reasonable time and memory.

Also measured: period detection and the size of the saved ``.npz``.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import scipy.sparse as sp

from benchmarks._util import measure, mib, print_table
from ocsnet import collectives
from ocsnet.fabric import Fabric
from ocsnet.traffic import build_trace
from ocsnet.workload import ParallelPlan, place
from ocsnet.workload.program import step_calls
from ocsnet.workload.step import step_profile

MODEL = "llama3-405b"
GPU = "lite-base"
BATCH, CONTEXT = 16, 4096


def _fabric(n_gpus: int):
    # The trace only needs the GPU ranks; a bare fabric keeps the fabric generator out of the timing.
    return Fabric(["gpu"] * n_gpus, [], [], [], [], [], name=f"gpus{n_gpus}")


def _plan(n_gpus: int):
    return ParallelPlan(tp=16, pp=4, dp=n_gpus // 64)


def _ours(n_gpus: int) -> dict:
    t = build_trace(MODEL, _plan(n_gpus), _fabric(n_gpus), "decode", batch=BATCH, context=CONTEXT, gpu=GPU,
                    micro_batches=4, placement="contiguous")
    return {"phases": len(t), "distinct": len({id(m) for m in t.demand}), "bytes": t.total_bytes()}


def _baseline(n_gpus: int) -> dict:
    """Python loops over phases, groups and entries; a fresh matrix per phase."""
    plan = _plan(n_gpus)
    prof = step_profile(MODEL, plan, "decode", batch=BATCH, context=CONTEXT, gpu=GPU, micro_batches=4)
    calls, _, _ = step_calls(prof, place(plan, n_gpus, "contiguous"))
    demand, total = [], 0.0
    for c in calls:
        for step in collectives.expand(c.kind, c.groups.shape[1], c.nbytes, c.algorithm):
            s = step.tocoo()
            rows, cols, vals = [], [], []
            for g in c.groups.tolist():
                for i, j, v in zip(s.row.tolist(), s.col.tolist(), s.data.tolist()):
                    rows.append(g[i])
                    cols.append(g[j])
                    vals.append(v)
            m = sp.csr_matrix((vals, (rows, cols)), shape=(n_gpus, n_gpus))
            total += m.sum()
            demand.append(m)
    return {"phases": len(demand), "distinct": len(demand), "bytes": total}


def _period_and_save(n_gpus: int) -> dict:
    t = build_trace(MODEL, _plan(n_gpus), _fabric(n_gpus), "decode", batch=BATCH, context=CONTEXT, gpu=GPU,
                    micro_batches=4, placement="contiguous")
    t0 = time.perf_counter()
    t.period = None
    per = t.detect_period()
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        path = t.save(os.path.join(d, "t.npz"))
        t2 = time.perf_counter()
        size = path.stat().st_size
    return {"period": per, "detect_s": t1 - t0, "save_s": t2 - t1, "file_B": size}


def main(quick: bool = False) -> None:
    sizes = [256] if quick else [1024, 4096, 65536]
    _ours(64)                                   # load the catalogs once, before the forks
    baseline_max = 256 if quick else 4096
    rows = []
    for n in sizes:
        ours = measure(_ours, n)
        base = measure(_baseline, n, timeout_s=900) if n <= baseline_max else None
        r = ours["result"] or {}
        if base and base["result"]:
            assert base["result"]["phases"] == r["phases"]
            assert np.isclose(base["result"]["bytes"], r["bytes"])
        bt = base["time_s"] if base else None
        rows.append([n, str(_plan(n)), r.get("phases"), r.get("distinct"),
                     None if ours["time_s"] is None else ours["time_s"] * 1e3, mib(ours["peak_delta_B"]),
                     None if bt is None else bt * 1e3, mib(base["peak_delta_B"]) if base else None,
                     None if bt is None or not ours["time_s"] else bt / ours["time_s"]])
    print_table(f"build_trace: {MODEL} decode step (batch {BATCH}/micro-batch, 4 micro-batches, context {CONTEXT}, "
                f"{GPU}) vs Python-loop placement",
                ["n_gpus", "plan", "phases", "distinct_matrices", "time_ms", "peak_MiB", "loop_time_ms",
                 "loop_peak_MiB", "loop_over_ours"], rows)
    rows = []
    for n in sizes:
        r = measure(_period_and_save, n)["result"] or {}
        rows.append([n, str(r.get("period")), None if "detect_s" not in r else r["detect_s"] * 1e3,
                     None if "save_s" not in r else r["save_s"] * 1e3,
                     None if "file_B" not in r else r["file_B"] / 1e3])
    print_table("detect_period and save", ["n_gpus", "period", "detect_ms", "save_ms", "file_kB"], rows)


if __name__ == "__main__":
    main()
