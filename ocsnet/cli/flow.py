"""``ocsnet flow``: time traffic on a fabric with the flow model and check it against budgets.

Examples::

    ocsnet flow --fabric small-fat-tree --traffic all-to-all --size 1MB
    ocsnet flow --fabric small-torus --traffic permutation --routing shortest --budget-time 50us
    ocsnet flow --fabric lite-ocs --traffic trace.npz --fidelity alpha-beta --json

``--fabric`` is a spec name or TOML path, a fabric file (``.json``,
``.graphml``) or an ASTRA-sim config (``.yml``).  ``--traffic`` is a pattern
(all-to-all, permutation, ring, incast, random: ``--size`` bytes per flow,
``--seed`` for the random ones) or a trace saved by ``ocsnet traffic -o``.
Prints the completion times, the busiest links and the checks; the exit
status is 1 when a budget is given and missed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from .. import units
from ..errors import FlowError

_FORWARDING = {"auto": None, "yes": True, "no": False}


def register(subparsers) -> None:
    from ..flow import FIDELITIES, METHODS, PATTERNS

    p = subparsers.add_parser("flow", help="time traffic on a fabric (flow model) and check budgets",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--fabric", required=True, metavar="SPEC_OR_FILE",
                   help="spec name or TOML path, fabric file (.json, .graphml) or ASTRA-sim config (.yml)")
    p.add_argument("--traffic", required=True, metavar="TRACE_OR_PATTERN",
                   help=f"a pattern ({', '.join(PATTERNS)}) or a saved trace (.npz)")
    p.add_argument("--fidelity", default="max-min", choices=FIDELITIES,
                   help="max-min (congestion-aware fluid) or alpha-beta (congestion-free); default max-min")
    p.add_argument("--routing", default="ecmp", choices=METHODS, help="default ecmp")
    p.add_argument("--size", default="1MB", help="bytes per flow of a pattern, e.g. 1MB, 64KiB (default 1MB)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutation and random patterns (default 0)")
    p.add_argument("--gpu-forwarding", default="auto", choices=tuple(_FORWARDING),
                   help="may GPUs carry transit traffic? auto: only on fabrics without switches")
    p.add_argument("--budget-latency", default=None, metavar="TIME",
                   help="per-flow budget on its time in the phase, e.g. 10us")
    p.add_argument("--budget-bandwidth", default=None, metavar="BW",
                   help="per-flow budget on its rate, e.g. 50GBps or 400Gbps")
    p.add_argument("--budget-time", default=None, metavar="TIME", help="per-phase time budget, e.g. 1ms")
    p.add_argument("--top", type=int, default=5, help="busiest links to list (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.set_defaults(func=run)


def _traffic(text: str, n_gpus: int, size: str, seed: int):
    """A demand matrix (pattern) or a Trace (file)."""
    from ..flow import PATTERNS, pattern_demand

    if text in PATTERNS:
        return pattern_demand(text, n_gpus, units.parse_bytes(size, "--size"), seed=seed), "pattern"
    path = Path(text)
    if not path.is_file():
        raise FlowError(f"--traffic: {text!r} is neither a pattern ({', '.join(PATTERNS)}) nor a trace file")
    from ..traffic import Trace

    trace = Trace.load(path)
    if trace.n_gpus != n_gpus:
        raise FlowError(f"--traffic: the trace is over {trace.n_gpus} GPUs but the fabric has {n_gpus}")
    return trace, "trace"


def _stats(x) -> dict:
    import numpy as np

    if not len(x):
        return {"max_s": 0.0, "mean_s": 0.0, "p99_s": 0.0}
    return {"max_s": float(x.max()), "mean_s": float(x.mean()), "p99_s": float(np.percentile(x, 99))}


def _line(title: str, st: dict) -> str:
    return (f"{title}: max {units.fmt_time(st['max_s'])}, mean {units.fmt_time(st['mean_s'])}, "
            f"p99 {units.fmt_time(st['p99_s'])}")


def run(args) -> int:
    import numpy as np

    from ..flow import check_phase, check_trace, phase_time, trace_time
    from .topo import load_fabric

    if args.top < 0:
        raise FlowError(f"--top: {args.top} is out of range, allowed [0, inf)")
    fabric = load_fabric(args.fabric)
    traffic, kind = _traffic(args.traffic, fabric.n_gpus, args.size, args.seed)
    fwd = _FORWARDING[args.gpu_forwarding]
    budgets = {"bandwidth_budget_Bps": args.budget_bandwidth, "latency_budget_s": args.budget_latency,
               "time_budget_s": args.budget_time}
    for key, flag, parse in (("bandwidth_budget_Bps", "--budget-bandwidth", units.parse_bandwidth),
                             ("latency_budget_s", "--budget-latency", units.parse_time),
                             ("time_budget_s", "--budget-time", units.parse_time)):
        if budgets[key] is not None:
            budgets[key] = parse(budgets[key], flag)
            if budgets[key] < 0:
                raise FlowError(f"{flag}: {budgets[key]!r} is out of range, allowed [0, inf)")
    opts = {"routing": args.routing, "fidelity": args.fidelity, "gpu_forwarding": fwd}
    out = {"fabric": fabric.name, "n_gpus": fabric.n_gpus, "traffic": args.traffic, "routing": args.routing,
           "fidelity": args.fidelity}
    if kind == "pattern":
        res = phase_time(fabric, traffic, **opts)
        rep = check_phase(fabric, traffic, result=res, **opts, **budgets)
        out.update({"n_flows": res.n_flows, "bytes_B": float(res.size_B.sum()), "phase_time_s": res.time_s,
                    "flow_time": _stats(res.flow_time_s)})
        head = [f"{fabric.name}: {fabric.n_gpus} GPUs; {args.traffic}, {res.n_flows} flows, "
                f"{units.fmt_bytes(res.size_B.sum())}; {args.routing} routing, {args.fidelity}",
                f"phase time: {units.fmt_time(res.time_s)}", _line("flow completion", out["flow_time"])]
    else:
        res = trace_time(fabric, traffic, keep_phases=True, **opts)
        rep = check_trace(fabric, traffic, result=res, **opts, **budgets)
        uniq = {id(p): p for p in res.phases}.values()
        ft = np.concatenate([p.flow_time_s for p in uniq]) if res.phases else np.zeros(0)
        out.update({"n_phases": len(res.phase_time_s), "makespan_s": res.makespan_s,
                    "phase_time": _stats(res.phase_time_s), "flow_time": _stats(ft)})
        head = [f"{fabric.name}: {fabric.n_gpus} GPUs; trace {Path(args.traffic).name}, "
                f"{len(res.phase_time_s)} phases; {args.routing} routing, {args.fidelity}",
                f"makespan: {units.fmt_time(res.makespan_s)} (gaps {units.fmt_time(float(traffic.gap_s.sum()))})",
                _line("phase time", out["phase_time"]), _line("flow completion (distinct phases)", out["flow_time"])]
    busy = rep.busiest(args.top)
    out["busiest_links"] = [{"link": lab, "utilization": u} for lab, u in busy]
    out["checks"] = rep.to_dict()
    if args.json:
        print(json.dumps(out, sort_keys=True, indent=1, allow_nan=False))
    else:
        print("\n".join(head))
        if busy:
            w = max(len(lab) for lab, _ in busy)
            print(f"busiest links (mean utilization over the phase{'s' if kind == 'trace' else ''}):")
            print(f"  {'link'.ljust(w)}  utilization_%")
            for lab, u in busy:
                print(f"  {lab.ljust(w)}  {100 * u:13.4g}")
        print(rep.table())
    return 0 if rep.ok else 1
