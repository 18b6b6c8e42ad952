"""Direct CPO fabrics: torus, clique and dragonfly groups, against counts, BFS and brute-force bisection."""

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ocsnet import hardware
from ocsnet.errors import SpecError
from ocsnet.topology.direct import fully_connected, fully_connected_groups, torus


def _undirected(f):
    g = nx.Graph()
    g.add_nodes_from(range(f.n_nodes))
    g.add_edges_from(zip(f.src.tolist(), f.dst.tolist()))
    return g


def _bfs_stats(f):
    d = dict(nx.all_pairs_shortest_path_length(_undirected(f)))
    n = f.n_nodes
    vals = [d[u][v] for u in range(n) for v in range(n) if u != v]
    return max(vals), sum(vals) / len(vals)


def _bisection_brute(f):
    """Minimum over balanced GPU halves of the capacity of edges from one half to the other."""
    n = f.n_gpus
    best = math.inf
    for half in itertools.combinations(range(1, n), n // 2 - 1):     # GPU 0 fixed: a cut and its mirror cost the same
        side = np.zeros(n, bool)
        side[[0, *half]] = True
        best = min(best, float(f.capacity_Bps[side[f.src] & ~side[f.dst]].sum()))
    return best


# ---- torus ---------------------------------------------------------------------------------

def _torus_links(dims, wrap):
    n = math.prod(dims)
    return sum(n // k * ((k if k > 2 else 1) if wrap else k - 1) for k in dims)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(2, 6), min_size=1, max_size=3), st.booleans())
def test_torus_counts_and_hops(dims, wrap):
    f = torus(dims, wrap=wrap)
    n = math.prod(dims)
    b = f.meta["link_Bps"]
    assert f.n_gpus == f.n_nodes == n
    assert f.n_edges == 2 * _torus_links(dims, wrap)
    diam, avg = _bfs_stats(f)
    assert f.meta["diameter_hops"] == diam == (sum(k // 2 for k in dims) if wrap else sum(k - 1 for k in dims))
    assert f.meta["avg_hops"] == pytest.approx(avg)
    out = np.bincount(f.src, weights=f.capacity_Bps, minlength=n)
    if wrap:     # every GPU keeps all 2 * len(dims) ports' bandwidth, size-2 dimensions included
        assert np.allclose(out, 2 * len(dims) * b)
        assert b == pytest.approx(hardware.gpu("lite-base").network_Bps / (2 * len(dims)))


@pytest.mark.parametrize("dims,wrap", [((8,), True), ((6,), True), ((4, 4), True), ((2, 4), True), ((4, 2), True),
                                       ((2, 2, 2), True), ((2, 2), True), ((4, 3), True), ((3, 4), True),
                                       ((4, 4), False), ((6,), False), ((2, 4), False), ((2, 2, 2), False)])
def test_torus_bisection_brute_force(dims, wrap):
    f = torus(dims, wrap=wrap)
    assert "bisection_Bps" in f.meta
    assert f.meta["bisection_Bps"] == pytest.approx(_bisection_brute(f))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(2, 6), min_size=1, max_size=4).filter(lambda d: math.prod(d) <= 16), st.booleans())
def test_torus_bisection_claims_hold(dims, wrap):
    f = torus(dims, wrap=wrap)
    assert ("bisection_Bps" in f.meta) == (max(dims) % 2 == 0)
    if "bisection_Bps" in f.meta:
        assert f.meta["bisection_Bps"] == pytest.approx(_bisection_brute(f))


def test_torus_no_bisection_claim_when_largest_dimension_is_odd():
    assert "bisection_Bps" not in torus((5, 4)).meta and "bisection_Bps" not in torus(3).meta


def test_torus_rank_order_and_dimension_two():
    f = torus((3, 4, 2), link_Bps=10e9)
    n = 24
    r = np.arange(n)
    strides = (1, 3, 12)
    e = f.edge_ids(r, (r // 3) * 3 + (r + 1) % 3)                  # +1 along dim 0 (fastest)
    assert (e >= 0).all() and (f.edge_attrs["dim"][e] == 0).all()
    c1 = (r // strides[1]) % 4
    e = f.edge_ids(r, r + ((c1 + 1) % 4 - c1) * strides[1])
    assert (e >= 0).all() and (f.edge_attrs["dim"][e] == 1).all() and np.allclose(f.capacity_Bps[e], 10e9)
    c2 = (r // strides[2]) % 2
    e = f.edge_ids(r, r + (1 - 2 * c2) * strides[2])                  # size-2 dim: one doubled link
    assert (e >= 0).all() and np.allclose(f.capacity_Bps[e], 20e9)
    assert f.meta["ports_per_gpu"] == 6
    ring = torus(5)
    assert ring.n_edges == 10 and ring.meta["diameter_hops"] == 2 and ring.name == "torus-5"


@pytest.mark.parametrize("kwargs,match", [
    (dict(dims=[4, 1]), r"dims\[1\]"), (dict(dims=[]), "dims"), (dict(dims="44"), "dims"),
    (dict(dims=[4, 2.5]), r"dims\[1\]"), (dict(dims=[4], wrap="yes"), "wrap"),
    (dict(dims=[4], link_Bps=0), "link_Bps"), (dict(dims=[4], link_Bps=-5e9), "link_Bps"),
    (dict(dims=[4], link="fiber"), "link"), (dict(dims=[4], gpu="no-such-gpu"), "gpu"),
])
def test_torus_errors(kwargs, match):
    with pytest.raises(SpecError, match=match):
        torus(**kwargs)


# ---- clique --------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 5, 8, 9])
def test_fully_connected(n):
    f = fully_connected(n)
    b = hardware.gpu("lite-base").network_Bps / (n - 1)
    assert f.n_edges == n * (n - 1) and np.allclose(f.capacity_Bps, b)
    assert (np.bincount(f.src, minlength=n) == n - 1).all()
    assert f.meta["diameter_hops"] == _bfs_stats(f)[0] == 1 and f.meta["avg_hops"] == 1
    assert f.meta["bisection_Bps"] == pytest.approx(_bisection_brute(f))


def test_fully_connected_errors():
    with pytest.raises(SpecError, match="n_gpus"):
        fully_connected(1)
    with pytest.raises(SpecError, match="link_Bps"):
        fully_connected(4, link_Bps=float("nan"))


# ---- dragonfly groups ----------------------------------------------------------------------

@pytest.mark.parametrize("n,a", [(6, 2), (9, 3), (12, 3), (12, 2), (16, 4), (20, 4), (24, 2), (30, 5),
                                 (8, 4), (40, 4), (36, 6), (12, 12), (7, 1), (8, 8)])
def test_groups_structure(n, a):
    f = fully_connected_groups(n, a)
    g = n // a
    h = -(-(g - 1) // a)
    glob = f.edge_attrs["global"]
    assert f.n_edges == 2 * (g * a * (a - 1) // 2 + g * (g - 1) // 2)
    group = f.gpu_rank // a
    assert (group[f.src[~glob]] == group[f.dst[~glob]]).all()
    pairs = {(int(x), int(y)) for x, y in zip(group[f.src[glob]], group[f.dst[glob]])}
    assert pairs == {(x, y) for x in range(g) for y in range(g) if x != y}      # one link per group pair
    assert np.bincount(f.src[glob], minlength=n).max(initial=0) <= h
    assert f.meta["global_ports_per_gpu"] == h and f.meta["n_groups"] == g
    assert f.meta["diameter_hops"] == _bfs_stats(f)[0]
    assert np.allclose(f.capacity_Bps, hardware.gpu("lite-base").network_Bps / (a - 1 + h))


def test_groups_errors():
    with pytest.raises(SpecError, match="group_size: 5 does not divide n_gpus = 12"):
        fully_connected_groups(12, 5)
    with pytest.raises(SpecError, match="group_size"):
        fully_connected_groups(12, 0)
    with pytest.raises(SpecError, match="group_size"):
        fully_connected_groups(12, 13)
