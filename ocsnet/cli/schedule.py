"""``ocsnet schedule``: solve, check and draw OCS circuit schedules of scenarios.

    ocsnet schedule list
    ocsnet schedule solve SCENARIO [--method heuristic] [--time-limit 10s] [--reconfig-delay 10us]
                                   [--max-slots N] [--bound best|design] [-o schedule.json]
    ocsnet schedule check SCENARIO schedule.json [--reconfig-delay 10us]
    ocsnet schedule plot schedule.json -o gantt.png

A SCENARIO is a name in ``schedules/`` or a path to a scenario TOML
(:mod:`ocsnet.schedule.scenario`).  ``check`` exits 1 and lists the
violations when a schedule is invalid; bad input exits 2 with one line.
"""

from __future__ import annotations

import sys
import time

from .. import units
from ..errors import ScheduleError

_HELP = "solve, check and plot OCS circuit schedules"


def register(subparsers) -> None:
    p = subparsers.add_parser("schedule", help=_HELP, description=_HELP)
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = sub.add_parser("list", help="list the scenarios in schedules/")
    ls.set_defaults(func=run_list)

    from ..schedule import METHODS
    s = sub.add_parser("solve", help="solve a scenario and print makespan, bound, gap and reconfigurations")
    s.add_argument("scenario", help="scenario name (schedules/<name>.toml) or path")
    s.add_argument("--method", choices=METHODS, default=None, help="solver (default: the scenario's, else auto)")
    s.add_argument("--time-limit", default=None, metavar="TIME", help="wall-time budget, e.g. 10s")
    s.add_argument("--reconfig-delay", default=None, metavar="TIME", help="override the OCS delay, e.g. 10us")
    s.add_argument("--max-slots", type=int, default=None, metavar="N", help="most slots per phase")
    s.add_argument("--bound", choices=("best", "design"), default=None,
                   help="lower bound the heuristic reports (design: cheap on very long traces)")
    s.add_argument("-o", "--output", default=None, metavar="FILE", help="write the schedule JSON here")
    s.set_defaults(func=run_solve)

    c = sub.add_parser("check", help="validate a schedule against its scenario (exit 1 if invalid)")
    c.add_argument("scenario", help="scenario name or path")
    c.add_argument("schedule", help="schedule JSON written by `ocsnet schedule solve -o`")
    c.add_argument("--reconfig-delay", default=None, metavar="TIME",
                   help="OCS delay to check against (default: the one recorded in the schedule)")
    c.set_defaults(func=run_check)

    g = sub.add_parser("plot", help="draw a schedule's timeline (Gantt chart)")
    g.add_argument("schedule", help="schedule JSON")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="image file, e.g. gantt.png")
    g.set_defaults(func=run_plot)


def _progress(msg: str) -> None:
    print(f"[schedule] {msg}", file=sys.stderr, flush=True)


def _time_arg(text, field: str) -> float | None:
    if text is None:
        return None
    v = units.parse_time(text, field)
    if not v >= 0:
        raise ScheduleError(f"{field}: {text!r} is out of range, allowed >= 0")
    return v


def run_list(args) -> int:
    from ..schedule.scenario import list_scenarios, load_scenario

    for name in list_scenarios():
        print(f"{name:34s} {load_scenario(name).description}")
    return 0


def _summary(s) -> list[tuple[str, str]]:
    return [
        ("method", f"{s.method} ({s.status})"),
        ("makespan_ms", f"{s.makespan_s * 1e3:.6g}"),
        ("lower_bound_ms", f"{s.lower_bound_s * 1e3:.6g}"),
        ("gap_pct", f"{max(s.gap, 0.0) if s.gap > -1e-9 else s.gap:.3%}".rstrip("%")),
        ("reconfigurations", f"{s.n_reconfigurations}"),
        ("exposed_reconfig_ms", f"{s.exposed_reconfig_s * 1e3:.6g}"),
        ("hidden_reconfig_ms", f"{s.hidden_reconfig_s * 1e3:.6g}"),
        ("configs", f"{len(s.configs)}"),
        ("phases", f"{len(s.phases)}"),
        ("solve_time_s", f"{s.solve_time_s:.3g}"),
    ]


def run_solve(args) -> int:
    from ..schedule import solve
    from ..schedule.scenario import build_problem, load_scenario, solve_defaults

    delay = _time_arg(args.reconfig_delay, "--reconfig-delay")
    limit = _time_arg(args.time_limit, "--time-limit")
    if args.max_slots is not None and args.max_slots < 1:
        raise ScheduleError(f"--max-slots: {args.max_slots} is out of range, allowed [1, inf)")
    sc = load_scenario(args.scenario)
    kw = solve_defaults(sc)
    if args.method is not None:
        kw["method"] = args.method
    if limit is not None:
        kw["time_limit_s"] = limit
    if args.max_slots is not None:
        kw["max_slots_per_phase"] = args.max_slots
    if args.bound is not None:
        kw["bound"] = args.bound
    kw.setdefault("method", "auto")
    t0 = time.perf_counter()
    _progress(f"building {sc.name}: {sc.description}")
    prob = build_problem(sc, reconfig_delay_s=delay)
    _progress(f"{prob.P} phases, {prob.N} GPUs, {prob.ports} ports, delta = {units.fmt_time(prob.reconfig_delay_s)} "
              f"({time.perf_counter() - t0:.1f} s); solving with {kw['method']}"
              + (f" (limit {units.fmt_time(kw['time_limit_s'])})" if kw.get("time_limit_s") else ""))
    if prob.meta.get("note"):
        _progress(f"note: {prob.meta['note']}")
    sched = solve(prob, **kw)
    _progress(f"done in {time.perf_counter() - t0:.1f} s")
    sched.meta.setdefault("scenario", sc.name)
    print(f"scenario: {sc.name}")
    for k, v in _summary(sched):
        print(f"  {k:22s} {v}")
    if args.output:
        path = sched.save(args.output)
        print(f"  wrote {path}")
    return 0


def run_check(args) -> int:
    from ..schedule import Schedule, validate
    from ..schedule.scenario import build_problem, load_scenario

    sched = Schedule.load(args.schedule)
    delay = _time_arg(args.reconfig_delay, "--reconfig-delay")
    if delay is None:
        delay = sched.reconfig_delay_s
    prob = build_problem(load_scenario(args.scenario), reconfig_delay_s=delay)
    res = validate(prob, sched)
    if res.ok:
        print(f"valid: makespan_ms {res.makespan_s * 1e3:.6g} (recomputed), "
              f"{res.n_reconfigurations} reconfigurations")
        return 0
    print(f"INVALID: {len(res.violations)} violations", file=sys.stdout)
    for v in res.violations[:50]:
        print(f"  {v}")
    if len(res.violations) > 50:
        print(f"  ... and {len(res.violations) - 50} more")
    return 1


def run_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import schedule_gantt
    from ..schedule import Schedule

    sched = Schedule.load(args.schedule)
    fig, ax = plt.subplots(figsize=(11, 2.8))
    schedule_gantt(sched, ax=ax)
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=130)
    except (ValueError, OSError) as e:
        raise ScheduleError(f"--output: cannot write {args.output!r} ({e})") from None
    finally:
        plt.close(fig)
    print(f"wrote {args.output}")
    return 0
