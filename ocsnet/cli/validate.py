"""``ocsnet validate``: hold ocsnet's models against independent numbers.

Examples::

    ocsnet validate --quick
    ocsnet validate --only collectives --only flow -v
    ocsnet validate --json -o validation.json

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
    p.set_defaults(func=run)


def run(args) -> int:
    from ..validation import GROUPS, run as run_validation

    for g in args.only or ():
        if g not in GROUPS:
            raise SpecError(f"--only: {g!r} is not a validation group, expected one of {', '.join(GROUPS)}")
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
