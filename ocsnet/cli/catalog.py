"""``ocsnet catalog``: the hardware and model entries, where each comes from, and the sources of its numbers.

``ocsnet catalog list [KIND]`` prints every entry (built-in and from the
user folders of ``OCSNET_PATH`` and ``--path``) with its origin;
``ocsnet catalog show NAME`` prints one entry, field by field, with the source
of every number.  Both load the entries through the same strict checks as
every other command, so a broken user file is reported here (one line, exit 2).
"""

from __future__ import annotations

import json

from ..errors import SpecError


def register(sub) -> None:
    p = sub.add_parser("catalog", help="list the catalog (GPUs, links, switches, OCS, models) and show an entry",
                       description="The catalog entries, built-in and from user folders, with their origin "
                                   "and the source of every number.")
    csub = p.add_subparsers(dest="action", metavar="ACTION")
    ls = csub.add_parser("list", help="every entry of one kind (or of all) and where it comes from")
    ls.add_argument("kind", nargs="?", help="gpus, links, switches, ocs or models (default: every kind)")
    ls.set_defaults(func=_list)
    sh = csub.add_parser("show", help="one entry: every field, its source, and its origin")
    sh.add_argument("name", help="entry name, e.g. h100-sxm or llama3-70b")
    sh.add_argument("--kind", help="the kind, when the name exists in several")
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(func=_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _kinds(kind: str | None) -> list[str]:
    from .. import checks, hardware

    kinds = hardware.catalog_kinds()
    if kind is None:
        return kinds
    checks.choice("KIND", kind, kinds)
    return [kind]


def _load(kind: str) -> dict:
    """Load a kind through its checking loader; the raw entries with their origins."""
    import importlib

    from .. import hardware

    if kind in hardware.CATALOG_KINDS:
        mod, fn = hardware.CATALOG_KINDS[kind].split(":")
        getattr(importlib.import_module(mod), fn)()
    return hardware.catalog_entries(kind)


def _list(args) -> int:
    from ..tables import format_table

    rows = []
    for kind in _kinds(args.kind):
        for name, (entry, origin) in sorted(_load(kind).items()):
            rows.append([kind, name, origin, entry.get("description", "")])
    print(format_table(["kind", "name", "origin", "description"], rows, free_last=True))
    return 0


def _show(args) -> int:
    from .. import hardware, units
    from ..tables import format_table

    found = [(k, _load(k)[args.name]) for k in _kinds(args.kind) if args.name in _load(k)]
    if not found:
        known = sorted({n for k in _kinds(args.kind) for n in _load(k)})
        raise SpecError(f"NAME: unknown entry {args.name!r}; known: {', '.join(known)}")
    if len(found) > 1:
        raise SpecError(f"NAME: {args.name!r} is in several kinds ({', '.join(k for k, _ in found)}); give --kind")
    kind, (entry, origin) = found[0]
    src = entry.get("source", {})
    if args.json:
        print(json.dumps({"kind": kind, "name": args.name, "origin": origin, "entry": entry}, indent=2, sort_keys=True))
        return 0
    where = f"catalog/{kind}.toml (built-in)" if origin == "built-in" else origin
    print(f"{kind}.{args.name}  from {where}")
    if "description" in entry:
        print(entry["description"])
    rows = [[k, v, src.get(k, "")] for k, v in entry.items() if k not in ("source", "description")]
    print(format_table(["field", "value", "source"], rows, free_last=True))
    if kind == "gpus" and "parent" in entry:
        g = hardware.gpu(args.name)
        derived = [["bf16_dense_TFLOPs", units.from_si("bf16_dense_TFLOPs", g.bf16_flops)],
                   ["hbm_GB", units.from_si("hbm_GB", g.hbm_bytes)],
                   ["hbm_bandwidth_GBps", units.from_si("hbm_bandwidth_GBps", g.hbm_Bps)],
                   ["network_bandwidth_GBps", units.from_si("network_bandwidth_GBps", g.network_Bps)],
                   ["tdp_W", g.tdp_W], ["h100_equivalents", g.h100_equivalents]]
        print(f"\nderived from {g.parent} (ocsnet.hardware.lite_gpu):")
        print(format_table(["field", "value"], derived))
    return 0
