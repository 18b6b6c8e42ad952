"""``ocsnet validate``: hold ocsnet's models against independent numbers.

Examples::

    ocsnet validate --quick
    ocsnet validate --only collectives --only flow -v
    ocsnet validate --json -o validation.json
    ocsnet validate --measured -v          # against published measurements, with sources
    ocsnet validate --measured --calibration roofline

Every check compares a number ocsnet computes with one computed another way
(closed form, LP, brute force, ASTRA-sim's formula, a published figure) and
passes when they agree within its tolerance.  Prints one row per check and a
summary line; the exit status is 0 when every check agrees, 1 when any
disagrees, 2 for bad arguments.  ``-o`` also writes the JSON report (the
same for the same arguments: no wall times in it unless ``--timing``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SpecError


def register(subparsers) -> None:
    from ..validation import GROUPS

    p = subparsers.add_parser("validate", help="check the models against closed forms, LPs and published numbers",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--quick", action="store_true", help="every check on its smallest instance (a few seconds)")
    p.add_argument("--only", action="append", default=None, metavar="GROUP",
                   help=f"run only this group (repeatable): {', '.join(GROUPS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of the random instances (default 0)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="also write the JSON report here")
    p.add_argument("--timing", action="store_true", help="put each check's wall time in the JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print what each check compares, and its note")
    p.add_argument("--measured", action="store_true",
                   help="run the measured cases (NCCL, TensorRT-LLM, FasterTransformer): source, prediction, error")
    p.add_argument("--calibration", default="measured", metavar="NAME",
                   help="calibration of the per-layer model for --measured (default measured; roofline: none)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..validation import GROUPS, run as run_validation

    for g in args.only or ():
        if g not in GROUPS:
            raise SpecError(f"--only: {g!r} is not a validation group, expected one of {', '.join(GROUPS)}")
    if args.measured:
        return _run_measured(args)
    report = run_validation(quick=args.quick, groups=args.only, seed=args.seed)
    text = report.to_json(timing=args.timing)
    if args.output:
        path = Path(args.output)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise SpecError(f"--output: cannot write {args.output!r} ({e.strerror or e})") from None
    if args.json:
        print(text, end="")
    else:
        print(report.table(verbose=args.verbose))
        print(report.summary())
        if args.output:
            print(f"wrote {args.output}")
    return 0 if report.ok else 1


def _run_measured(args) -> int:
    import json

    from ..evaluation.measured import GOAL_MAX, GOAL_MEDIAN, format_measured, measured_table, summary
    from ..workload.calibration import calibration

    calibration(args.calibration)                         # an unknown name fails here, naming the flag's field
    rows = measured_table(args.calibration)
    s = summary(rows)
    doc = {"format": "ocsnet-measured", "calibration": args.calibration, "summary": s, "cases": rows}
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise SpecError(f"--output: cannot write {args.output!r} ({e.strerror or e})") from None
    if args.json:
        print(text, end="")
    else:
        print(format_measured(rows, verbose=args.verbose))
        if args.output:
            print(f"wrote {args.output}")
    return 0 if s["median_abs_error"] <= GOAL_MEDIAN and s["max_abs_error"] <= GOAL_MAX else 1
