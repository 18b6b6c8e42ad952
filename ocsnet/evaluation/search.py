"""The study's plan search: which plans fit, the alpha-beta screen, the full evaluation.

Stage: evaluation (see docs/design.md).
"""

from __future__ import annotations

import itertools

from .. import hardware, units
from ..errors import OcsnetError, WorkloadError
from ..workload import ParallelPlan
from ..workload.step import memory_fit
from .per_layer import Evaluation, evaluate
from .records import Choice, System

__all__ = ["OBJECTIVES", "sizes_for", "feasible_plans", "choose", "objective"]


def precision(cfg: dict, memory: bool = False) -> dict:
    """The study's dtype, KV-cache dtype and (unless for a memory check) calibration, as keyword arguments."""
    out = {"dtype": cfg.get("dtype", "bf16"), "kv_dtype": cfg.get("kv_dtype")}
    if not memory:
        out["calibration"] = cfg.get("calibration", "roofline")
    return out


def sizes_for(cfg: dict, model, mode: str) -> list[dict]:
    """The mode's sizes, one dict per batch searched, lengths capped at the model's maximum context."""
    base = dict(cfg[mode])
    for key in ("seq_len", "context"):
        if key in base:
            base[key] = min(int(base[key]), model.max_context_tokens)
    batches = base.pop("batch")
    batches = batches if isinstance(batches, (list, tuple)) else [batches]
    return [dict(base, batch=int(b)) for b in batches]


def feasible_plans(cfg: dict, model, mode: str, gpu, memory=None) -> tuple[list[tuple[ParallelPlan, dict]], list[str]]:
    """(plan, sizes) pairs that the model admits and that fit in memory; the others with the reason.

    With remote ``memory`` (:class:`ocsnet.memory.MemoryConfig`) a plan that overflows the HBM is
    kept: the evaluation places the overflow on the remote tiers and says whether it fits.
    """
    ok, skipped = [], []
    for (tp, pp), sizes in itertools.product(itertools.product(cfg["tp"], cfg["pp"]), sizes_for(cfg, model, mode)):
        if tp * pp > cfg["max_gpus_per_replica"]:
            continue
        plan = ParallelPlan(tp=tp, pp=pp)
        try:
            plan.validate(model)
            fit = memory_fit(model, plan, mode, gpu=gpu, micro_batches=pp, **sizes, **precision(cfg, memory=True))
        except WorkloadError as e:
            skipped.append(f"tp={tp} pp={pp} batch={sizes['batch']}: {e}")
            continue
        if not fit.fits and memory is None:
            skipped.append(f"tp={tp} pp={pp} batch={sizes['batch']}: does not fit, {fit.message()}")
            continue
        ok.append((plan, sizes))
    return ok, skipped


#: What a plan search can maximize (latency is minimized).
OBJECTIVES = ("tokens_per_s_per_h100e", "tokens_per_s_per_kW", "tokens_per_s_per_cost", "latency_ms",
              "usd_per_million_tokens")
_MINIMIZED = ("latency_ms", "usd_per_million_tokens")


def objective(ev: Evaluation, key: str) -> float:
    """Larger is better."""
    v = ev.totals()[key]
    return -v if key in _MINIMIZED else v


def choose(cfg: dict, system: System, fabric, model, mode: str, reconfig_delay_s,
            latency_limit_s: float | None = None, memory=None, *, limit_what: str | None = None) -> Choice:
    """Best plan of one system; with ``latency_limit_s``, among the plans whose screened latency
    meets it (or, if none does, the plans of least latency).  With remote ``memory``
    (:class:`ocsnet.memory.MemoryConfig`) plans that overflow the HBM are screened too, with their
    remote reads, so a narrower tensor parallelism can win."""
    gpu = hardware.gpu(system.gpu)
    plans, skipped = feasible_plans(cfg, model, mode, gpu, memory)
    screened = []
    for (plan, sizes), alg in itertools.product(plans, cfg["algorithms"]):
        if plan.tp * plan.pp > fabric.n_gpus:
            continue
        try:
            ev = evaluate(model, plan, fabric, mode, gpu=gpu, algorithms={"all-reduce": alg},
                          fidelities=("alpha-beta",), fidelity="alpha-beta", schedule=False,
                          reconfig_delay_s=reconfig_delay_s, memory=memory, **sizes, **precision(cfg))
        except OcsnetError as e:
            skipped.append(f"{plan} {alg}: {e}")
            continue
        if memory is not None and not ev.fits:
            skipped.append(f"{plan} {alg}: " + "; ".join(f for f in ev.failures if f.startswith("memory")))
            continue
        screened.append((objective(ev, cfg["objective"]), plan, sizes, alg, ev.latency_s))
    n_screened = len(screened)
    order = lambda x: (-x[0], x[1].tp * x[1].pp, x[1].tp, x[2]["batch"], x[3])  # noqa: E731
    unconstrained = sorted(screened, key=order)
    if latency_limit_s is not None:
        screened = [x for x in screened if x[4] <= latency_limit_s]
    screened.sort(key=order)
    k = int(cfg["top_k"])

    def full_eval(x):
        score, plan, sizes, alg, _ = x
        ev = evaluate(model, plan, fabric, mode, gpu=gpu, algorithms={"all-reduce": alg},
                      reconfig_delay_s=reconfig_delay_s, memory=memory,
                      schedule_time_limit_s=cfg["schedule_time_limit_s"], schedule_bound="design", **sizes,
                      **precision(cfg))
        return x, ev

    # The screen assumes ideal circuits and no congestion, so it can misjudge an algorithm (rhd on a
    # slow OCS): the best screened plan of every algorithm is evaluated in full too.
    picks = list(screened[:k])
    for alg in cfg["algorithms"]:
        top = next((x for x in screened if x[3] == alg), None)
        if top is not None and not any(x is top for x in picks):
            picks.append(top)
    full = [full_eval(x) for x in picks]
    # The full evaluation decides, under the same latency limit as the screen.
    ok = [ev for _, ev in full if latency_limit_s is None or ev.latency_s <= latency_limit_s]
    if not ok and unconstrained:
        # No plan meets the limit once congestion and reconfiguration are counted: report the
        # unconstrained best and say so.
        seen = {(str(x[1]), x[2]["batch"], x[3]) for x, _ in full}
        full += [full_eval(x) for x in unconstrained[:k] if (str(x[1]), x[2]["batch"], x[3]) not in seen]
        ok = [ev for _, ev in full]
        if latency_limit_s is not None:
            for ev in ok:
                ev.failures.append(f"latency: no plan of this system meets the study's limit of "
                                   f"{limit_what or str(cfg['latency_vs_baseline']) + 'x the baseline'} ({units.fmt_time(latency_limit_s)})")
    cands = [{"plan": str(ev.plan), "batch": ev.batch, "algorithm": ev.algorithms["all-reduce"],
              "screen": x[0], "full": objective(ev, cfg["objective"]), "latency_s": ev.latency_s}
             for x, ev in full]
    best = max(ok, key=lambda ev: objective(ev, cfg["objective"])) if ok else None
    return Choice(system, best, n_screened, skipped, cands)
