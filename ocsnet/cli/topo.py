"""``ocsnet topo``: list, build, inspect and draw fabrics.

::

    ocsnet topo list
    ocsnet topo build SPEC -o FILE [--set KEY=VALUE ...]    # FILE: .json, .graphml or .yml (ASTRA-sim)
    ocsnet topo info SPEC [--json] [--set KEY=VALUE ...]
    ocsnet topo draw SPEC -o PNG [--max-nodes N] [--set KEY=VALUE ...]

SPEC is a spec name (``ocsnet topo list``), a spec TOML path, a fabric file
written by ``topo build`` (``.json``, ``.graphml``) or an ASTRA-sim network
config (``.yml``, ``.yaml``).  ``--set`` overrides a spec parameter, its value
read as TOML (``--set n_gpus=64``, ``--set dims=[4,4]``, ``--set gpu=lite-netboost``).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

from ..errors import SpecError
from ..tables import format_table

__all__ = ["register", "run", "load_fabric", "info_rows", "draw_fabric"]

DRAW_MAX_NODES = 200          # default refusal size for drawings
DRAW_HARD_LIMIT = 2000        # beyond this a node-link picture is unreadable at any size
_FILE_SUFFIXES = (".json", ".graphml")
_ASTRA_SUFFIXES = (".yml", ".yaml")
_IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def register(subparsers) -> None:
    p = subparsers.add_parser("topo", help="list, build, inspect and draw fabrics",
                              description=__doc__.splitlines()[0])
    p.set_defaults(func=run, action=None)
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.add_parser("list", help="list the named fabric specs")
    b = sub.add_parser("build", help="build a fabric and write it to a file")
    b.add_argument("spec", metavar="SPEC")
    b.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file: .json (node-link), .graphml, or .yml (ASTRA-sim config)")
    i = sub.add_parser("info", help="print a fabric's metrics")
    i.add_argument("spec", metavar="SPEC")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d = sub.add_parser("draw", help="draw a small fabric to an image")
    d.add_argument("spec", metavar="SPEC")
    d.add_argument("-o", "--output", required=True, metavar="PNG", help="image file (.png, .svg or .pdf)")
    d.add_argument("--max-nodes", type=int, default=DRAW_MAX_NODES,
                   help=f"refuse fabrics with more nodes (default {DRAW_MAX_NODES}, at most {DRAW_HARD_LIMIT})")
    for sp in (b, i, d):
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec parameter (value in TOML syntax); repeatable")


def run(args) -> int:
    action = getattr(args, "action", None)
    if action is None:
        print(__doc__.strip())
        return 2
    return {"list": _list, "build": _build, "info": _info, "draw": _draw}[action](args)


# ---- loading -------------------------------------------------------------------------

def _overrides(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SpecError(f"--set: {item!r} is not KEY=VALUE")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise SpecError(f"--set: {item!r} has no key")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text            # a bare word such as lite-netboost
        out[key] = value
    return out


def load_fabric(spec: str, overrides: dict | None = None):
    """The fabric SPEC names: a spec name or TOML path, a fabric file, or an ASTRA-sim config."""
    from ..topology import astra, io
    from ..topology import spec as specs

    suffix = Path(spec).suffix.lower()
    if suffix in _FILE_SUFFIXES + _ASTRA_SUFFIXES:
        if overrides:
            raise SpecError(f"--set: only applies to spec names and TOML files, not to {spec!r}")
        if not Path(spec).is_file():
            raise SpecError(f"SPEC: no such file {spec!r}")
        return io.read(spec) if suffix in _FILE_SUFFIXES else astra.from_astra_yaml(spec)
    return specs.build(spec, **(overrides or {}))


# ---- actions ---------------------------------------------------------------------------

def _list(args) -> int:
    from ..topology import spec as specs

    rows = []
    for name in specs.list_specs():
        s = specs.load_spec(name)
        rows.append([name, s["generator"], s["description"]])
    if not rows:
        raise SpecError("spec: no specs found (built-in or in the topologies/ folders of OCSNET_PATH and --path)")
    print(format_table(["name", "generator", "description"], rows))
    return 0


def _build(args) -> int:
    from ..topology import astra, io

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in _FILE_SUFFIXES + _ASTRA_SUFFIXES:
        raise SpecError(f"--output: {str(out)!r} must end in {', '.join(_FILE_SUFFIXES + _ASTRA_SUFFIXES)}")
    fabric = load_fabric(args.spec, _overrides(args.set))
    if suffix in _ASTRA_SUFFIXES:
        astra.to_astra_yaml(fabric, out)
    else:
        io.write(fabric, out)
    print(f"wrote {out}: {fabric.name}, {fabric.n_gpus} GPUs, {fabric.n_nodes} nodes, {fabric.n_edges} directed edges")
    return 0


def info_rows(fabric) -> dict:
    """``metrics.summary`` plus, for fabrics with OCS planes, their circuit figures (unit-suffixed keys)."""
    from .. import units
    from ..topology import metrics

    s = dict(metrics.summary(fabric))
    om = fabric.meta.get("ocs")
    if isinstance(om, dict) and "ports_per_gpu" in om:
        s["ocs_ports_per_gpu"] = om["ports_per_gpu"]
        s["ocs_circuit_GBps"] = units.from_si("circuit_GBps", om["circuit_Bps"])
        s["ocs_reconfig_delay_us"] = units.from_si("reconfig_delay_us", om["reconfig_delay_s"])
        s["ocs_circuit_latency_ns"] = units.from_si("circuit_latency_ns", om["circuit_latency_s"])
        s["ocs_domain_shape"] = "x".join(str(x) for x in om.get("domain_shape", []))
        if "max_circuit_hops" in om:
            s["ocs_max_circuit_hops"] = om["max_circuit_hops"]
        if "bisection_bound_Bps" in om:
            s["ocs_bisection_bound_TBps"] = units.from_si("bisection_bound_TBps", om["bisection_bound_Bps"])
    return s


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.6g}"
    return str(v)


def _info(args) -> int:
    fabric = load_fabric(args.spec, _overrides(args.set))
    s = info_rows(fabric)
    if args.json:
        print(json.dumps(s, sort_keys=False, indent=2, default=str))
    else:
        print(format_table(["metric", "value"], [[k, _fmt(v)] for k, v in s.items()]))
    return 0


def _draw(args) -> int:
    out = Path(args.output)
    if out.suffix.lower() not in _IMAGE_SUFFIXES:
        raise SpecError(f"--output: {str(out)!r} must end in {', '.join(_IMAGE_SUFFIXES)}")
    if not 1 <= args.max_nodes <= DRAW_HARD_LIMIT:
        raise SpecError(f"--max-nodes: {args.max_nodes} is out of range, allowed [1, {DRAW_HARD_LIMIT}]")
    fabric = load_fabric(args.spec, _overrides(args.set))
    if fabric.n_nodes > args.max_nodes:
        raise SpecError(f"draw: fabric {fabric.name!r} has {fabric.n_nodes} nodes, over the drawing limit of "
                        f"{args.max_nodes} (--max-nodes, at most {DRAW_HARD_LIMIT}); draw a smaller spec, "
                        "e.g. one of the small-* specs, or use --set to shrink it")
    draw_fabric(fabric, out)
    print(f"wrote {out}: {fabric.name}, {fabric.n_nodes} nodes")
    return 0


# ---- drawing -----------------------------------------------------------------------------

_KIND_COLOR = {"gpu": "#2ca02c", "packet_switch": "#1f77b4", "nvswitch": "#9467bd", "ocs": "#ff7f0e", "nic": "#7f7f7f"}
_KIND_LABEL = {"gpu": "GPU", "packet_switch": "packet switch", "nvswitch": "NVSwitch", "ocs": "OCS", "nic": "NIC"}
_TECH_COLOR = {"copper": "#8c564b", "pluggable": "#7f7f7f", "cpo": "#4c72b0", "circuit": "#ff7f0e"}


def _positions(fabric):
    """Node coordinates: a grid for 2-D tori, a circle for other GPU-only fabrics, else layers."""
    import numpy as np

    n = fabric.n_nodes
    pos = np.zeros((n, 2))
    meta = fabric.meta
    gpu_only = bool((fabric.kind == "gpu").all())
    rank = fabric.gpu_rank
    if gpu_only and meta.get("generator") == "torus" and len(meta.get("dims", [])) == 2:
        k0 = meta["dims"][0]
        pos[fabric.gpus] = np.stack([np.arange(n) % k0, -(np.arange(n) // k0)], axis=1)
        return pos
    if gpu_only:
        t = 2 * np.pi * np.arange(n) / n
        pos[fabric.gpus] = np.stack([np.sin(t), np.cos(t)], axis=1) * max(1.0, n / 6)
        return pos
    tier = fabric.node_attrs.get("tier")
    layer = np.zeros(n)
    layer[fabric.kind == "packet_switch"] = 1
    if tier is not None:
        sw = fabric.kind == "packet_switch"
        layer[sw] = np.maximum(tier[sw], 1)
    layer[fabric.kind == "nvswitch"] = 0.5
    layer[fabric.kind == "ocs"] = -1
    layer[fabric.kind == "nic"] = 0.5
    width = max(int(np.max(np.unique(layer, return_counts=True)[1])), 2)
    for y in np.unique(layer):
        idx = np.flatnonzero(layer == y)
        if y == 0:
            idx = idx[np.argsort(rank[idx])]        # GPUs in rank order
        pos[idx, 0] = (np.arange(len(idx)) + 0.5) * width / len(idx)
        pos[idx, 1] = y * max(2.0, width / 4)
    return pos


def draw_fabric(fabric, path) -> None:
    """Draw a (small) fabric: nodes coloured by kind, links by technology, with a legend."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    pos = _positions(fabric)
    fig = Figure(figsize=(10, 7), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    once = fabric.src < fabric.dst
    rev = fabric.edge_ids(fabric.dst, fabric.src)
    once |= rev < 0                                  # one-way edges are drawn too
    techs = sorted(set(fabric.tech[once].tolist()))
    grid = fabric.meta.get("generator") == "torus" and bool((fabric.kind == "gpu").all())
    length = np.linalg.norm(pos[fabric.src] - pos[fabric.dst], axis=1)
    wrap = grid & (length > 1.5)                     # torus wrap-around links: drawn as arcs
    handles = []
    for t in techs:
        color = _TECH_COLOR.get(t, "#999999")
        style = "dashed" if t == "circuit" else "solid"
        sel = once & (fabric.tech == t)
        straight = sel & ~wrap
        segs = np.stack([pos[fabric.src[straight]], pos[fabric.dst[straight]]], axis=1)
        ax.add_collection(LineCollection(segs, colors=color, linewidths=0.8, alpha=0.6, linestyles=style, zorder=1))
        for e in np.flatnonzero(sel & wrap):
            ax.add_patch(FancyArrowPatch(pos[fabric.src[e]], pos[fabric.dst[e]], arrowstyle="-", color=color,
                                         alpha=0.6, linewidth=0.8, linestyle=style,
                                         connectionstyle="arc3,rad=0.25", zorder=1))
        handles.append(Line2D([], [], color=color, linestyle=style, label=f"{t} link"))
    size = 120 if fabric.n_nodes <= 40 else 60 if fabric.n_nodes <= 100 else 25
    for k in sorted(set(fabric.kind.tolist()), key=lambda x: list(_KIND_COLOR).index(x) if x in _KIND_COLOR else 99):
        idx = np.flatnonzero(fabric.kind == k)
        ax.scatter(pos[idx, 0], pos[idx, 1], s=size, c=_KIND_COLOR.get(k, "#333333"),
                   marker="o" if k == "gpu" else "s", edgecolors="black", linewidths=0.5, zorder=2,
                   label=f"{_KIND_LABEL.get(k, k)} ({len(idx)})")
    if fabric.n_nodes <= 64:
        for r, node in enumerate(fabric.gpus):
            ax.annotate(str(r), pos[node], fontsize=6, ha="center", va="center", zorder=3)
    node_handles, node_labels = ax.get_legend_handles_labels()
    ax.legend(node_handles + handles, node_labels + [h.get_label() for h in handles], loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(f"{fabric.name}: {fabric.n_gpus} GPUs, {fabric.n_nodes} nodes, {fabric.n_edges // 2} links "
                 f"({fabric.meta.get('generator', 'custom')})", fontsize=10)
    if bool((fabric.kind == "gpu").all()):
        ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale()
    ax.margins(0.08)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None} if Path(path).suffix.lower() == ".png" else None)


