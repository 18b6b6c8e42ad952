"""ASTRA-sim analytical configs: reader on ASTRA-sim's own examples, hand-computed send delays, round trips."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csgraph, csr_matrix

from ocsnet.errors import FabricError, FlowError, SpecError
from ocsnet.topology.astra import (AstraConfig, _addresses, astra_send_delay, from_astra_yaml,
                                   read_astra_config, to_astra_yaml)
from ocsnet.topology.direct import fully_connected, torus
from ocsnet.topology.optical import ocs_fabric

DATA = Path(__file__).parent / "data" / "astra"
EXAMPLES = sorted(DATA.glob("*.yml"))
GIB = 2**30


def test_examples_are_present():
    assert {p.stem for p in EXAMPLES} >= {"Ring_8npus", "FullyConnected", "Switch", "Ring_FullyConnected_Switch"}


def _expected_counts(cfg):
    """Switches and directed edges from ASTRA-sim's building-block rules, by hand."""
    n = math.prod(cfg["npus_count"])
    sw = edges = 0
    for block, k in zip(cfg["topology"], cfg["npus_count"]):
        lines = n // k
        if block == "Ring":
            edges += lines * 2 * (k if k > 2 else 1)
        elif block == "FullyConnected":
            edges += lines * k * (k - 1)
        else:
            sw += lines
            edges += lines * 2 * k
    return n, sw, edges


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_reader_counts_and_capacities(path):
    import yaml

    raw = yaml.safe_load(path.read_text())
    f = from_astra_yaml(path)
    n, sw, edges = _expected_counts(raw)
    assert f.n_gpus == n and len(f.nodes_of_kind("packet_switch")) == sw and f.n_edges == edges
    assert f.name == path.stem
    dim = f.edge_attrs["dim"]
    for d, (bw, lat) in enumerate(zip(raw["bandwidth"], raw["latency"])):
        assert np.allclose(f.capacity_Bps[dim == d], bw * GIB)        # ASTRA-sim GB = 2^30 B
        assert np.allclose(f.latency_s[dim == d], lat * 1e-9)
    assert f.meta["astra"]["npus_count"] == raw["npus_count"]
    assert np.array_equal(f.gpus, np.arange(n))


def test_npu_numbering_matches_astra_comment():
    # MultiDimTopology::translate_address: units [2, 8, 4], id 47 -> address [1, 7, 2]
    cfg = read_astra_config(DATA / "Ring_FullyConnected_Switch.yml")
    assert _addresses(cfg, np.array([47])).tolist() == [[1, 7, 2]]
    f = from_astra_yaml(cfg)
    # NPU 47's dim-1 FullyConnected peers are 47 + (c - 7) * 2
    e = f.edge_ids(np.full(7, 47), [47 + (c - 7) * 2 for c in range(7)])
    assert (e >= 0).all() and (f.edge_attrs["dim"][e] == 1).all()


def test_switch_device_order_and_two_npu_ring():
    f = from_astra_yaml({"topology": ["Switch", "Ring"], "npus_count": [4, 2], "bandwidth": [10.0, 20.0],
                         "latency": [1.0, 2.0]})
    # ASTRA-sim builds a switch per dim-0 line, lines in order of their first NPU: 0 and 4
    assert f.n_nodes == 10 and list(f.kind[8:]) == ["packet_switch"] * 2
    assert f.edge_ids([0, 3, 4, 7], [8, 8, 9, 9]).min() >= 0
    ring = f.edge_attrs["dim"] == 1
    assert ring.sum() == 8                                  # 4 lines, one link per direction each
    assert f.meta["diameter_hops"] == 3


def test_send_delay_hand_computed():
    ring = DATA / "Ring_8npus.yml"
    mib = 2**20
    ser = mib / (50 * GIB / 1e9)                             # ns: 1 MiB at 50 GiB/s
    assert astra_send_delay(ring, 0, 3, mib) == pytest.approx((3 * 500 + ser) * 1e-9)
    assert astra_send_delay(ring, 0, 5, mib) == pytest.approx((3 * 500 + ser) * 1e-9)     # shorter way round
    assert astra_send_delay(ring, 6, 1, mib) == pytest.approx((3 * 500 + ser) * 1e-9)
    assert astra_send_delay(ring, 0, 4, mib) == pytest.approx((4 * 500 + ser) * 1e-9)
    assert astra_send_delay(DATA / "FullyConnected.yml", 2, 13, mib) == pytest.approx((500 + ser) * 1e-9)
    assert astra_send_delay(DATA / "Switch.yml", 2, 13, mib) == pytest.approx((1000 + ser) * 1e-9)
    hgx = astra_send_delay(DATA / "HGX-H100-validated.yml", 0, 7, 1e6)
    assert hgx == pytest.approx((2 * 936.25 + 1e6 / (400 * GIB / 1e9)) * 1e-9)
    assert astra_send_delay(ring, 0, 3, mib, integer_ns=True) == pytest.approx(math.floor(3 * 500 + ser) * 1e-9)


def test_send_delay_multi_dim_rule():
    cfg = DATA / "Ring_FullyConnected_Switch.yml"
    nb = 1e6
    # 0 -> 47: address [0,0,0] -> [1,7,2]; ASTRA-sim charges only dim 0 (2-NPU ring, 1 hop, 200 GiB/s)
    first = 50 + nb / (200 * GIB / 1e9)
    assert astra_send_delay(cfg, 0, 47, nb) == pytest.approx(first * 1e-9)
    # all dims: 1 x 50 + 1 x 500 + 2 x 2000 ns, slowest 50 GiB/s
    allr = 50 + 500 + 4000 + nb / (50 * GIB / 1e9)
    assert astra_send_delay(cfg, 0, 47, nb, multi_dim="all") == pytest.approx(allr * 1e-9)
    # 2 -> 14 differs only in dim 1: both rules agree
    one = 500 + nb / (100 * GIB / 1e9)
    assert astra_send_delay(cfg, 2, 14, nb) == astra_send_delay(cfg, 2, 14, nb, multi_dim="all") \
        == pytest.approx(one * 1e-9)
    v = astra_send_delay(cfg, [0, 2], [47, 14], nb)
    assert v.shape == (2,) and v[0] == pytest.approx(first * 1e-9)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_fabric_alpha_beta_matches_all_dims_rule_for_every_pair(path):
    """On the built fabric: min-latency path latency + bytes / path bottleneck, walked independently."""
    f = from_astra_yaml(path)
    n, nb = f.n_gpus, 4e6
    W = csr_matrix((f.latency_s, (f.src, f.dst)), shape=(f.n_nodes, f.n_nodes))
    dist, pred = csgraph.dijkstra(W, indices=f.gpus, return_predecessors=True)
    cap = {(u, v): c for u, v, c in zip(f.src.tolist(), f.dst.tolist(), f.capacity_Bps.tolist())}
    src, dst, got = [], [], []
    for s in range(n):
        for t in range(n):
            if s == t:
                continue
            bott, v = math.inf, t
            while v != s:
                u = pred[s, v]
                bott = min(bott, cap[(u, v)])
                v = u
            src.append(s)
            dst.append(t)
            got.append(dist[s, t] + nb / bott)
    want = astra_send_delay(path, src, dst, nb, multi_dim="all")
    assert np.allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_round_trip_through_yaml(path, tmp_path):
    f = from_astra_yaml(path)
    out = to_astra_yaml(f, tmp_path / "x.yml")
    assert read_astra_config(out) == read_astra_config(path)
    g = from_astra_yaml(out)
    for a in ("src", "dst", "capacity_Bps", "latency_s"):
        assert np.array_equal(getattr(f, a), getattr(g, a))
    assert to_astra_yaml(g, tmp_path / "y.yml").read_text().splitlines()[1:] == out.read_text().splitlines()[1:]


def test_torus_and_clique_have_astra_form(tmp_path):
    for fab, blocks in ((torus((4, 2, 3)), ["Ring"] * 3), (fully_connected(5), ["FullyConnected"])):
        p = to_astra_yaml(fab, tmp_path / f"{fab.name}.yml")
        cfg = read_astra_config(p)
        assert list(cfg.topology) == blocks
        g = from_astra_yaml(p)
        assert np.array_equal(g.src, fab.src) and np.allclose(g.capacity_Bps, fab.capacity_Bps, rtol=1e-15)
        assert np.allclose(g.latency_s, fab.latency_s)


def test_to_astra_yaml_refuses(tmp_path):
    with pytest.raises(FabricError, match="no ASTRA-sim form"):
        to_astra_yaml(ocs_fabric(8, 2), tmp_path / "a.yml")
    with pytest.raises(FabricError, match="no ASTRA-sim form"):
        to_astra_yaml(torus((4, 4), wrap=False), tmp_path / "a.yml")
    f = from_astra_yaml(DATA / "Ring_Ring.yml")
    f.capacity_Bps[0] *= 2                                  # changed after it was built
    with pytest.raises(FabricError, match="do not match"):
        to_astra_yaml(f, tmp_path / "a.yml")


def _cfg(**kw):
    base = {"topology": ["Ring", "Switch"], "npus_count": [4, 2], "bandwidth": [50.0, 25.0], "latency": [10.0, 20.0]}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("cfg,match", [
    (_cfg(extra=1), "unknown key 'extra'"),
    (_cfg(latency=None), "missing key 'latency'"),
    (_cfg(bandwidth=[50.0]), "bandwidth: has 1 entries but topology has 2"),
    (_cfg(topology=["Ring", "Torus"]), r"topology\[1\]: 'Torus' is not one of"),
    (_cfg(npus_count=[4, 1]), r"npus_count\[1\]: 1 is out of range"),
    (_cfg(npus_count=[4, 2.0]), r"npus_count\[1\]"),
    (_cfg(bandwidth=[50.0, 0.0]), r"bandwidth\[1\]: 0.0 is out of range, allowed \(0, inf\)"),
    (_cfg(latency=[-1.0, 2.0]), r"latency\[0\]: -1.0 is out of range"),
    (_cfg(topology="Ring"), "topology: expected a list"),
    (_cfg(topology=[], npus_count=[], bandwidth=[], latency=[]), "at least one dimension"),
])
def test_config_errors_name_the_key(cfg, match):
    with pytest.raises(SpecError, match=match):
        read_astra_config(cfg)


def test_bad_yaml_and_send_errors(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("topology: [ Ring\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        from_astra_yaml(p)
    ring = DATA / "Ring_8npus.yml"
    with pytest.raises(FlowError, match="src != dst"):
        astra_send_delay(ring, 3, 3, 10)
    with pytest.raises(FlowError, match="dst: NPU 8 is out of range"):
        astra_send_delay(ring, 0, 8, 10)
    with pytest.raises(FlowError, match="nbytes"):
        astra_send_delay(ring, 0, 1, 0)
    with pytest.raises(SpecError, match="multi_dim"):
        astra_send_delay(ring, 0, 1, 10, multi_dim="sum")
    assert isinstance(read_astra_config(ring), AstraConfig)
