"""Packet-switched topology generators: build time, build + summary time, peak memory.

For each family (fat-tree, leaf-spine, 3-tier Clos, rail-optimized, DGX
cluster) from about 1k to 524k GPUs, every case runs in a fresh forked process
(``measure``) and reports wall time and the growth of resident memory.  The
baseline, measured in the same run, builds the same fabric the straightforward
way: a ``networkx.DiGraph`` with one ``add_edge`` per link direction (with its
attributes), then :meth:`Fabric.from_networkx`.  It runs at the sizes where it
is expected to finish within about a minute (extrapolated linearly from the
previous size).

Catalog switches have 64 ports, which caps a 3-tier Clos at 65,536 GPUs; the
524,288-GPU cases use a hypothetical 128-port switch derived from
``tomahawk5`` (a 102.4 Tb/s, 128 x 800G part), passed as a spec.
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from ocsnet import hardware
from ocsnet.fabric import Fabric
from ocsnet.topology import clos, dgx_cluster, fat_tree, leaf_spine, rail_optimized
from ocsnet.topology.metrics import summary

from ._util import measure, mib, print_table

NX_BUDGET_S = 60.0


def _radix128():
    base = hardware.switch("tomahawk5")
    return dataclasses.replace(base, name="radix128", ports=128,
                               description="hypothetical 128 x 800G switch for benchmarks (Tomahawk 6 class)")


def _cases(quick: bool):
    """(family, label, n_gpus, builder) in increasing size."""
    big = _radix128()
    cases = [
        ("fat_tree", "k=16", 1024, lambda: fat_tree(16)),
        ("fat_tree", "k=32", 8192, lambda: fat_tree(32)),
        ("fat_tree", "k=64", 65536, lambda: fat_tree(64)),
        ("fat_tree", "k=128*", 524288, lambda: fat_tree(128, switch=big)),
        ("leaf_spine", "32/leaf", 1024, lambda: leaf_spine(1024, gpus_per_leaf=32)),
        ("leaf_spine", "32/leaf", 2048, lambda: leaf_spine(2048, gpus_per_leaf=32)),
        ("clos", "3 tiers", 1024, lambda: clos(1024, tiers=3)),
        ("clos", "3 tiers", 8192, lambda: clos(8192, tiers=3)),
        ("clos", "3 tiers, 3:1", 49152, lambda: clos(49152, tiers=3, oversubscription=3.0)),
        ("clos", "3 tiers", 65536, lambda: clos(65536, tiers=3)),
        ("clos", "3 tiers*", 524288, lambda: clos(524288, tiers=3, switch=big)),
        ("rail_optimized", "8/node", 1024, lambda: rail_optimized(128)),
        ("rail_optimized", "8/node", 8192, lambda: rail_optimized(1024)),
        ("rail_optimized", "8/node", 65536, lambda: rail_optimized(8192)),
        ("rail_optimized", "8/node*", 524288, lambda: rail_optimized(65536, switch=big)),
        ("dgx_cluster", "32 nodes/SU", 1024, lambda: dgx_cluster(128, nodes_per_leaf=32)),
        ("dgx_cluster", "32 nodes/SU", 8192, lambda: dgx_cluster(1024, nodes_per_leaf=32)),
        ("dgx_cluster", "32 nodes/SU", 65536, lambda: dgx_cluster(8192, nodes_per_leaf=32)),
        ("dgx_cluster", "64 nodes/SU*", 524288, lambda: dgx_cluster(65536, nodes_per_leaf=64, switch=big)),
    ]
    if quick:
        seen, out = set(), []
        for c in cases:
            if c[0] not in seen:
                seen.add(c[0])
                out.append(c)
        return out
    return cases


def _build(builder):
    f = builder()
    keys = ("tiers", "gpus_per_leaf", "uplinks_per_leaf", "n_leaves", "leaves_per_pod", "gpus_per_node")
    return {"n_nodes": f.n_nodes, "n_edges": f.n_edges, "meta": {k: f.meta.get(k) for k in keys},
            "switch": f.meta["switch"], "link": f.meta["link"], "gpu": f.meta["gpu"], "host_Bps": f.meta["host_Bps"],
            "nvswitch": f.meta.get("nvswitch"), "family": f.meta["generator"]}


def _build_summary(builder):
    s = summary(builder())
    return {k: s[k] for k in ("bisection_TBps", "diameter_hops", "avg_hops", "bisection_method", "diameter_method")}


def _nx_baseline(info, switch):
    """The same fabric built link by link in networkx, then wrapped."""
    m = info["meta"]
    gs = hardware.gpu(info["gpu"])
    ss = switch if switch is not None else hardware.switch(info["switch"])
    lk = hardware.link(info["link"])
    tiers, d, u, L = m["tiers"], m["gpus_per_leaf"], m["uplinks_per_leaf"], m["n_leaves"]
    p = m["leaves_per_pod"] or L
    g_node = m["gpus_per_node"]
    rail = info["family"] in ("rail_optimized", "dgx_cluster")
    n_gpus = info["n_gpus"]
    g = nx.DiGraph()
    for i in range(n_gpus):
        g.add_node(i, kind="gpu", model=gs.name)

    def link(a, b, cap, spec, lat_a, lat_b):
        g.add_edge(a, b, capacity_Bps=cap, latency_s=spec.latency_s + lat_b, tech=spec.tech, link=spec.name)
        g.add_edge(b, a, capacity_Bps=cap, latency_s=spec.latency_s + lat_a, tech=spec.tech, link=spec.name)

    def switch_node(key):
        if key not in g:
            g.add_node(key, kind="packet_switch", model=ss.name)
        return key

    for i in range(n_gpus):
        leaf = (i // g_node // d) * g_node + i % g_node if rail else i // d
        link(i, switch_node(("leaf", leaf)), info["host_Bps"], lk, 0.0, ss.latency_s)
    for leaf in range(L):
        for j in range(u):
            top = ("spine", j) if tiers == 2 else ("agg", leaf // p, j)
            link(("leaf", leaf), switch_node(top), ss.port_Bps, lk, ss.latency_s, ss.latency_s)
    if tiers == 3:
        for pod in range(-(-L // p)):
            for j in range(u):
                for i in range(p):
                    link(("agg", pod, j), switch_node(("core", j, i)), ss.port_Bps, lk, ss.latency_s, ss.latency_s)
    if info["nvswitch"]:
        nvs = hardware.switch(info["nvswitch"])
        nvl = hardware.link(nvs.port_link)
        for i in range(n_gpus):
            key = ("nvswitch", i // g_node)
            if key not in g:
                g.add_node(key, kind="nvswitch", model=nvs.name)
            link(i, key, gs.scaleup_Bps, nvl, 0.0, nvs.latency_s)
    f = Fabric.from_networkx(g, gpus=range(n_gpus))
    return {"n_nodes": f.n_nodes, "n_edges": f.n_edges}


def main(quick: bool = False) -> None:
    rows, srows = [], []
    last_nx = {}
    big = _radix128()
    for family, label, n_gpus, builder in _cases(quick):
        b = measure(_build, builder, timeout_s=600)
        s = measure(_build_summary, builder, timeout_s=600)
        for what, r in (("build", b), ("build+summary", s)):
            if r["time_s"] is None:
                print(f"{what} {family} {label}: {r['error']}")
        info = b["result"]
        nx_t = nx_mem = ratio = None
        prev = last_nx.get(family)
        expect = prev[0] * n_gpus / prev[1] if prev else 0.0
        if info is not None and expect <= NX_BUDGET_S:
            info["n_gpus"] = n_gpus
            sw = big if label.endswith("*") else None
            r = measure(_nx_baseline, info, sw, timeout_s=4 * NX_BUDGET_S)
            if r["time_s"] is None:
                print(f"networkx baseline {family} {label}: {r['error']}")
            else:
                assert (r["result"]["n_nodes"], r["result"]["n_edges"]) == (info["n_nodes"], info["n_edges"])
                nx_t, nx_mem = r["time_s"], mib(r["peak_delta_B"])
                ratio = nx_t / b["time_s"]
                last_nx[family] = (nx_t, n_gpus)
        rows.append([family, label, n_gpus, info and info["n_nodes"], info and info["n_edges"],
                     b["time_s"], mib(b["peak_delta_B"]), s["time_s"], mib(s["peak_delta_B"]),
                     nx_t, nx_mem, ratio])
        if s["result"]:
            r = s["result"]
            srows.append([family, label, n_gpus, r["diameter_hops"], round(r["avg_hops"], 4), r["diameter_method"],
                          round(r["bisection_TBps"], 3), r["bisection_method"]])
    print_table("topology build time and peak memory (ours vs networkx add_edge baseline; * = 128-port switch)",
                ["family", "case", "n_gpus", "n_nodes", "n_edges", "build_s", "build_MiB", "build+summary_s",
                 "build+summary_MiB", "nx_build_s", "nx_MiB", "nx/ours"], rows)
    print_table("summary figures of the benchmarked fabrics",
                ["family", "case", "n_gpus", "diameter_hops", "avg_hops", "hops_method", "bisection_TBps",
                 "bisection_method"], srows)


if __name__ == "__main__":
    main()
