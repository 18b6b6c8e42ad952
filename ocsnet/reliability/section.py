"""The study's "failures" section: blast radius, capacity lost and goodput under failures.

Registered in :data:`ocsnet.evaluation.study.ANALYSES` as ``"failures"``.
For each system of the study (the H100 DGX baseline and every Lite-GPU
system), with the plan the study chose for one model and mode, it deploys
replicas of ``tp * pp`` GPUs on the system's fabric and reports:

* the blast radius of each component kind (H100-equivalents stopped by the
  worst unit, share of tokens/s lost, whether a failure only slows replicas);
* the capacity lost in steady state (analytic) and over ``days`` days
  (seeded Monte Carlo, with its 95 % interval) with no spares, with a pool
  of hot spares swapped by hand or automation, and, on OCS fabrics, with
  OCS spare substitution;
* goodput: tokens/s per H100-equivalent of silicon (spares included), per
  kW and per unit of cost, after failures, and relative to the H100 baseline.

Assumptions are the catalog's (``failures.toml``) and are written into the
section: Llama 3 counts, proportional scaling to Lite-GPUs, repair times.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import FaultError
from ..tables import write_csv

__all__ = ["DEFAULTS", "check", "analyse", "report"]

DEFAULTS = {
    "model": None,              # default: the study's first model
    "mode": "decode",
    "days": 30.0,
    "seed": 0,
    "runs": 20,                 # independent Monte Carlo periods (seeds seed .. seed + runs - 1)
    "spare_fraction": 1 / 32,   # spare GPUs per GPU (1 server per 32 for the H100 DGX baseline)
    "policies": ["none", "spares", "ocs"],
}


def _choices(cfg, result):
    sec = cfg.get("failures", DEFAULTS)
    model = sec.get("model") or cfg["models"][0]
    mode = sec.get("mode") or "decode"
    key = (model, mode)
    if key not in result.choices:
        have = ", ".join(f"{m}/{md}" for m, md in result.choices)
        raise FaultError(f"study.failures.model/mode: {model}/{mode} was not studied; studied: {have}")
    return model, mode, result.choices[key]


def check(section: dict) -> None:
    """Refuse a bad ``[failures]`` section before the plan search (the study's check hook)."""
    from .. import checks
    sec = dict(DEFAULTS)
    sec.update(section or {})
    checks.number("study.failures.spare_fraction", sec["spare_fraction"], lo=0, hi=1, error=FaultError)
    checks.number("study.failures.days", sec["days"], lo=0, lo_open=True, error=FaultError)
    checks.integer("study.failures.runs", sec["runs"], lo=2, error=FaultError)
    checks.integer("study.failures.seed", sec["seed"], lo=0, error=FaultError)
    if sec["mode"] not in ("prefill", "decode"):
        raise FaultError(f"study.failures.mode: {sec['mode']!r} is not one of prefill, decode")
    pols = sec["policies"]
    if not isinstance(pols, (list, tuple)) or not pols:
        raise FaultError(f"study.failures.policies: expected a list of none, spares, ocs, got {pols!r}")
    for p in pols:
        if p not in ("none", "spares", "ocs"):
            raise FaultError(f"study.failures.policies: {p!r} is not one of none, spares, ocs")


def analyse(cfg: dict, result, fabrics: dict, *, progress: bool = False) -> dict:
    """Run the failure analysis of the study's choices (see the module docstring)."""
    from . import analytic, blast_matrices, blast_summary, components, deployment, failure_model, monte_carlo
    sec = dict(DEFAULTS)
    sec.update(cfg.get("failures") or {})
    check(sec)
    frac = float(sec["spare_fraction"])
    model, mode, choices = _choices(cfg, result)
    fm = failure_model()
    rows = []
    for c in choices:
        ev = c.best
        if ev is None:
            continue
        f = fabrics[c.system.fabric_key]
        t = ev.totals()
        n = int(t["gpus_per_replica"])
        layer = t["layer_us"]
        comm = min(1.0, t["comm_max_min_us"] / layer) if layer > 0 else 0.0
        dep = deployment(f, c.system.gpu, n, comm_fraction=comm, tokens_per_s=1.0)
        mats = blast_matrices(dep)
        summ = blast_summary(dep, mats)
        spares = int(round(frac * f.n_gpus))
        row = {"system": c.system.label, "kind": c.system.kind, "gpu": c.system.gpu, "n_gpus": int(f.n_gpus),
               "gpus_per_replica": n, "replicas": dep.n_replicas, "comm_fraction": comm,
               "h100e_per_gpu": float(dep.gpu.h100_equivalents), "spares": spares,
               "tokens_per_s_per_h100e": t["tokens_per_s_per_h100e"], "tokens_per_s_per_kW": t["tokens_per_s_per_kW"],
               "tokens_per_s_per_cost": t["tokens_per_s_per_cost"], "blast": summ, "policies": {}}
        weights = t["memory_GB"] * 1e9
        for pol in sec["policies"]:
            if pol == "ocs" and not (f.kind == "ocs").any():
                continue
            comp = components(dep, fm, policy=pol, spares=0 if pol == "none" else spares,
                              weights_B_per_gpu=weights, matrices=mats)
            a = analytic(comp)
            runs = int(sec["runs"])
            if runs < 2:
                raise FaultError(f"study.failures.runs: {runs} is out of range, allowed integers [2, inf)")
            ms = [monte_carlo(comp, days=float(sec["days"]), seed=int(sec["seed"]) + k) for k in range(runs)]
            lost = np.array([x["lost_share"] for x in ms])
            m = {"lost_share": float(lost.mean()), "ci95": float(1.96 * lost.std(ddof=1) / np.sqrt(runs)),
                 "p01": float(np.mean([x["p01"] for x in ms]))}
            silicon = (f.n_gpus + (0 if pol == "none" else spares)) / f.n_gpus   # spares are silicon too
            avail = 1.0 - a["lost_share"]
            row["policies"][pol] = {
                "lost_share": a["lost_share"], "lost_share_first_order": a["lost_share_first_order"],
                "mc_lost_share": m["lost_share"], "mc_ci95": m["ci95"], "mc_p01_capacity": m["p01"],
                "failures_per_h": a["failures_per_h"], "outages_per_h": a["interruptions_per_h"],
                "p_spare": a["p_spare"], "swap_s": comp.swap_s,
                "goodput_per_h100e": t["tokens_per_s_per_h100e"] * avail / silicon,
                "goodput_per_kW": t["tokens_per_s_per_kW"] * avail / silicon,
                "goodput_per_cost": t["tokens_per_s_per_cost"] * avail / silicon}
        rows.append(row)
        if progress:
            print(f"  failures: {c.system.label}", flush=True)
    base = next((r for r in rows if r["kind"] == "baseline"), None)
    if base is not None and base["policies"]:
        bg = base["policies"]["none"]["goodput_per_h100e"] if "none" in base["policies"] else None
        for r in rows:
            for pol, v in r["policies"].items():
                v["goodput_vs_h100_none"] = v["goodput_per_h100e"] / bg if bg else None
    return {"model": model, "mode": mode, "days": float(sec["days"]), "seed": int(sec["seed"]),
            "runs": int(sec["runs"]),
            "spare_fraction": frac, "rows": rows,
            "assumptions": {"counts": fm.counts, "repair_h": fm.repair_s["gpu"] / 3600.0,
                            "host_repair_h": fm.repair_s["host"] / 3600.0,
                            "software_restart_min": fm.repair_s["software"] / 60.0,
                            "spare_swap_min": fm.spare_swap_s / 60.0, "scaling": dict(fm.scaling)}}


def _pct(x):
    return "-" if x is None else f"{100 * x:.3g} %"


def report(data: dict, outdir, *, figures: bool = True) -> list[str]:
    """The section's markdown lines; writes ``failures.json``, ``failures.csv`` and ``failures.png``."""
    out = Path(outdir)
    rows = data["rows"]
    (out / "failures.json").write_text(json.dumps(data, sort_keys=True, indent=1, allow_nan=False))
    pols = ["none", "spares", "ocs"]
    flat = []
    for r in rows:
        for pol in pols:
            v = r["policies"].get(pol)
            if v:
                flat.append([r["system"], pol, r["gpus_per_replica"], r["spares"] if pol != "none" else 0,
                             v["lost_share"], v["mc_lost_share"], v["mc_ci95"], v["outages_per_h"],
                             v["goodput_per_h100e"], v.get("goodput_vs_h100_none")])
    write_csv(out / "failures.csv", ["system", "policy", "gpus_per_replica", "spares", "lost_share_analytic",
                                     "lost_share_mc", "mc_ci95", "replica_outages_per_h",
                                     "goodput_tokens_per_s_per_h100e", "goodput_vs_h100"], flat)
    a = data["assumptions"]
    L = ["## Failures: blast radius, capacity lost and goodput", "",
         f"{data['model']} {data['mode']}, each system with the plan chosen above, replicas of tp x pp consecutive "
         f"GPUs. Failure rates from the Llama 3 run (419 interruptions in 54 days on 16,384 H100s, Table 5 "
         f"counts: GPU die {a['counts']['gpu']}, HBM {a['counts']['hbm']}, NIC/network {a['counts']['port']}, host "
         f"{a['counts']['host']}, software {a['counts']['software']}; the table's printed percentages are not used). "
         f"Lite-GPU rates scale as {', '.join(f'{k}: {v}' for k, v in a['scaling'].items())} (assumptions, knobs "
         f"in catalog/failures.toml). Repair {a['repair_h']:g} h (assumption), host repair {a['host_repair_h']:g} h, "
         f"software restart {a['software_restart_min']:g} min, spare swap {a['spare_swap_min']:g} min (automated "
         f"node replacement, Crusoe 2025); OCS substitution = OCS reconfiguration + reloading one GPU's memory over "
         f"its network bandwidth. Spares: {100 * data['spare_fraction']:.3g} % of the GPUs (silicon counted in "
         f"goodput); with NVLink servers a spare is a whole server. Switch and OCS-plane failure rates have no "
         f"public anchor and are 0 (their blast radius is still shown). Monte Carlo: {data['runs']} periods of "
         f"{data['days']:g} days (seeds from {data['seed']}), mean and 95 % interval over the periods. A switch "
         f"failure stops every replica that has a GPU whose only network link ends at it (in a rail-optimized "
         f"DGX cluster a rail leaf holds one GPU of every server, so replicas that span servers all stop; PXN "
         f"re-routing through NVLink is not modelled).", "",
         "### Blast radius (worst unit of each kind)", "",
         "| system | GPUs/replica | GPU: H100e stopped | port: share lost | switch: share lost | host: H100e stopped |",
         "|---|---|---|---|---|---|"]
    for r in rows:
        b = r["blast"]

        def g(k, f):
            return b.get(k, {}).get(f) if b.get(k, {}).get("units") else None
        L.append(f"| {r['system']} | {r['gpus_per_replica']} | {g('gpu', 'h100e_stopped_max') or 0:.4g} | "
                 f"{_pct(g('port', 'share_lost_max'))}{' (slow-down)' if (g('port', 'slowdown_only_units') or 0) else ''} | "
                 f"{_pct(g('switch', 'share_lost_max'))} | {g('host', 'h100e_stopped_max') or 0:.4g} |")
    L += ["", "### Capacity lost and goodput", "",
          "| system | policy | capacity lost (analytic) | Monte Carlo (95 % CI) | replica outages /h | "
          "goodput tokens/s/H100e | vs H100 (no spares) |", "|---|---|---|---|---|---|---|"]
    for f_ in flat:
        L.append(f"| {f_[0]} | {f_[1]} | {_pct(f_[4])} | {_pct(f_[5])} +- {_pct(f_[6])} | {f_[7]:.3g} | "
                 f"{f_[8]:.4g} | {'-' if f_[9] is None else f'{f_[9]:.3g}x'} |")
    # the answer, in numbers
    base = next((r for r in rows if r["kind"] == "baseline"), None)
    if base is not None and "none" in base["policies"]:
        bl = base["policies"]["none"]["lost_share"]
        lines = []
        first_gpu = next((r["gpu"] for r in rows if r is not base), None)
        for r in rows:
            if r is base or "none" not in r["policies"] or r["gpu"] != first_gpu:
                continue
            best_pol = min(r["policies"], key=lambda p: r["policies"][p]["lost_share"])
            lines.append(f"{r['system']}: {_pct(r['policies']['none']['lost_share'])} lost with no spares "
                         f"(H100 DGX {_pct(bl)}), {_pct(r['policies'][best_pol]['lost_share'])} with {best_pol}")
        worst = max((r for r in rows if r is not base and "none" in r["policies"]),
                    key=lambda r: r["policies"]["none"]["lost_share"], default=None)
        L += ["", "**Answer.** " + "; ".join(lines) + "."]
        if worst is not None:
            bh = base["blast"]["gpu"]["h100e_stopped_max"]
            wh = worst["blast"]["gpu"]["h100e_stopped_max"]
            L.append(f"A Lite-GPU fails less per device (a quarter of the die area and HBM) but a replica of "
                     f"{worst['gpus_per_replica']} Lite-GPUs dies with any one of them: one GPU failure stops "
                     f"{wh:.3g} H100-equivalents on {worst['system']} against {bh:.3g} on the H100 DGX, and a Lite "
                     f"cluster has more ports and processes that fail (optics per port, software per GPU). Where the "
                     f"Lite system loses more, this is why; spares and, on the OCS, substitution in seconds recover "
                     f"most of it (the availability argument of TPU v4's OCS, Zu et al., NSDI 2024: 99.98 % "
                     f"system availability).")
    # against the literature
    from .rates import anchor_interruptions_per_h, failure_model
    fm = failure_model()
    cc = {k: v for k, v in fm.source.get("crosscheck", {}).items() if k != "source"}
    mttf = 1.0 / anchor_interruptions_per_h(fm)
    lit = [f"**Against the literature.** The rates reproduce the Llama 3 run by construction: one interruption "
           f"every {mttf:.2f} h on 16,384 H100s (tested by the Monte Carlo). Kokolis et al. (HPCA 2025) fit a "
           f"mean time to failure of about {cc.get('kokolis_mttf_16384_gpus_h', 1.8):g} h for a 16,384-GPU job "
           f"and {cc.get('kokolis_mttf_1024_gpus_h', 8):g} h for 1,024 GPUs on A100 research clusters; this model "
           f"gives {mttf:.2f} h and {mttf * 16:.1f} h (failures in series, MTTF ~ 1/N, the same law; the A100 "
           f"clusters fail about twice as often per GPU and count job-level failures this model leaves out)."]
    ocs_rows = [r for r in rows if "ocs" in r["policies"]]
    if ocs_rows:
        best = min(r["policies"]["ocs"]["lost_share"] for r in ocs_rows)
        lit.append(f"With OCS substitution the Lite-GPU OCS systems keep {100 * (1 - best):.3f} % of their capacity; "
                   f"Zu et al. (NSDI 2024) report {100 * cc.get('tpu_v4_system_availability', 0.9998):.2f} % system "
                   f"availability for TPU v4 with OCS reconfiguration around failures (a different measure: "
                   f"the share of time the system is up, not of serving capacity).")
    L += [""] + [" ".join(lit)]
    if figures and flat:
        from .. import plot
        import matplotlib.pyplot as plt
        fig = plot.failure_losses(flat)
        fig.savefig(out / "failures.png", dpi=120)
        plt.close(fig)
        L += ["", "![capacity lost to failures](failures.png)"]
    L += ["", "Data: failures.csv, failures.json.", ""]
    return L
