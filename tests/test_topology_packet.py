"""Packet-switched generators: closed forms, structure, conventions, and every bad parameter.

Truth comes from outside the generators: the formulas of the papers, an
independent loop-by-loop networkx construction, networkx BFS, and brute-force
minimum balanced cuts (tests/test_topology_metrics.py checks the CP-SAT cut
against brute force; here it checks the closed forms).
"""

import dataclasses
import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from ocsnet import hardware
from ocsnet.errors import SpecError
from ocsnet.topology import clos, dgx_cluster, fat_tree, leaf_spine, rail_optimized
from ocsnet.topology.metrics import bisection, counts, hops

TH5 = hardware.switch("tomahawk5")
C = TH5.port_Bps


def degrees(f):
    return np.bincount(f.src, minlength=f.n_nodes), np.bincount(f.dst, minlength=f.n_nodes)


def tiers(f):
    return np.bincount(f.node_attrs["tier"][f.kind == "packet_switch"], minlength=4)


def nx_hops(f):
    """Diameter and mean GPU-to-GPU hops by networkx BFS (independent of metrics.hops)."""
    g = f.graph
    gpus = f.gpus.tolist()
    dist = [nx.single_source_shortest_path_length(g, s) for s in gpus]
    d = np.array([[row[t] for t in gpus] for row in dist], dtype=float)
    off = ~np.eye(len(gpus), dtype=bool)
    return int(d[off].max()), float(d[off].mean())


# ---- fat-tree -----------------------------------------------------------------------

@pytest.mark.parametrize("k", [2, 4, 6, 8, 16])
def test_fat_tree_closed_forms(k):
    f = fat_tree(k)
    c = counts(f)
    assert f.n_gpus == k ** 3 // 4
    assert c["n_packet_switches"] == 5 * k * k // 4
    assert list(tiers(f)[1:]) == [k * k // 2, k * k // 2, k * k // 4]
    assert c["n_links"] == 3 * k ** 3 // 4 and f.n_edges == 3 * k ** 3 // 2
    out, inn = degrees(f)
    sw = f.kind == "packet_switch"
    assert np.all(out[sw] == k) and np.all(inn[sw] == k)      # every switch uses exactly k ports
    assert np.all(out[f.gpus] == 1)
    assert f.meta["diameter_hops"] == (6 if k >= 2 else 0)
    assert f.meta["bisection_Bps"] == pytest.approx(k ** 3 / 8 * C)
    # mean hops: k/2-1 GPUs 2 away, (k/2-1)k/2 4 away, (k-1)k^2/4 6 away, over N-1 others
    h = k // 2
    avg = (2 * (h - 1) + 4 * (h - 1) * h + 6 * (k - 1) * k * k / 4) / (k ** 3 / 4 - 1)
    assert f.meta["avg_hops"] == pytest.approx(avg)
    assert c["n_transceivers"] == 2 * c["n_links"]         # 800G port = 800G module, two ends per link


def test_fat_tree_matches_al_fares_construction():
    """Isomorphic to a loop-by-loop build of Al-Fares et al.'s description, switch tiers kept."""
    k = 4
    h = k // 2
    g = nx.Graph()
    for p in range(k):
        for e in range(h):
            g.add_node(("edge", p, e), t=1)
            g.add_node(("agg", p, e), t=2)
            for i in range(h):
                g.add_edge(("host", p, e, i), ("edge", p, e))
                g.add_edge(("edge", p, e), ("agg", p, i))
    for j in range(h):
        for i in range(h):
            g.add_node(("core", j, i), t=3)
            for p in range(k):
                g.add_edge(("core", j, i), ("agg", p, j))
    for u in g:
        g.nodes[u].setdefault("t", 0)
    f = fat_tree(k)
    mine = nx.Graph()
    mine.add_nodes_from((i, {"t": int(t)}) for i, t in enumerate(f.node_attrs["tier"]))
    mine.add_edges_from(zip(f.src.tolist(), f.dst.tolist()))
    assert nx.vf2pp_is_isomorphic(g, mine, node_label="t")


@pytest.mark.parametrize("k", [2, 4, 8])
def test_fat_tree_hops_agree_with_networkx_bfs(k):
    f = fat_tree(k)
    d, avg = nx_hops(f)
    assert d == f.meta["diameter_hops"]
    assert avg == pytest.approx(f.meta["avg_hops"])


@pytest.mark.parametrize("host_Bps", [None, 50e9, 150e9])
def test_fat_tree_bisection_closed_form_is_the_exact_minimum_cut(host_Bps):
    f = fat_tree(4, host_Bps=host_Bps)
    h = C if host_Bps is None else host_Bps
    assert f.meta["bisection_Bps"] == pytest.approx(8 * min(h, C))
    b = bisection(f, "exact", time_limit_s=60)
    assert b["optimal"]
    assert b["bisection_Bps"] == pytest.approx(f.meta["bisection_Bps"])


def test_fat_tree_capacities_latency_and_tech():
    f = fat_tree(4, host_Bps=40e9)
    lk = hardware.link("pluggable-800g")
    gpu, sw = f.kind[f.src] == "gpu", f.kind[f.dst] == "gpu"
    assert np.all(f.capacity_Bps[gpu | sw] == 40e9)
    assert np.all(f.capacity_Bps[~(gpu | sw)] == C)
    # latency = link + the switch the edge enters; an edge into a GPU adds nothing
    assert np.allclose(f.latency_s[sw], lk.latency_s)
    assert np.allclose(f.latency_s[~sw], lk.latency_s + TH5.latency_s)
    assert set(f.tech) == {"pluggable"} and set(f.edge_attrs["link"]) == {"pluggable-800g"}
    assert f.node_attrs["model"][f.gpus[0]] == "lite-base" and f.meta["gpu"] == "lite-base"
    assert set(f.node_attrs["model"][f.kind == "packet_switch"]) == {"tomahawk5"}
    # pods: every GPU, edge and aggregation switch of pod p, cores none
    pod, t = f.node_attrs["pod"], f.node_attrs["tier"]
    assert np.all(pod[t == 3] == -1) and set(pod[f.gpus]) == set(range(4))
    assert np.all(pod[f.src[gpu]] == pod[f.dst[gpu]])


@pytest.mark.parametrize("kw", [{"link": "cpo"}, {"switch": "tomahawk5-cpo"}])
def test_cpo_is_a_link_technology_any_generator_can_use(kw):
    for f in (fat_tree(4, **kw), leaf_spine(32, gpus_per_leaf=8, **kw), rail_optimized(4, **kw)):
        c = counts(f)
        assert set(f.tech) == {"cpo"} and c["n_links_cpo"] == c["n_links"]
        assert c["n_cpo_ports"] == 2 * c["n_links"] and c["n_transceivers"] == 0
        cpo = hardware.link("cpo")
        assert np.isclose(f.latency_s.min(), cpo.latency_s)


def test_build_is_deterministic_and_meta_is_json():
    a, b = fat_tree(8), fat_tree(8)
    for fld in ("src", "dst", "capacity_Bps", "latency_s", "tech"):
        assert np.array_equal(getattr(a, fld), getattr(b, fld))
    for f in (a, leaf_spine(40, gpus_per_leaf=8), clos(100, tiers=3, radix=8), rail_optimized(5),
              dgx_cluster(3)):
        text = json.dumps(f.meta, sort_keys=True)
        assert json.loads(text)["generator"] == f.meta["generator"]
        assert "params" in f.meta and f.meta["gpu"]


def test_large_fat_tree_builds_with_closed_forms():
    f = fat_tree(32)
    assert f.n_gpus == 8192 and f.n_edges == 3 * 32 ** 3 // 2
    assert f.meta["bisection_Bps"] == pytest.approx(32 ** 3 / 8 * C)


def test_custom_switch_spec_is_recorded_for_pricing():
    big = dataclasses.replace(TH5, name="radix-16-test", ports=16, power_W=123.0)
    f = fat_tree(16, switch=big)
    assert f.meta["hardware"]["radix-16-test"]["ports"] == 16
    assert "tomahawk5" not in f.meta["hardware"]
    with pytest.raises(SpecError, match="k"):
        fat_tree(18, switch=big)


# ---- leaf-spine ----------------------------------------------------------------------

@pytest.mark.parametrize("n,d,o", [(64, 16, 1.0), (48, 8, 1.0), (40, 8, 2.0), (96, 24, 3.0), (7, 16, 1.0)])
def test_leaf_spine_closed_forms(n, d, o):
    f = leaf_spine(n, gpus_per_leaf=d, oversubscription=o)
    L, u = math.ceil(n / d), math.ceil(d / o)
    assert list(tiers(f)[1:3]) == [L, u]
    assert counts(f)["n_links"] == n + L * u
    out, _ = degrees(f)
    leaves = f.node_attrs["tier"] == 1
    assert np.all(out[leaves] <= d + u) and np.all(out[f.node_attrs["tier"] == 2] == L)
    assert f.meta["diameter_hops"] == (4 if L > 1 else 2)
    dd, avg = nx_hops(f)
    assert dd == f.meta["diameter_hops"] and avg == pytest.approx(f.meta["avg_hops"])


@given(n=st.integers(1, 48), d=st.integers(1, 12), o=st.sampled_from([1.0, 1.5, 2.0, 3.0, 4.0]),
       h=st.sampled_from([None, 25e9, 100e9, 200e9]))
@settings(max_examples=25, deadline=None)
def test_leaf_spine_properties_and_exact_bisection(n, d, o, h):
    # At most 16 leaves: CP-SAT proves these cuts in seconds, but e.g. 32 one-GPU leaves with
    # 2 spines (host_Bps = 2 ports) exhaust its deterministic work limit without proof.
    assume(-(-n // d) <= 16)
    f = leaf_spine(n, gpus_per_leaf=d, oversubscription=o, host_Bps=h)
    hb = C if h is None else h
    u = f.meta["uplinks_per_leaf"]
    assert d * hb / (u * C) <= o + 1e-9                 # spines rounded up: never more oversubscribed
    assert (u - 1) * C < d * hb / o or u == 1          # ... and not more spines than needed
    b = bisection(f, "exact", time_limit_s=30)
    assert b["optimal"]
    # hose lower bound holds always; the closed form, where given, is the exact minimum
    assert b["bisection_Bps"] >= (n // 2) * min(hb, u * C / d) * (1 - 1e-9)
    if "bisection_Bps" in f.meta:
        assert b["bisection_Bps"] == pytest.approx(f.meta["bisection_Bps"])
    if n % (2 * d) == 0:
        assert "bisection_Bps" in f.meta                # full leaves split evenly: closed form known


# ---- Clos -----------------------------------------------------------------------------

@pytest.mark.parametrize("k", [4, 6, 8])
def test_three_tier_clos_of_full_size_is_the_fat_tree(k):
    a, b = clos(k ** 3 // 4, tiers=3, radix=k), fat_tree(k)
    assert a.n_nodes == b.n_nodes
    assert np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)


def test_two_tier_clos_is_leaf_spine_with_half_the_ports_down():
    a, b = clos(100, tiers=2, radix=16), leaf_spine(100, gpus_per_leaf=8, switch=TH5)
    assert a.meta["gpus_per_leaf"] == 8
    assert np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)


@pytest.mark.parametrize("n,t,r,o", [(54, 3, 6, 1.0), (36, 3, 6, 1.0), (27, 3, 6, 1.0), (60, 3, 8, 3.0),
                                     (20, 2, 8, 1.0), (30, 2, 8, 2.0), (40, 2, 10, 1.0)])
def test_clos_hops_and_bisection(n, t, r, o):
    f = clos(n, tiers=t, radix=r, oversubscription=o)
    d, u = f.meta["gpus_per_leaf"], f.meta["uplinks_per_leaf"]
    assert d + u <= r
    out, inn = degrees(f)
    assert out.max() <= r and inn.max() <= r             # no switch uses more ports than the radix
    dd, avg = nx_hops(f)
    assert dd == f.meta["diameter_hops"] and avg == pytest.approx(f.meta["avg_hops"])
    b = bisection(f, "exact", time_limit_s=60)
    assert b["optimal"]
    assert b["bisection_Bps"] >= (n // 2) * min(C, u * C / d) * (1 - 1e-12)   # hose lower bound
    if "bisection_Bps" in f.meta:
        assert b["bisection_Bps"] == pytest.approx(f.meta["bisection_Bps"])


@pytest.mark.parametrize("k", [8, 12])
def test_clos_and_fat_tree_hops_at_larger_sizes(k):
    f = clos(k ** 3 // 4 - 5, tiers=3, radix=k)
    h = hops(f, "exact")
    assert h["diameter_hops"] == f.meta["diameter_hops"] and h["avg_hops"] == pytest.approx(f.meta["avg_hops"])


def test_clos_oversubscription_at_the_leaf():
    f = clos(1000, tiers=3, oversubscription=3.0)          # radix 64: 48 down, 16 up
    assert (f.meta["gpus_per_leaf"], f.meta["uplinks_per_leaf"]) == (48, 16)
    assert f.meta["n_pods"] == math.ceil(math.ceil(1000 / 48) / 32)


# ---- rail-optimized and DGX ---------------------------------------------------------------

@pytest.mark.parametrize("n_nodes,g,npl,t", [(8, 4, 2, None), (6, 4, 2, None), (16, 2, 2, 3), (12, 2, 2, 3),
                                             (40, 8, None, None)])
def test_rail_optimized_structure_hops_and_bisection(n_nodes, g, npl, t):
    f = rail_optimized(n_nodes, gpus_per_node=g, nodes_per_leaf=npl, tiers=t)
    assert f.n_gpus == n_nodes * g
    rail, node = f.node_attrs["rail"], f.node_attrs["node"]
    assert np.array_equal(rail[f.gpus], np.arange(f.n_gpus) % g)
    assert np.array_equal(node[f.gpus], np.arange(f.n_gpus) // g)
    host = f.kind[f.src] == "gpu"
    assert np.all(rail[f.src[host]] == rail[f.dst[host]])      # GPU r sits on a leaf of rail r
    d = f.meta["gpus_per_leaf"]
    assert tiers(f)[1] == math.ceil(n_nodes / d) * g
    dd, avg = nx_hops(f)
    assert dd == f.meta["diameter_hops"] and avg == pytest.approx(f.meta["avg_hops"])
    if f.n_nodes <= 300:
        b = bisection(f, "exact", time_limit_s=60)
        if "bisection_Bps" in f.meta:
            assert b["optimal"] and b["bisection_Bps"] == pytest.approx(f.meta["bisection_Bps"])


def test_rail_optimized_picks_three_tiers_when_the_spine_is_full():
    two = rail_optimized(256)              # 8 scalable units x 8 rails = 64 leaves: one spine layer
    three = rail_optimized(288)
    assert two.meta["tiers"] == 2 and three.meta["tiers"] == 3
    assert three.meta["leaves_per_pod"] % 8 == 0                 # whole scalable units per pod


@pytest.mark.parametrize("n_nodes,g,npl,t", [(4, 2, 2, None), (8, 4, 2, None), (6, 4, 2, None),
                                             (8, 2, 2, 3), (3, 8, None, None)])
def test_dgx_cluster_structure_hops_and_bisection(n_nodes, g, npl, t):
    f = dgx_cluster(n_nodes, gpus_per_node=g, nodes_per_leaf=npl, tiers=t)
    h100 = hardware.gpu("h100-sxm")
    nv = f.nodes_of_kind("nvswitch")
    assert len(nv) == n_nodes and f.n_gpus == n_nodes * g
    to_nv = np.isin(f.dst, nv)
    assert np.all(f.capacity_Bps[to_nv] == h100.scaleup_Bps) and set(f.tech[to_nv]) == {"copper"}
    assert np.all(np.bincount(f.src[to_nv], minlength=f.n_nodes)[f.gpus] == 1)
    to_leaf = (f.kind[f.src] == "gpu") & ~to_nv
    assert np.all(f.capacity_Bps[to_leaf] == h100.scaleout_Bps)
    # same server: 2 hops through the NVSwitch domain
    node = f.node_attrs["node"]
    assert np.all(node[f.src[to_nv]] == node[f.dst[to_nv]])
    dd, avg = nx_hops(f)
    assert dd == f.meta["diameter_hops"] and avg == pytest.approx(f.meta["avg_hops"])
    if f.n_nodes <= 300:
        b = bisection(f, "exact", time_limit_s=60)
        if "bisection_Bps" in f.meta:
            assert b["optimal"] and b["bisection_Bps"] == pytest.approx(f.meta["bisection_Bps"])


def test_dgx_nvswitch_chips_and_default_node_size():
    f = dgx_cluster(2)
    assert f.meta["gpus_per_node"] == 8 and f.n_gpus == 16
    h100, nvs = hardware.gpu("h100-sxm"), hardware.switch("nvswitch3")
    lanes = math.ceil(h100.scaleup_Bps / nvs.port_Bps)
    assert f.meta["nvswitch_chips"] == math.ceil(8 * lanes / nvs.ports) == 3
    assert dgx_cluster(2, nvswitch_chips=4).node_attrs["units"].max() == 4
    assert dgx_cluster(2, gpus_per_node=4).meta["nvswitch_chips"] == math.ceil(4 * lanes / nvs.ports)


# ---- bad parameters --------------------------------------------------------------------

BAD = [
    (lambda: fat_tree(5), r"k: 5 .*even integers in \[2, 64\]"),
    (lambda: fat_tree(0), r"k: 0"),
    (lambda: fat_tree(66), r"k: 66 .*\[2, 64\]"),
    (lambda: fat_tree(4.5), r"k: expected an integer, got float 4.5"),   # 4.0 is the integer 4 (ocsnet.checks)
    (lambda: fat_tree(True), r"k: expected an integer, got bool True"),
    (lambda: fat_tree(4, host_Bps=0), r"host_Bps: 0 .*\(0"),
    (lambda: fat_tree(4, host_Bps=-1e9), r"host_Bps"),
    (lambda: fat_tree(4, host_Bps=float("inf")), r"host_Bps"),
    (lambda: fat_tree(4, gpu="no-such-gpu"), r"gpu: unknown name 'no-such-gpu'"),
    (lambda: fat_tree(4, switch="tomahawk9"), r"switch: unknown name"),
    (lambda: fat_tree(4, link="smoke-signal"), r"link: unknown name"),
    (lambda: leaf_spine(0, gpus_per_leaf=8), r"n_gpus: 0"),
    (lambda: leaf_spine(8, gpus_per_leaf=0), r"gpus_per_leaf: 0"),
    (lambda: leaf_spine(8, gpus_per_leaf=40), r"gpus_per_leaf: 40 GPU ports plus 40 uplinks .*at most 32"),
    (lambda: leaf_spine(8, gpus_per_leaf=8, oversubscription=0.5), r"oversubscription: 0.5 .*\[1, inf\)"),
    (lambda: leaf_spine(8, gpus_per_leaf=8, oversubscription=float("nan")), r"oversubscription"),
    (lambda: leaf_spine(3000, gpus_per_leaf=32), r"n_gpus: 3000 .*\[1, 2048\]"),
    (lambda: clos(10, tiers=4), r"tiers: 4 .*\[2, 3\]"),
    (lambda: clos(10, radix=1), r"radix: 1"),
    (lambda: clos(10, radix=128), r"radix: 128 .*\[2, 64\]"),
    (lambda: clos(3000, tiers=2), r"n_gpus: 3000 .*\[1, 2048\]"),
    (lambda: clos(70000, tiers=3), r"n_gpus: 70000 .*\[1, 65536\]"),
    (lambda: rail_optimized(0), r"n_nodes: 0"),
    (lambda: rail_optimized(4, gpus_per_node=0), r"gpus_per_node: 0 .*\[1, inf\)"),
    (lambda: rail_optimized(4, nodes_per_leaf=33), r"nodes_per_leaf: 33 .*\[1, 32\]"),
    (lambda: rail_optimized(300, tiers=2), r"n_nodes: 300 .*\[1, 256\]"),
    (lambda: rail_optimized(10 ** 6), r"n_nodes: 1000000 .*\[1, 8192\]"),
    (lambda: dgx_cluster(2, gpu="lite-base"), r"gpu: 'lite-base' has no scale-up"),
    (lambda: dgx_cluster(2, gpus_per_node=0), r"gpus_per_node: 0"),
    (lambda: dgx_cluster(2, nvswitch_chips=0), r"nvswitch_chips: 0"),
    (lambda: dgx_cluster(2, nvswitch="nvswitch9"), r"switch: unknown name 'nvswitch9'"),
]


@pytest.mark.parametrize("call,match", BAD, ids=[m for _, m in BAD])
def test_bad_parameters_raise_spec_error_naming_them(call, match):
    with pytest.raises(SpecError, match=match):
        call()


def test_sizes_at_the_limit_build():
    """The largest sizes the error messages allow are accepted."""
    assert leaf_spine(2048, gpus_per_leaf=32).n_gpus == 2048
    assert clos(2048, tiers=2).n_gpus == 2048
    assert rail_optimized(256, tiers=2).n_gpus == 2048
    assert fat_tree(64).n_gpus == 65536


def test_partial_leaves_and_pods_keep_hop_classes():
    """Irregular sizes: hops still exact by BFS; the bisection bound never exceeds a real cut."""
    for f in (clos(37, tiers=3, radix=6), rail_optimized(7, gpus_per_node=3, nodes_per_leaf=2, tiers=3)):
        dd, avg = nx_hops(f)
        assert dd == f.meta["diameter_hops"] and avg == pytest.approx(f.meta["avg_hops"])
        h = hops(f, "exact")
        assert h["diameter_hops"] == dd and h["avg_hops"] == pytest.approx(avg)


def test_every_gpu_pair_class_in_a_small_dgx_cluster():
    """Brute force: distances of all GPU pairs in a 2-tier DGX cluster by server, leaf and rail."""
    f = dgx_cluster(4, gpus_per_node=2, nodes_per_leaf=2)
    g = f.graph
    node, rail = f.node_attrs["node"], f.node_attrs["rail"]
    for a, b in itertools.combinations(f.gpus.tolist(), 2):
        dist = nx.shortest_path_length(g, a, b)
        same_leaf = rail[a] == rail[b] and node[a] // 2 == node[b] // 2
        assert dist == (2 if node[a] == node[b] or same_leaf else 4)
