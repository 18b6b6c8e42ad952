"""The cost of the calibrated per-layer model (issue 15): one plan evaluated under the measured
calibration against the constant-efficiency roofline (the baseline, measured in the same run), and
the whole measured table of ``ocsnet validate --measured``.

The calibration adds per-op table look-ups and, per collective, its algorithm's step count and a
check of which links its routes cross; the evaluation of one plan must stay fast (the study may
grow by at most 50%).
"""

from __future__ import annotations

from benchmarks._util import measure, mib, print_table, timeit
from ocsnet import evaluate
from ocsnet.evaluation import measured
from ocsnet.topology import dgx_cluster
from ocsnet.workload import ParallelPlan

CASES = [  # (label, model, tp, mode, sizes, n_nodes)
    ("llama2-7b decode tp1", "llama2-7b", 1, "decode", {"batch": 8, "context": 2048}, 1),
    ("llama2-70b prefill tp8", "llama2-70b", 8, "prefill", {"batch": 1, "seq_len": 2048}, 1),
    ("llama3-405b decode tp16 over 2 nodes", "llama3-405b", 16, "decode", {"batch": 16, "context": 4096}, 4),
]


def _eval(model, tp, mode, sizes, n_nodes, calibration, fidelities):
    f = dgx_cluster(n_nodes)
    plan = ParallelPlan(tp=tp)
    evaluate(model, plan, f, mode, calibration=calibration, fidelities=fidelities, **sizes)   # warm the route memo
    return timeit(lambda: evaluate(model, plan, f, mode, calibration=calibration, fidelities=fidelities, **sizes),
                  repeat=9)


def main(quick: bool = False) -> None:
    rows = []
    for label, model, tp, mode, sizes, n in (CASES[:1] if quick else CASES):
        for fid in (("alpha-beta",), ("alpha-beta", "max-min")):
            base = _eval(model, tp, mode, sizes, n, "roofline", fid)
            cal = _eval(model, tp, mode, sizes, n, "measured", fid)
            rows.append([label, "+".join(fid), 1000 * base, 1000 * cal, cal / base])
    print_table("evaluate one plan: measured calibration vs roofline (same run)",
                ["case", "fidelities", "roofline_ms", "measured_ms", "ratio"], rows)
    names = [c.name for c in measured.cases()][: 4 if quick else None]
    out = []
    for cal in ("roofline", "measured"):
        r = measure(lambda c=cal: measured.summary(measured.measured_table(c, names=names)))
        s = r.get("result") or {}
        out.append([cal, len(names), r["time_s"], mib(r["peak_rss_B"]), 100 * s.get("median_abs_error", float("nan")),
                    100 * s.get("max_abs_error", float("nan"))])
    print_table("measured table (cases, wall time, peak memory, error)",
                ["calibration", "cases", "time_s", "peak_MiB", "median_err_pct", "max_err_pct"], out)


if __name__ == "__main__":
    main()
