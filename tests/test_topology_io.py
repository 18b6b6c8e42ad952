"""Fabric files: JSON and GraphML round trips for every generator family, byte-identical rewrites, bad files."""

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from ocsnet.errors import FabricError, SpecError
from ocsnet.fabric import Fabric
from ocsnet.topology import io
from ocsnet.topology.astra import from_astra_yaml
from ocsnet.topology.direct import fully_connected, fully_connected_groups, torus
from ocsnet.topology.hybrid import hybrid
from ocsnet.topology.circuits import apply_circuits
from ocsnet.topology.optical import ocs_fabric
from ocsnet.topology.packet import clos, dgx_cluster, fat_tree, leaf_spine, rail_optimized

ASTRA = Path(__file__).parent / "data" / "astra" / "Ring_FullyConnected_Switch.yml"


def _labelled():
    g = nx.DiGraph(name="custom", meta={"note": "hand-made", "sizes": [1, 2]})
    g.add_node(("rack", 0), kind="gpu", rank=1, weight=2.5, ok=True)
    g.add_node(("rack", 1), kind="gpu", rank=0, weight=1.5, ok=False)
    g.add_node("sw", kind="packet_switch", weight=0.0, ok=True)
    for u in (("rack", 0), ("rack", 1)):
        g.add_edge(u, "sw", capacity_Bps=1e9 / 3, latency_s=1e-7, tech="cpo", hops=1)
        g.add_edge("sw", u, capacity_Bps=2e9 / 7, latency_s=3e-7, tech="copper", hops=2)
    return Fabric.from_networkx(g)


FAMILIES = {
    "ocs": lambda: ocs_fabric(16, 3),
    "ocs-grid": lambda: ocs_fabric(12, 2, domain_shape=[3, 4], planes_per_level=[1, 1]),
    "circuits": lambda: apply_circuits(ocs_fabric(8, 2), np.roll(np.eye(8, dtype=int), 1, 1) * 2),
    "hybrid": lambda: hybrid("leaf_spine", 2, n_gpus=16, gpus_per_leaf=4, host_Bps=50e9),
    "torus": lambda: torus((3, 2, 4)),
    "mesh": lambda: torus((3, 3), wrap=False),
    "clique": lambda: fully_connected(6),
    "groups": lambda: fully_connected_groups(12, 3),
    "astra": lambda: from_astra_yaml(ASTRA),
    "fat_tree": lambda: fat_tree(4),
    "leaf_spine": lambda: leaf_spine(32, gpus_per_leaf=8),
    "clos": lambda: clos(128, tiers=3, radix=8),
    "rail": lambda: rail_optimized(4, gpus_per_node=4),
    "dgx": lambda: dgx_cluster(2),
    "labelled": _labelled,
}


def assert_same(a: Fabric, b: Fabric):
    assert a.name == b.name and a.meta == b.meta and a.ocs == b.ocs
    assert a.kind.tolist() == b.kind.tolist() and a.tech.tolist() == b.tech.tolist()
    for f in ("src", "dst", "capacity_Bps", "latency_s", "gpus"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f          # bit for bit
    for attrs in ("node_attrs", "edge_attrs"):
        A, B = getattr(a, attrs), getattr(b, attrs)
        assert sorted(A) == sorted(B)
        for k in A:
            assert A[k].dtype == B[k].dtype, k
            assert np.array_equal(A[k], B[k], equal_nan=A[k].dtype.kind == "f"), k
    assert a.labels == b.labels


@pytest.mark.parametrize("family", ["ocs", "ocs-grid", "circuits", "hybrid"])
def test_round_trip_keeps_the_ocs_description(family, tmp_path):
    f = FAMILIES[family]()
    assert f.ocs is not None and f.ocs.with_packet == (family == "hybrid") and "ocs" not in f.meta
    for ext in (".json", ".graphml"):
        g = io.read(io.write(f, tmp_path / f"a{ext}"))
        assert g.ocs == f.ocs and isinstance(g.ocs.domain_shape, tuple)
    assert Fabric.from_networkx(f.graph).ocs == f.ocs


def test_version_1_files_keep_their_ocs_description_in_meta(tmp_path):
    """A version-1 file had ``meta["ocs"]`` with derived keys; it reads into ``fabric.ocs``."""
    import json

    f = FAMILIES["ocs-grid"]()
    d = io.to_node_link(f)
    old = dict(f.ocs.to_dict(), all_to_all=False, domain_size=4, max_circuit_hops=2, avg_circuit_hops=1.0)
    del old["with_packet"]
    d["version"] = 1
    d["graph"].pop("ocs")
    d["graph"]["meta"] = dict(d["graph"]["meta"], ocs=old)
    p = tmp_path / "v1.json"
    p.write_text(json.dumps(d))
    g = io.read(p)
    assert g.ocs == f.ocs and g.meta == f.meta


@pytest.mark.parametrize("ext", [".json", ".graphml"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip(family, ext, tmp_path):
    f = FAMILIES[family]()
    p = io.write(f, tmp_path / f"a{ext}")
    g = io.read(p)
    assert_same(f, g)
    q = io.write(g, tmp_path / f"b{ext}")
    assert p.read_bytes() == q.read_bytes()                           # deterministic output
    assert io.write(FAMILIES[family](), tmp_path / f"c{ext}").read_bytes() == p.read_bytes()


def test_node_link_is_networkx_readable_and_dict_round_trip():
    f = FAMILIES["hybrid"]()
    d = io.to_node_link(f)
    assert_same(f, io.from_node_link(json.loads(json.dumps(d))))
    g = nx.node_link_graph(d, edges="links")
    assert g.number_of_nodes() == f.n_nodes and g.number_of_edges() == f.n_edges
    e = next(iter(g.edges(data=True)))
    assert {"capacity_Bps", "latency_s", "tech", "link"} <= set(e[2])


def test_graphml_readable_by_networkx(tmp_path):
    f = FAMILIES["groups"]()
    g = nx.read_graphml(io.write(f, tmp_path / "g.graphml"))
    assert g.number_of_edges() == f.n_edges
    assert {d["kind"] for _, d in g.nodes(data=True)} == {"gpu"}


def test_from_networkx_delegates():
    g = nx.Graph()
    g.add_node("a", kind="gpu")
    g.add_node("b", kind="gpu")
    g.add_edge("a", "b", capacity_Bps=1e9, latency_s=0.0, tech="cpo")
    f = io.from_networkx(g, name="pair")
    assert f.n_edges == 2 and f.name == "pair" and f.labels == ["a", "b"]


def test_bad_files(tmp_path):
    f = torus(3)
    with pytest.raises(SpecError, match=r"extension '\.txt'; allowed: \.json, \.graphml"):
        io.write(f, tmp_path / "x.txt")
    with pytest.raises(SpecError, match="extension"):
        io.read(tmp_path / "x")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FabricError, match="not valid JSON"):
        io.read(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(FabricError, match="format"):
        io.read(tmp_path / "other.json")
    d = io.to_node_link(f)
    del d["links"][0]["capacity_Bps"]
    with pytest.raises(FabricError, match="link 0: missing attribute 'capacity_Bps'"):
        io.from_node_link(d)
    d = io.to_node_link(f)
    d["links"][0]["capacity_Bps"] = -1.0
    with pytest.raises(FabricError, match="capacity_Bps"):
        io.from_node_link(d)
    (tmp_path / "plain.graphml").write_text(
        '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<graph edgedefault="directed"><node id="0"/></graph></graphml>')
    with pytest.raises(FabricError, match="not an ocsnet fabric"):
        io.read(tmp_path / "plain.graphml")
    (tmp_path / "junk.graphml").write_text("<<<")
    with pytest.raises(FabricError, match="not a readable GraphML"):
        io.read(tmp_path / "junk.graphml")
    with pytest.raises(FileNotFoundError):
        io.read(tmp_path / "missing.json")
    with pytest.raises(FabricError, match="meta"):
        io.write(Fabric(["gpu", "gpu"], [0, 1], [1, 0], 1.0, 0.0, "cpo", meta={"x": object()}), tmp_path / "m.json")
