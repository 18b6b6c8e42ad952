"""Figures (matplotlib).

The last stage of the pipeline, beside the CLI: it reads results and never
feeds anything back.  Every function takes an optional ``ax`` and returns it,
so figures compose; matplotlib is imported when a figure is drawn, not when
this module is imported.
"""

from __future__ import annotations

import numpy as np

from .units import fmt_time

__all__ = ["schedule_gantt", "schedule_intervals", "silicon_fractions", "tornado"]

_COLORS = {"compute": "#d9d9d9", "exposed": "#d62728", "hidden": "#ff9896"}
# tab20 entries without its reds and pinks (6, 7, 12, 13), which mark reconfigurations.
_CONFIG_COLORS = (0, 2, 4, 8, 10, 16, 18, 1, 3, 5, 9, 11, 17, 19)


def schedule_intervals(schedule) -> dict[str, np.ndarray]:
    """The intervals a Gantt chart of a schedule draws, in seconds.

    Returns a dict of arrays:

    * ``gap_start``, ``gap_len``: compute gaps (previous phase end to ready time);
    * ``slot_start``, ``slot_len``, ``slot_config``, ``slot_phase``: every slot
      (its exposed reconfiguration included);
    * ``exposed_start``, ``exposed_len``: exposed reconfiguration (traffic stopped);
    * ``hidden_start``, ``hidden_len``: reconfiguration hidden under a gap.

    A change at the start of a phase begins when the previous phase's traffic
    ends; a change between two slots begins at the later slot's start (the
    reference semantics of :mod:`ocsnet.schedule.problem`).
    """
    delta = float(schedule.reconfig_delay_s)
    gs, gl, ss, sl, sc, sp_, es, el, hs, hl = ([] for _ in range(10))
    prev_end = 0.0
    for p, ph in enumerate(schedule.phases):
        if ph.start_s > prev_end:
            gs.append(prev_end)
            gl.append(ph.start_s - prev_end)
        t = ph.start_s
        for k, s in enumerate(ph.slots):
            ss.append(t)
            sl.append(s.duration_s)
            sc.append(s.config)
            sp_.append(p)
            if s.reconfig:
                x = float(s.exposed_s)
                if k == 0:
                    hidden = max(delta - x, 0.0)
                    if hidden > 0:
                        hs.append(prev_end)
                        hl.append(hidden)
                if x > 0:
                    es.append(t)
                    el.append(x)
            t += s.duration_s
        prev_end = ph.end_s
    a = lambda v, dt=float: np.asarray(v, dtype=dt)  # noqa: E731
    return {"gap_start": a(gs), "gap_len": a(gl), "slot_start": a(ss), "slot_len": a(sl),
            "slot_config": a(sc, np.int64), "slot_phase": a(sp_, np.int64), "exposed_start": a(es),
            "exposed_len": a(el), "hidden_start": a(hs), "hidden_len": a(hl)}


def schedule_gantt(schedule, ax=None, *, title: str | None = None, max_configs_in_legend: int = 8):
    """Draw an OCS schedule's timeline: phases, slots, reconfigurations and gaps.

    Two lanes share the time axis.  *Traffic*: compute gaps in grey, every
    slot coloured by the configuration it holds, its exposed reconfiguration
    (traffic stopped) in red.  *OCS*: the configuration held over time, and
    every reconfiguration, red where exposed and pink where hidden under a
    compute gap.

    Parameters
    ----------
    schedule : ocsnet.schedule.Schedule
    ax : matplotlib Axes, optional
        Drawn into; a new figure is made if None.
    title : str, optional
        Default: method, makespan and reconfiguration counts.
    max_configs_in_legend : int
        Legend entries for at most this many configurations.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from ocsnet.schedule import OCSProblem, solve
    >>> ring = np.roll(np.eye(4), 1, axis=1) * 1e9
    >>> prob = OCSProblem([ring, ring.T], [1e-3, 1e-3], ports=2, circuit_Bps=1e10, reconfig_delay_s=2e-3)
    >>> ax = schedule_gantt(solve(prob, "per-phase"))
    >>> ax.get_xlabel()
    'time (ms)'
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.6))
    iv = schedule_intervals(schedule)
    span = max(float(schedule.makespan_s), 1e-30) if np.isfinite(schedule.makespan_s) else 1.0
    # Pick a time unit so the axis reads in round numbers.
    unit, f = next(((u, f) for u, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)) if span >= f),
                   ("ns", 1e-9))
    tab = plt.get_cmap("tab20")
    palette = [tab(i) for i in _CONFIG_COLORS]              # no reds or pinks: those mark reconfigurations
    lane_traffic, lane_ocs, h = 1.0, 0.0, 0.8

    def bars(start, length, lane, **kw):
        keep = length > 0
        ax.broken_barh(list(zip(start[keep] / f, length[keep] / f)), (lane - h / 2, h), **kw)

    bars(iv["gap_start"], iv["gap_len"], lane_traffic, facecolors=_COLORS["compute"], linewidth=0)
    cfg = iv["slot_config"]
    # Exposed part of each slot (traffic stopped) in red, the rest in the slot's configuration colour.
    x = np.zeros(len(cfg))
    if len(iv["exposed_start"]):
        pos = np.searchsorted(iv["slot_start"], iv["exposed_start"], side="right") - 1
        np.add.at(x, np.clip(pos, 0, max(len(cfg) - 1, 0)), iv["exposed_len"])
    # The OCS lane holds each configuration from its slot until the next slot (gaps included).
    held_end = np.append(iv["slot_start"][1:], iv["slot_start"][-1] + iv["slot_len"][-1]) if len(cfg) else x
    for c in np.unique(cfg):
        m = cfg == c
        col = palette[int(c) % len(palette)]
        bars(iv["slot_start"][m] + x[m], iv["slot_len"][m] - x[m], lane_traffic, facecolors=col,
             edgecolor="white", linewidth=0.3)
        bars(iv["slot_start"][m], held_end[m] - iv["slot_start"][m], lane_ocs, facecolors=col, linewidth=0)
    bars(iv["exposed_start"], iv["exposed_len"], lane_traffic, facecolors=_COLORS["exposed"], linewidth=0)
    bars(iv["hidden_start"], iv["hidden_len"], lane_ocs, facecolors=_COLORS["hidden"], linewidth=0)
    bars(iv["exposed_start"], iv["exposed_len"], lane_ocs, facecolors=_COLORS["exposed"], linewidth=0)
    ax.set_yticks([lane_ocs, lane_traffic], ["OCS", "traffic"])
    ax.set_xlabel(f"time ({unit})")
    ax.set_xlim(0, span / f)
    ax.set_ylim(-0.7, 1.7)
    handles = [Patch(color=_COLORS["compute"], label="compute gap"),
               Patch(color=_COLORS["hidden"], label="reconfig hidden"),
               Patch(color=_COLORS["exposed"], label="reconfig exposed")]
    shown = np.unique(cfg)[:max_configs_in_legend]
    handles += [Patch(color=palette[int(c) % len(palette)], label=f"config {int(c)}") for c in shown]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=min(len(handles), 6),
              fontsize="small", frameon=False)
    if title is None:
        title = (f"{schedule.method}: makespan {fmt_time(schedule.makespan_s)}, "
                 f"{schedule.n_reconfigurations} reconfigurations "
                 f"({fmt_time(schedule.exposed_reconfig_s)} exposed, {fmt_time(schedule.hidden_reconfig_s)} hidden)")
    ax.set_title(title, fontsize="medium")
    return ax


# ---------------------------------------------------------------------------------------
# the Lite-GPU versus H100 study (ocsnet.study)

def _study_keys(rows):
    keys = []
    for r in rows:
        k = (r["model"], r["mode"])
        if k not in keys:
            keys.append(k)
    systems = []
    for r in rows:
        if r["system"] not in systems:
            systems.append(r["system"])
    return keys, systems


def normalized_comparison(rows: list[dict]):
    """Throughput per H100-equivalent and latency of every system, normalized to the H100 baseline.

    One panel pair (throughput, latency) per mode; bars grouped by model.
    ``rows`` are :meth:`ocsnet.study.StudyResult.summary_rows`.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    keys, systems = _study_keys(rows)
    modes = [m for m in ("prefill", "decode") if any(k[1] == m for k in keys)]
    models = list(dict.fromkeys(k[0] for k in keys))
    fig, axes = plt.subplots(len(modes), 2, figsize=(13, 3.6 * len(modes)), squeeze=False)
    cmap = plt.get_cmap("tab20")
    width = 0.8 / max(len(systems), 1)
    for i, mode in enumerate(modes):
        for j, (metric, title) in enumerate((("throughput_vs_h100", "throughput per H100-equivalent"),
                                             ("latency_vs_h100", "latency (TTFT or TPOT)"))):
            ax = axes[i][j]
            for s, sysl in enumerate(systems):
                vals = []
                for m in models:
                    r = next((r for r in rows if r["model"] == m and r["mode"] == mode and r["system"] == sysl), None)
                    vals.append(np.nan if r is None or r.get(metric) is None else r[metric])
                ax.bar(np.arange(len(models)) + (s - (len(systems) - 1) / 2) * width, vals, width,
                       label=sysl, color=cmap(s % 20))
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
            ax.set_xticks(np.arange(len(models)), models)
            ax.set_ylabel(f"{'higher' if j == 0 else 'lower'} is better (H100 = 1)")
            ax.set_title(f"{mode}: {title}")
    axes[0][1].legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def layer_breakdown(rows: list[dict]):
    """Stacked bars of one layer's time per system: compute, communication, exposed reconfiguration (us)."""
    import matplotlib.pyplot as plt

    keys, systems = _study_keys(rows)
    n_sys = max((sum(1 for r in rows if r["model"] == m and r["mode"] == mode) for m, mode in keys), default=1)
    cols = min(len(keys), 3)
    nrow = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(max(4.5, 0.55 * n_sys + 1.5) * cols, 4.6 * nrow),
                             squeeze=False, sharey=False)
    parts = (("compute_us", "compute", "#4c72b0"), ("comm_us", "communication", "#dd8452"),
             ("reconfig_us", "exposed reconfiguration", "#c44e52"))
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(keys):]:
        ax.axis("off")
    for ax, (m, mode) in zip(flat, keys):
        rs = [r for r in rows if r["model"] == m and r["mode"] == mode and r.get("compute_us") is not None]
        bottom = np.zeros(len(rs))
        for key, label, color in parts:
            v = np.array([r.get(key) or 0.0 for r in rs])
            ax.bar(np.arange(len(rs)), v, bottom=bottom.copy(), color=color, label=label)
            bottom += v
        if len(rs):
            ax.set_ylim(0, 1.05 * float(bottom.max()))
        ax.set_xticks(np.arange(len(rs)), [f"{r['system']} ({r['plan'].split(' dp=')[0]})" for r in rs],
                      rotation=75, fontsize=7)
        ax.set_title(f"{m} {mode}", fontsize=9)
        ax.set_ylabel("time per layer (us)")
    handles, labels = flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def reconfig_sweep(sweep: list[dict]):
    """Layer time against OCS reconfiguration delay, one line per all-reduce algorithm and case."""
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys((r["model"], r["mode"], r["plan"]) for r in sweep))
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.6), squeeze=False)
    for ax, (m, mode, plan) in zip(axes[0], cases):
        rs = [r for r in sweep if r["model"] == m and r["mode"] == mode and r["plan"] == plan]
        for alg in dict.fromkeys(r["algorithm"] for r in rs):
            pts = sorted((r["reconfig_delay_us"], r["layer_us"]) for r in rs if r["algorithm"] == alg)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=alg)
        ax.set_xscale("log")
        ax.set_xlabel("OCS reconfiguration delay (us)")
        ax.set_ylabel("time per layer (us)")
        ax.set_title(f"{m} {mode}\n{rs[0]['system']}, {plan}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def link_utilization(result, max_systems: int = 6):
    """Utilization of the busiest links during the largest tensor-parallel collective step.

    For the best plan of the first (model, mode) on every packet or direct
    fabric, the step with the most bytes is timed by the max-min model and
    the per-link utilization is drawn as a sorted curve.  Returns the figure,
    or ``None`` when no system qualifies.
    """
    import matplotlib.pyplot as plt

    from . import topology
    from .collectives import expand
    from .flow import phase_time
    from .traffic import place_steps
    from .workload.parallel import place

    first = next(iter(result.choices.values()), [])
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    drawn = 0
    fabrics = {}
    for c in first:
        ev = c.best
        if ev is None or c.system.kind == "OCS" or drawn >= max_systems:
            continue
        key = (c.system.fabric, c.system.gpu)
        if key not in fabrics:
            from .evaluation.study import bandwidth_overrides as _bandwidth_overrides
            fabrics[key] = topology.build(c.system.fabric, gpu=c.system.gpu, **_bandwidth_overrides(c.system),
                                          **c.system.overrides)
        f = fabrics[key]
        colls = [x for x in ev.profile.layer.collectives if x.group == "tp" and x.group_size > 1]
        if not colls:
            continue
        x = max(colls, key=lambda x: x.nbytes)
        ranks = place(ev.plan, f)
        steps = expand(x.kind, x.group_size, x.nbytes, x.algorithm)
        big = max(steps, key=lambda m: m.sum())
        demand = place_steps([big], ranks.reshape(-1, ev.plan.tp), f.n_gpus)[0]
        res = phase_time(f, demand, fidelity="max-min")
        u = np.sort(res.link_utilization[res.link_utilization > 0])[::-1]
        if len(u):
            ax.plot(np.arange(1, len(u) + 1), 100 * u, label=f"{c.system.label} ({ev.plan.tp}-way {x.algorithm})")
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("links, busiest first")
    ax.set_ylabel("utilization during the step (%)")
    ax.set_title("Link utilization, largest tensor-parallel step (max-min)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def serving_knee(curves: dict, slo: dict | None = None):
    """p50/p99 TTFT and TPOT against request rate, one line per system (``curves``: label -> knee rows)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, what in zip(axes, ("ttft", "tpot")):
        for label, rows in curves.items():
            x = [r["rate_per_s"] for r in rows]
            line, = ax.plot(x, [r[f"{what}_p99_ms"] for r in rows], marker="o", label=f"{label} p99")
            ax.plot(x, [r[f"{what}_p50_ms"] for r in rows], ls="--", color=line.get_color(), alpha=0.6)
        if slo:
            ax.axhline(slo[f"{what}_ms"], color="k", lw=0.8, ls=":", label=f"SLO {slo['name']}")
        ax.set_yscale("log")
        ax.set_xlabel("request rate (req/s)")
        ax.set_ylabel(f"{what.upper()} (ms), p99 solid, p50 dashed")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def goodput_per_cost(rows: list[dict]):
    """Goodput per unit of cost of each sized deployment (rows with system, kind, per_cost)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows)), 3.6))
    labels = [f"{r['system']}\n{r['kind']}" for r in rows]
    colors = ["tab:blue" if r["kind"] == "unsplit" else "tab:orange" for r in rows]
    ax.bar(range(len(rows)), [r["per_cost"] for r in rows], color=colors)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=6, rotation=30, ha="right")
    ax.set_ylabel("goodput per unit of cost (req/s per H100 cost)")
    fig.tight_layout()
    return fig


def silicon_fractions(rows: list[dict], ax=None, *, title: str | None = None):
    """Cost per H100-equivalent (left axis) and yield (right axis) against die fraction.

    ``rows`` are :func:`ocsnet.silicon.table.fraction_rows` (keys ``fraction``,
    ``die_mm2``, ``cost_per_h100e``, ``yield``, ``max_clock``).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    x = np.arange(len(rows))
    cost = [r["cost_per_h100e"] for r in rows]
    ax.plot(x, cost, "o-", color="#1f77b4", label="cost per H100-equivalent")
    ax.axhline(1.0, color="#1f77b4", lw=0.6, ls=":")
    ax.set_ylabel("cost per H100-equivalent (parent = 1)", color="#1f77b4")
    ax.set_xticks(x, [f"{r['fraction']}\n{r['die_mm2']:.0f} mm²" for r in rows])
    ax.set_xlabel("fraction of the parent die")
    ax2 = ax.twinx()
    ax2.plot(x, [r["yield"] for r in rows], "s--", color="#2ca02c", label="yield")
    ax2.plot(x, [r["max_clock"] - 1 for r in rows], "^:", color="#d62728", label="clock headroom (max - 1)")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("yield / clock headroom")
    lines = ax.get_lines()[:1] + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def tornado(rows: list[dict], ax=None, *, title: str | None = None, max_rows: int = 10):
    """Tornado chart: one bar per parameter from its low-value result to its high-value result.

    ``rows`` are :func:`ocsnet.evaluation.sensitivity.tornado` rows (``parameter``,
    ``ratio_low``, ``ratio_high``, ``ratio_default``), largest swing first.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[:max_rows]
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.45 * len(rows) + 1.2))
    base = rows[0]["ratio_default"] if rows else 1.0
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        lo, hi = r["ratio_low"], r["ratio_high"]
        ax.barh(yi, lo - base, left=base, color="#1f77b4", height=0.6)
        ax.barh(yi, hi - base, left=base, color="#ff7f0e", height=0.6)
    ax.axvline(base, color="k", lw=0.8)
    ax.axvline(1.0, color="#d62728", lw=0.8, ls="--")
    ax.set_yticks(y, [f"{r['parameter']} [{r['low']:g}, {r['high']:g}]" for r in rows], fontsize=8)
    ax.set_xlabel("cost per million tokens over the H100's (blue: low value, orange: high value)")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def failure_losses(rows: list[list]):
    """Capacity lost to failures per system and spare policy (grouped bars, analytic with the Monte
    Carlo's 95 % interval); ``rows``: [system, policy, gpus/replica, spares, lost analytic, lost MC,
    MC ci95, ...] as written by the study's failures section."""
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r[0] for r in rows))
    policies = [p for p in ("none", "spares", "ocs") if any(r[1] == p for r in rows)]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(systems)), 3.6))
    w = 0.8 / max(len(policies), 1)
    for k, pol in enumerate(policies):
        xs, ys, es = [], [], []
        for i, s in enumerate(systems):
            r = next((r for r in rows if r[0] == s and r[1] == pol), None)
            if r is not None:
                xs.append(i + (k - (len(policies) - 1) / 2) * w)
                ys.append(100 * r[4])
                es.append(100 * r[6])
        ax.bar(xs, ys, w, yerr=es, capsize=2, label={"none": "no spares", "spares": "hot spares",
                                                       "ocs": "OCS substitution"}[pol])
    ax.set_xticks(range(len(systems)))
    ax.set_xticklabels(systems, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("serving capacity lost (%)")
    ax.set_title("capacity lost to failures (analytic; bars: Monte Carlo 95 % CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
