"""Fabric metrics against independent truth: networkx BFS, brute-force balanced cuts, hand sums."""

import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet import hardware
from ocsnet.errors import SpecError
from ocsnet.fabric import Fabric
from ocsnet.topology import dgx_cluster, fat_tree, leaf_spine, summary
from ocsnet.topology.metrics import bisection, bisection_Bps, cost, counts, hops, power
from ocsnet.topology.metrics_bisection import EXACT_MAX_NODES, cut_Bps


# ---- random small fabrics ----------------------------------------------------------------

@st.composite
def small_fabrics(draw, max_gpus=8):
    """GPUs, packet switches and maybe an OCS, random links, some one-way or asymmetric."""
    n_g = draw(st.integers(2, max_gpus))
    n_s = draw(st.integers(0, 4))
    n_o = draw(st.integers(0, 1))
    kind = ["gpu"] * n_g + ["packet_switch"] * n_s + ["ocs"] * n_o
    n = len(kind)
    pairs = [(u, v) for u in range(n) for v in range(n) if u < v]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=min(len(pairs), 3 * n), unique=True))
    src, dst, cap = [], [], []
    caps = st.sampled_from([1e9, 2e9, 3e9, 5e9])
    for u, v in chosen:
        mode = draw(st.sampled_from(["both", "both", "both", "asym", "one"]))
        c = draw(caps)
        src.append(u), dst.append(v), cap.append(c)
        if mode != "one":
            src.append(v), dst.append(u), cap.append(c if mode == "both" else draw(caps))
    perm = draw(st.permutations(range(n_g)))        # GPU rank order differs from node order
    return Fabric(kind, src, dst, cap, 1e-7, "cpo", gpus=list(perm), name="random")


def brute_bisection(f):
    """min over balanced GPU splits (both orientations) of the min cut, by networkx max flow."""
    keep = ~((f.kind[f.src] == "ocs") | (f.kind[f.dst] == "ocs"))
    g = nx.DiGraph()
    g.add_nodes_from(range(f.n_nodes))
    for u, v, c in zip(f.src[keep], f.dst[keep], f.capacity_Bps[keep]):
        g.add_edge(int(u), int(v), capacity=float(c))
    gpus = f.gpus.tolist()
    N = len(gpus)
    best = math.inf
    for size in {N // 2, (N + 1) // 2}:
        for a in itertools.combinations(gpus, size):
            h = g.copy()
            for x in a:
                h.add_edge("s", x)                       # no capacity attribute = infinite
            for x in set(gpus) - set(a):
                h.add_edge(x, "t")
            best = min(best, nx.minimum_cut_value(h, "s", "t"))
    return best


def brute_hops(f):
    """Diameter, mean and reachability of GPU pairs by networkx BFS without OCS transit."""
    g = nx.DiGraph()
    g.add_nodes_from(range(f.n_nodes))
    keep = ~((f.kind[f.src] == "ocs") | (f.kind[f.dst] == "ocs"))
    g.add_edges_from(zip(f.src[keep].tolist(), f.dst[keep].tolist()))
    ds = []
    for a in f.gpus.tolist():
        lengths = nx.single_source_shortest_path_length(g, a)
        for b in f.gpus.tolist():
            if a != b:
                ds.append(lengths.get(b, math.inf))
    ds = np.array(ds)
    return ds.max(), ds.mean(), bool(np.isfinite(ds).all())


# ---- hops --------------------------------------------------------------------------------

@given(small_fabrics(max_gpus=10))
@examples(60)
def test_exact_hops_agree_with_networkx_bfs(f):
    d, avg, conn = brute_hops(f)
    h = hops(f, "exact")
    assert h["connected"] == conn
    if conn:
        assert h["diameter_hops"] == d and h["avg_hops"] == pytest.approx(avg)
    else:
        assert h["diameter_hops"] == math.inf and h["avg_hops"] == math.inf


@given(small_fabrics(max_gpus=10), st.integers(1, 12))
@examples(30)
def test_sampled_hops_bound_the_exact_ones(f, k):
    exact = hops(f, "exact")
    s = hops(f, "sampled", n_sources=k)
    if exact["connected"]:
        assert s["diameter_hops"] <= exact["diameter_hops"]
        if k >= f.n_gpus:
            assert s["diameter_hops"] == exact["diameter_hops"] and s["avg_hops"] == pytest.approx(exact["avg_hops"])
    assert "sampled" in s["diameter_method"] and "lower bound" in s["diameter_method"]


def test_hops_methods_and_auto_choice():
    small = fat_tree(4)
    assert hops(small)["diameter_method"] == "exact-bfs"
    big = fat_tree(64)                                # BFS work far above the limit: closed form
    h = hops(big)
    assert h["diameter_method"] == h["avg_hops_method"] == "closed-form"
    assert h["diameter_hops"] == 6
    cf = hops(small, "closed-form")
    ex = hops(small, "exact")
    assert cf["avg_hops"] == pytest.approx(ex["avg_hops"]) and cf["diameter_hops"] == ex["diameter_hops"]


def test_hops_sampled_fallback_without_closed_form():
    f = fat_tree(64)
    f.meta.pop("diameter_hops"), f.meta.pop("avg_hops")
    h = hops(f, n_sources=4)
    assert h["diameter_hops"] == 6 and "4 of 65536" in h["diameter_method"]
    assert 5.9 < h["avg_hops"] < 6.0


def test_no_transit_through_ocs():
    # g0 - ocs - g1 only: unreachable.  Add a packet switch path: 2 hops.
    kind = ["gpu", "gpu", "ocs", "packet_switch"]
    src, dst = [0, 2, 1, 2], [2, 0, 2, 1]
    f = Fabric(kind, src, dst, 1e9, 0.0, "cpo")
    h = hops(f)
    assert not h["connected"] and h["diameter_hops"] == math.inf
    assert bisection_Bps(f) == 0.0
    s = summary(f)
    assert s["diameter_hops"] is None and s["avg_hops"] is None
    json.dumps(s, allow_nan=False)
    f2 = Fabric(kind, src + [0, 3, 1, 3], dst + [3, 0, 3, 1], 1e9, 0.0, "cpo")
    assert hops(f2)["diameter_hops"] == 2 and bisection_Bps(f2) == 1e9


def test_hops_bad_arguments():
    f = fat_tree(2)
    with pytest.raises(SpecError, match="method: 'bfs'"):
        hops(f, "bfs")
    with pytest.raises(SpecError, match=r"n_sources: 0 .*\[1, inf\)"):
        hops(f, "sampled", n_sources=0)
    g = Fabric.from_networkx(fat_tree(2).graph)
    g.meta.pop("diameter_hops", None)
    with pytest.raises(SpecError, match="closed-form"):
        hops(g, "closed-form")


# ---- bisection ----------------------------------------------------------------------------

@given(small_fabrics())
@examples(60)
def test_exact_bisection_matches_brute_force(f):
    b = bisection(f, "exact", time_limit_s=30)
    assert b["optimal"]
    truth = brute_bisection(f)
    assert b["bisection_Bps"] == pytest.approx(truth)
    # the returned side is a real balanced cut of that value
    side = b["side"]
    assert int(side[f.gpus].sum()) in {f.n_gpus // 2, (f.n_gpus + 1) // 2}
    assert cut_Bps(f, side) == pytest.approx(truth)


@given(small_fabrics())
@examples(30)
def test_rank_split_is_an_upper_bound(f):
    r = bisection(f, "rank-split")
    assert r["bisection_Bps"] >= brute_bisection(f) - 1e-3
    assert not r["optimal"] and "upper bound" in r["method"]


def test_twin_gpus_and_switches_brute_force():
    """Interchangeable GPUs and switches are grouped in the CP-SAT model; brute force agrees."""
    for f in (leaf_spine(2, gpus_per_leaf=2), leaf_spine(10, gpus_per_leaf=4, oversubscription=2.0),
              leaf_spine(9, gpus_per_leaf=3, host_Bps=30e9), dgx_cluster(3, gpus_per_node=2, nodes_per_leaf=2)):
        assert bisection_Bps(f, "exact") == pytest.approx(brute_bisection(f))


@pytest.mark.parametrize("k", [4, 8, 16])
def test_rank_split_equals_fat_tree_closed_form(k):
    f = fat_tree(k)
    assert bisection_Bps(f, "rank-split") == pytest.approx(f.meta["bisection_Bps"])


def test_bisection_methods_and_limits():
    f = fat_tree(4)
    assert bisection(f)["method"] == "closed-form"
    g = Fabric.from_networkx(f.graph)
    g.meta.pop("bisection_Bps")
    b = bisection(g)                                   # small, no closed form: exact
    assert b["method"] == "exact-cpsat" and b["bisection_Bps"] == pytest.approx(8e11)
    with pytest.raises(SpecError, match="closed-form"):
        bisection(g, "closed-form")
    with pytest.raises(SpecError, match=f"limited to {EXACT_MAX_NODES} nodes"):
        bisection(fat_tree(16), "exact")
    with pytest.raises(SpecError, match="method: 'mincut'"):
        bisection(f, "mincut")
    with pytest.raises(SpecError, match="time_limit_s"):
        bisection(g, "exact", time_limit_s=0)
    big = fat_tree(16)
    big.meta.pop("bisection_Bps")
    assert bisection(big)["method"].startswith("rank-split")
    assert bisection_Bps(big) == pytest.approx(16 ** 3 / 8 * 100e9)
    one = Fabric(["gpu"], [], [], [], [], "cpo")
    assert bisection(one) == {"bisection_Bps": 0.0, "method": "trivial", "optimal": True}


# ---- counts, power, cost -----------------------------------------------------------------------

def mixed_graph(with_link_names):
    g = nx.DiGraph(name="mixed")
    for u, kind in (("g0", "gpu"), ("g1", "gpu"), ("sw", "packet_switch"), ("nv", "nvswitch"),
                    ("ocs", "ocs"), ("nic", "nic")):
        g.add_node(u, kind=kind)

    def link(u, v, cap, tech, name, both=True):
        extra = {"link": name} if with_link_names else {}
        g.add_edge(u, v, capacity_Bps=cap, latency_s=0.0, tech=tech, **extra)
        if both:
            g.add_edge(v, u, capacity_Bps=cap, latency_s=0.0, tech=tech, **extra)

    link("g0", "sw", 50e9, "pluggable", "pluggable-400g")
    link("g1", "sw", 200e9, "cpo", "cpo")                  # two 800G CPO lanes per end
    link("g0", "ocs", 100e9, "circuit", "fiber-circuit", both=False)
    link("g0", "nv", 450e9, "copper", "copper-nvlink")     # 18 NVLink lanes per end
    link("g1", "nic", 50e9, "copper", "copper-nvlink")
    return g


@pytest.mark.parametrize("named", [True, False])
def test_counts_on_a_hand_made_fabric(named):
    f = Fabric.from_networkx(mixed_graph(named))
    c = counts(f)
    assert (c["n_gpus"], c["n_packet_switches"], c["n_nvswitches"], c["n_ocs"]) == (2, 2, 1, 1)
    assert c["n_links"] == 5
    assert (c["n_links_pluggable"], c["n_links_cpo"], c["n_links_circuit"], c["n_links_copper"]) == (1, 1, 1, 2)
    # without link names, the first catalog link of each tech prices it (pluggable-400g, cpo, ...)
    assert c["n_transceivers"] == 2 and c["n_cpo_ports"] == 4


def test_power_and_cost_by_hand():
    f = fat_tree(4)
    gpu, sw, lk = hardware.gpu("lite-base"), hardware.switch("tomahawk5"), hardware.link("pluggable-800g")
    N, S, E = 16, 20, 96
    p = power(f)
    assert p["gpus_W"] == pytest.approx(N * gpu.tdp_W)
    assert p["switches_W"] == pytest.approx(S * sw.power_W)
    assert p["links_W"] == pytest.approx(E * sw.port_Bps * 8 * lk.energy_J_per_bit)
    assert p["total_W"] == pytest.approx(p["gpus_W"] + p["switches_W"] + p["links_W"]) and p["unpriced_nodes"] == 0
    k = cost(f)
    assert k["total"] == pytest.approx(N * gpu.relative_cost + S * sw.relative_cost + E * lk.relative_cost)


def test_power_and_cost_of_a_dgx_cluster_count_nvswitch_chips_and_lanes():
    f = dgx_cluster(2, nvswitch_chips=4)
    h100, nvs = hardware.gpu("h100-sxm"), hardware.switch("nvswitch3")
    nvl, plug = hardware.link("copper-nvlink"), hardware.link("pluggable-800g")
    p, k, c = power(f), cost(f), counts(f)
    n_sw = c["n_packet_switches"] - 2
    assert p["switches_W"] == pytest.approx(2 * 4 * nvs.power_W + n_sw * hardware.switch("tomahawk5").power_W)
    lanes = math.ceil(h100.scaleup_Bps / nvl.bandwidth_Bps)      # 18 NVLinks per GPU
    nv_edges = 2 * 16
    assert c["n_transceivers"] == 2 * c["n_links_pluggable"]    # 400G GPU link on an 800G module: 1 per end
    expect_links = nv_edges * lanes * nvl.relative_cost + 2 * c["n_links_pluggable"] * plug.relative_cost
    assert k["links"] == pytest.approx(expect_links)
    assert k["gpus"] == pytest.approx(16 * h100.relative_cost)
    assert p["links_W"] == pytest.approx(float((f.capacity_Bps * 8 * np.where(
        f.tech == "copper", nvl.energy_J_per_bit, plug.energy_J_per_bit)).sum()))


def test_unpriced_and_custom_specs():
    f = Fabric.from_networkx(mixed_graph(True))
    assert power(f)["unpriced_nodes"] == 6                  # no model attribute and no meta names
    f.meta.update(gpu="lite-base", switch="tomahawk5", nvswitch="nvswitch3")
    assert power(f)["unpriced_nodes"] == 2                  # the OCS and the NIC
    import dataclasses
    sw = dataclasses.replace(hardware.switch("tomahawk5"), name="th5-lowpower", power_W=100.0, ports=8)
    g = fat_tree(4, switch=sw)
    assert power(g)["switches_W"] == pytest.approx(20 * 100.0)


# ---- summary --------------------------------------------------------------------------------

def test_summary_keys_units_and_determinism():
    f = fat_tree(8)
    s = summary(f)
    for key in ("n_gpus", "n_packet_switches", "n_ocs", "n_links", "n_transceivers", "n_cpo_ports",
                "diameter_hops", "avg_hops", "bisection_TBps", "bisection_per_gpu_GBps", "power_kW",
                "relative_cost", "diameter_method", "avg_hops_method", "bisection_method"):
        assert key in s
    assert s["bisection_TBps"] == pytest.approx(128 / 2 * 100e9 / 1e12)
    assert s["bisection_per_gpu_GBps"] == pytest.approx(100.0)      # full bisection: the link rate
    assert s["power_kW"] == pytest.approx(power(f)["total_W"] / 1e3)
    assert json.dumps(s, sort_keys=True) == json.dumps(summary(fat_tree(8)), sort_keys=True)
    assert all(not isinstance(v, (dict, list)) for v in s.values())  # flat: one table row per key


def test_summary_of_a_half_million_gpu_fat_tree_uses_closed_forms():
    import dataclasses
    sw = dataclasses.replace(hardware.switch("tomahawk5"), name="radix128", ports=128)
    s = summary(fat_tree(128, switch=sw))
    assert s["n_gpus"] == 524288 and s["n_packet_switches"] == 5 * 128 ** 2 // 4
    assert s["diameter_method"] == s["bisection_method"] == "closed-form"
    assert s["unpriced_nodes"] == 0
