"""The study's "memory" section: local HBM only, memory sharing, disaggregated memory nodes.

Stage 6 of the pipeline (evaluation); registered in
:data:`ocsnet.evaluation.study.ANALYSES` as ``memory``.  For each model and
mode, on each Lite-GPU fabric of one variant, the best plan with

- ``local``: the main study's choice (HBM only);
- ``shared``: peer HBM of lending GPUs (``peer_ratio`` lenders per compute
  GPU, counted as GPUs of the replica);
- ``disaggregated``: memory nodes attached to the same fabric
  (:func:`ocsnet.topology.attach_memory`; tier, count and ports below),
  their cost and power charged to the GPUs;

is found by a small search over *narrower* plans than the local choice
(``tp`` at most the local one, a replica of at most as many GPUs), at the
local choice's batch and all-reduce algorithm: an alpha-beta screen with
remote memory (:mod:`ocsnet.evaluation.remote`), then the best one in full
(max-min flow with the reads and collectives together, the solved circuit
schedule on OCS).  Rows give tokens/s per H100-equivalent and per unit of
cost against the H100 baseline, and the bandwidth the memory traffic needs
(to hide under one layer) against what the memory tiers offer.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

from .. import units
from ..errors import OcsnetError
from ..tables import write_csv
from ..workload import ParallelPlan
from .per_layer import evaluate
from .search import objective

__all__ = ["DEFAULTS", "check", "analyse", "report"]

DEFAULTS: dict = {
    "variant": "lite-netboost",
    "memory_modes": ["shared", "disaggregated"],
    "peer_ratio": "auto",
    "prefetch": True,
    "node_tier": "photonic-fabric-appliance",
    "n_nodes": 8,
    "ports_per_node": 16,
    "port_GBps": 900,
    "max_candidates": 3,
    "full_eval_fraction": 0.95,
}

# As the main report: "matches" means within this fraction of the H100's tokens/s per H100-equivalent.
MATCH_TOLERANCE = 0.05

_HEADER = ["model", "mode", "fabric", "memory", "plan", "batch", "gpus_per_replica", "tokens_per_s_per_h100e",
           "tokens_per_s_per_cost", "throughput_vs_h100", "cost_vs_h100", "latency_ms", "meets_latency",
           "remote_GB", "exposed_us_per_layer", "need_TBps", "have_TBps", "delivered_TBps", "bisection_TBps", "enough", "fits", "note"]


def _candidates(cfg, local_plan, n_gpus, sec) -> list[ParallelPlan]:
    """Plans narrower than the local choice (tp at most its tp, at most as many GPUs), widest first."""
    out = []
    width = local_plan.tp * local_plan.pp
    for tp, pp in itertools.product(sorted(cfg["tp"]), sorted(cfg["pp"])):
        if tp <= local_plan.tp and tp * pp <= width and tp * pp <= n_gpus and (tp, pp) != (local_plan.tp, local_plan.pp):
            out.append(ParallelPlan(tp=tp, pp=pp))
    out.sort(key=lambda p: (-p.tp * p.pp, -p.tp))       # closest to the local choice first
    return out[: int(sec["max_candidates"])]


def _config(sec, mode_name):
    from ..memory import memory_config
    ratio = 1.0 if sec["peer_ratio"] == "auto" else float(sec["peer_ratio"])
    return memory_config(mode_name, node_tier=sec["node_tier"], peer_ratio=ratio, prefetch=bool(sec["prefetch"]))


def _auto_peers(sec, model, plan, mode, gpu, sizes):
    """Memory sharing with just enough lenders for the plan's shortfall (plus staging), or None if it fits locally."""
    import math

    from .. import hardware
    from ..memory import MemoryConfig, tier
    from ..workload.step import memory_fit

    g = hardware.gpu(gpu)
    fit = memory_fit(model, plan, mode, gpu=g, micro_batches=plan.pp, **sizes)
    if fit.fits:
        return None
    n = plan.tp * plan.pp
    per_lender = tier("peer-hbm").share_fraction * g.hbm_bytes
    # staging buffers (a layer's remote bytes, twice with prefetch) come out of the HBM: a margin of 10%
    lenders = math.ceil(1.1 * fit.shortfall_bytes * n / per_lender)
    return MemoryConfig(("peer-hbm",), peer_ratio=min(lenders / n, 64.0), prefetch=bool(sec["prefetch"]))


def _row(m, mode, kind, mem, ev, base, limit, note="", bisection=None) -> dict:
    r = {"model": m, "mode": mode, "fabric": kind, "memory": mem, "note": note, "bisection_TBps": bisection}
    if ev is None:
        r.update({"plan": "none fits", "fits": False})
        return r
    t = ev.totals()
    rm = ev.remote
    r.update({"plan": t["plan"], "batch": t["batch"], "gpus_per_replica": t["gpus_per_replica"],
              "tokens_per_s_per_h100e": t["tokens_per_s_per_h100e"], "tokens_per_s_per_cost": t["tokens_per_s_per_cost"],
              "latency_ms": t["latency_ms"], "meets_latency": None if limit is None else ev.latency_s <= limit,
              "remote_GB": t["remote_GB"], "exposed_us_per_layer": t["remote_exposed_us"],
              "need_TBps": units.from_si("x_TBps", rm.need_Bps) if rm is not None else 0.0,
              "have_TBps": units.from_si("x_TBps", rm.have_Bps) if rm is not None else 0.0,
              "fits": bool(ev.fits)})
    if rm is not None:
        r["delivered_TBps"] = units.from_si("x_TBps", rm.delivered_Bps)
        r["enough"] = bool(rm.need_Bps <= rm.delivered_Bps * (1 + 1e-9))
    if base is not None:
        bt = base.totals()
        r["throughput_vs_h100"] = t["tokens_per_s_per_h100e"] / bt["tokens_per_s_per_h100e"]
        r["cost_vs_h100"] = t["tokens_per_s_per_cost"] / bt["tokens_per_s_per_cost"]
    return r


def check(sec: dict) -> None:
    """Refuse bad settings by name before any work (the study calls it before the plan search)."""
    from .. import hardware
    from ..checks import check_range
    from ..errors import SpecError
    from ..memory import tier

    hardware.gpu(sec["variant"])
    for m in sec["memory_modes"]:
        if m not in ("shared", "disaggregated", "host"):
            raise SpecError(f"study.memory.memory_modes: {m!r} is not one of shared, disaggregated, host")
    if tier(sec["node_tier"]).kind != "node":
        raise SpecError(f"study.memory.node_tier: {sec['node_tier']!r} is not a memory-node tier (kind 'node')")
    if sec["peer_ratio"] != "auto":
        check_range("study.memory.peer_ratio", sec["peer_ratio"], 0, 64, lo_open=True)
    for k in ("n_nodes", "ports_per_node", "max_candidates"):
        check_range(f"study.memory.{k}", sec[k], 1)
    check_range("study.memory.port_GBps", sec["port_GBps"], 0, lo_open=True)
    check_range("study.memory.full_eval_fraction", sec["full_eval_fraction"], 0, 1)


def analyse(cfg: dict, result, fabrics: dict, *, progress: bool = False) -> dict:
    """Rows (model, mode, fabric, memory architecture) of the best plan; see the module notes."""
    from ..topology import attach_memory

    sec = cfg["memory"]
    check(sec)
    t0 = time.perf_counter()
    rows = []
    with_nodes: dict = {}
    for (m, mode), choices in result.choices.items():
        base = next((c.best for c in choices if c.system.kind == "baseline" and c.best is not None), None)
        limit = None if base is None or not cfg.get("latency_vs_baseline") else \
            float(cfg["latency_vs_baseline"]) * base.latency_s
        for c in choices:
            if c.system.kind == "baseline" or c.system.gpu != sec["variant"]:
                continue
            # an OCS fabric has no bisection before circuits are set: left blank
            bis = None if c.system.kind == "OCS" else \
                (getattr(result, "fabrics", None) or {}).get(c.system.label, {}).get("bisection_TBps")
            rows.append(_row(m, mode, c.system.kind, "local", c.best, base, limit, bisection=bis))
            if c.best is None:
                continue
            fabric = fabrics[c.system.fabric_key]
            sizes = {k: v for k, v in (("batch", c.best.batch), ("seq_len", c.best.seq_len),
                                       ("context", c.best.context)) if v is not None}
            alg = {"all-reduce": c.best.algorithms.get("all-reduce", "ring")}
            for mem in sec["memory_modes"]:
                cfg_mem = _config(sec, mem)
                f = fabric
                if mem == "disaggregated":
                    key = c.system.fabric_key
                    if key not in with_nodes:
                        with_nodes[key] = attach_memory(fabric, int(sec["n_nodes"]), tier=sec["node_tier"],
                                                        ports=int(sec["ports_per_node"]),
                                                        port_Bps=units.to_si("port_GBps", sec["port_GBps"]))
                    f = with_nodes[key]
                screened = []
                for plan in _candidates(cfg, c.best.plan, f.n_gpus, sec):
                    try:
                        plan.validate(m)
                        if mem == "shared" and sec["peer_ratio"] == "auto":
                            cfg_mem = _auto_peers(sec, m, plan, mode, c.system.gpu, sizes)
                            if cfg_mem is None:
                                continue
                        ev = evaluate(m, plan, f, mode, gpu=c.system.gpu, algorithms=alg, fidelities=("alpha-beta",),
                                      fidelity="alpha-beta", schedule=False, memory=cfg_mem, **sizes)
                    except OcsnetError:
                        continue
                    if ev.fits:
                        ok = limit is None or ev.latency_s <= limit
                        screened.append((ok, objective(ev, cfg["objective"]), plan, ev, cfg_mem))
                note = ""
                if not screened:
                    rows.append(_row(m, mode, c.system.kind, mem, None, base, limit,
                                     "no narrower plan fits with this memory", bis))
                    continue
                # as the main search: the best within the latency limit, else the best overall
                screened.sort(key=lambda x: (not x[0], -x[1], x[2].tp * x[2].pp, x[2].tp))
                plan, screen_ev, cfg_mem = screened[0][2:]
                if screened[0][1] < float(sec["full_eval_fraction"]) * objective(c.best, cfg["objective"]):
                    # far below the local choice even congestion-free: the screen's figures are reported
                    rows.append(_row(m, mode, c.system.kind, mem, screen_ev, base, limit,
                                     "alpha-beta screen (far below the local plan)", bis))
                    continue
                try:
                    ev = evaluate(m, plan, f, mode, gpu=c.system.gpu, algorithms=alg, memory=cfg_mem,
                                  schedule_time_limit_s=cfg["schedule_time_limit_s"], schedule_bound="design", **sizes)
                except OcsnetError as e:
                    rows.append(_row(m, mode, c.system.kind, mem, None, base, limit, str(e), bis))
                    continue
                if objective(ev, cfg["objective"]) < objective(c.best, cfg["objective"]):
                    note = "local HBM plan is better"
                elif ev.remote is not None and ev.remote.placement is not None and ev.remote.placement.remote_bytes == 0:
                    note = "fits in HBM, no remote bytes (outside the local search's latency limit)"
                rows.append(_row(m, mode, c.system.kind, mem, ev, base, limit, note, bis))
        if progress:
            print(f"memory {m} {mode} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return {"settings": dict(sec), "rows": rows, "elapsed_s": time.perf_counter() - t0}


def _fmt(v, nd=3):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def _verdicts(rows) -> list[str]:
    """Per disputed (model, mode): the best plan that fits in HBM (the main search's choice, or any plan of
    this section that reads no remote bytes) against the best that reads remote bytes."""
    tol = 1 - MATCH_TOLERANCE
    out = []
    for model in ("gpt3-175b", "llama3-405b"):
        for mode in ("prefill", "decode"):
            rs = [r for r in rows if r["model"] == model and r["mode"] == mode and r.get("throughput_vs_h100") is not None]
            hbm = [r for r in rs if r["memory"] == "local" or not (r.get("remote_GB") or 0) > 0]
            remote = [r for r in rs if r["memory"] != "local" and (r.get("remote_GB") or 0) > 0]
            if not hbm:
                continue
            ok = [r for r in hbm if r.get("meets_latency") in (None, True)]   # as the main study: within its limit
            chosen = max((r for r in hbm if r["memory"] == "local"), key=lambda r: r["throughput_vs_h100"],
                         default=hbm[0])
            lo = max(ok or [chosen], key=lambda r: r["throughput_vs_h100"])
            lat = lambda r: "" if r.get("meets_latency") in (None, True) else ", missing the latency limit"  # noqa: E731
            text = (f"- {model} {mode}: the main search's local-HBM choice reaches {chosen['throughput_vs_h100']:.3f} "
                    f"of the H100 per H100-equivalent ({chosen['fabric']}, {chosen['plan']}{lat(chosen)})")
            if lo is not chosen:
                text += (f"; a plan that fits in HBM reaches {lo['throughput_vs_h100']:.3f} "
                         f"({lo['fabric']}, {lo['plan']}{lat(lo)})")
            if not remote:
                out.append(text + "; no plan that reads remote bytes fits and helps.")
                continue
            rok = [r for r in remote if r.get("meets_latency") in (None, True)]
            rb = max(rok or remote, key=lambda r: r["throughput_vs_h100"])
            text += (f"; the best that reads remote bytes is {rb['memory']} on {rb['fabric']} ({rb['plan']}, "
                     f"{rb['remote_GB']:.3g} GB per GPU remote{lat(rb)}) at {rb['throughput_vs_h100']:.3f}")
            if lo["throughput_vs_h100"] >= tol and lat(lo) == "":
                verdict = "no memory disagreement: a plan in HBM already matches"
            elif rb["throughput_vs_h100"] >= tol and lat(rb) == "":
                verdict = "remote memory closes the disagreement"
            else:
                verdict = "the disagreement does not close"
            gain = "better" if rb["throughput_vs_h100"] > lo["throughput_vs_h100"] else "no better"
            out.append(f"{text}: {verdict} (remote memory is {gain} than the best plan in HBM).")
    return out


def report(data: dict, outdir: Path, *, figures: bool = False) -> list[str]:
    """Markdown lines of the memory section; writes ``memory.csv`` and ``memory.json``."""
    rows = data["rows"]
    out = Path(outdir)
    write_csv(out / "memory.csv", _HEADER, [[r.get(k) for k in _HEADER] for r in rows])
    (out / "memory.json").write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    s = data["settings"]
    lines = ["## Memory architecture", "",
             f"Lite {s['variant'].replace('lite-', '')} GPUs with local HBM only, with memory sharing "
             f"({'just enough' if s['peer_ratio'] == 'auto' else s['peer_ratio']} lending GPUs per compute GPU, "
             "lenders counted in the replica), and with "
             f"{s['n_nodes']} memory nodes of `{s['node_tier']}` ({s['ports_per_node']} ports of "
             f"{s['port_GBps']:g} GB/s each) attached to the fabric; prefetch {'on' if s['prefetch'] else 'off'}. "
             "Remote bytes are staged into HBM before use; reads are timed on the fabric with the layer's "
             "collectives (max-min flow), plus the path's and the tier's latency; the search tries plans "
             "narrower than the local choice at its batch. Tier numbers and their sources are in "
             "`ocsnet/catalog/memory.toml` (CXL expanders at 2-5x DRAM latency; the Photonic Fabric "
             "Appliance, arXiv 2507.14000; Mooncake's RDMA pool, FAST 2025; host DRAM over PCIe 5.0, "
             "Calculon's second tier). Need: remote bytes of one layer over all GPUs divided by the layer time "
             "(what hides the reads); have: the memory tiers' aggregate bandwidth; delivers: what the fabric "
             "carried in the timing (read bytes over their completion time).", "",
             "| model | mode | fabric | memory | plan | tok/s per H100e vs H100 | per cost vs H100 | latency ms "
             "| remote GB/GPU | exposed us/layer | need TB/s | tiers have TB/s | fabric delivers TB/s "
             "| fabric bisection TB/s | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k in (
            "model", "mode", "fabric", "memory", "plan", "throughput_vs_h100", "cost_vs_h100", "latency_ms",
            "remote_GB", "exposed_us_per_layer", "need_TBps", "have_TBps", "delivered_TBps", "bisection_TBps",
            "note")) + " |")
    lines += ["", "Whether remote memory closes the disagreements with Canakci et al. (HotOS 2025) "
              "(within 5% of the H100 per H100-equivalent):", ""]
    lines += _verdicts(rows)
    remote = [r for r in rows if r["memory"] != "local" and r.get("remote_GB")]
    short = [r for r in remote if r.get("enough") is False]
    if remote:
        lines += ["", f"Bandwidth: in {len(remote) - len(short)} of {len(remote)} plans that read remote bytes the "
                  "fabric delivers what hiding them under a layer needs (need <= delivers); in the others the "
                  "reads are exposed. The tiers' own bandwidth (have) is rarely the limit: the links into the "
                  "memory nodes and the GPUs' own links are, and, for nodes across a cut, the bisection."]
    lines += ["", "Decode re-reads every weight and the whole KV cache each step, so memory that is "
              "not HBM must deliver those bytes at HBM-like rates to hide; when the needed bandwidth "
              "exceeds what the tiers have, remote memory trades a narrower plan for exposed reads.", ""]
    return lines
