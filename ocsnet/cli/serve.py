"""``ocsnet serve``: serve a request stream on a deployment; latency percentiles, SLO check, goodput.

Builds the fabric, tabulates one replica's iteration time from the per-layer
evaluation, and simulates continuous batching over the requests of a trace
file (Azure LLM inference trace format) or a synthetic workload at a rate.
With ``--goodput`` it searches the highest rate that meets the SLO; with
``--split TP`` the replicas become a decode pool and ``--prefill-replicas``
replicas of tensor width ``TP`` a prefill pool, with the KV transfer timed on
the fabric.

Example::

    ocsnet serve --model llama3-70b --fabric h100-dgx --tp 8 --replicas 2 \\
        --workload azure-conv-2023 --rate 10 --requests 2000 --slo llama2-70b --goodput
"""

from __future__ import annotations

import argparse
import json

from .. import units
from ..errors import SpecError
from .argtypes import int_at_least


def _pos_int(name):
    return int_at_least(name, 1)


def _nonneg_int(name):
    return int_at_least(name, 0)


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve requests on a deployment: TTFT/TPOT percentiles, SLO, goodput",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="catalog model, e.g. llama3-70b")
    p.add_argument("--fabric", required=True, help="topology spec name or TOML path, e.g. h100-dgx, lite-ocs")
    p.add_argument("--gpu", default=None, help="catalog GPU (default: the fabric's)")
    p.add_argument("--tp", type=_pos_int("--tp"), default=8, help="tensor-parallel width of a replica (default 8)")
    p.add_argument("--pp", type=_pos_int("--pp"), default=1, help="pipeline stages of a replica (default 1)")
    p.add_argument("--replicas", type=_pos_int("--replicas"), default=1, help="replicas (default 1)")
    p.add_argument("--chunk", type=_nonneg_int("--chunk"), default=0,
                   help="chunked prefill token budget per iteration (default 0: prefill first)")
    p.add_argument("--max-batch", type=_pos_int("--max-batch"), default=256,
                   help="requests running at once per replica (default 256)")
    p.add_argument("--fidelity", default="max-min", choices=("max-min", "alpha-beta"))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--trace", help="CSV in the Azure LLM inference trace format (TIMESTAMP,ContextTokens,GeneratedTokens)")
    src.add_argument("--workload", default="azure-conv-2023",
                     help="synthetic workload from published statistics (default azure-conv-2023)")
    p.add_argument("--rate", type=float, default=None,
                   help="request rate, req/s (default: the trace's or the workload's own)")
    p.add_argument("--requests", type=_pos_int("--requests"), default=2000, help="synthetic requests (default 2000)")
    p.add_argument("--arrival", default="poisson", choices=("poisson", "gamma", "uniform"))
    p.add_argument("--cv", type=float, default=1.0, help="gamma arrivals: coefficient of variation (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slo", default=None, help="SLO preset (default: the model's, e.g. llama2-70b)")
    p.add_argument("--ttft", default=None, help="TTFT limit, e.g. 2000ms (with --tpot and --percentile)")
    p.add_argument("--tpot", default=None, help="TPOT limit, e.g. 200ms")
    p.add_argument("--percentile", type=float, default=None, help="percentile of the limits, e.g. 99")
    p.add_argument("--goodput", action="store_true", help="search the highest rate that meets the SLO")
    p.add_argument("--split", type=_pos_int("--split"), default=None, metavar="TP",
                   help="phase split: a prefill pool of tensor width TP, the replicas decode")
    p.add_argument("--prefill-replicas", type=_pos_int("--prefill-replicas"), default=1)
    p.add_argument("--write-trace", metavar="FILE", default=None,
                   help="also write the requests served as a CSV in the Azure trace format (e.g. a synthetic trace)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _slo(args, model):
    from ..serving import preset_for_model, slo
    if args.ttft or args.tpot or args.percentile is not None:
        if args.slo:
            raise SpecError("--slo: give a preset or --ttft/--tpot/--percentile, not both")
        if not args.ttft or not args.tpot:
            raise SpecError("--ttft/--tpot: an explicit SLO needs both limits and --percentile")
        if args.percentile is None:
            raise SpecError("--percentile: an SLO needs the percentile at which its limits hold, allowed (0, 100]")
        return slo({"ttft_ms": units.from_si("x_ms", units.parse_time(args.ttft, field="--ttft")),
                    "tpot_ms": units.from_si("x_ms", units.parse_time(args.tpot, field="--tpot")),
                    "percentile": args.percentile})
    if args.slo:
        return slo(args.slo)
    s = preset_for_model(model)
    if s is None:
        raise SpecError(f"--slo: no preset names model {model!r}; give --slo or --ttft/--tpot/--percentile")
    return s


def run(args) -> int:
    from .. import serving as sv
    from .. import topology
    from ..workload import ParallelPlan
    from ..workload.models import model as get_model

    m = get_model(args.model)
    s = _slo(args, m.name)
    if args.rate is not None and not args.rate > 0:
        raise SpecError(f"--rate: {args.rate!r} is out of range, allowed (0, inf)")
    if args.trace:
        reqs = sv.read_trace(args.trace)
        if args.rate is not None:
            reqs = reqs.scaled(args.rate)
    else:
        reqs = sv.synthetic(args.workload, n=args.requests, rate=args.rate, arrival=args.arrival, cv=args.cv,
                            seed=args.seed)
    if args.write_trace:
        sv.write_trace(reqs, args.write_trace)
    kw = {} if args.gpu is None else {"gpu": args.gpu}
    fabric = topology.build(args.fabric, **kw)
    fid = {"fidelity": args.fidelity, "fidelities": ("alpha-beta",) if args.fidelity == "alpha-beta"
           else ("alpha-beta", "max-min")}
    dec = sv.tabulate(m, ParallelPlan(tp=args.tp, pp=args.pp), fabric, gpu=args.gpu, **fid)
    d = sv.Deployment(dec, replicas=args.replicas, chunk=args.chunk, max_batch=args.max_batch)
    out = {"model": m.name, "fabric": fabric.name, "slo": s.to_dict(), "requests": reqs.summary(),
           "replica": dec.summary()}
    if args.split:
        pre = sv.tabulate(m, ParallelPlan(tp=args.split, pp=args.pp), fabric, gpu=args.gpu, **fid)
        tr = sv.kv_transfer(fabric, fabric, pre, dec, m.layers)
        dep = sv.SplitDeployment(sv.Deployment(pre, replicas=args.prefill_replicas, max_batch=args.max_batch), d, tr)
        run_ = sv.simulate_split
        out["transfer"] = {"latency_us": units.from_si("x_us", tr.latency_s),
                           "bandwidth_GBps": units.from_si("x_GBps", tr.bandwidth_Bps), "how": tr.how}
    else:
        dep, run_ = d, sv.simulate
    res = run_(dep, reqs)
    out["result"] = res.summary(s)
    if args.goodput:
        g = sv.goodput(dep, reqs, s, run=run_)
        out["goodput_per_s"] = g["goodput_per_s"]
        out["goodput_per_h100e"] = g["goodput_per_s"] / dep.h100e
        out["goodput_per_kW"] = g["goodput_per_s"] / (dep.watts / 1e3)
        out["goodput_per_cost"] = g["goodput_per_s"] / dep.cost
    if args.json:
        print(json.dumps(out, indent=1, sort_keys=True, default=float))
        return 0
    r = out["result"]
    print(f"{m.name} on {fabric.name}: {dep.gpus} GPUs ({dec.meta['plan']} x {args.replicas}"
          + (f", prefill pool tp={args.split} x {args.prefill_replicas}" if args.split else "") + ")")
    print(f"requests: {len(reqs)} at {reqs.rate:.3g} req/s, mean prompt {reqs.prompt.mean():.0f}, "
          f"mean output {reqs.output.mean():.0f} tokens")
    print(f"{'metric':8s} {'p50_ms':>10s} {'p90_ms':>10s} {'p99_ms':>10s} {'mean_ms':>10s}")
    for k in ("ttft", "tpot", "e2e"):
        print(f"{k:8s} " + " ".join(f"{r[f'{k}_{q}_ms']:10.4g}" for q in ("p50", "p90", "p99", "mean")))
    print(f"SLO {s.name} (p{s.percentile:g} TTFT <= {units.fmt_time(s.ttft_s)}, TPOT <= {units.fmt_time(s.tpot_s)}): "
          + ("met" if r["slo_met"] else "missed"))
    if args.goodput:
        print(f"goodput: {out['goodput_per_s']:.4g} req/s ({out['goodput_per_h100e']:.4g} per H100e, "
              f"{out['goodput_per_kW']:.4g} per kW, {out['goodput_per_cost']:.4g} per unit of cost)")
    return 0
