"""The study's collectives section: every all-reduce algorithm against the lower bound on each system.

Stage 6 of the pipeline (evaluation), an analysis of the study registry
(:data:`ocsnet.evaluation.study.ANALYSES`).  For every system and every
tensor-parallel size its best plans use, the first tensor group of the
placement runs an all-reduce of each size in ``sizes_MB`` with every
algorithm that applies; times come from the max-min flow model
(:func:`ocsnet.flow.collective_time`; on OCS fabrics the ideal-circuit step
model with the fabric's reconfiguration delay,
:func:`ocsnet.collectives.fabric_aware.estimate_s`) and are reported over
:func:`ocsnet.collectives.lower_bound_s`.  The section also lists which
algorithm each system's chosen plan runs.  See docs/design.md,
"Fabric-aware collectives".
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .. import units
from ..tables import write_csv

__all__ = ["DEFAULTS", "analyse", "report"]

#: Config section ``[collectives]`` of a study.
DEFAULTS = {
    "sizes_MB": [1.0, 1000.0],
    "algorithms": ["ring", "rhd", "double-binary-tree", "two-shot", "torus", "multi-ring", "hierarchical",
                   "synthesized"],
}


def _time(fabric, ranks, steps):
    from ..collectives.fabric_aware import estimate_s, ocs_info
    from ..flow import collective_time
    if ocs_info(fabric) is not None:
        return estimate_s(fabric, ranks, steps)
    return collective_time(fabric, ranks, steps)


def analyse(cfg: dict, result, fabrics: dict, *, progress: bool = False) -> dict:
    """Rows ``{system, gpus, tp, size_MB, bound_ms, <algorithm>: ratio}`` and the algorithms in use."""
    from ..collectives import expand, lower_bound_s
    from ..collectives.fabric_aware import AUTO_LP_VARIABLES
    from ..collectives.synth import lp_size
    from ..errors import WorkloadError
    from ..workload import ParallelPlan
    from ..workload.parallel import place

    sec = dict(DEFAULTS, **(cfg.get("collectives") or {}))
    rows, used = [], []
    done = set()
    for (model, mode), choices in result.choices.items():
        for c in choices:
            ev = c.best
            if ev is None:
                continue
            for x in ev.collectives:
                if x.group == "tp" and x.kind == "all-reduce":
                    used.append({"model": model, "mode": mode, "system": c.system.label, "plan": str(ev.plan),
                                 "algorithm": x.algorithm, "size_MB": units.from_si("x_MB", x.nbytes)})
                    break
            fabric = fabrics.get(c.system.fabric_key)
            tp = ev.plan.tp
            key = (c.system.label, tp)
            if fabric is None or tp < 2 or key in done:
                continue
            done.add(key)
            ranks = place(ParallelPlan(tp=tp), fabric)[0, 0]
            for mb in sec["sizes_MB"]:
                N = float(mb) * 1e6
                lb = lower_bound_s("all-reduce", fabric, ranks, N)
                row = {"system": c.system.label, "gpus": fabric.n_gpus, "tp": tp, "size_MB": float(mb),
                       "bound_ms": lb * 1e3}
                for alg in sec["algorithms"]:
                    if alg == "synthesized" and lp_size(fabric, ranks) > AUTO_LP_VARIABLES:
                        row[alg] = None       # its LP would take seconds per group here
                        continue
                    try:
                        steps = expand("all-reduce", tp, N, alg, fabric=fabric, ranks=ranks, as_arrays=True)
                    except WorkloadError:
                        row[alg] = None
                        continue
                    row[alg] = _time(fabric, ranks, steps) / lb if lb > 0 else None
                rows.append(row)
    # what the fabric-aware algorithms changed: the chosen plans of the direct (CPO) fabrics again,
    # with the flat ring every algorithm used to reduce to (one link per GPU)
    from .per_layer import evaluate
    changed = []
    for (model, mode), choices in result.choices.items():
        for c in choices:
            ev = c.best
            if ev is None or c.system.kind != "CPO torus" or c.system.fabric_key not in fabrics:
                continue
            sizes = {"batch": ev.batch, "seq_len": ev.seq_len, "context": ev.context}
            ring = evaluate(model, dataclasses.replace(ev.plan, dp=1), fabrics[c.system.fabric_key], mode,
                            gpu=ev.gpu, algorithms={"all-reduce": "ring"}, **sizes)
            t, r = ev.totals(), ring.totals()
            changed.append({"model": model, "mode": mode, "system": c.system.label, "plan": str(ev.plan),
                            "comm_auto_us": t["comm_max_min_us"], "comm_ring_us": r["comm_max_min_us"],
                            "latency_auto_ms": t["latency_ms"], "latency_ring_ms": r["latency_ms"],
                            "tps_h100e_auto": t["tokens_per_s_per_h100e"],
                            "tps_h100e_ring": r["tokens_per_s_per_h100e"]})
    return {"rows": rows, "used": used, "algorithms": list(sec["algorithms"]), "changed": changed}


def report(data: dict, outdir: Path, *, figures: bool = False) -> list[str]:
    """Markdown lines of the section; writes ``collectives.csv`` and ``collectives.json``."""
    outdir = Path(outdir)
    algs = data["algorithms"]
    rows = data["rows"]
    write_csv(outdir / "collectives.csv", ["system", "gpus", "tp", "size_MB", "bound_ms", *algs],
              [[r["system"], r["gpus"], r["tp"], r["size_MB"], f"{r['bound_ms']:.6g}",
                *("" if r[a] is None else f"{r[a]:.4g}" for a in algs)] for r in rows])
    (outdir / "collectives.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    out = ["## Collectives that use the whole fabric", "",
           "Every all-reduce algorithm of the first tensor-parallel group of each system's chosen plans, "
           "as a ratio to the lower bound (the largest of the injection, cut and latency bounds). Times: "
           "max-min flow model; on the OCS fabric the ideal-circuit step model with its reconfiguration "
           "delay (a step whose ranks have more peers than ports pays the extra configurations). `-`: the "
           "algorithm does not apply. Plans use `auto` (the fastest algorithm that applies, by the flow "
           "model), so the study's systems now run the algorithm their fabric favours.", "",
           "| system | GPUs | tp | size MB | bound ms | " + " | ".join(algs) + " |",
           "|---|---|---|---|---|" + "---|" * len(algs)]
    for r in rows:
        out.append(f"| {r['system']} | {r['gpus']} | {r['tp']} | {r['size_MB']:g} | {r['bound_ms']:.4g} | "
                   + " | ".join("-" if r[a] is None else f"{r[a]:.2f}" for a in algs) + " |")
    out += ["", "Algorithm of the tensor-parallel all-reduce in each chosen plan:", "",
            "| model | mode | system | plan | algorithm | MB per GPU |", "|---|---|---|---|---|---|"]
    for u in data["used"]:
        out.append(f"| {u['model']} | {u['mode']} | {u['system']} | {u['plan']} | {u['algorithm']} | "
                   f"{u['size_MB']:.4g} |")
    if data.get("changed"):
        out += ["", "What the fabric-aware algorithms changed on the CPO torus: each chosen plan against the same "
                "plan with a flat ring all-reduce (what every algorithm amounted to before: one of a GPU's "
                "torus links):", "",
                "| model | mode | system | plan | comm us (auto) | comm us (ring) | latency ms (auto) | "
                "latency ms (ring) | tok/s/H100e (auto) | tok/s/H100e (ring) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for x in data["changed"]:
            out.append(f"| {x['model']} | {x['mode']} | {x['system']} | {x['plan']} | {x['comm_auto_us']:.4g} | "
                       f"{x['comm_ring_us']:.4g} | {x['latency_auto_ms']:.4g} | {x['latency_ring_ms']:.4g} | "
                       f"{x['tps_h100e_auto']:.4g} | {x['tps_h100e_ring']:.4g} |")
        out.append("")
        out.append("The study has no fully connected (clique) system; on cliques the bandwidth-optimal algorithm "
                   "is two-shot (direct reduce-scatter and all-gather, every link at once), which `auto` picks "
                   "(see benchmarks/bench_collectives.py).")
    out += ["", "Agreement with the literature: per-dimension (bucket) collectives over every torus link "
            "are how TPU pods reduce (Jouppi et al., ISCA 2023) and reach the injection bound here on "
            "tori with equal dimensions; a flat ring drives one of a GPU's 2n torus links, 2n times "
            "slower at large sizes. Hierarchical all-reduce on the DGX baseline is NCCL's default "
            "shape across nodes. Where the tables disagree with that, the unequal torus dimensions or "
            "the group's placement are the cause (see the bound column).", ""]
    return out
