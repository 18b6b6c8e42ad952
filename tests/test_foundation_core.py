"""Units, errors, catalog loading and the Fabric container."""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, strategies as st

from ocsnet import hardware, units
from ocsnet.errors import FabricError, SpecError, UnitError
from ocsnet.fabric import Fabric


@pytest.mark.parametrize("text,Bps", [("400Gbps", 50e9), ("50GBps", 50e9), ("1.6Tb/s", 200e9),
                                      ("8bps", 1.0), ("100", 100.0), ("1GiBps", 2**30)])
def test_parse_bandwidth(text, Bps):
    assert units.parse_bandwidth(text) == pytest.approx(Bps)


@pytest.mark.parametrize("text,s", [("10us", 1e-5), ("500ns", 5e-7), ("20ms", 0.02), ("2s", 2.0), ("1e3ns", 1e-6)])
def test_parse_time(text, s):
    assert units.parse_time(text) == pytest.approx(s)


@pytest.mark.parametrize("bad", ["fast", "10 parsecs", "nanGbps", "10Xbps", ""])
def test_parse_errors_name_the_field(bad):
    with pytest.raises(UnitError, match="link.bw"):
        units.parse_bandwidth(bad, field="link.bw")


@given(st.floats(min_value=1e-12, max_value=1e12, allow_nan=False))
def test_suffix_roundtrip(x):
    for f in ("latency_ns", "bandwidth_GBps", "hbm_GB", "rate_Gbps", "delay_us"):
        assert units.from_si(f, units.to_si(f, x)) == pytest.approx(x)


def test_h100_catalog_numbers():
    h = hardware.gpu("h100-sxm")
    assert h.bf16_flops == pytest.approx(989.4e12)
    assert h.hbm_bytes == 80e9 and h.hbm_Bps == 3.35e12
    assert h.scaleup_Bps == 450e9
    assert all(h.source.get(k) for k in ("bf16_dense_TFLOPs", "hbm_GB", "tdp_W"))


def test_lite_variants_ratios():
    h = hardware.gpu("h100-sxm")
    base, boost, oc = (hardware.gpu(n) for n in ("lite-base", "lite-netboost", "lite-overclock"))
    ratio = h.scaleup_Bps / h.bf16_flops
    assert base.network_Bps / base.bf16_flops == pytest.approx(ratio)
    assert boost.network_Bps / boost.bf16_flops == pytest.approx(2 * ratio, rel=1e-4)   # derived from the shoreline
    # the overclock is the silicon model's highest clock under the cooling limit (tests/test_silicon_lite.py)
    assert oc.bf16_flops == pytest.approx(oc.clock_factor * base.bf16_flops) and 1.0 < oc.clock_factor < 1.3
    for g in (base, boost, oc):
        assert g.hbm_bytes == pytest.approx(h.hbm_bytes / 4)
        assert g.h100_equivalents == 0.25


def test_every_catalog_number_has_source():
    for table in (hardware.links(), hardware.switches(), hardware.ocs_types()):
        for spec in table.values():
            assert spec.source and all(isinstance(v, str) and v for v in spec.source.values())


def test_catalog_rejects_unknown_and_missing_keys():
    with pytest.raises(SpecError, match="unknown key 'bogus'"):
        hardware._convert("links.x", {"bogus": "1", **{k: "a" for k in ("tech",)}}, hardware._LINK_FIELDS)
    with pytest.raises(SpecError, match="missing required key"):
        hardware._convert("links.x", {"tech": "cpo"}, hardware._LINK_FIELDS)
    entry = {k: 1 for k in hardware._OCS_FIELDS}
    entry["description"] = "x"
    with pytest.raises(SpecError, match="no source"):
        hardware._convert("ocs.x", entry, hardware._OCS_FIELDS)
    with pytest.raises(SpecError, match="unknown name 'h200'"):
        hardware.gpu("h200")


def _tiny():
    return Fabric(["gpu", "gpu", "packet_switch"], [0, 2, 1, 2], [2, 0, 2, 1], 1e9, 1e-6, "cpo", name="t")


def test_fabric_arrays_and_csr():
    f = _tiny()
    assert f.n_gpus == 2 and f.n_edges == 4
    # edges sorted by (src, dst); csr data is edge id + 1
    assert list(zip(f.src, f.dst)) == [(0, 2), (1, 2), (2, 0), (2, 1)]
    assert f.csr[2, 1] == 4
    assert list(f.edge_ids([0, 2, 0], [2, 1, 1])) == [0, 3, -1]


def test_fabric_networkx_roundtrip():
    f = _tiny()
    g = f.graph
    assert g.nodes[0]["kind"] == "gpu" and g.edges[0, 2]["capacity_Bps"] == 1e9
    f2 = Fabric.from_networkx(g)
    assert np.array_equal(f2.src, f.src) and np.array_equal(f2.capacity_Bps, f.capacity_Bps)
    assert list(f2.gpus) == list(f.gpus)


def test_from_networkx_names_missing_attributes():
    g = nx.Graph()
    g.add_node("a", kind="gpu")
    g.add_node("b")
    with pytest.raises(FabricError, match="node 'b'.*kind"):
        Fabric.from_networkx(g)
    g.nodes["b"]["kind"] = "gpu"
    g.add_edge("a", "b", capacity_Bps=1.0, latency_s=0.0)
    with pytest.raises(FabricError, match="'tech'"):
        Fabric.from_networkx(g)
    g.edges["a", "b"]["tech"] = "cpo"
    f = Fabric.from_networkx(g)
    assert f.n_edges == 2 and f.labels == ["a", "b"]


@pytest.mark.parametrize("cap", [0.0, -1.0, float("nan")])
def test_fabric_rejects_bad_capacity(cap):
    with pytest.raises(FabricError, match="capacity_Bps"):
        Fabric(["gpu", "gpu"], [0], [1], cap, 0.0, "cpo")


def test_fabric_duplicates_aggregate():
    with pytest.raises(FabricError, match="twice"):
        Fabric(["gpu", "gpu"], [0, 0], [1, 1], 1.0, 0.0, "cpo")
    f = Fabric(["gpu", "gpu"], [0, 0], [1, 1], [1.0, 2.0], [1e-9, 2e-9], "cpo", aggregate=True)
    assert f.n_edges == 1 and f.capacity_Bps[0] == 3.0 and f.latency_s[0] == 2e-9
