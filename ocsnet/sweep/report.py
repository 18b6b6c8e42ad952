"""Tables and figures from a sweep's stored results alone (``ocsnet sweep report``).

Stage: sweep (see docs/design.md).  Reads the Parquet store, never re-runs a point:
status counts, the best design per model and mode, Pareto fronts of the spec's
objectives (and of cost against latency, goodput per kW against blast radius
where those metrics are stored), the sensitivity of each best design to each
axis, a scatter of every front and a parallel-coordinates plot of the first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .pareto import pareto_front
from .spec import Objective, parse_sweep
from ..tables import write_csv
from .store import Store

__all__ = ["load_results", "sweep_report", "best_designs", "fronts", "sensitivity", "status_summary", "STANDARD_FRONTS"]

#: Fronts every report draws when their metrics are stored (issue-level questions of the field).
STANDARD_FRONTS = (("usd_per_million_tokens:min", "latency_ms:min"),
                   ("goodput_tokens_per_s_per_kW:max", "blast_radius_h100e:min"))


def load_results(path) -> tuple[dict, dict, object]:
    """(columns as numpy arrays, the manifest, the spec) of a results folder."""
    store = Store(path)
    spec = parse_sweep(store.meta["spec"], f"{Path(path).name}/sweep.json")
    t = store.table()
    cols = {} if t is None else {n: np.asarray(t.column(n).to_pylist(), dtype=object) for n in t.column_names}
    return cols, store.meta, spec


def _num(cols: dict, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in cols[name]], dtype=float)


def _knobs(cols: dict) -> list[str]:
    return [c[len("knob_"):] for c in cols if c.startswith("knob_")]


#: Knobs that name the question rather than the design: fronts, bests and sensitivities are per group.
GROUP_KNOBS = ("model", "mode")


def groups(cols: dict) -> dict[tuple, np.ndarray]:
    """(model, mode) -> boolean mask of the ok rows of that group."""
    if not cols:
        return {}
    n = len(cols["key"])
    ok = cols["status"] == "ok"
    keys = [tuple(cols[f"knob_{k}"][i] if f"knob_{k}" in cols else None for k in GROUP_KNOBS) for i in range(n)]
    out = {}
    for g in sorted(set(keys), key=str):
        out[g] = ok & np.array([k == g for k in keys])
    return out


def best_designs(cols: dict, objective: Objective) -> list[dict]:
    """The best ok point per (model, mode) by ``objective``."""
    if not cols or objective.metric not in cols:
        return []
    v = _num(cols, objective.metric) * (1 if objective.sense == "max" else -1)
    out = []
    for g, mask in groups(cols).items():
        rows = np.flatnonzero(mask & ~np.isnan(v))
        if len(rows):
            out.append({"model": g[0], "mode": g[1], "index": int(rows[np.argmax(v[rows])])})
    return out


def fronts(cols: dict, objectives: list[Objective]) -> list[tuple[tuple, list[int]]]:
    """Pairs of objectives and, per pair, the ok rows on the front of their (model, mode) group."""
    pairs = [(objectives[0], o) for o in objectives[1:]] or [(objectives[0],)]
    pairs += [tuple(Objective.parse(x, "fronts") for x in p) for p in STANDARD_FRONTS]
    out = []
    for pair in pairs:
        if not cols or not all(o.metric in cols and np.isfinite(_num(cols, o.metric)).any() for o in pair):
            continue
        rows = []
        for mask in groups(cols).values():
            ok = np.flatnonzero(mask)
            if len(ok):
                sub = {o.metric: _num(cols, o.metric)[ok] for o in pair}
                rows += [int(ok[i]) for i in pareto_front(sub, list(pair))]
        out.append((pair, rows))
    return out


def sensitivity(cols: dict, best: int, objective: Objective) -> list[dict]:
    """For each knob: the objective's range over the ok points equal to the best design on every
    other knob (one-at-a-time), or, where there are none, over the knob's marginal means."""
    knobs = [k for k in _knobs(cols) if k not in GROUP_KNOBS]
    g = tuple(cols[f"knob_{k}"][best] if f"knob_{k}" in cols else None for k in GROUP_KNOBS)
    ok = groups(cols)[g]
    v = _num(cols, objective.metric)
    out = []
    for k in knobs:
        others = [o for o in knobs if o != k]
        same = ok.copy()
        for o in others:
            same &= cols[f"knob_{o}"] == cols[f"knob_{o}"][best]
        vals = sorted({x for x in cols[f"knob_{k}"][ok]}, key=str)
        if len(vals) < 2:
            continue
        rows = np.flatnonzero(same)
        how = "one-at-a-time"
        if len(rows) >= 2:
            per = {cols[f"knob_{k}"][i]: v[i] for i in rows}
        else:
            how = "marginal mean"
            per = {x: float(np.nanmean(v[ok & (cols[f"knob_{k}"] == x)])) for x in vals}
        lo, hi = min(per, key=per.get), max(per, key=per.get)
        out.append({"knob": k, "how": how, "values": len(per), "worst_value": lo, "worst": per[lo],
                    "best_value": hi, "best": per[hi], "spread": per[hi] / per[lo] if per[lo] else np.inf})
    return sorted(out, key=lambda r: -r["spread"] if np.isfinite(r["spread"]) else -1e300)


def sweep_report(path, outdir=None, *, figures: bool = True) -> tuple[str, Path]:
    """Write ``report.md``, ``best.csv``, ``front_*.csv`` and figures; return (the text summary, the report)."""
    from ..tables import format_table

    cols, meta, spec = load_results(path)
    out = Path(outdir) if outdir else Path(path) / "report"
    out.mkdir(parents=True, exist_ok=True)
    points, pruned = spec.points()
    n = len(cols.get("key", []))
    counts = {s: int(np.sum(cols["status"] == s)) if n else 0 for s in ("ok", "infeasible", "failed")}
    obj = spec.objectives[0]
    text = [f"sweep {spec.name!r}: {len(points)} points ({sum(pruned.values())} pruned), {n} stored: "
            f"{counts['ok']} ok, {counts['infeasible']} infeasible, {counts['failed']} failed, "
            f"{len(points) - n} remaining"]
    md = [f"# Sweep report: {spec.name}", "", spec.description, "",
          f"{len(points)} design points ({spec.sampling} sampling, {spec.fidelity} fidelity); "
          f"{sum(pruned.values())} pruned by constraints; {n} stored: {counts['ok']} ok, "
          f"{counts['infeasible']} infeasible, {counts['failed']} failed; {len(points) - n} remaining.", ""]
    if pruned:
        md += ["Pruned: " + "; ".join(f"`{c}`: {k}" for c, k in pruned.items()), ""]
    knobs = _knobs(cols) if n else []
    metric_cols = [o.metric for o in spec.objectives]
    best = best_designs(cols, obj)
    header = ["model", "mode"] + [k for k in knobs if k not in ("model", "mode")] + ["plan"] + metric_cols
    rows = [[b["model"], b["mode"]] + [cols[f"knob_{k}"][b["index"]] for k in knobs if k not in ("model", "mode")]
            + [cols["plan"][b["index"]]] + [cols[m][b["index"]] for m in metric_cols] for b in best]
    if rows:
        table = format_table(header, rows)
        text += ["", f"best design per model and mode, by {obj}:", table]
        md += [f"## Best design per model and mode (by `{obj}`)", "", "```text", table, "```", ""]
        write_csv(out / "best.csv", header, rows)
    for b in best:
        sens = sensitivity(cols, b["index"], obj)
        if sens:
            t = format_table(["knob", "how", "values", "worst at", obj.metric + " worst", "best at",
                              obj.metric + " best", "best/worst"],
                             [[s["knob"], s["how"], s["values"], s["worst_value"], s["worst"], s["best_value"],
                               s["best"], s["spread"]] for s in sens])
            md += [f"### Sensitivity of the best {b['model']} {b['mode']} design", "", "```text", t, "```", ""]
    figs = []
    for j, (pair, rows_i) in enumerate(fronts(cols, spec.objectives)):
        name = "front_" + "_vs_".join(o.metric for o in pair)
        head = knobs + ["plan"] + [o.metric for o in pair]
        frows = [[cols[f"knob_{k}"][i] for k in knobs] + [cols["plan"][i]] + [cols[o.metric][i] for o in pair]
                 for i in rows_i]
        write_csv(out / f"{name}.csv", head, frows)
        t = format_table(head, frows[:20])
        md += [f"## Pareto front: {' against '.join(map(str, pair))}", "",
               f"{len(rows_i)} designs on the front (first 20; all in `{name}.csv`).", "", "```text", t, "```", ""]
        text += ["", f"Pareto front {' vs '.join(map(str, pair))}: {len(rows_i)} designs"]
        if figures and len(pair) == 2:
            figs.append((f"{name}.png", _scatter(cols, pair, rows_i, out / f"{name}.png")))
    if figures and n and counts["ok"]:
        fr = fronts(cols, spec.objectives)
        if fr and len(spec.objectives) >= 2:
            _parallel(cols, spec.objectives, fr[0][1], knobs, out / "front_parallel.png")
            figs.append(("front_parallel.png", "Parallel coordinates of the first front"))
    for f, title in figs:
        md += [f"![{title}]({f})", ""]
    md += ["## Assumptions", "",
           f"- Each point is one system (a GPU on a fabric) running one model and mode; its plan is the "
           f"best of the study's plan search ({spec.fidelity} fidelity: "
           + ("alpha-beta times with ideal circuits" if spec.fidelity == "screen" else
              "max-min flow model and solved circuit schedule") + ").",
           "- Metrics and their units are those of `ocsnet.evaluate`; every hardware number comes from the "
           "catalog with its source.", ""]
    report = out / "report.md"
    report.write_text("\n".join(md))
    return "\n".join(text), report


def _scatter(cols, pair, front, path: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = cols["status"] == "ok"
    x, y = _num(cols, pair[0].metric), _num(cols, pair[1].metric)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(x[ok], y[ok], s=10, color="#bbbbbb", label="ok designs")
    order = sorted(front, key=lambda i: x[i])
    ax.plot(x[order], y[order], "o-", color="#d62728", ms=4, label="Pareto front")
    ax.set_xlabel(f"{pair[0].metric} ({pair[0].sense})")
    ax.set_ylabel(f"{pair[1].metric} ({pair[1].sense})")
    if np.nanmin(y[ok]) > 0 and np.nanmax(y[ok]) / np.nanmin(y[ok]) > 100:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    title = f"{pair[0].metric} against {pair[1].metric}"
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return title


def _parallel(cols, objectives, front, knobs, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = [o.metric for o in objectives]
    vals = np.column_stack([_num(cols, a)[front] for a in axes])
    lo, hi = np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)
    norm = (vals - lo) / np.where(hi > lo, hi - lo, 1)
    fig, ax = plt.subplots(figsize=(1.8 * len(axes) + 2, 4))
    label_knob = next((k for k in ("gpu", "fabric") if k in knobs), None)
    labels = cols[f"knob_{label_knob}"][front] if label_knob else ["design"] * len(front)
    colors = {v: plt.cm.tab10(i % 10) for i, v in enumerate(sorted(set(labels), key=str))}
    for row, lab in zip(norm, labels):
        ax.plot(range(len(axes)), row, color=colors[lab], alpha=0.8)
    for lab, c in colors.items():
        ax.plot([], [], color=c, label=str(lab))
    ax.set_xticks(range(len(axes)), [f"{a}\n[{l:.3g}, {h:.3g}]" for a, l, h in zip(axes, lo, hi)], fontsize=7)
    ax.set_yticks([0, 1], ["min", "max"])
    ax.legend(fontsize=7, title=label_knob, loc="best")
    ax.set_title("Designs on the first Pareto front, objectives normalized", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def status_summary(path) -> dict:
    """Points done, infeasible, failed and remaining of a results folder."""
    cols, meta, spec = load_results(path)
    points, pruned = spec.points()
    n = len(cols.get("key", []))
    keys = set(cols.get("key", []))
    counts = {s: int(np.sum(cols["status"] == s)) if n else 0 for s in ("ok", "infeasible", "failed")}
    failures = {}
    if n:
        for r in cols["reason"][cols["status"] == "failed"]:
            failures[r] = failures.get(r, 0) + 1
    return {"name": spec.name, "points": len(points), "pruned": sum(pruned.values()), "stored": n, **counts,
            "remaining": sum(1 for p in points if p.key not in keys),
            "failure_reasons": dict(sorted(failures.items(), key=lambda kv: -kv[1])[:5])}

