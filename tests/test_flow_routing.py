"""Routing: hop counts, paths and ECMP fractions against networkx brute force."""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import FlowError
from ocsnet.fabric import Fabric
from ocsnet.flow import gpus_forward, route, route_paths
from test_flow_fabrics import (brute_ecmp, fat_tree, random_direct, random_fabric, ring, star, torus2,
                               transit_graph)


def all_pairs(n):
    s, d = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = s != d
    return s[m], d[m]


def column(r, f):
    c = r.incidence[:, f]
    return {int(e): float(x) for e, x in zip(c.indices, c.data)}


def assert_simple_path(fabric, r, f):
    """Column f is exactly one path from the source GPU to the destination GPU."""
    edges = column(r, f)
    assert all(abs(x - 1.0) < 1e-15 for x in edges.values())
    nxt = {int(fabric.src[e]): int(fabric.dst[e]) for e in edges}
    assert len(nxt) == len(edges)                     # one way out of every node on the path
    u, t = int(fabric.gpus[r.src[f]]), int(fabric.gpus[r.dst[f]])
    seen = [u]
    while u != t:
        u = nxt[u]
        seen.append(u)
    assert len(seen) - 1 == len(edges) == r.hops[f]
    assert len(set(seen)) == len(seen)
    return seen


@pytest.mark.parametrize("fabric,fwd", [(fat_tree(4), False), (torus2(3, 4), True), (ring(6), True),
                                        (ring(5, bidirectional=False), True), (star(5), False)])
@pytest.mark.parametrize("method", ["shortest", "ecmp"])
def test_hops_match_networkx(fabric, fwd, method):
    s, d = all_pairs(fabric.n_gpus)
    r = route(fabric, s, d, method=method)
    assert gpus_forward(fabric) is fwd
    for f in range(len(s)):
        u, v = int(fabric.gpus[s[f]]), int(fabric.gpus[d[f]])
        assert r.hops[f] == nx.shortest_path_length(transit_graph(fabric, u, v, fwd), u, v)
    # every flow carries its whole unit on every layer: column sums equal the hop count
    np.testing.assert_allclose(np.asarray(r.incidence.sum(axis=0)).ravel(), r.hops, rtol=1e-12)
    np.testing.assert_allclose(r.latency_s, r.incidence.T @ fabric.latency_s, rtol=1e-12)


@pytest.mark.parametrize("fabric", [fat_tree(4), torus2(4, 4), ring(7), star(4)])
def test_shortest_is_one_simple_path_without_gpu_transit(fabric):
    s, d = all_pairs(fabric.n_gpus)
    r = route(fabric, s, d, method="shortest")
    fwd = gpus_forward(fabric)
    for f in range(len(s)):
        nodes = assert_simple_path(fabric, r, f)
        if not fwd:
            assert all(fabric.kind[x] != "gpu" for x in nodes[1:-1])


@pytest.mark.parametrize("fabric", [fat_tree(4), torus2(4, 4), ring(6), star(4), fat_tree(6)])
def test_ecmp_fractions_match_brute_force(fabric):
    s, d = all_pairs(fabric.n_gpus)
    r = route(fabric, s, d, method="ecmp")
    fwd = gpus_forward(fabric)
    for f in range(0, len(s), max(1, len(s) // 60)):
        want = brute_ecmp(fabric, int(s[f]), int(d[f]), fwd)
        got = {(int(fabric.src[e]), int(fabric.dst[e])): x for e, x in column(r, f).items()}
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-12)


def test_ecmp_fat_tree_closed_form():
    # k = 4: between pods, 2 aggregation switches at the source pod, each to 2 cores: a quarter on each core
    f = fat_tree(4)
    r = route(f, [0], [15], method="ecmp")
    vals = sorted(r.incidence.data.tolist())
    assert vals == [0.25] * 8 + [0.5] * 4 + [1.0] * 2
    assert r.hops.tolist() == [6]


@examples(60)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["shortest", "ecmp"]), direct=st.booleans())
def test_random_fabrics_against_networkx(seed, method, direct):
    fabric = random_direct(seed) if direct else random_fabric(seed)
    fwd = gpus_forward(fabric)
    assert fwd is direct
    s, d = all_pairs(fabric.n_gpus)
    r = route(fabric, s, d, method=method)
    for f in range(len(s)):
        u, v = int(fabric.gpus[s[f]]), int(fabric.gpus[d[f]])
        assert r.hops[f] == nx.shortest_path_length(transit_graph(fabric, u, v, fwd), u, v)
        if method == "shortest":
            assert_simple_path(fabric, r, f)
        else:
            want = brute_ecmp(fabric, int(s[f]), int(d[f]), fwd)
            got = {(int(fabric.src[e]), int(fabric.dst[e])): x for e, x in column(r, f).items()}
            assert got.keys() == want.keys()
            assert all(got[k] == pytest.approx(want[k], rel=1e-12) for k in want)


@examples(40)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(["shortest", "ecmp"]))
def test_routes_are_destination_based_and_deterministic(seed, method):
    """A flow's route depends only on its own endpoints, not on the other flows routed with it."""
    fabric = random_fabric(seed, n_gpus=8, n_sw=5)
    s, d = all_pairs(fabric.n_gpus)
    full = route(fabric, s, d, method=method)
    again = route(fabric, s, d, method=method)
    assert (full.incidence != again.incidence).nnz == 0
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(s), size=7, replace=False)
    part = route(fabric, s[pick], d[pick], method=method)
    assert abs(part.incidence - full.incidence[:, pick]).max() < 1e-15
    sub = full.subset(pick)
    assert np.array_equal(sub.hops, part.hops) and np.array_equal(sub.src, s[pick])


def test_gpu_forwarding_option():
    # two stars joined only through a GPU that sits on both switches
    kind = ["gpu"] * 5 + ["packet_switch"] * 2
    u = [0, 1, 2, 2, 3, 4]
    v = [5, 5, 5, 6, 6, 6]
    f = Fabric(kind, u + v, v + u, 1e9, 1e-6, "copper")
    with pytest.raises(FlowError, match="flow 0 .*no path"):
        route(f, [0], [3])
    r = route(f, [0], [3], gpu_forwarding=True)
    assert r.hops.tolist() == [4]
    # a GPU on both switches still reaches either side directly
    assert route(f, [2, 2], [0, 4]).hops.tolist() == [2, 2]


def test_ocs_nodes_are_never_crossed():
    # GPUs 0, 1 hang off an OCS (one hop each) and off a packet switch: the route takes the switch
    kind = ["gpu", "gpu", "ocs", "packet_switch", "packet_switch"]
    u = [0, 1, 0, 1, 3]
    v = [2, 2, 3, 4, 4]
    f = Fabric(kind, u + v, v + u, 1e9, 1e-6, ["circuit"] * 2 + ["copper"] * 3 + ["circuit"] * 2 + ["copper"] * 3)
    r = route(f, [0], [1], method="ecmp")
    assert r.hops.tolist() == [3]
    assert all(f.kind[f.src[e]] != "ocs" and f.kind[f.dst[e]] != "ocs" for e in r.incidence.indices)
    only_ocs = Fabric(["gpu", "gpu", "ocs"], [0, 1, 2, 2], [2, 2, 0, 1], 1e9, 0.0, "circuit")
    with pytest.raises(FlowError, match="no path|no routable link"):
        route(only_ocs, [0], [1])


def test_unreachable_flow_is_named():
    two_rings = Fabric(["gpu"] * 4, [0, 1, 2, 3], [1, 0, 3, 2], 1e9, 1e-6, "cpo")
    for method in ("shortest", "ecmp"):
        with pytest.raises(FlowError, match=r"flow 1 \(GPU rank 0 -> 2\): no path"):
            route(two_rings, [0, 0], [1, 2], method=method)


def test_bad_flows_rejected():
    f = ring(4)
    with pytest.raises(FlowError, match="flow 1: source and destination are the same GPU rank 2"):
        route(f, [0, 2], [1, 2])
    with pytest.raises(FlowError, match=r"flow 0: dst rank 9 is out of range, allowed \[0, 3\]"):
        route(f, [0], [9])
    with pytest.raises(FlowError, match="lengths"):
        route(f, [0, 1], [1])
    with pytest.raises(FlowError, match="method"):
        route(f, [0], [1], method="valiant")
    assert route(f, [], []).incidence.shape == (f.n_edges, 0)


def test_explicit_paths():
    f = ring(6)
    # flow 0: 0 -> 3 half clockwise, half counter-clockwise; flow 1: 1 -> 2 directly
    r = route_paths(f, [[0, 1, 2, 3], [0, 5, 4, 3], [1, 2]], flow=[0, 0, 1])
    assert r.src.tolist() == [0, 1] and r.dst.tolist() == [3, 2]
    assert r.hops.tolist() == [3, 1]
    c0 = column(r, 0)
    assert sorted(c0.values()) == [0.5] * 6
    assert r.latency_s[0] == pytest.approx(3e-6)
    w = route_paths(f, [[0, 1, 2, 3], [0, 5, 4, 3]], flow=[0, 0], weight=[0.25, 0.75])
    assert sorted(column(w, 0).values()) == [0.25] * 3 + [0.75] * 3


def test_explicit_paths_rejected():
    f = ring(6)
    with pytest.raises(FlowError, match="path 0: no edge from node 0 to node 2"):
        route_paths(f, [[0, 2, 3]])
    with pytest.raises(FlowError, match="flow 0: path weights sum to 0.5"):
        route_paths(f, [[0, 1]], weight=[0.5])
    with pytest.raises(FlowError, match="path 1: flow 0 has paths with different endpoints"):
        route_paths(f, [[0, 1], [0, 5]], flow=[0, 0])
    with pytest.raises(FlowError, match="flow 1: has no path"):
        route_paths(f, [[0, 1], [2, 3]], flow=[0, 2])
    s = star(3)
    with pytest.raises(FlowError, match="path 0: must end at a GPU"):
        route_paths(s, [[0, 3]])
    o = Fabric(["gpu", "gpu", "ocs"], [0, 2], [2, 1], 1e9, 0.0, "circuit")
    with pytest.raises(FlowError, match="crosses an OCS node"):
        route_paths(o, [[0, 2, 1]])


def test_fabric_meta_declares_gpu_forwarding():
    kind = ["gpu"] * 3 + ["packet_switch"]
    u, v = [0, 1, 2], [1, 3, 3]                 # GPU 0 reaches the switch only through GPU 1
    plain = Fabric(kind, u + v, v + u, 1e9, 1e-6, "copper")
    with pytest.raises(FlowError, match="GPUs do not forward on this fabric"):
        route(plain, [0], [2])
    declared = Fabric(kind, u + v, v + u, 1e9, 1e-6, "copper", meta={"gpu_forwarding": True})
    assert gpus_forward(declared) and route(declared, [0], [2]).hops.tolist() == [3]
    assert not gpus_forward(declared, False)
