"""``ocsnet traffic``: per-layer ops and collectives of a model under a parallel plan, and its trace.

Prints the per-layer table (op, FLOPs, HBM bytes, roofline time, bound,
collective, group, size, buffer, algorithm), the memory fit and the per-step
extras; with ``--fabric`` also builds the trace over the fabric's GPUs and
with ``-o`` saves it (``.npz``, :meth:`ocsnet.traffic.Trace.save`).

Example::

    ocsnet traffic --model llama3-405b --mode decode --tp 16 --pp 4 --batch 64 \\
        --context 4096 --gpu lite-base --fabric lite-ocs -o trace.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import units
from ..errors import WorkloadError
from ..tables import format_table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "traffic", help="per-layer ops, collectives and the traffic trace of a model",
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="catalog model, e.g. llama3-405b, gpt3-175b, mixtral-8x22b")
    p.add_argument("--mode", required=True, choices=("prefill", "decode", "train"))
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    p.add_argument("--pp", type=int, default=1, help="pipeline stages (default 1)")
    p.add_argument("--dp", type=int, default=None,
                   help="data-parallel replicas (default: fill the fabric, or 1 without one)")
    p.add_argument("--ep", type=int, default=1, help="expert-parallel degree, MoE only (default 1)")
    p.add_argument("--sp", action="store_true", help="sequence parallelism (reduce-scatter + all-gather)")
    p.add_argument("--batch", type=int, required=True, help="sequences per micro-batch per replica")
    p.add_argument("--seq-len", type=int, default=None, help="prompt / training sequence length, tokens")
    p.add_argument("--context", type=int, default=None, help="decode: tokens in the KV cache")
    p.add_argument("--micro-batches", type=int, default=1, help="micro-batches per step (default 1)")
    p.add_argument("--gpu", default=None, help="catalog GPU (default: the fabric's, else h100-sxm)")
    p.add_argument("--dtype", default="bf16", help="weights and activations: bf16 or fp8 (default bf16)")
    p.add_argument("--kv-dtype", default=None, help="KV cache: bf16 or fp8 (default: --dtype)")
    p.add_argument("--dtype-bytes", type=float, default=None,
                   help="override the bytes per weight/activation element (default: from --dtype)")
    p.add_argument("--calibration", default=None,
                   help="kernel efficiency model: roofline (default) or measured (catalog/calibration.toml)")
    p.add_argument("--algorithm", action="append", default=[], metavar="KIND=ALG",
                   help="collective algorithm, e.g. all-reduce=rhd (repeatable)")
    p.add_argument("--grad-sync", default="all-reduce", choices=("all-reduce", "reduce-scatter"),
                   help="training: gradient all-reduce, or reduce-scatter + all-gather")
    p.add_argument("--fabric", default=None, help="topology spec name or TOML path (or a .json/.graphml fabric)")
    p.add_argument("--placement", default="topology-aware", choices=("topology-aware", "contiguous"))
    p.add_argument("--schedule", default=None, choices=("steady", "sequential"),
                   help="pipeline schedule of the trace (default: steady if micro-batches >= pp)")
    p.add_argument("-o", "--output", default=None, help="save the trace to this .npz file (needs --fabric)")
    p.set_defaults(func=run)


def _algorithms(pairs: list[str]) -> dict:
    from .. import collectives
    out = {}
    for s in pairs:
        kind, sep, alg = s.partition("=")
        if not sep or not kind or not alg:
            raise WorkloadError(f"--algorithm: {s!r} must be KIND=ALG, e.g. all-reduce=ring")
        if kind not in collectives.ALGORITHMS:
            raise WorkloadError(f"--algorithm: {kind!r} is not a collective, expected one of "
                                f"{', '.join(collectives.ALGORITHMS)}")
        if alg not in collectives.ALGORITHMS[kind]:
            raise WorkloadError(f"--algorithm: {alg!r} is not supported for {kind}, supported: "
                                f"{', '.join(collectives.ALGORITHMS[kind])}")
        out[kind] = alg
    return out


def _fabric(spec: str):
    from .. import topology
    path = Path(spec)
    if path.suffix.lower() in (".json", ".graphml"):
        return topology.read(path)
    return topology.build(spec)


def run(args) -> int:
    from ..traffic import build_trace
    from ..workload import ParallelPlan, model
    from ..workload.step import step_profile

    m = model(args.model)
    algos = _algorithms(args.algorithm)
    fabric = _fabric(args.fabric) if args.fabric else None
    if args.output and fabric is None:
        raise WorkloadError("-o/--output: saving a trace needs --fabric (the GPUs the trace runs on)")
    dp = args.dp
    if dp is None:
        dp = max(fabric.n_gpus // (args.tp * args.pp), 1) if fabric is not None and args.tp * args.pp > 0 else 1
        dp -= dp % args.ep if args.ep > 0 else 0
    plan = ParallelPlan(tp=args.tp, pp=args.pp, dp=dp, ep=args.ep, sp=args.sp)
    gpu = args.gpu
    if gpu is None:
        gpu = fabric.meta.get("gpu") if fabric is not None and isinstance(fabric.meta.get("gpu"), str) else "h100-sxm"
    prof = step_profile(m, plan, args.mode, batch=args.batch, seq_len=args.seq_len, context=args.context,
                        gpu=gpu, dtype_bytes=args.dtype_bytes, algorithms=algos,
                        micro_batches=args.micro_batches, grad_sync=args.grad_sync, dtype=args.dtype,
                        kv_dtype=args.kv_dtype, calibration=args.calibration)
    lp = prof.layer
    s = lp.shape
    size = f"context {s.context}" if args.mode == "decode" else f"seq_len {s.seq_len}"
    print(f"{m.name} {args.mode} on {lp.gpu.name}: {plan} ({plan.world_size} GPUs); batch {s.batch}, {size}, "
          f"micro-batches {prof.micro_batches}")
    mem = prof.memory
    print(f"memory: {units.fmt_bytes(mem.total_bytes)} of {units.fmt_bytes(mem.capacity_bytes)} per GPU "
          f"({mem.message().split('(', 1)[1]}")
    print(f"\n## one layer, per GPU, per micro-batch")
    print(format_table(lp.HEADER, lp.table(), align="r"))
    print("\n## per step")
    print(f"stage_layers: {' '.join(str(x) for x in prof.stage_layers.tolist())}")
    print(f"embedding_us: {units.from_si('x_us', prof.embedding.time_s):.4g} (first stage); "
          f"lm_head_us: {units.from_si('x_us', prof.lm_head.time_s):.4g} ({prof.lm_head.bound}-bound, last stage)")
    if prof.pp_send is not None:
        c = prof.pp_send
        print(f"pp send-recv per micro-batch: {units.from_si('x_MB', c.nbytes):.4g} MB per GPU ({c.algorithm})")
    for c in prof.grad_sync:
        print(f"grad sync: {c.kind} over {c.group} ({c.group_size} GPUs), {units.from_si('x_MB', c.nbytes):.4g} MB per GPU ({c.algorithm})")
    print(f"compute_time_ms: {units.from_si('x_ms', prof.compute_time_s):.4g} per step "
          f"(pipeline steady state, no network)")
    if fabric is not None:
        t = build_trace(m, plan, fabric, args.mode, batch=args.batch, seq_len=args.seq_len, context=args.context,
                        algorithms=algos, placement=args.placement, gpu=lp.gpu, dtype_bytes=args.dtype_bytes,
                        dtype=args.dtype, kv_dtype=args.kv_dtype,
                        micro_batches=args.micro_batches, schedule=args.schedule, grad_sync=args.grad_sync)
        print(f"\n## trace over {fabric.name} ({fabric.n_gpus} GPUs, {args.placement} placement, "
              f"{t.meta['schedule']} schedule)")
        print(f"phases: {t.n_phases}; phases_per_layer: {t.meta['phases_per_layer']}; period (start, length, repeats): {t.period}")
        print(f"total_GB: {units.from_si('x_GB', t.total_bytes()):.4g}; compute_gaps_ms: "
              f"{units.from_si('x_ms', t.total_gap_s()):.4g}; distinct demand matrices: "
              f"{len({id(d) for d in t.demand})}")
        if args.output:
            path = t.save(args.output)
            print(f"saved: {path}")
    return 0
