"""The study's report: text tables, CSV and JSON files, figures and ``report.md``.

Stage: evaluation (see docs/design.md).  It formats a finished
:class:`~.records.StudyResult`; it never re-runs a model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .. import units
from ..jsonable import jsonable
from ..tables import cell, format_table, write_csv
from .per_layer import Evaluation
from .records import StudyResult, SweepSchedule
from .study import analysis_module

__all__ = ["SUMMARY_COLUMNS", "summary_table", "write_report", "MATCH_TOLERANCE"]


SUMMARY_COLUMNS = [
    ("model", "model"), ("mode", "mode"), ("system", "system"), ("plan", "plan"), ("batch", "batch"),
    ("algorithm", "all-reduce"),
    ("latency_ms", "latency_ms"), ("latency_vs_h100", "latency_vs_H100"),
    ("tokens_per_s_per_h100e", "tok/s/H100e"), ("throughput_vs_h100", "thru_vs_H100"),
    ("tokens_per_s_per_kW", "tok/s/kW"), ("tokens_per_s_per_cost", "tok/s/cost"),
    ("usd_per_million_tokens", "$/Mtok"),
    ("compute_us", "compute_us"), ("comm_us", "comm_us"), ("reconfig_us", "reconfig_us"),
    ("memory_GB", "mem_GB"),
]


def summary_table(result: StudyResult) -> str:
    rows = result.summary_rows()
    return format_table([h for _, h in SUMMARY_COLUMNS], [[r.get(k) for k, _ in SUMMARY_COLUMNS] for r in rows])


def _markdown_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _json(path: Path, obj) -> None:
    path.write_text(json.dumps(jsonable(obj), indent=1, sort_keys=True) + "\n")


def write_report(result: StudyResult, outdir, *, figures: bool = True) -> Path:
    """Write the study's folder: report.md, CSV and JSON tables, the exact config, PNG figures.

    Returns the path of ``report.md``.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rows = result.summary_rows()
    keys = sorted({k for r in rows for k in r}, key=lambda k: ([c for c, _ in SUMMARY_COLUMNS] + [k]).index(k))
    write_csv(out / "summary.csv", keys, [[r.get(k) for k in keys] for r in rows])
    _json(out / "summary.json", rows)
    _json(out / "config.json", result.config)
    layer_rows = []
    for (m, mode), choices in result.choices.items():
        for c in choices:
            if c.best is None:
                continue
            for r in c.best.table():
                layer_rows.append([m, mode, c.system.label, str(c.best.plan)] + r)
    layer_header = ["model", "mode", "system", "plan"] + list(Evaluation.HEADER)
    write_csv(out / "layers.csv", layer_header, layer_rows)
    _json(out / "layers.json", [dict(zip(layer_header, r)) for r in layer_rows])
    if result.sweep:
        sk = list(result.sweep[0])
        write_csv(out / "reconfig_sweep.csv", sk, [[r[k] for k in sk] for r in result.sweep])
    skipped = {f"{m} {mode} / {c.system.label}": c.skipped for (m, mode), cs in result.choices.items() for c in cs}
    _json(out / "skipped.json", skipped)
    _json(out / "fabrics.json", result.fabrics)
    figs = _figures(result, out) if figures else {}
    sections = [analysis_module(name).report(result.extras[name], out, figures=figures)
                for name in result.config.get("analyses", []) if name in result.extras]
    (out / "report.md").write_text(_markdown(result, rows, figs, sections))
    return out / "report.md"


def _figures(result: StudyResult, out: Path) -> dict:
    from .. import plot
    import matplotlib.pyplot as plt

    figs = {}
    rows = result.summary_rows()
    fig = plot.normalized_comparison(rows)
    fig.savefig(out / "normalized.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    figs["normalized"] = "normalized.png"
    fig = plot.layer_breakdown(rows)
    fig.savefig(out / "layers.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    figs["layers"] = "layers.png"
    if result.sweep:
        fig = plot.reconfig_sweep(result.sweep)
        fig.savefig(out / "reconfig_sweep.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        figs["sweep"] = "reconfig_sweep.png"
    shown = result.sweep_schedule
    if shown is None:
        c = _first(result, lambda c: c.best is not None and c.best.schedule is not None)
        if c is not None:
            shown = SweepSchedule(f"{c.system.label}, {c.best.model} {c.best.mode}, {c.best.plan}",
                                  c.best.schedule, c.best.schedule_layers)
    if shown is not None:
        title, sched, layers = shown.title, shown.schedule, shown.layers
        n = min(len(sched.phases), 2 * max(1, len(sched.phases) // max(layers, 1)))
        fig, ax = plt.subplots(figsize=(11, 3.2))
        head = copy.copy(sched)
        head.phases = sched.phases[:n]
        plot.schedule_gantt(head, ax=ax)
        ax.set_title(f"OCS circuit schedule, first two layers: {title}", fontsize=9)
        fig.savefig(out / "ocs_schedule.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        figs["schedule"] = "ocs_schedule.png"
    fig = plot.link_utilization(result.link_utilization)
    if fig is not None:
        fig.savefig(out / "link_utilization.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        figs["links"] = "link_utilization.png"
    return figs


def _first(result: StudyResult, pred):
    for choices in result.choices.values():
        for c in choices:
            if pred(c):
                return c
    return None


def _markdown(result: StudyResult, rows: list[dict], figs: dict, sections: list[list[str]] = ()) -> str:
    cfg = result.config
    md = ["# Lite-GPU versus H100: ocsnet study report", ""]
    md += [f"Models: {', '.join(cfg['models'])}; modes: {', '.join(cfg['modes'])}. "
           f"Prefill: batch {cfg['prefill']['batch']}, prompt {cfg['prefill']['seq_len']} tokens. "
           f"Decode: batch {cfg['decode']['batch']} per micro-batch (searched), context {cfg['decode']['context']} tokens. "
           f"Best plan per system from tp in {cfg['tp']}, pp in {cfg['pp']} and the all-reduce algorithm in "
           f"{cfg['algorithms']}, by {cfg['objective']}"
           + (", among the plans whose step latency meets the model's SLO preset (TTFT in prefill, TPOT in decode; "
              "MLPerf server scenario, catalog slos.toml)" + (f"; models without a preset: at most "
              f"{cfg['latency_vs_baseline']}x the H100 baseline's latency" if cfg["latency_vs_baseline"] else "")
              if cfg.get("latency_limit", "slo") == "slo" else
              f", among the plans whose latency is at most {cfg['latency_vs_baseline']}x the H100 baseline's"
              if cfg["latency_vs_baseline"] else "") + ". Lengths are capped at each model's maximum "
           f"context (GPT-3: 2,048 tokens). Run time {result.elapsed_s:.1f} s.", ""]
    md += ["Throughput is tokens/s per H100-equivalent of silicon (a Lite-GPU is a quarter), in pipeline "
           "steady state; latency is TTFT (prefill) or TPOT (decode). Both are normalized to the H100 DGX "
           "baseline of the same model and mode (Canakci et al., HotOS 2025, compare the same way). "
           "Communication is the congestion-aware (max-min) time; on OCS fabrics it comes from the solved "
           "circuit schedule, and exposed reconfiguration is listed separately.", ""]
    md += ["## Summary", ""]
    md += [_markdown_table([h for _, h in SUMMARY_COLUMNS], [[r.get(k) for k, _ in SUMMARY_COLUMNS] for r in rows]), ""]
    for key, title in (("normalized", "Normalized throughput and latency"),
                       ("layers", "Per-layer time: compute, communication, exposed reconfiguration"),
                       ("sweep", "All-reduce algorithm against OCS reconfiguration delay"),
                       ("schedule", "OCS schedule timeline"), ("links", "Link utilization")):
        if key in figs:
            md += [f"## {title}", "", f"![{title}]({figs[key]})", ""]
    if result.sweep:
        md += ["## Where each all-reduce algorithm wins", ""]
        md += _sweep_text(result.sweep)
    md += _literature(rows)
    for lines in sections:          # the analyses' sections (study.ANALYSES), in their order
        md += list(lines) + [""]
    md += ["## Checks that failed", ""]
    any_fail = False
    for (m, mode), choices in result.choices.items():
        for c in choices:
            if c.best is not None and c.best.failures:
                any_fail = True
                md += [f"- {m} {mode} / {c.system.label} ({c.best.plan}): " + "; ".join(c.best.failures)]
    if not any_fail:
        md += ["None."]
    md += ["", "## Plans skipped", "",
           "Plans the model does not admit or that do not fit in memory (counts per system, one example):", ""]
    for (m, mode), choices in result.choices.items():
        counts = ", ".join(f"{c.system.label} {len(c.skipped)}" for c in choices if c.skipped)
        example = next((c.skipped[-1] for c in choices if c.skipped), None)
        if counts:
            md += [f"- {m} {mode}: {counts}. E.g. {example}"]
    md += ["", "Full lists: `skipped.json`. Tables: `summary.csv`, `layers.csv`, `reconfig_sweep.csv` "
           "(and `.json`); fabrics: `fabrics.json`; the exact configuration: `config.json`.", ""]
    md += ["## Fabrics", ""]
    fk = ["n_gpus", "n_packet_switches", "n_ocs", "n_links", "diameter_hops", "bisection_per_gpu_GBps",
          "power_kW", "relative_cost"]
    md += [_markdown_table(["system"] + fk, [[s] + [f.get(k) for k in fk] for s, f in result.fabrics.items()]), ""]
    md += ["## Assumptions", "", _compute_assumption(result),
           "- Tensor-parallel collectives are on the critical path (no overlap); pipeline sends are timed "
           "congestion-free; every data-parallel replica the fabric holds runs at once for the max-min model.",
           "- OCS: one replica's tensor group is scheduled (replicas use disjoint GPUs); one port per GPU is "
           "reserved for pipeline sends when pp > 1; the reconfiguration delay is the OCS's (or the sweep's).",
           "- Power counts GPUs at TDP, switches and OCS at catalog power and every link at full load; cost is "
           "relative to one H100. Hardware numbers and their sources: `ocsnet/catalog/*.toml`.", ""]
    return "\n".join(md)


def _compute_assumption(result) -> str:
    """The compute model's line: precision, calibration and, when the fidelity analysis ran, its measured error."""
    cfg = result.config
    dt, kv = cfg.get("dtype", "bf16"), cfg.get("kv_dtype") or cfg.get("dtype", "bf16")
    cal = cfg.get("calibration", "roofline")
    what = ("roofline compute per op with the catalog's constant efficiency factors" if cal == "roofline" else
            f"compute per op under the calibration `{cal}` (kernel overheads, GEMM/attention efficiency by shape, "
            "NCCL protocol latencies; `ocsnet/catalog/calibration.toml`)")
    line = f"- Weights and activations in {dt}, KV cache in {kv}; {what}; every layer identical."
    fid = result.extras.get("fidelity") if getattr(result, "extras", None) else None
    if fid:
        s = fid["summary"]
        line += (f" Measured error of this per-layer model (calibration `{fid['calibration']}`, {s['cases']} "
                 f"published measurements, `ocsnet validate --measured`): median {100 * s['median_abs_error']:.1f}%, "
                 f"largest {100 * s['max_abs_error']:.1f}%.")
    return line


#: "Matching" a published qualitative result: within this fraction of the H100.
MATCH_TOLERANCE = 0.05


def _literature(rows: list[dict]) -> list[str]:
    """Where the study agrees or disagrees with Canakci et al. (HotOS 2025): a Lite-GPU cluster with
    network-boosted bandwidth matches or beats the H100 cluster per unit of silicon."""
    out = ["## Against the literature", "",
           "Canakci et al. (HotOS 2025) argue that Lite-GPUs with boosted network bandwidth match or beat "
           f"an H100 cluster of the same silicon. Here \"match\" means within {MATCH_TOLERANCE:.0%} of the "
           "H100's tokens/s per H100-equivalent; the best network-boosted system is compared.", ""]
    cases = list(dict.fromkeys((r["model"], r["mode"]) for r in rows))
    for m, mode in cases:
        boosted = [r for r in rows if r["model"] == m and r["mode"] == mode and "netboost" in r["gpu"]
                   and r.get("throughput_vs_h100") is not None]
        if not boosted:
            continue
        best = max(boosted, key=lambda r: r["throughput_vs_h100"])
        verdict = "agrees" if best["throughput_vs_h100"] >= 1 - MATCH_TOLERANCE else "**disagrees**"
        out.append(f"- {m} {mode}: {best['system']} reaches {best['throughput_vs_h100']:.3f} of the H100 "
                   f"({best['plan']}, {best['algorithm']}): {verdict}.")
    out += ["", "A disagreement is reported, not tuned away. In these models it comes from memory: a "
            "Lite-GPU's 20 GB holds a quarter of an H100's weights and KV cache, so a Lite replica needs "
            "four times the tensor or pipeline width of an H100 one; wider tensor parallelism adds "
            "all-reduces an H100 avoids (the H100 prefill baseline runs with tp=1), and a model without "
            "grouped-query attention (GPT-3) has a KV cache that forces tp=32. Compute per unit of "
            "silicon is the same by construction.", ""]
    return out


def _sweep_text(sweep: list[dict]) -> list[str]:
    lines = []
    groups = {}
    for r in sweep:
        groups.setdefault((r["model"], r["mode"], r["system"], r["plan"]), []).append(r)
    for (m, mode, sysl, plan), rs in groups.items():
        delays = sorted({r["reconfig_delay_us"] for r in rs})
        wins = []
        for d in delays:
            best = min((r for r in rs if r["reconfig_delay_us"] == d), key=lambda r: r["layer_us"])
            wins.append(f"{units.fmt_time(units.to_si('x_us', d))}: {best['algorithm']} "
                        f"({best['layer_us']:.1f} us/layer)")
        lines += [f"- {m} {mode} on {sysl} ({plan}): " + "; ".join(wins)]
    return lines + [""]
