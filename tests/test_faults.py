"""Faults: FaultSet parsing and checks, degrade (groups against networkx), routing on degraded
fabrics (unreachable flows reported), dimension-order routing with detours."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from ocsnet.errors import FaultError, FlowError
from ocsnet.faults import FaultSet, degrade, ocs_ports, parse_faults
from ocsnet.flow import route
from ocsnet.flow.torus import route_dor
from ocsnet.topology import dgx_cluster, leaf_spine, ocs_fabric, torus


# ---- FaultSet ---------------------------------------------------------------------------
def test_parse_round_trip():
    f = parse_faults("gpu:17, link:3-9, link:4>5, switch:spine-2, plane:1, port:5/0, host:2, gpu:17")
    assert f.gpus == (17,) and f.planes == (1,) and f.ports == ((5, 0),) and f.hosts == (2,)
    assert parse_faults(str(f)) == f
    assert len(f) == 7 and not f.empty and FaultSet().empty


@pytest.mark.parametrize("spec, field", [
    ("cpu:3", "faults"), ("gpu:x", "gpu:x"), ("port:5", "port:5"), ("link:1-2-3", "link:1-2-3"),
    ("gpu", "faults"),
])
def test_parse_errors_name_the_field(spec, field):
    with pytest.raises(FaultError, match=field):
        parse_faults(spec)


@pytest.mark.parametrize("spec, msg", [
    ("gpu:64", r"gpu:64: no such GPU rank, allowed \[0, 63\]"),
    ("link:0-5", "no link from node 0 to node 5"),
    ("switch:spine-0", "switch:spine-0"),
    ("switch:3", "is a GPU"),
    ("plane:0", "no such OCS plane"),
    ("port:3/4", r"GPU 3 has 4 ports, allowed \[0, 3\]"),
    ("host:0", "no servers"),
])
def test_unknown_components_are_named(spec, msg):
    with pytest.raises(FaultError, match=msg):
        degrade(torus([8, 8], link_Bps=1e9), spec)


def test_switch_names_on_clos():
    f = leaf_spine(32, gpus_per_leaf=8)
    d = degrade(f, "switch:leaf-1")
    assert d.gpu_failed.sum() == 0
    assert sorted(d.cut_off.tolist()) == list(range(8, 16))       # the leaf's GPUs have no way out
    with pytest.raises(FaultError, match=r"no spine number 99"):
        degrade(f, "switch:spine-99")


# ---- degrade ----------------------------------------------------------------------------
def _nx_groups(dg):
    """Mutual reachability between GPUs on the degraded graph, by networkx."""
    g = dg.fabric.graph
    comp = {}
    for i, c in enumerate(nx.strongly_connected_components(g)):
        for u in c:
            comp[u] = i
    return comp


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 12), st.integers(0, 3))
def test_torus_groups_match_networkx(seed, n_links, n_gpus):
    rng = np.random.default_rng(seed)
    f = torus([4, 3], link_Bps=1e9)
    und = np.flatnonzero(f.src < f.dst)
    pick = rng.choice(und, size=min(n_links, len(und)), replace=False)
    links = [(int(f.src[e]), int(f.dst[e])) for e in pick]
    gpus = rng.choice(f.n_gpus, size=n_gpus, replace=False).tolist()
    dg = degrade(f, FaultSet(gpus=gpus, links=links))
    comp = _nx_groups(dg)
    alive = np.flatnonzero(dg.group >= 0)
    assert set(np.flatnonzero(dg.group < 0).tolist()) == set(gpus)
    for a in alive:
        for b in alive:
            assert (dg.group[a] == dg.group[b]) == (comp[a] == comp[b])
    if len(alive):
        sizes = np.bincount(dg.group[alive])
        assert sizes[0] == sizes.max()
    assert dg.lost_capacity_Bps == pytest.approx(f.capacity_Bps.sum() - dg.fabric.capacity_Bps.sum())


def test_one_direction_link():
    f = torus(5, link_Bps=1e9)
    dg = degrade(f, "link:0>1")
    assert dg.fabric.n_edges == f.n_edges - 1 and dg.n_groups == 1
    r = route(dg.fabric, [0], [1])
    assert r.hops.tolist() == [4]                  # the long way round


def test_dgx_host_and_gpu():
    f = dgx_cluster(4, gpus_per_node=8)
    dg = degrade(f, "host:1")
    assert dg.gpu_failed.sum() == 8 and dg.gpu_failed[8:16].all()
    dg = degrade(f, "gpu:3")
    assert dg.gpu_failed.sum() == 1 and len(dg.cut_off) == 0


def test_ocs_ports_planes_and_lost_ports():
    f = ocs_fabric(16, 4)
    left = ocs_ports(f, "plane:1,port:3/0,gpu:5")
    expect = np.full(16, 3)
    expect[3], expect[5] = 2, 0
    assert left.tolist() == expect.tolist()
    assert ocs_ports(f).tolist() == [4] * 16
    with pytest.raises(FaultError, match="no OCS"):
        ocs_ports(torus(4, link_Bps=1e9))


# ---- routing on degraded fabrics ----------------------------------------------------------
def _conserves(fabric, r, f):
    """Column f of the incidence is a unit flow from src to dst (node-edge balance)."""
    col = r.incidence[:, f].toarray().ravel()
    bal = np.bincount(fabric.src, weights=col, minlength=fabric.n_nodes) - np.bincount(
        fabric.dst, weights=col, minlength=fabric.n_nodes)
    want = np.zeros(fabric.n_nodes)
    want[fabric.gpus[r.src[f]]] += 1
    want[fabric.gpus[r.dst[f]]] -= 1
    return np.allclose(bal, want)


@pytest.mark.parametrize("method", ["shortest", "ecmp"])
def test_route_reports_unreachable(method):
    dg = degrade(torus(6, link_Bps=1e9), "link:0-1,link:3-4")
    s, d = np.array([0, 0, 1, 4, 2]), np.array([1, 4, 3, 5, 5])
    with pytest.raises(FlowError, match="no path"):
        route(dg.fabric, s, d, method=method)
    r = route(dg.fabric, s, d, method=method, unreachable="report")
    assert r.unreachable.tolist() == np.flatnonzero(~dg.reachable(s, d)).tolist() == [0, 4]
    assert r.incidence[:, [0, 4]].nnz == 0
    for k in (1, 2, 3):
        assert _conserves(dg.fabric, r, k)
    assert r.subset([1, 4]).unreachable.tolist() == [1]


def test_route_reports_failed_destination_gpu():
    f = leaf_spine(16, gpus_per_leaf=4)
    dg = degrade(f, "gpu:5")
    r = route(dg.fabric, [0, 1], [5, 9], unreachable="report")
    assert r.unreachable.tolist() == [0] and _conserves(dg.fabric, r, 1)


# ---- dimension-order routing ------------------------------------------------------------------
@pytest.mark.parametrize("dims, wrap", [([4, 4], True), ([5, 3, 2], True), ([4, 3], False), ([7], True)])
def test_dor_is_minimal_and_a_path(dims, wrap):
    f = torus(dims, link_Bps=1e9, wrap=wrap)
    rng = np.random.default_rng(1)
    s = rng.integers(0, f.n_gpus, 200)
    d = rng.integers(0, f.n_gpus, 200)
    s, d = s[s != d], d[s != d]
    r = route_dor(f, s, d)
    ref = route(f, s, d)
    assert r.hops.tolist() == ref.hops.tolist()
    assert np.allclose(r.latency_s, r.incidence.T @ f.latency_s)
    assert r.incidence.max() == 1.0
    for k in range(0, len(s), 17):
        assert _conserves(f, r, k)


def test_dor_order_is_dimension_order():
    f = torus([4, 4], link_Bps=1e9)
    r = route_dor(f, [0], [5])                     # (0,0) -> (1,1): x first, then y
    e = r.incidence[:, 0].indices
    assert {(int(f.src[k]), int(f.dst[k])) for k in e} == {(0, 1), (1, 5)}


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 10))
def test_dor_detours_around_failures(seed, n_links):
    rng = np.random.default_rng(seed)
    f = torus([4, 4, 3], link_Bps=1e9)
    und = np.flatnonzero(f.src < f.dst)
    pick = rng.choice(und, size=n_links, replace=False)
    dg = degrade(f, FaultSet(links=[(int(f.src[e]), int(f.dst[e])) for e in pick], gpus=[int(rng.integers(48))]))
    s = rng.integers(0, 48, 300)
    d = rng.integers(0, 48, 300)
    s, d = s[s != d], d[s != d]
    r = route_dor(dg.fabric, s, d, unreachable="report")
    assert r.unreachable.tolist() == np.flatnonzero(~dg.reachable(s, d)).tolist()
    assert np.allclose(r.latency_s[r.reachable], (r.incidence.T @ dg.fabric.latency_s)[r.reachable])
    assert np.array_equal(r.hops[r.reachable], np.rint(np.asarray(r.incidence.sum(axis=0)).ravel())[r.reachable])
    ok = r.reachable
    for k in np.flatnonzero(ok)[::7]:
        assert _conserves(dg.fabric, r, k)
    # every route uses surviving edges only (ids index the degraded fabric) and is no shorter than BFS
    ref = route(dg.fabric, s[ok], d[ok], unreachable="report")
    assert (r.hops[ok] >= ref.hops).all()


def test_dor_refuses_other_fabrics():
    with pytest.raises(FlowError, match="not a torus"):
        route_dor(leaf_spine(8, gpus_per_leaf=4), [0], [1])


def test_doctests():
    import doctest
    import importlib
    for name in ("ocsnet.faults.faultset", "ocsnet.faults.degrade", "ocsnet.flow.torus"):
        res = doctest.testmod(importlib.import_module(name))
        assert res.failed == 0 and res.attempted > 0, name
