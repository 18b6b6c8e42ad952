"""The study's serving section (``ocsnet compare``): goodput under SLO presets, split and unsplit.

Stage: serving (see docs/design.md); registered in
:data:`ocsnet.evaluation.study.ANALYSES` as ``"serving"``.  For each served
model and each system of the study:

1. the plans come from the plan search (the best prefill plan and the best
   decode plan of the system); each is tabulated once (:func:`.tabulate`);
2. **unsplit**: ``replicas`` replicas of each plan serve the synthetic trace
   with continuous batching; the plan with the higher goodput per
   H100-equivalent under the model's SLO preset is the system's choice (plan
   choice under an explicit SLO), and its latency percentiles are swept
   against the rate (the knee);
3. **sizing at one load**: the load is the H100 baseline's unsplit goodput
   per replica times ``load_replicas``; each system is sized for it unsplit (fewest replicas)
   and split (fewest prefill replicas of the prefill plan meeting TTFT, then
   fewest decode replicas of the decode plan meeting TPOT, with the KV transfer
   timed on the fabric), and reports goodput per H100-equivalent, per kW and
   per unit of cost;
4. cross-system splits (prefill on one system, decode on another) likewise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import units
from ..errors import OcsnetError, SpecError

__all__ = ["DEFAULTS", "analyse", "report"]

DEFAULTS = {
    "models": ["llama3-70b"],
    "slo": "auto",                       # the model's preset in the catalog, or a preset name
    "workload": "azure-conv-2023",
    "requests": 800,
    "seed": 0,
    "systems": ["H100 DGX", "Lite netboost / packet", "Lite netboost / OCS", "Lite netboost / CPO torus"],
    "replicas": 2,
    "load_replicas": 8,                  # sizing load: this many H100 baseline replicas' goodput
    "chunk": 0,
    "max_batch": 256,
    "max_tokens": 8192,
    "knee_fractions": [0.25, 0.5, 0.75, 1.0, 1.25],
    "split": True,
    "cross": [["H100 DGX", "Lite netboost / OCS"]],
}

#: Published claims the section compares with.
SPLITWISE = ("Splitwise (Patel et al., ISCA 2024): 1.4x throughput at 20% lower cost, or 2.35x throughput "
             "at the same power and cost, against unsplit H100/A100 clusters")
DISTSERVE = "DistServe (Zhong et al., OSDI 2024): up to 7.4x more requests served within SLO than vLLM"


def _progress(msg, on):
    if on:
        import sys
        print(msg, file=sys.stderr, flush=True)


def _slos_for(cfg_slo, model):
    from .slo import presets_for_model, slo
    if cfg_slo == "auto":
        s = presets_for_model(model)
        if not s:
            raise SpecError(f"study.serving.slo: no SLO preset names model {model!r}; give a preset name, a list "
                            "of them, or a table of ttft_ms, tpot_ms, percentile")
        return s
    return [slo(x) for x in (cfg_slo if isinstance(cfg_slo, list) else [cfg_slo])]


def _per(value, dep) -> dict:
    return {"h100e": dep.h100e, "kW": dep.watts / 1e3, "cost": dep.cost,
            "per_h100e": value / dep.h100e, "per_kW": value / (dep.watts / 1e3), "per_cost": value / dep.cost}


def analyse(cfg: dict, result, fabrics: dict, *, progress: bool = False) -> dict:
    """Run the serving section; JSON-able data for :func:`report`."""
    from .iteration import tabulate
    from .requests import synthetic
    from .simulate import Deployment
    from ..workload.models import model as get_model

    sc = cfg["serving"]
    t0 = time.perf_counter()
    out = {"config": {k: sc[k] for k in sorted(sc)}, "cases": [], "skipped": []}
    reqs = synthetic(sc["workload"], n=int(sc["requests"]), seed=int(sc["seed"]))
    out["workload"] = reqs.summary()
    for mname in sc["models"]:
        if (mname, "decode") not in result.choices or (mname, "prefill") not in result.choices:
            out["skipped"].append(f"{mname}: serving needs the model with both prefill and decode in the study")
            continue
        layers = get_model(mname).layers
        by_label = {}
        for mode in ("prefill", "decode"):
            for c in result.choices[(mname, mode)]:
                by_label.setdefault(c.system.label, {})[mode] = c
        for label in list(sc["systems"]) + [x for pair in sc["cross"] for x in pair]:
            if label not in by_label:
                raise SpecError(f"study.serving.systems: {label!r} is not a system of the study; allowed: "
                                f"{', '.join(by_label)}")
        tables = {}

        def model_of(label, mode):
            c = by_label[label][mode]
            key = (label, str(c.best.plan))
            if key not in tables:
                f = fabrics[c.system.fabric_key]
                tables[key] = tabulate(mname, c.best.plan, f, gpu=c.system.gpu, max_tokens=int(sc["max_tokens"]),
                                       algorithms=dict(c.best.algorithms), label=f"{label} {c.best.plan}")
            return tables[key], fabrics[c.system.fabric_key]

        def dep(m, k=None):
            return Deployment(m, replicas=int(k or sc["replicas"]), max_batch=int(sc["max_batch"]),
                              max_tokens=int(sc["max_tokens"]), chunk=int(sc["chunk"]))

        for k, s in enumerate(_slos_for(sc["slo"], mname)):
            _progress(f"serving {mname} under {s.name} ({time.perf_counter() - t0:.1f} s)", progress)
            out["cases"].append(_case(mname, s, sc, by_label, model_of, dep, reqs, layers, knee_too=k == 0))
    out["elapsed_s"] = time.perf_counter() - t0
    return json.loads(json.dumps(out, default=float))


def _case(mname, s, sc, by_label, model_of, dep, reqs, layers, knee_too: bool) -> dict:
    """One model under one SLO: goodput per system, then every deployment sized for one load."""
    from .goodput import goodput, knee, size_replicas

    systems = {}
    for label in sc["systems"]:
        cs = by_label[label]
        if any(cs.get(md) is None or cs[md].best is None for md in ("prefill", "decode")):
            systems[label] = {"skipped": "no plan fits in prefill or decode"}
            continue
        row = {"plans": {}}
        best = None
        for mode in ("decode", "prefill"):
            try:
                m, _ = model_of(label, mode)
                g = goodput(dep(m), reqs, s)
            except OcsnetError as e:
                row["plans"][mode] = {"error": str(e)}
                continue
            d = dep(m)
            if g["goodput_per_s"] <= 0 and g.get("floor") is not None:
                q = s.percentile
                a, b = s.measure(g["floor"].ttft_s, g["floor"].tpot_s)
                row["plans"][mode] = {"error": f"{m.meta['plan']}: no rate meets the SLO, nearly idle p{q:g} TTFT "
                                               f"{1e3 * a:.0f} ms, TPOT {1e3 * b:.0f} ms"}
                continue
            info = {"plan": m.meta["plan"], "goodput_per_s": g["goodput_per_s"],
                    "goodput_per_replica_per_s": g["goodput_per_s"] / d.replicas, **_per(g["goodput_per_s"], d),
                    "capacity_tokens": m.capacity_tokens}
            row["plans"][mode] = info
            if best is None or info["per_h100e"] > best[1]["per_h100e"]:
                best = (mode, info, m)
        if best is None or best[1]["goodput_per_s"] <= 0:
            systems[label] = {"skipped": "; ".join(v.get("error", "no rate meets the SLO")
                                                   for v in row["plans"].values())}
            continue
        row["chosen"] = best[0]
        row.update({k: best[1][k] for k in ("plan", "goodput_per_s", "goodput_per_replica_per_s", "per_h100e",
                                            "per_kW", "per_cost")})
        if knee_too:
            rates = [f * best[1]["goodput_per_s"] for f in sc["knee_fractions"]]
            row["knee"] = knee(dep(best[2]), reqs, rates, s)
        row["_mode"] = best[0]
        systems[label] = row
    base = systems.get(sc["systems"][0], {})
    load = base.get("goodput_per_replica_per_s", 0.0) * int(sc["load_replicas"])
    sizing = []
    if load > 0:
        for label, row in systems.items():
            if "_mode" not in row:
                continue
            m, _ = model_of(label, row["_mode"])
            n = size_replicas(dep(m, 1), reqs, s, load)
            ent = {"system": label, "kind": "unsplit", "plan": m.meta["plan"], "load_per_s": load}
            if n is not None:
                ent.update({"replicas": n, **_per(load, dep(m, n))})
            sizing.append(ent)
            if sc["split"]:
                sizing.append(_split_best(label, label, model_of, dep, reqs, s, load, layers))
        for pre_l, dec_l in sc["cross"]:
            if "_mode" in systems.get(pre_l, {}) and "_mode" in systems.get(dec_l, {}):
                sizing.append(_split_best(pre_l, dec_l, model_of, dep, reqs, s, load, layers))
    for row in systems.values():
        row.pop("_mode", None)
    return {"model": mname, "slo": s.to_dict(), "systems": systems, "sizing": sizing, "load_per_s": load}


def _split_best(pre_label, dec_label, model_of, dep, reqs, s, load, layers) -> dict:
    """The cheaper of two splits: the prefill pool on the system's prefill plan or on its decode plan."""
    best = None
    for pre_mode in ("prefill", "decode"):
        e = _split_entry(pre_label, dec_label, pre_mode, model_of, dep, reqs, s, load, layers)
        if best is None or ("per_cost" in e and ("per_cost" not in best or e["per_cost"] > best["per_cost"])):
            best = e
    return best


def _split_entry(pre_label, dec_label, pre_mode, model_of, dep, reqs, s, load, layers):
    from .split import kv_transfer, size_split

    same = pre_label == dec_label
    ent = {"system": pre_label if same else f"{pre_label} -> {dec_label}", "kind": "split", "load_per_s": load}
    try:
        mp, fp = model_of(pre_label, pre_mode)
        md, fd = model_of(dec_label, "decode")
    except OcsnetError as e:
        ent.update({"plan": f"prefill from the {pre_mode} plan", "error": str(e)})
        return ent
    ent["plan"] = f"prefill {mp.meta['plan']} / decode {md.meta['plan']}"
    try:
        tr = kv_transfer(fp, fd, mp, md, layers, same_system=same)
        sp = size_split(dep(mp, 1), dep(md, 1), tr, reqs, s, load)
    except OcsnetError as e:
        ent["error"] = str(e)
        return ent
    ent["transfer"] = {"latency_us": units.from_si("x_us", tr.latency_s),
                       "bandwidth_GBps": units.from_si("x_GBps", tr.bandwidth_Bps), "how": tr.how}
    if sp is not None:
        ent.update({"replicas": f"{sp.prefill.replicas}+{sp.decode.replicas}",
                    "prefill_replicas": sp.prefill.replicas, "decode_replicas": sp.decode.replicas,
                    **_per(load, sp)})
    return ent


def report(data: dict, outdir: Path, *, figures: bool = True) -> list[str]:
    """Markdown lines of the serving section; writes serving.json and the figures."""
    outdir = Path(outdir)
    (outdir / "serving.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    c = data["config"]
    w = data["workload"]
    md = ["## Serving under SLOs", "",
          f"Requests: {w['requests']} from the synthetic `{c['workload']}` workload (lengths from the published "
          f"statistics of the Azure LLM inference trace 2023: mean prompt {w['prompt_mean_tokens']:.0f}, mean output "
          f"{w['output_mean_tokens']:.0f} tokens), Poisson arrivals replayed at each rate. Continuous batching "
          f"(iteration-level, {'chunked prefill of ' + str(c['chunk']) + ' tokens' if c['chunk'] else 'prefill first'}"
          f", at most {c['max_batch']} requests per replica), KV cache reserved per request from the memory model, "
          "round-robin dispatch. Iteration times are tabulated from the per-layer evaluation of each system's plans. "
          "Goodput is the highest rate at which the SLO percentile of TTFT and of TPOT both hold (search over the "
          f"rate); {c['replicas']} replicas per unsplit deployment. Files: `serving.json`.", ""]
    for note in data.get("skipped", []):
        md += [f"- Not served: {note}.", ""]
    for d in data["cases"]:
        mname, s = d["model"], d["slo"]
        md += [f"### {mname}: SLO {s['name']} (p{s['percentile']:g} TTFT {s['ttft_ms']:g} ms, TPOT {s['tpot_ms']:g} ms)", ""]
        rows = []
        for label, r in d["systems"].items():
            if "skipped" in r:
                rows.append([label, "-", r["skipped"], None, None, None, None])
                continue
            rows.append([label, r["plan"], r["chosen"], r["goodput_per_replica_per_s"], r["per_h100e"], r["per_kW"],
                         r["per_cost"]])
        md += [_table(["system", "plan", "plan from", "goodput/replica (req/s)", "req/s per H100e", "req/s per kW",
                       "req/s per cost"], rows), ""]
        if d["sizing"]:
            md += [f"Sized for one load, {c['load_replicas']} times the goodput per replica of the first system "
                   f"({d['load_per_s']:.3g} req/s), fewest replicas meeting the SLO (split: fewest prefill "
                   "replicas meeting TTFT, then fewest decode replicas meeting TPOT):", ""]
            rows = [[e["system"], e["kind"], e["plan"], e.get("replicas", "none meet the SLO"), e.get("h100e"),
                     e.get("per_h100e"), e.get("per_kW"), e.get("per_cost"),
                     (f"{e['transfer']['bandwidth_GBps']:.3g} GB/s" if "transfer" in e else e.get("error", ""))]
                    for e in d["sizing"]]
            md += [_table(["system", "deployment", "plan", "replicas", "H100e", "req/s per H100e", "req/s per kW",
                           "req/s per cost", "KV transfer"], rows), ""]
        md += _literature(mname, d)
    md += _verdict(data)
    if figures:
        figs = _figures(data, outdir)
        for f, title in figs:
            md += [f"![{title}]({f})", ""]
    md += ["Assumptions: no preemption (a request's KV cache is reserved whole at admission); a pipeline of pp "
           "stages serves pp batches in flight; the split's prefill pool keeps a request's KV until it has moved "
           "(no back-pressure from the decode pool); the LM head is charged for every token of an iteration; "
           "the KV transfer between two systems crosses their scale-out NICs, within one system it is timed on "
           "the fabric by the flow model.", ""]
    return md


def _ratios(d) -> list[tuple[str, float, float]]:
    """(system, split/unsplit goodput per cost, per kW) of every system sized both ways."""
    by = {}
    for e in d["sizing"]:
        if "per_cost" in e:
            by.setdefault(e["system"], {})[e["kind"]] = e
    return [(k, v["split"]["per_cost"] / v["unsplit"]["per_cost"], v["split"]["per_kW"] / v["unsplit"]["per_kW"])
            for k, v in by.items() if "split" in v and "unsplit" in v]


def _literature(mname, d) -> list[str]:
    lines = []
    for sysl, rc, rk in _ratios(d):
        lines.append(f"- {sysl}: split / unsplit goodput per cost {rc:.2f}x, per kW {rk:.2f}x.")
    base = next((e for e in d["sizing"] if e["kind"] == "unsplit" and "per_cost" in e), None)
    for e in d["sizing"]:
        if "->" in e["system"] and "per_cost" in e and base is not None:
            lines.append(f"- {e['system']} (split across systems): {e['per_cost'] / base['per_cost']:.2f}x the "
                         f"goodput per cost of the unsplit {base['system']}.")
    return lines + [""] if lines else []


def _verdict(data) -> list[str]:
    """Where the split's gains land against Splitwise's and DistServe's claims, and why."""
    ratios = [(d["slo"]["name"], *r) for d in data["cases"] for r in _ratios(d)]
    out = ["### Against the literature", "", f"{SPLITWISE}. {DISTSERVE}.", ""]
    if not ratios:
        return out + ["No system was sized both split and unsplit here, so there is nothing to compare.", ""]
    name, sysl, hi, hk = max(ratios, key=lambda x: x[2])
    verdict = ("below Splitwise's 1.4x" if hi < 1.4 else "within Splitwise's range (1.4x to 2.35x)" if hi <= 2.35
               else "above Splitwise's 2.35x")
    out += [f"The best phase split here is {sysl} under {name}: {hi:.2f}x the goodput per unit of cost of the "
            f"same system unsplit ({hk:.2f}x per kW), {verdict}; DistServe's up to 7.4x is not reached. Why: "
            "under the default preset's loose TPOT limit, an unsplit replica that schedules prefills first "
            "already gives prompts the TTFT of a prefill-only pool, so the split's prefill pool needs about as "
            "many replicas as the unsplit deployment and the decode pool comes on top; the unsplit replicas also "
            "batch decodes deeply (continuous batching with a KV cache sized from the memory model), and "
            "deployments are sized in whole replicas; Splitwise gains most from running "
            "each phase on the hardware that suits it (its cost and power savings come from cheaper, "
            "power-capped token machines) and DistServe from choosing each phase's parallelism for a tight "
            "per-phase SLO, while here each pool takes a plan the throughput search chose for a fixed batch. "
            "Under the interactive presets (TTFT 450 ms, TPOT 40 ms for the 70B model) the plans the throughput "
            "search picks cannot meet the SLO at any rate when a system reports no goodput: the longest prompts "
            "(p99 of the workload) take longer than the TTFT limit to prefill on so few GPUs, and a prefill "
            "iteration stalls every decode of its replica; such an SLO needs wider tensor parallelism and chunked "
            "prefill (the `chunk` setting), which is where phase splitting and per-phase parallelism pay.", ""]
    return out


def _table(header, rows) -> str:
    def f(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(f(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _figures(data: dict, outdir: Path) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    from .. import plot

    figs = []
    for d in data["cases"]:
        mname = f"{d['model']}_{d['slo']['name']}"
        curves = {label: r["knee"] for label, r in d["systems"].items() if r.get("knee")}
        if curves:
            fig = plot.serving_knee(curves, slo=d["slo"])
            name = f"serving_knee_{mname}.png"
            fig.savefig(outdir / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
            figs.append((name, f"{mname}: latency percentiles against request rate"))
        bars = [e for e in d["sizing"] if "per_cost" in e]
        if bars:
            fig = plot.goodput_per_cost(bars)
            name = f"serving_goodput_{mname}.png"
            fig.savefig(outdir / name, dpi=110, bbox_inches="tight")
            plt.close(fig)
            figs.append((name, f"{mname}: goodput per unit of cost, split and unsplit"))
    return figs
