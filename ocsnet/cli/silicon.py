"""``ocsnet silicon``: the silicon model of a GPU cut into smaller dies.

Examples::

    ocsnet silicon
    ocsnet silicon --fractions 1,1/2,1/4,1/8,1/16 --gpu h100-sxm --io cpo
    ocsnet silicon --set yield.defect_density_per_cm2=0.1 --json
    ocsnet silicon --plot silicon.png

For each fraction of the parent die: dies per wafer (exact count), yield
(die x wafer process), the cost of a good die, what packaging adds (interposer,
assembly, yield losses), the cost of a good GPU, the cost of one parent's worth
of silicon (absolute and relative to the parent), power at nominal clock,
network bandwidth from the die's shoreline and its bandwidth-to-compute ratio
against the parent's, and the highest clock under the cooling limit.  Every
parameter is in the catalog's silicon.toml with its source; ``--set`` overrides one.
"""

from __future__ import annotations

import argparse
import json

from ..errors import SpecError

_FMT = {"fraction": "{}", "die_mm2": "{:.1f}", "dies_per_wafer": "{:.0f}", "yield": "{:.3f}",
        "good_die_usd": "{:.0f}", "package_usd": "{:.0f}", "hbm_usd": "{:.0f}", "gpu_usd": "{:.0f}",
        "cost_per_h100e_usd": "{:.0f}", "cost_per_h100e": "{:.3f}", "power_W": "{:.0f}",
        "network_GBps": "{:.1f}", "bw_to_compute_vs_parent": "{:.2f}", "max_clock": "{:.3f}"}


def register(subparsers) -> None:
    from ..silicon.names import DEFAULT_FRACTIONS, IO_KINDS

    p = subparsers.add_parser("silicon", help="dies per wafer, yield, cost, power and shoreline per die fraction",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    p.add_argument("--fractions", default=",".join(DEFAULT_FRACTIONS),
                   help=f"comma-separated fractions of the parent die in (0, 1] (default {','.join(DEFAULT_FRACTIONS)})")
    p.add_argument("--gpu", default="h100-sxm", help="parent GPU from the catalog (default h100-sxm)")
    p.add_argument("--io", default="cpo", choices=IO_KINDS, help="network I/O of the smaller dies (default cpo)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a silicon parameter, e.g. wafer.price_usd=20000 (repeatable)")
    p.add_argument("--allow-stitching", action="store_true", help="allow dies larger than the reticle")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="write a figure of cost per H100-equivalent and yield against fraction")
    p.set_defaults(func=run)


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set: {item!r} is not KEY=VALUE (e.g. wafer.price_usd=20000)")
        key, value = key.strip(), value.strip()
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def run(args) -> int:
    from .. import hardware
    from ..silicon import params
    from ..silicon.table import COLUMNS, fraction_rows

    p = params(_overrides(args.set))
    parent = hardware.gpu(args.gpu)
    fractions = [f.strip() for f in str(args.fractions).split(",") if f.strip()]
    if not fractions:
        raise SpecError("--fractions: give at least one fraction in (0, 1], e.g. 1,1/2,1/4")
    if args.plot and not str(args.plot).lower().endswith((".png", ".svg", ".pdf")):
        raise SpecError(f"--plot: {args.plot!r} must end in .png, .svg or .pdf")
    rows = fraction_rows(parent, fractions, io=args.io, params=p, allow_stitching=args.allow_stitching)
    if args.plot:
        from ..plot import silicon_fractions

        fig = silicon_fractions(rows, title=f"{parent.name} cut into smaller dies ({args.io} I/O)").figure
        fig.savefig(args.plot, dpi=120, bbox_inches="tight")
    if args.json:
        doc = {"gpu": parent.name, "io": args.io, "rows": rows,
               "parameters": {k: v for k, v in sorted(p.values.items())}}
        print(json.dumps(doc, indent=1, sort_keys=True))
        return 0
    cells = [[_FMT[c].format(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(COLUMNS)]
    print(f"{parent.name} cut into smaller dies ({args.io} I/O, nominal clock; max_clock under the cooling limit)")
    print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths)))
    for x in cells:
        print("  ".join(v.rjust(w) for v, w in zip(x, widths)))
    assumptions = sorted(k for k in p.values if p.is_assumption(k))
    base = fraction_rows(parent, ["1"], io=args.io, params=p, allow_stitching=True)[0]["gpu_usd"]
    print(f"cost_per_h100e: cost of one {parent.name}'s worth of silicon over the modelled {parent.name} "
          f"(${base:,.0f} to build; Epoch AI cites ${p['tco.h100_build_usd']:,.0f} for the H100)")
    print(f"assumptions (see catalog silicon.toml): {', '.join(assumptions)}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
