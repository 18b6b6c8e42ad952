"""The Lite-GPU versus H100 study: the project's main job (``ocsnet compare``).

For every model and mode, every system (the H100 DGX baseline and Lite-GPU
clusters of four times as many GPUs, i.e. the same silicon, on a packet
fabric, an OCS fabric with its solved schedule and a CPO torus, for each
Lite-GPU variant) gets its best plan from a small search over tensor and
pipeline parallelism and the all-reduce algorithm:

1. every (tp, pp) that the model admits and that fits in memory (the others
   are listed as skipped, with the reason);
2. a fast screen of every (plan, algorithm) with the alpha-beta fidelity
   and ideal circuits;
3. the ``top_k`` best, and the best of every algorithm, re-evaluated in full
   (max-min flow model, solved circuit schedule with its exposed
   reconfiguration); the best by the objective (tokens/s per H100-equivalent
   of silicon) among those within the latency limit (the model's SLO
   preset: TTFT in prefill, TPOT in decode; or, with ``latency_limit =
   "relative"`` and for models without a preset, 1.25x the H100
   baseline's latency by default) wins.

A reconfiguration sweep then times the Lite-GPU OCS system's best plan with
each all-reduce algorithm as the OCS reconfiguration delay goes from
nanoseconds to milliseconds, which is where recursive halving-doubling
(a new matching every step) and ring (one matching held) trade places.

Throughput and latency are normalized to the H100 baseline of the same model
and mode, as in Canakci et al., "Good things come in small packages: Should
we build AI clusters with Lite-GPUs?", HotOS 2025.
"""


from __future__ import annotations

import copy
import dataclasses
import importlib
import itertools
import sys
import time

from .. import hardware, units
from ..errors import SpecError, WorkloadError
from ..workload import ParallelPlan
from ..workload.models import model as get_model
from ..workload.step import memory_fit
from .config import DEFAULT_STUDY, check_types
from .per_layer import evaluate
from .records import Choice, StudyResult, System
from .search import OBJECTIVES, choose, precision, sizes_for

__all__ = ["DEFAULT_STUDY", "ANALYSES", "OBJECTIVES", "StudyResult", "Choice", "System", "run_study", "analysis_module",
           "study_config", "systems", "sizes_for", "bandwidth_overrides"]

#: Analyses that run after the plan search, each adding a section to the report.  Name ->
#: module; the module defines ``DEFAULTS`` (its config section, ``cfg[name]``),
#: ``analyse(cfg, result, fabrics, *, progress) -> dict`` (JSON-able data, stored in
#: ``result.extras[name]``) and ``report(data, outdir, *, figures) -> list[str]``
#: (the section's markdown lines; it writes its own files).  See docs/design.md.
#: One line per analysis, kept apart by the comments so that additions merge cleanly.
ANALYSES: dict[str, str] = {
    # collectives (fabric-aware algorithms)
    "collectives": "ocsnet.evaluation.collectives_section",
    # silicon economics (how small a GPU should be)
    "silicon": "ocsnet.evaluation.economics",
    # memory architecture
    "memory": "ocsnet.evaluation.memory_study",
    # serving under SLOs
    "serving": "ocsnet.serving.study",
    # faults and reliability
    "failures": "ocsnet.reliability.section",
    "fidelity": "ocsnet.evaluation.measured",   # fidelity against measured systems
}

_KEYS = set(DEFAULT_STUDY) | {"analyses"}


def analysis_module(name: str):
    """The module of a registered analysis (imported on first use)."""
    if name not in ANALYSES:
        raise SpecError(f"study.analyses: {name!r} is not an analysis; allowed: {', '.join(ANALYSES) or 'none'}")
    return importlib.import_module(ANALYSES[name])


def study_config(overrides: dict | None = None) -> dict:
    """The default study with ``overrides`` applied; unknown keys are refused by name.

    ``prefill`` and ``decode`` tables are merged into the default ones (a file
    may set just ``[decode] batch``); every other key replaces the default.
    """
    cfg = copy.deepcopy(DEFAULT_STUDY)
    if overrides is not None and not isinstance(overrides, dict):
        raise SpecError(f"study: expected a table of study keys, got {type(overrides).__name__}")
    overrides = dict(overrides or {})
    names = overrides.pop("analyses", None)
    if names is not None:
        check_types({"analyses": names})
    cfg["analyses"] = list(ANALYSES) if names is None else list(names)
    keys = _KEYS | set(ANALYSES)
    for k, v in overrides.items():
        if k not in keys:
            raise SpecError(f"study.{k}: unknown key; allowed: {', '.join(sorted(keys))}")
        if v is not None and k not in ANALYSES:
            cfg[k] = dict(cfg[k], **v) if k in ("prefill", "decode") and isinstance(v, dict) else v
    check_types(cfg)
    for name in ANALYSES:
        section = copy.deepcopy(analysis_module(name).DEFAULTS) if name in cfg["analyses"] else {}
        given = overrides.get(name) or {}
        if not isinstance(given, dict):
            raise SpecError(f"study.{name}: expected a table of settings, got {type(given).__name__}")
        for k, v in given.items():
            if name in cfg["analyses"] and k not in section:
                raise SpecError(f"study.{name}.{k}: unknown key; allowed: {', '.join(sorted(section)) or 'none'}")
            section[k] = v
        cfg[name] = section
        check = getattr(analysis_module(name), "check", None) if name in cfg["analyses"] else None
        if check is not None:      # optional hook: refuse a bad section before the plan search runs
            check(section)
    for name in cfg["analyses"]:
        analysis_module(name)
    for m in cfg["models"]:
        get_model(m)
    for mode in cfg["modes"]:
        if mode not in ("prefill", "decode"):
            raise SpecError(f"study.modes: {mode!r} is not one of prefill, decode")
    for v in cfg["variants"]:
        hardware.gpu(v)
    from ..workload.calibration import calibration as get_calibration
    from ..workload.precision import dtype_bytes
    dtype_bytes(cfg["dtype"], "study.dtype")
    if cfg["kv_dtype"] is not None:
        dtype_bytes(cfg["kv_dtype"], "study.kv_dtype")
    get_calibration(cfg["calibration"])
    if cfg["objective"] not in OBJECTIVES:
        raise SpecError(f"study.objective: {cfg['objective']!r} is not one of {', '.join(OBJECTIVES)}")
    if int(cfg["top_k"]) < 1:
        raise SpecError(f"study.top_k: {cfg['top_k']!r} is out of range, allowed [1, inf)")
    return cfg



def systems(cfg: dict) -> list[System]:
    b = cfg["baseline"]
    out = [System(b["label"], b["fabric"], b["gpu"], dict(b.get("overrides", {})), "baseline")]
    for variant, (kind, f) in itertools.product(cfg["variants"], cfg["lite_fabrics"].items()):
        short = variant.replace("lite-", "")
        out.append(System(f"Lite {short} / {kind}", f["fabric"], variant, dict(f.get("overrides", {})), kind))
    return out



def _progress(msg: str, enabled: bool) -> None:
    if enabled:
        print(msg, file=sys.stderr, flush=True)



def run_study(config: dict | None = None, *, progress: bool = True,
              build: Callable | None = None) -> StudyResult:
    """Run the study (default :data:`DEFAULT_STUDY`) and return every choice and the sweep.

    Parameters
    ----------
    config : dict, optional
        Overrides of :data:`DEFAULT_STUDY` (unknown keys are refused).
    progress : bool
        Print one progress line per step to stderr.
    build : callable, optional
        Fabric builder ``build(spec, **overrides)`` (default :func:`ocsnet.topology.build`).
    """
    from .. import topology
    from ..topology import metrics

    cfg = study_config(config)
    build = build or topology.build
    t0 = time.perf_counter()
    delay = None if cfg["reconfig_delay_us"] is None else units.to_si("x_us", cfg["reconfig_delay_us"])
    fabrics, summaries = {}, {}
    syss = systems(cfg)
    for s in syss:
        key = s.fabric_key
        if key not in fabrics:
            fabrics[key] = build(s.fabric, gpu=s.gpu, **bandwidth_overrides(s), **s.overrides)
        summaries[s.label] = metrics.summary(fabrics[key])
    choices = {}
    steps = len(cfg["models"]) * len(cfg["modes"]) * len(syss)
    i = 0
    for m, mode in itertools.product(cfg["models"], cfg["modes"]):
        model = get_model(m)
        row = []
        slo = slo_limit(m, mode) if cfg.get("latency_limit", "slo") == "slo" else None
        limit, what = slo if slo else (None, f"{cfg['latency_vs_baseline']}x the baseline")
        for s in syss:
            i += 1
            f = fabrics[s.fabric_key]
            _progress(f"[{i}/{steps}] {m} {mode} on {s.label} ({time.perf_counter() - t0:.1f} s)", progress)
            row.append(choose(cfg, s, f, model, mode, delay, None if s.kind == "baseline" and not slo else limit,
                              limit_what=what))
            if not slo and s.kind == "baseline" and row[-1].best is not None and cfg["latency_vs_baseline"]:
                limit = float(cfg["latency_vs_baseline"]) * row[-1].best.latency_s
        choices[(m, mode)] = row
    sweep, shown = _sweep(cfg, choices, fabrics, progress, t0)
    result = StudyResult(cfg, choices, sweep, time.perf_counter() - t0, summaries, shown)
    for name in cfg["analyses"]:
        _progress(f"analysis {name} ({time.perf_counter() - t0:.1f} s)", progress)
        result.extras[name] = analysis_module(name).analyse(cfg, result, fabrics, progress=progress)
    result.elapsed_s = time.perf_counter() - t0
    return result


def slo_limit(model: str, mode: str) -> tuple[float, str] | None:
    """The step-latency limit of the model's SLO preset: TTFT in prefill, TPOT in decode (seconds, label).

    The first preset of the catalog's ``slos.toml`` whose ``models`` names the
    model (the MLPerf server scenario; see :mod:`ocsnet.serving.slo`); None if
    no preset does.  A step's latency is a lower bound of the request's (no
    queueing), so a plan over the limit cannot serve the SLO at any rate.
    """
    for name, e in hardware.load_table("slos.toml").items():
        if model in e.get("models", ()):
            key = "ttft_ms" if mode == "prefill" else "tpot_ms"
            return units.to_si(key, e[key]), f"SLO {name}: p{e['percentile']:g} {key[:4].upper()} {e[key]:g} ms"
    return None


def bandwidth_overrides(s: System) -> dict:
    """Packet fabrics get the GPU's own network bandwidth on their host links."""
    if s.kind == "packet":
        return {"host_GBps": units.from_si("x_GBps", hardware.gpu(s.gpu).network_Bps)}
    return {}


def _sweep_plan(cfg, model, mode, gpu, tp, pp, n_gpus, sizes) -> ParallelPlan | None:
    """A wide tensor-parallel plan for the sweep, if the model admits it and it fits."""
    for p in sorted({pp, *cfg["pp"]}):
        plan = ParallelPlan(tp=tp, pp=p)
        if tp * p > n_gpus:
            return None
        try:
            plan.validate(model)
            if memory_fit(model, plan, mode, gpu=gpu, micro_batches=p, **sizes, **precision(cfg, memory=True)).fits:
                return plan
        except WorkloadError:
            return None
    return None


def _sweep(cfg, choices, fabrics, progress, t0) -> tuple[list[dict], tuple | None]:
    """Layer time of the OCS system's best plan per all-reduce algorithm and reconfiguration delay."""
    rows = []
    shown = None
    variant = cfg["sweep_variant"]
    for (m, mode), row in choices.items():
        if m not in cfg["sweep_models"]:
            continue
        c = next((c for c in row if c.system.kind == "OCS" and c.system.gpu == variant and c.best), None)
        if c is None:
            continue
        f = fabrics[c.system.fabric_key]
        plans = [dataclasses.replace(c.best.plan, dp=1)]
        sizes = {k: v for k, v in (("batch", c.best.batch), ("seq_len", c.best.seq_len),
                                   ("context", c.best.context)) if v is not None}
        for tp in cfg["sweep_tp"]:
            extra = _sweep_plan(cfg, m, mode, c.system.gpu, tp, c.best.plan.pp, f.n_gpus, sizes)
            if extra is not None and extra not in plans:
                plans.append(extra)
        _progress(f"sweep {m} {mode}: {len(plans)} plans x {len(cfg['sweep_reconfig_delay_us'])} delays x "
                  f"{len(cfg['sweep_algorithms'])} algorithms ({time.perf_counter() - t0:.1f} s)", progress)
        for plan, us, alg in itertools.product(plans, cfg["sweep_reconfig_delay_us"], cfg["sweep_algorithms"]):
            ev = evaluate(m, plan, f, mode, gpu=c.system.gpu, algorithms={"all-reduce": alg},
                          reconfig_delay_s=units.to_si("x_us", us),
                          schedule_time_limit_s=cfg["schedule_time_limit_s"], schedule_bound="design",
                          **sizes, **precision(cfg))
            t = ev.totals()
            if ev.schedule is not None and ev.schedule.n_reconfigurations and ev.reconfig_s > 0 and (
                    shown is None or (mode == "decode" and plan.tp > shown[3])):
                shown = (f"{c.system.label}, {m} {mode}, {plan}, {alg} all-reduce, reconfiguration "
                         f"{units.fmt_time(units.to_si('x_us', us))}", ev.schedule, ev.schedule_layers, plan.tp)
            rows.append({"model": m, "mode": mode, "system": c.system.label, "plan": str(plan),
                         "algorithm": alg, "reconfig_delay_us": us, "layer_us": t["layer_us"],
                         "comm_us": t["comm_max_min_us"], "reconfig_us": t["reconfig_us"],
                         "compute_us": t["compute_us"], "latency_ms": t["latency_ms"],
                         "reconfigurations": ev.schedule.n_reconfigurations if ev.schedule else 0})
    return rows, (shown[:3] if shown else None)
