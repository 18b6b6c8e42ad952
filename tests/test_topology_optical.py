"""OCS fabrics, circuit domains, apply_circuits and hybrid fabrics, against counts, brute force and BFS."""

import itertools
import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, strategies as st
from hypothesis_budget import examples
from scipy.sparse import csgraph

from ocsnet import hardware
from ocsnet.errors import FabricError, SpecError
from ocsnet.topology.direct import torus
from ocsnet.topology.hybrid import hybrid
from ocsnet.topology.circuits import allowed_pairs, apply_circuits, pair_level
from ocsnet.topology.optical import ocs_fabric
from ocsnet.topology.packet import leaf_spine


def _shared_ocs(f):
    """Independent truth from the edges: GPU ranks x OCS units incidence, and the level of each unit."""
    ocs = f.nodes_of_kind("ocs")
    up = (f.kind[f.src] == "gpu") & (f.kind[f.dst] == "ocs")
    col = np.searchsorted(ocs, f.dst[up])
    inc = sp.csr_matrix((np.ones(int(up.sum())), (f.gpu_rank[f.src[up]], col)), shape=(f.n_gpus, len(ocs)))
    return inc, f.node_attrs["level"][ocs]


def _derangement_sum(n, d, rng):
    """A circuit matrix with every row and column summing to d (d derangements added)."""
    C = np.zeros((n, n), dtype=np.int64)
    for _ in range(d):
        while True:
            p = rng.permutation(n)
            if not (p == np.arange(n)).any():
                break
        C[np.arange(n), p] += 1
    return C


# ---- ocs_fabric: closed forms -------------------------------------------------------------

@pytest.mark.parametrize("n,d", [(2, 1), (16, 4), (136, 3), (100, 8)])
def test_single_domain_counts_and_latency(n, d):
    f = ocs_fabric(n, d)
    g, lk, o = hardware.gpu("lite-base"), hardware.link("cpo"), hardware.ocs("mems-3d")
    b = g.network_Bps / d
    assert f.n_gpus == n and len(f.nodes_of_kind("ocs")) == d and f.n_nodes == n + d
    assert f.n_edges == 2 * n * d
    assert np.allclose(f.capacity_Bps, b)
    out_deg = np.bincount(f.src, minlength=f.n_nodes)
    assert (out_deg[f.gpus] == d).all() and (out_deg[f.nodes_of_kind("ocs")] == n).all()
    to_ocs = f.kind[f.dst] == "ocs"
    assert np.allclose(f.latency_s[to_ocs], lk.latency_s + o.insertion_latency_s)
    assert np.allclose(f.latency_s[~to_ocs], lk.latency_s)
    assert set(f.tech) == {"cpo"} and set(f.edge_attrs["link"]) == {"cpo"}
    assert set(f.node_attrs["model"][f.gpus]) == {"lite-base"}
    assert set(f.node_attrs["model"][f.nodes_of_kind("ocs")]) == {"mems-3d"}
    om = f.ocs
    assert om.ports_per_gpu == d and om.circuit_Bps == pytest.approx(b)
    assert om.reconfig_delay_s == o.reconfig_delay_s and om.all_to_all
    assert om.circuit_latency_s == pytest.approx(2 * lk.latency_s + o.insertion_latency_s)
    assert om.domain_size == n and om.bisection_bound_Bps == pytest.approx(n // 2 * d * b)


def test_default_grid_for_4096_gpus():
    f = ocs_fabric(4096, 8)
    om = f.ocs
    assert om.domain_shape == (64, 64) and om.planes_per_level == (4, 4) and not om.all_to_all
    assert om.n_ocs == 4 * 64 + 4 * 64 == len(f.nodes_of_kind("ocs"))
    inc, level = _shared_ocs(f)
    assert (np.diff(inc.indptr) == 8).all()                              # every GPU on 8 OCS
    assert (np.asarray(inc.sum(0)).ravel() == 64).all()                  # every OCS holds 64 GPUs
    assert max(om.domain_shape) <= hardware.ocs("mems-3d").ports


@examples(60)
@given(st.integers(2, 30000))
def test_default_shape_fits_the_ocs(n):
    ports = hardware.ocs("mems-3d").ports
    try:
        f = ocs_fabric(n, 4)
    except SpecError as e:
        assert "no factorization" in str(e) or "ports_per_gpu" in str(e)
        # truth: no factor pair/triple within the port count exists when the message says so
        if "no factorization" in str(e):
            assert not any(n % a == 0 and n // a <= ports for a in range(2, ports + 1))
        return
    shape = f.ocs.domain_shape
    assert math.prod(shape) == n and all(2 <= s <= ports for s in shape)
    assert len(shape) == 1 if n <= ports else len(shape) >= 2


@pytest.mark.parametrize("shape,ppl", [([3, 4], [1, 1]), ([4, 2], [2, 1]), ([2, 3, 2], [1, 1, 1]), ([5], [3])])
def test_allowed_pairs_match_shared_ocs(shape, ppl):
    n = math.prod(shape)
    f = ocs_fabric(n, sum(ppl), domain_shape=shape, planes_per_level=ppl)
    inc, level = _shared_ocs(f)
    share = (inc @ inc.T).toarray()
    np.fill_diagonal(share, 0)
    A = allowed_pairs(f).toarray()
    assert np.array_equal(A, share > 0)
    i, j = np.nonzero(share)
    lv = pair_level(f, i, j)
    # level of the pair = level of any OCS unit both are on
    for a, b, l in zip(i, j, lv):
        units = np.intersect1d(inc[a].indices, inc[b].indices)
        assert set(level[units]) == {l}
        assert len(units) == ppl[l]                 # shared planes = planes of that level
    assert np.array_equal(allowed_pairs(f, i, j), np.ones(len(i), bool))
    assert not allowed_pairs(f, [0], [0])[0]


@pytest.mark.parametrize("shape,ppl", [([3, 4], [1, 1]), ([4, 4], [2, 1]), ([2, 3, 2], [1, 1, 1]), ([7], [2])])
def test_circuit_hops_by_bfs(shape, ppl):
    n = math.prod(shape)
    f = ocs_fabric(n, sum(ppl), domain_shape=shape, planes_per_level=ppl)
    D = csgraph.shortest_path(allowed_pairs(f).astype(float), unweighted=True)
    om = f.ocs
    assert D.max() == om.max_circuit_hops
    assert D.sum() / (n * (n - 1)) == pytest.approx(om.avg_circuit_hops)


def _bisection_bound_brute(f):
    """Min over balanced halves of sum over OCS units of min(a, s - a) * port bandwidth."""
    inc, _ = _shared_ocs(f)
    n = f.n_gpus
    inc = inc.toarray()
    s = inc.sum(0)
    best = math.inf
    for half in itertools.combinations(range(1, n), n // 2 - 1):    # GPU 0 on side A (mirror symmetry)
        side = np.zeros(n, bool)
        side[[0, *half]] = True
        a = side @ inc
        best = min(best, float(np.minimum(a, s - a).sum()))
    return best * f.ocs.circuit_Bps


@pytest.mark.parametrize("shape,ppl", [([8], [2]), ([7], [1]), ([4, 2], [2, 1]), ([2, 6], [1, 2]), ([4, 4], [1, 1])])
def test_bisection_bound_brute_force(shape, ppl):
    f = ocs_fabric(math.prod(shape), sum(ppl), domain_shape=shape, planes_per_level=ppl)
    assert f.ocs.bisection_bound_Bps == pytest.approx(_bisection_bound_brute(f))


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_gpus=1, ports_per_gpu=2), "n_gpus"),
    (dict(n_gpus=8, ports_per_gpu=0), "ports_per_gpu"),
    (dict(n_gpus=8, ports_per_gpu=2.5), "ports_per_gpu"),
    (dict(n_gpus=8, ports_per_gpu=2, port_Bps=-1.0), "port_Bps"),
    (dict(n_gpus=8, ports_per_gpu=2, port_Bps=0.0), "port_Bps"),
    (dict(n_gpus=8, ports_per_gpu=2, gpu="h200"), "gpu"),
    (dict(n_gpus=8, ports_per_gpu=2, ocs="nope"), "ocs"),
    (dict(n_gpus=12, ports_per_gpu=2, domain_shape=[3, 3]), "domain_shape"),
    (dict(n_gpus=274, ports_per_gpu=2, domain_shape=[137, 2]), r"domain_shape\[0\]"),
    (dict(n_gpus=12, ports_per_gpu=2, domain_shape=[3, 4], planes_per_level=[1, 2]), "planes_per_level"),
    (dict(n_gpus=12, ports_per_gpu=2, domain_shape=[3, 4], planes_per_level=[2]), "planes_per_level"),
    (dict(n_gpus=12, ports_per_gpu=2, domain_shape=[3, 4], planes_per_level=[2, 0]), r"planes_per_level\[1\]"),
    (dict(n_gpus=4096, ports_per_gpu=1), "ports_per_gpu"),
    (dict(n_gpus=137 * 2, ports_per_gpu=2), "no factorization"),
])
def test_ocs_fabric_errors_name_the_field(kwargs, match):
    with pytest.raises(SpecError, match=match):
        ocs_fabric(**kwargs)


# ---- apply_circuits ------------------------------------------------------------------------

@examples(25)
@given(st.integers(2, 24), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_apply_circuits_capacities(n, d, seed):
    f = ocs_fabric(n, d)
    rng = np.random.default_rng(seed)
    C = _derangement_sum(n, rng.integers(1, d + 1), rng)
    L = apply_circuits(f, C)
    Ls = apply_circuits(f, sp.csr_matrix(C))
    b, lat = f.ocs.circuit_Bps, f.ocs.circuit_latency_s
    assert L.n_nodes == n and (L.kind == "gpu").all() and np.array_equal(L.gpus, np.arange(n))
    dense = np.zeros((n, n))
    dense[L.gpu_rank[L.src], L.gpu_rank[L.dst]] = L.capacity_Bps
    assert np.allclose(dense, C * b)
    assert np.allclose(L.latency_s, lat) and set(L.tech) == {"circuit"}
    assert np.array_equal(L.edge_attrs["circuits"], C[L.src, L.dst])
    assert L.meta["circuits"]["n_circuits"] == C.sum() and L.meta["logical"]
    for a in ("src", "dst", "capacity_Bps", "latency_s"):
        assert np.array_equal(getattr(L, a), getattr(Ls, a))


def test_apply_circuits_multilevel_and_hybrid_keep_packet_part():
    f = ocs_fabric(12, 2, domain_shape=[3, 4], planes_per_level=[1, 1])
    r = np.arange(12)
    C = np.zeros((12, 12), int)
    C[r, (r // 3) * 3 + (r + 1) % 3] = 1          # ring inside every level-0 line
    C[r, (r + 3) % 12] = 1                        # ring along every level-1 line
    L = apply_circuits(f, C)
    assert L.n_edges == 24 and L.capacity_Bps.sum() == pytest.approx(24 * f.ocs.circuit_Bps)
    pk = leaf_spine(16, gpus_per_leaf=4, host_Bps=50e9)
    h = hybrid(pk, 2)
    C = _derangement_sum(16, 2, np.random.default_rng(1))
    L = apply_circuits(h, C)
    packet_edges = pk.n_edges
    assert L.n_edges == packet_edges + np.count_nonzero(C)
    assert L.n_nodes == pk.n_nodes and np.array_equal(L.gpus, pk.gpus)
    assert (L.tech == "circuit").sum() == np.count_nonzero(C)
    keep = L.tech != "circuit"
    assert np.allclose(np.sort(L.capacity_Bps[keep]), np.sort(pk.capacity_Bps))
    assert "bisection_Bps" not in L.meta and "bisection_Bps" in h.meta


def _bad(entries, n=6):
    C = np.zeros((n, n), dtype=np.int64)
    for (i, j), v in (entries or {}).items():
        C[i, j] = v
    return C


@pytest.mark.parametrize("C,match", [
    (np.zeros((5, 6), int), r"shape \(5, 6\)"),
    (sp.csr_matrix((6, 5)), r"shape \(6, 5\)"),
    (np.zeros(6, int), "shape"),
    (_bad({(1, 2): -1}), r"circuits\[1, 2\] = -1 is negative"),
    (np.where(np.eye(6, k=1) > 0, 0.5, 0.0), r"circuits\[0, 1\] = 0.5 is not an integer"),
    (_bad({(3, 3): 1}), r"circuits\[3, 3\] = 1: the diagonal must be zero \(GPU 3"),
    (_bad({(2, 0): 1, (2, 1): 1, (2, 3): 1}), r"row 2 \(circuits from GPU 2\) sums to 3, allowed at most ports_per_gpu = 2"),
    (_bad({(0, 4): 2, (1, 4): 1}), r"column 4 \(circuits to GPU 4\) sums to 3"),
    (np.full((6, 6), "a"), "dtype"),
])
def test_apply_circuits_rejects_invalid(C, match):
    with pytest.raises(FabricError, match=match):
        apply_circuits(ocs_fabric(6, 2), C)


def test_apply_circuits_rejects_what_the_wiring_cannot_make():
    f = ocs_fabric(12, 3, domain_shape=[3, 4], planes_per_level=[2, 1])
    with pytest.raises(FabricError, match=r"circuits\[0, 4\] = 1: GPUs 0 and 4 share no circuit domain"):
        apply_circuits(f, _bad({(0, 4): 1}, 12))
    # 0 -> 3 and 0 -> 6 are both level-1 circuits, but level 1 has one plane
    with pytest.raises(FabricError, match=r"row 0 \(circuits from GPU 0 on circuit level 1\) sums to 2, "
                                          r"allowed at most planes_per_level\[1\] = 1"):
        apply_circuits(f, _bad({(0, 3): 1, (0, 6): 1}, 12))
    apply_circuits(f, _bad({(0, 1): 1, (0, 2): 1, (0, 3): 1}, 12))    # 2 level-0 + 1 level-1: fine
    L = apply_circuits(ocs_fabric(4, 1), np.roll(np.eye(4, dtype=int), 1, 1))
    with pytest.raises(FabricError, match="already applied"):
        apply_circuits(L, np.zeros((4, 4), int))
    with pytest.raises(FabricError, match="no optical circuit switch"):
        apply_circuits(torus(4), np.zeros((4, 4), int))


def test_apply_circuits_fast_path_shape_for_4096():
    f = ocs_fabric(4096, 8)
    r = np.arange(4096)
    ring0 = sp.csr_matrix((np.ones(4096, int), (r, (r // 64) * 64 + (r + 1) % 64)), shape=(4096, 4096))
    ring1 = sp.csr_matrix((np.ones(4096, int), (r, (r + 64) % 4096)), shape=(4096, 4096))
    L = apply_circuits(f, 2 * ring0 + 2 * ring0.T + ring1 + ring1.T)
    assert L.n_edges == 4 * 4096 and L.meta["circuits"]["n_circuits"] == 6 * 4096
    G = nx.DiGraph(list(zip(L.src.tolist(), L.dst.tolist())))
    assert nx.is_strongly_connected(G)


# ---- hybrid --------------------------------------------------------------------------------

def test_hybrid_structure_and_bandwidth_split():
    pk = leaf_spine(64, gpus_per_leaf=16, host_Bps=50e9)
    h = hybrid(pk, 2)
    g = hardware.gpu("lite-base")
    assert h.meta["packet_gpu_Bps"] == 50e9
    assert h.ocs.circuit_Bps == pytest.approx((g.network_Bps - 50e9) / 2)
    assert h.n_nodes == pk.n_nodes + 2 and np.array_equal(h.gpus, pk.gpus)
    assert h.n_edges == pk.n_edges + 2 * 64 * 2
    out = np.bincount(h.src, weights=h.capacity_Bps, minlength=h.n_nodes)[h.gpus]
    assert np.allclose(out, g.network_Bps)                       # ports split, budget kept
    assert h.meta["packet"]["generator"] == "leaf_spine"
    for k in ("diameter_hops", "avg_hops", "bisection_Bps"):
        assert h.meta[k] == pk.meta[k]
    same = hybrid("leaf_spine", 2, n_gpus=64, gpus_per_leaf=16, host_Bps=50e9)
    assert np.array_equal(same.src, h.src) and np.array_equal(same.capacity_Bps, h.capacity_Bps)
    plane = h.edge_attrs["plane"]
    on_ocs = (h.kind[h.src] == "ocs") | (h.kind[h.dst] == "ocs")
    assert (plane[~on_ocs] == -1).all() and set(plane[on_ocs]) == {0, 1}


def test_hybrid_errors():
    with pytest.raises(SpecError, match="port_Bps: the packet part already uses 112.5 GB/s"):
        hybrid("leaf_spine", 2, n_gpus=16, gpus_per_leaf=4, host_Bps=112.5e9)
    with pytest.raises(SpecError, match="packet: 'nope'"):
        hybrid("nope", 2)
    with pytest.raises(FabricError, match="already has OCS"):
        hybrid(ocs_fabric(8, 2), 2)
    with pytest.raises(SpecError, match="ocs_ports_per_gpu"):
        hybrid("leaf_spine", 0, n_gpus=16, gpus_per_leaf=4, host_Bps=50e9)
    with pytest.raises(SpecError, match="parameters"):
        hybrid(leaf_spine(16, gpus_per_leaf=4), 2, n_gpus=3)


def test_circuit_names_live_in_circuits_and_the_package():
    """circuits.py holds the circuit half of the OCS; optical.py keeps only the wiring (no shim)."""
    import ocsnet.topology as topo
    from ocsnet.topology import circuits, optical
    for name in ("apply_circuits", "allowed_pairs", "pair_level", "CIRCUIT_LINK"):
        assert not hasattr(optical, name), name
        assert name in circuits.__all__
    for name in ("apply_circuits", "allowed_pairs", "pair_level"):
        assert getattr(topo, name) is getattr(circuits, name)
    assert topo.ocs_fabric is ocs_fabric
