"""The study's silicon-economics analysis: cost per million tokens, "how small?", tornado, Monte Carlo.

Stage: evaluation (see docs/design.md, "Silicon"); registered in
:data:`ocsnet.evaluation.study.ANALYSES` as ``silicon``.

1. **Cost per million tokens** of every system the study chose (amortized
   capital of GPUs, network and hosts plus energy; :mod:`ocsnet.silicon.tco`).
2. **How small?**  For each model and mode, on the OCS and CPO fabrics, a
   Lite-GPU is designed by the silicon model at each fraction of the parent
   (:func:`ocsnet.hardware.lite_gpu`: shoreline bandwidth, nominal clock, cost
   with yield), the cluster keeps the study's silicon, and the best plan by
   cost per million tokens is found with the alpha-beta screen (ideal circuits,
   no congestion), under the study's latency limit, among the plans of the
   same silicon per replica as the study's choice for the anchor variant on
   that fabric (and half and twice it) at its batch and all-reduce algorithm;
   the H100 baseline's chosen plan goes through the same screen.  Fast: a few
   hundred screened evaluations.
3. **Sensitivity** (:mod:`.sensitivity`): a tornado of one Lite system's cost
   per million tokens against the H100's over each economic parameter's
   sourced range, and a seeded Monte Carlo over all of them giving the
   probability that each Lite system beats the H100.
"""

from __future__ import annotations

import math
from pathlib import Path

from .. import hardware, units
from ..errors import OcsnetError, SpecError
from ..silicon import params as silicon_params
from ..silicon.table import fraction_rows
from ..workload.models import model as get_model
from .per_layer import evaluate
from .search import feasible_plans, sizes_for
from .sensitivity import cost_inputs, monte_carlo, tornado, usd_per_mtok

__all__ = ["DEFAULTS", "check", "analyse", "report"]

DEFAULTS = {
    "fractions": ["1", "1/2", "1/4", "1/8", "1/16"],
    "fabrics": ["OCS", "CPO torus"],
    "io": "cpo",
    "network": "shoreline",
    "clock": "nominal",
    "parameters": {},
    "anchor_variant": "lite-netboost",
    "tornado_system": "Lite netboost / OCS",
    "tornado_mode": "decode",
    "monte_carlo_samples": 4000,
    "seed": 0,
}

#: Generator -> (override of the per-GPU port bandwidth, ports per GPU from the spec's params).
_PORT_OVERRIDE = {"ocs_fabric": "port_GBps", "torus": "link_GBps"}


def check(section: dict) -> None:
    """Refuse a bad ``silicon`` section of the study config by name (called before the plan search)."""
    from ..silicon import IO_KINDS, NETWORKS, parse_fraction

    fr = section["fractions"]
    if not isinstance(fr, (list, tuple)) or not fr:
        raise SpecError(f"study.silicon.fractions: {fr!r} is not a list of fractions in (0, 1]")
    for f in fr:
        try:
            parse_fraction(f)
        except SpecError:
            raise SpecError(f"study.silicon.fractions: {f!r} is not a fraction in (0, 1] (e.g. 0.25 or '1/4')") from None
    for key, allowed in (("io", IO_KINDS), ("network", NETWORKS)):
        if section[key] not in allowed:
            raise SpecError(f"study.silicon.{key}: {section[key]!r} is not one of {', '.join(allowed)}")
    c = section["clock"]
    if c not in ("nominal", "max") and (isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0):
        raise SpecError(f"study.silicon.clock: {c!r} is not 'nominal', 'max' or a positive clock factor")
    if not isinstance(section["parameters"], dict):
        raise SpecError("study.silicon.parameters: expected a table of silicon parameters (section.key = value)")
    try:
        silicon_params(section["parameters"])
    except SpecError as e:
        raise SpecError(f"study.silicon.parameters: {e}") from None
    n = section["monte_carlo_samples"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
        raise SpecError(f"study.silicon.monte_carlo_samples: {n!r} is out of range, allowed [1, 1000000]")
    if isinstance(section["seed"], bool) or not isinstance(section["seed"], int):
        raise SpecError(f"study.silicon.seed: {section['seed']!r} is not an integer")
    if not isinstance(section["fabrics"], (list, tuple)):
        raise SpecError(f"study.silicon.fabrics: {section['fabrics']!r} is not a list of lite_fabrics kinds")


def _torus_dims(n: int) -> list[int]:
    """Three near-equal power-of-two sides (each >= 4 when possible) whose product is n."""
    k = int(round(math.log2(n)))
    if 2 ** k != n:
        raise SpecError(f"silicon.fractions: a torus of {n} GPUs is not a power of two")
    sides = [k // 3 + (1 if i < k % 3 else 0) for i in range(3)]
    return [2 ** s for s in sides if s > 0] or [2]


def _fraction_fabric(kind: str, spec_name: str, gpu, n_gpus: int, base_gpu: str):
    """The kind's fabric with ``n_gpus`` GPUs whose ports carry ``gpu``'s network bandwidth."""
    from ..topology import build, load_spec

    spec = load_spec(spec_name)
    gen = spec["generator"]
    if gen not in _PORT_OVERRIDE:
        raise SpecError(f"silicon.fabrics: {kind!r} ({gen}) is not an OCS or torus fabric")
    net = units.from_si("x_GBps", gpu.network_Bps)
    if gen == "ocs_fabric":
        ports = int(spec["params"].get("ports_per_gpu", 8))
        return build(spec_name, gpu=base_gpu, n_gpus=n_gpus, port_GBps=net / ports)
    dims = _torus_dims(n_gpus)
    return build(spec_name, gpu=base_gpu, dims=dims, link_GBps=net / (2 * len(dims)))


def _candidates(cfg, model, mode, gpu, anchor, n_gpus: int) -> list:
    """Plans of the same silicon per replica as the anchor choice (and half and twice it), at its batch
    and all-reduce algorithm, that the model admits and that fit: the study's choice, rescaled."""
    h100e = anchor.plan.tp * anchor.plan.pp * anchor.gpu.h100_equivalents
    target = h100e / gpu.h100_equivalents
    sizes = [s for s in sizes_for(cfg, model, mode) if s["batch"] == anchor.batch] or sizes_for(cfg, model, mode)[:1]
    sub = dict(cfg, max_gpus_per_replica=min(int(cfg["max_gpus_per_replica"]) * 16, n_gpus))
    plans, _ = feasible_plans(dict(sub, **{mode: dict(cfg[mode], batch=[s["batch"] for s in sizes])}), model, mode, gpu)
    keep = [(pl, sz) for pl, sz in plans if target / 2 - 1e-9 <= pl.tp * pl.pp <= 2 * target + 1e-9]
    if not keep and plans:   # nothing of that size fits: the smallest plans that do
        least = min(pl.tp * pl.pp for pl, _ in plans)
        keep = [(pl, sz) for pl, sz in plans if pl.tp * pl.pp == least]
    return [(pl, sz, anchor.algorithms.get("all-reduce", cfg["algorithms"][0])) for pl, sz in keep]


def _screen(model, mode, fabric, gpu, parent, candidates, limit_s, p) -> tuple[dict | None, int]:
    """Best candidate by cost per million tokens (alpha-beta, ideal circuits) within the latency limit."""
    best, n = None, 0
    for plan, sizes, alg in candidates:
        if plan.tp * plan.pp > fabric.n_gpus:
            continue
        try:
            ev = evaluate(model, plan, fabric, mode, gpu=gpu, algorithms={"all-reduce": alg},
                          fidelities=("alpha-beta",), fidelity="alpha-beta", schedule=False, **sizes)
        except OcsnetError:
            continue
        n += 1
        if limit_s is not None and ev.latency_s > limit_s:
            continue
        c = float(usd_per_mtok(cost_inputs(gpu.name, ev, parent), p))
        if best is None or c < best["usd_per_mtok"] - 1e-12:
            best = {"usd_per_mtok": c, "plan": str(plan), "batch": sizes["batch"], "algorithm": alg,
                    "latency_ms": units.from_si("x_ms", ev.latency_s),
                    "tokens_per_s_per_h100e": ev.totals()["tokens_per_s_per_h100e"]}
    return best, n


def _sizes(ev) -> dict:
    return {k: v for k, v in (("batch", ev.batch), ("seq_len", ev.seq_len), ("context", ev.context)) if v is not None}


def analyse(cfg: dict, result, fabrics: dict, *, progress: bool = False) -> dict:
    """Run the analysis on a finished study (see the module docstring); JSON-able result."""
    sec = cfg["silicon"]
    p = silicon_params(sec.get("parameters") or {})
    parent = hardware.gpu(cfg["baseline"]["gpu"])
    out: dict = {"fractions": fraction_rows(parent, sec["fractions"], io=sec["io"], params=p),
                 "systems": [], "how_small": [], "tornado": None, "monte_carlo": [], "screened": 0,
                 "parent": parent.name}
    # 1. cost per million tokens of the study's choices
    inputs = {}
    for (m, mode), row in result.choices.items():
        for c in row:
            if c.best is None:
                continue
            ci = cost_inputs(c.system.label, c.best, parent)
            inputs[(m, mode, c.system.label)] = (ci, c.system.kind)
            gpu_part = c.best.gpu.relative_cost
            out["systems"].append({"model": m, "mode": mode, "system": c.system.label, "gpu": c.system.gpu,
                                   "usd_per_mtok": float(usd_per_mtok(ci, p)),
                                   "gpu_relative_cost": float(gpu_part),
                                   "network_vs_gpu_cost": float(ci.network_cost_per_gpu / gpu_part)})
    base_usd = {(r["model"], r["mode"]): r["usd_per_mtok"] for r in out["systems"]
                if inputs[(r["model"], r["mode"], r["system"])][1] == "baseline"}
    for r in out["systems"]:
        b = base_usd.get((r["model"], r["mode"]))
        r["vs_h100"] = r["usd_per_mtok"] / b if b else None
    # 2. how small?
    n_h100e = None
    for s in cfg["lite_fabrics"].values():
        if "n_gpus" in s.get("overrides", {}):
            n_h100e = s["overrides"]["n_gpus"] * hardware.gpu(cfg["variants"][0]).h100_equivalents
    n_h100e = n_h100e or 256.0
    designs = {}
    for fr in sec["fractions"]:
        from ..silicon import parse_fraction
        f = parse_fraction(fr)
        designs[fr] = hardware.lite_gpu(parent, fraction=f, io=sec["io"], network=sec["network"],
                                        clock=sec["clock"], name=f"lite-{fr.replace('/', 'over')}", params=p)
    built: dict = {}
    for (m, mode), row in result.choices.items():
        model = get_model(m)
        base = next((c for c in row if c.system.kind == "baseline" and c.best is not None), None)
        if base is None:
            continue
        limit = float(cfg["latency_vs_baseline"]) * base.best.latency_s if cfg["latency_vs_baseline"] else None
        bfab = fabrics[base.system.fabric_key]
        h100, n = _screen(model, mode, bfab, parent, parent,
                          [(base.best.plan, _sizes(base.best), base.best.algorithms.get("all-reduce"))], None, p)
        out["screened"] += n
        for kind in [k for k in sec["fabrics"] if k in cfg["lite_fabrics"]]:   # kinds the study has
            anchor = next((c.best for c in row if c.system.kind == kind and c.best is not None
                           and c.system.gpu == sec["anchor_variant"]), None)
            anchor = anchor or next((c.best for c in row if c.system.kind == kind and c.best is not None), base.best)
            spec = cfg["lite_fabrics"][kind]["fabric"]
            cells = []
            for fr, g in designs.items():
                n_gpus = int(round(n_h100e / g.h100_equivalents))
                if (kind, fr) not in built:
                    try:
                        built[(kind, fr)] = _fraction_fabric(kind, spec, g, n_gpus, cfg["variants"][0])
                    except OcsnetError as e:     # e.g. a torus of a size that is not a power of two
                        built[(kind, fr)] = str(e)
                fab = built[(kind, fr)]
                if isinstance(fab, str):
                    cells.append({"fraction": fr, "n_gpus": n_gpus, "usd_per_mtok": None, "note": fab})
                    continue
                cands = _candidates(cfg, model, mode, g, anchor, n_gpus)
                best, n = _screen(model, mode, fab, g, parent, cands, limit, p)
                out["screened"] += n
                cells.append({"fraction": fr, "n_gpus": n_gpus, **(best or {"usd_per_mtok": None})})
            ok = [c for c in cells if c["usd_per_mtok"] is not None]
            bestf = min(ok, key=lambda c: c["usd_per_mtok"]) if ok else None
            h = h100["usd_per_mtok"] if h100 else None
            out["how_small"].append({"model": m, "mode": mode, "fabric": kind, "cells": cells,
                                     "best_fraction": bestf["fraction"] if bestf else None,
                                     "best_usd_per_mtok": bestf["usd_per_mtok"] if bestf else None,
                                     "h100_usd_per_mtok": h,
                                     "best_vs_h100": (bestf["usd_per_mtok"] / h) if bestf and h else None})
    # 3. sensitivity
    mode_t = sec["tornado_mode"] if sec["tornado_mode"] in cfg["modes"] else cfg["modes"][0]
    key = (cfg["models"][0], mode_t, sec["tornado_system"])
    if key not in inputs:   # the configured system is not in this study: its first Lite system
        key = next((k for k, v in inputs.items() if k[:2] == key[:2] and v[1] != "baseline"), key)
    base_key = next((k for k, v in inputs.items() if k[:2] == key[:2] and v[1] == "baseline"), None)
    if key in inputs and base_key is not None:
        out["tornado"] = {"model": key[0], "mode": key[1], "system": key[2],
                          "rows": tornado(inputs[key][0], inputs[base_key][0], p)}
    for (m, mode), row in result.choices.items():
        bk = next((k for k, v in inputs.items() if k[:2] == (m, mode) and v[1] == "baseline"), None)
        if bk is None:
            continue
        lites = [v[0] for k, v in inputs.items() if k[:2] == (m, mode) and v[1] != "baseline"]
        for r in monte_carlo(lites, inputs[bk][0], p, samples=int(sec["monte_carlo_samples"]), seed=int(sec["seed"])):
            out["monte_carlo"].append({"model": m, "mode": mode, **r})
    out["assumptions"] = sorted(k for k in p.values if p.is_assumption(k))
    out["sources"] = {k: p.sources[k] for k in sorted(p.sources)}
    out["n_h100e"] = n_h100e
    return out


def _fmt(v, spec=".3g"):
    return "-" if v is None else format(v, spec)


def report(data: dict, outdir: Path, *, figures: bool = True) -> list[str]:
    """The report section "How small should a GPU be?"; writes CSV/JSON and the figures."""
    import csv
    import json

    out = Path(outdir)
    (out / "silicon.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    with open(out / "how_small.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "mode", "fabric", "fraction", "n_gpus", "usd_per_mtok", "plan", "batch", "algorithm",
                    "latency_ms"])
        for r in data["how_small"]:
            for c in r["cells"]:
                w.writerow([r["model"], r["mode"], r["fabric"], c["fraction"], c["n_gpus"], c["usd_per_mtok"],
                            c.get("plan"), c.get("batch"), c.get("algorithm"), c.get("latency_ms")])
    figs = []
    if figures:
        import matplotlib.pyplot as plt

        from .. import plot
        ax = plot.silicon_fractions(data["fractions"], title=f"{data['parent']} cut into smaller dies")
        ax.figure.savefig(out / "silicon.png", dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        figs.append(("Cost per H100-equivalent, yield and clock headroom against die fraction", "silicon.png"))
        if data["tornado"]:
            t = data["tornado"]
            ax = plot.tornado(t["rows"], title=f"{t['system']}, {t['model']} {t['mode']}: cost per million "
                                               "tokens over the H100's")
            ax.figure.savefig(out / "tornado.png", dpi=110, bbox_inches="tight")
            plt.close(ax.figure)
            figs.append(("Sensitivity of cost per million tokens (tornado)", "tornado.png"))
    fr = data["fractions"]
    md = ["## How small should a GPU be? (silicon economics)", ""]
    md += ["The silicon model (`ocsnet silicon`) derives a Lite-GPU from the parent die: dies per wafer "
           "(exact count), negative-binomial yield, the cost of a good die with known-good-die test, HBM, "
           "2.5-D packaging with assembly yield, shoreline bandwidth and the highest clock under the cooling "
           "limit. Every parameter is in `ocsnet/catalog/silicon.toml` with its source.", ""]
    md += ["| fraction | die mm² | dies/wafer | yield | GPU $ | cost per H100e | power W | bw/compute vs parent | max clock |",
           "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['fraction']} | {r['die_mm2']:.0f} | {r['dies_per_wafer']:.0f} | {r['yield']:.3f} | "
           f"{r['gpu_usd']:.0f} | {r['cost_per_h100e']:.3f} | {r['power_W']:.0f} | "
           f"{r['bw_to_compute_vs_parent']:.2f} | {r['max_clock']:.3f} |" for r in fr]
    md += [""]
    md += ["### Cost per million tokens of the study's systems", "",
           "Capital (GPUs at the parent's margin, network, hosts) amortized over the catalog's life, plus "
           "energy at the PUE and electricity price; per replica at the chosen plan.", "",
           "| model | mode | system | $/Mtok | vs H100 | GPU cost (H100 = 1) | network cost per GPU cost |",
           "|---|---|---|---|---|---|---|"]
    md += [f"| {r['model']} | {r['mode']} | {r['system']} | {r['usd_per_mtok']:.4g} | {_fmt(r['vs_h100'])} | "
           f"{r['gpu_relative_cost']:.3f} | {r['network_vs_gpu_cost']:.2f} |" for r in data["systems"]]
    md += ["", "The network's share (switches, OCS, optics at the catalog's prices) weighs far more per unit of "
           "silicon on a Lite-GPU fabric than on the H100 DGX: each small GPU carries its own optical ports. "
           "That, not the die, decides most of the cost per million tokens."]
    md += ["", "### The best fraction by cost per million tokens", "",
           f"Each fraction keeps the study's silicon ({data['n_h100e']:g} H100-equivalents); plans from the "
           "alpha-beta screen (ideal circuits, no congestion) within the study's latency limit, among the plans "
           "with the silicon per replica of the study's choice for the anchor variant on that fabric (half to "
           f"twice it), at its batch and all-reduce algorithm; the H100 DGX's chosen plan through the same screen. "
           f"{data['screened']} evaluations.", ""]
    fracs = [c["fraction"] for c in data["how_small"][0]["cells"]] if data["how_small"] else []
    md += ["| model | mode | fabric | " + " | ".join(f"$/Mtok at {f}" for f in fracs) + " | H100 | best | best vs H100 |",
           "|" + "---|" * (len(fracs) + 6)]
    for r in data["how_small"]:
        md += [f"| {r['model']} | {r['mode']} | {r['fabric']} | "
               + " | ".join(_fmt(c["usd_per_mtok"], ".4g") for c in r["cells"])
               + f" | {_fmt(r['h100_usd_per_mtok'], '.4g')} | {r['best_fraction'] or '-'} | {_fmt(r['best_vs_h100'])} |"]
    for title, path in figs:
        md += ["", f"![{title}]({path})"]
    if data["tornado"]:
        t = data["tornado"]
        md += ["", f"Tornado ({t['system']}, {t['model']} {t['mode']}): ratio of its cost per million tokens to "
               f"the H100's at the default {t['rows'][0]['ratio_default']:.3f}; largest swings: "
               + "; ".join(f"{r['parameter']} {r['ratio_low']:.3f}..{r['ratio_high']:.3f}" for r in t["rows"][:4]) + "."]
    if data["monte_carlo"]:
        n = data["monte_carlo"][0]["samples"]
        md += ["", "### Probability that a Lite-GPU system beats the H100 on cost per million tokens", "",
               f"Monte Carlo over every ranged parameter at once ({n} seeded samples, triangular on low, "
               "default, high); throughput fixed at the study's chosen plans.", "",
               "| model | mode | system | P(beats H100) | ratio p05 | p50 | p95 |", "|---|---|---|---|---|---|---|"]
        md += [f"| {r['model']} | {r['mode']} | {r['system']} | {r['p_beats_baseline']:.3f} | {r['ratio_p05']:.3f} | "
               f"{r['ratio_p50']:.3f} | {r['ratio_p95']:.3f} |" for r in data["monte_carlo"]]
    quarter = next((r for r in fr if r["fraction"] in ("1/4", "0.25")), None)
    md += ["", "### Assumptions and the literature", ""]
    md += ["- Assumptions (not published numbers; see the catalog's sources): " + ", ".join(data["assumptions"]) + "."]
    md += ["- A Lite-GPU's price keeps the parent's margin (its relative cost is the ratio of the modelled build "
           "costs); optics are priced by the fabric's link ports, not in the GPU."]
    if quarter is not None:
        md += [f"- Canakci et al. (HotOS 2025) expect much better yield and much lower manufacturing cost. The "
               f"model agrees on yield ({fr[0]['yield']:.2f} for the full die, {quarter['yield']:.2f} at 1/4) but "
               f"finds the cost of a quarter-H100's silicon only {quarter['cost_per_h100e']:.2f}x the H100's: "
               "HBM and 2.5-D packaging, which do not shrink with the die, dominate the bill (as Epoch AI's "
               "estimates show), and each package adds its own assembly cost. The 2x bandwidth-to-compute of a "
               f"quarter die is derived from its shoreline ({quarter['bw_to_compute_vs_parent']:.2f}x), and its "
               f"overclocking headroom under the cooling limit is {quarter['max_clock']:.2f}x, below the paper's "
               "illustrative 1.3x."]
    return md
