"""``ocsnet sweep``: explore a design space on Dask, results in a resumable Parquet folder.

Examples::

    ocsnet sweep knobs
    ocsnet sweep run lite-design-space -o out/space            # local cluster, one worker per core
    ocsnet sweep run my.toml -o out/space --workers 1          # in this process (debugging)
    ocsnet sweep run my.toml -o out/space --scheduler tcp://10.0.0.5:8786
    ocsnet sweep status out/space
    ocsnet sweep report out/space

A killed ``run`` resumes where it stopped: points already stored are skipped.
"""

from __future__ import annotations

import argparse
import json

from ..errors import SweepError


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="design-space sweeps on Dask with Parquet results and Pareto fronts",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="sweep_command", metavar="ACTION")
    r = sub.add_parser("run", help="run every point not yet stored")
    r.add_argument("spec", help="sweep spec: a TOML file or a named spec (ocsnet sweep list)")
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder (created; resumed if it exists)")
    r.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per core; 1 without --scheduler runs in-process)")
    r.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://HOST:8786 (default: DASK_SCHEDULER_ADDRESS)")
    r.add_argument("--retry-failed", action="store_true", help="run points stored as failed again")
    r.add_argument("--max-points", type=int, default=None, metavar="N", help="stop after N new points")
    r.add_argument("--no-report", action="store_true", help="do not write the report after the run")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("status", help="points done, infeasible, failed and remaining")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--json", action="store_true")
    rep = sub.add_parser("report", help="tables, Pareto fronts and figures from the stored results alone")
    rep.add_argument("dir", metavar="DIR")
    rep.add_argument("-o", "--output", default=None, metavar="OUT", help="report folder (default DIR/report)")
    rep.add_argument("--no-figures", action="store_true")
    sub.add_parser("knobs", help="every knob a sweep can vary, with its range")
    sub.add_parser("list", help="named sweep specs")
    p.set_defaults(func=run, _parser=p)


def run(args) -> int:
    cmd = args.sweep_command
    if cmd is None:
        args._parser.print_help()
        return 2
    if cmd == "knobs":
        from ..tables import format_table
        from ..sweep.knobs import knob_table
        print(format_table(["knob", "kind", "range or choices", "meaning"], knob_table()))
        return 0
    if cmd == "list":
        from ..sweep.resources import sweep_specs
        for name, path in sorted(sweep_specs().items()):
            print(name)
        return 0
    if cmd == "status":
        from ..sweep.report import status_summary
        st = status_summary(args.dir)
        if args.json:
            print(json.dumps(st, indent=1, sort_keys=True))
        else:
            print(f"sweep {st['name']!r}: {st['points']} points ({st['pruned']} pruned); stored {st['stored']}: "
                  f"{st['ok']} ok, {st['infeasible']} infeasible, {st['failed']} failed; {st['remaining']} remaining")
            for reason, k in st["failure_reasons"].items():
                print(f"  failed x{k}: {reason}")
        return 0
    if cmd == "report":
        from ..sweep.report import sweep_report
        text, path = sweep_report(args.dir, args.output, figures=not args.no_figures)
        print(text)
        print(f"report: {path}")
        return 0
    # run
    from ..sweep.engine import run_sweep
    from ..sweep.report import sweep_report
    from ..sweep.spec import load_sweep

    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers: {args.workers} is out of range, allowed [1, inf)")
    if args.max_points is not None and args.max_points < 1:
        raise SweepError(f"--max-points: {args.max_points} is out of range, allowed [1, inf)")
    spec = load_sweep(args.spec)
    res = run_sweep(spec, args.output, workers=args.workers, scheduler=args.scheduler,
                    progress=not args.quiet, retry_failed=args.retry_failed, max_points=args.max_points)
    st = ", ".join(f"{v} {k}" for k, v in sorted(res.statuses.items())) or "nothing new"
    pruned = sum(res.pruned.values())
    rate = res.ran / res.elapsed_s if res.elapsed_s > 0 else 0.0
    print(f"sweep {spec.name!r}: {res.total} points ({pruned} pruned by constraints), {res.skipped} already stored, "
          f"ran {res.ran} ({st}) in {res.elapsed_s:.1f} s on {res.engine} with {res.workers} worker(s), "
          f"{rate:.2f} points/s, workers busy {100 * res.busy:.0f}% of the time")
    if not args.no_report:
        _, path = sweep_report(args.output)
        print(f"report: {path}")
    return 0
