"""Memory tiers (catalog) and placement: capacities never exceeded, the greedy equals its LP, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsnet.errors import SpecError, WorkloadError
from ocsnet.memory import ITEMS, Demand, MemoryTier, Share, demand, local_tier, lp_bound, place, tier, tiers
from ocsnet.memory.placement import greedy_offload
from ocsnet.memory.tiers import tier_from_entry, host_tier_for
from ocsnet.workload import ParallelPlan
from ocsnet.workload.step import memory_fit


# ---- catalog --------------------------------------------------------------------------

def test_catalog_tiers_load_with_sources():
    ts = tiers()
    assert {"peer-hbm", "cxl-pool", "photonic-fabric-appliance", "dram-pool-rdma", "host-dram"} <= set(ts)
    for t in ts.values():
        assert t.kind in ("peer", "node", "host")
        assert t.source, t.name
        if t.kind != "peer":
            assert t.capacity_bytes > 0 and t.bandwidth_Bps > 0
    pfa = tier("photonic-fabric-appliance")
    assert pfa.capacity_bytes == 32e12 and pfa.bandwidth_Bps == pytest.approx(115e12 / 8)


def test_unknown_tier_names_the_known_ones():
    with pytest.raises(SpecError, match="unknown name 'nope'.*cxl-pool"):
        tier("nope")


@pytest.mark.parametrize("field", ["capacity_bytes", "bandwidth_Bps"])
def test_zero_capacity_or_bandwidth_is_refused_by_name(field):
    kw = {"capacity_bytes": 1e12, "bandwidth_Bps": 1e11, field: 0.0}
    with pytest.raises(SpecError, match=f"memory.box.{field}"):
        MemoryTier("box", "node", **kw)


def test_catalog_entry_checks():
    good = {"kind": "node", "description": "x", "capacity_GB": 1, "bandwidth_GBps": 1, "latency_ns": 1,
            "energy_pJ_per_bit": 1, "power_W_per_TB": 1, "relative_cost_per_TB": 1, "relative_cost_per_node": 1}
    src = {k: "somewhere" for k, v in good.items() if not isinstance(v, str)}
    t = tier_from_entry("box", dict(good, source=src))
    assert t.capacity_bytes == 1e9 and t.cost_per_byte == pytest.approx(1e-12)
    with pytest.raises(SpecError, match="memory.box: unknown key 'speed'"):
        tier_from_entry("box", dict(good, speed=3, source=src))
    with pytest.raises(SpecError, match="memory.box.latency_ns: number has no source"):
        tier_from_entry("box", dict(good, source={k: v for k, v in src.items() if k != "latency_ns"}))
    with pytest.raises(SpecError, match="missing required key 'capacity_GB'"):
        tier_from_entry("box", {k: v for k, v in dict(good, source=src).items() if k != "capacity_GB"})
    with pytest.raises(SpecError, match="memory.box.capacity_bytes"):
        tier_from_entry("box", dict(good, capacity_GB=0, source=src))


def test_host_tier_scales_with_silicon():
    h = tier("host-dram")
    lite = host_tier_for(h, "lite-base")
    assert lite.capacity_bytes == pytest.approx(h.capacity_bytes / 4)
    assert lite.bandwidth_Bps == pytest.approx(h.bandwidth_Bps / 4)


# ---- placement --------------------------------------------------------------------------

def _shares(c0, remote):
    out = [Share(local_tier("lite-base"), c0, 1e12)]
    names = ["cxl-pool", "dram-pool-rdma", "photonic-fabric-appliance"]
    for (cap, bw), name in zip(remote, names):
        out.append(Share(tier(name), cap, bw))
    return out


demands = st.builds(
    lambda w, kv, act, layers, mb: Demand(np.array([w, kv, act, 0.0, 0.0]),
                                          np.array([1.0, 1.0 / mb, 2.0, 2.0, 2.0 / mb]),
                                          np.array([1.0, 1.0 / mb, 1.0, 1.0, 1.0 / mb]), layers),
    st.floats(1e9, 100e9), st.floats(0, 100e9), st.floats(0, 2e9), st.integers(3, 126), st.integers(1, 16))
remotes = st.lists(st.tuples(st.floats(1e9, 200e9), st.floats(1e9, 1e12)), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(demands, st.floats(5e9, 80e9), remotes, st.booleans())
def test_placement_never_exceeds_a_tier(d, c0, remote, prefetch):
    shares = _shares(c0, remote)
    try:
        p = place(d, shares, prefetch=prefetch)
    except WorkloadError as e:
        assert "fits nowhere" in str(e)
        # nothing fits: even every remote byte offloaded leaves the HBM over capacity
        assert d.total_bytes > c0
        return
    used, cap = p.used_bytes, p.capacity_bytes
    assert np.all(used <= cap * (1 + 1e-9))
    assert p.layer_bytes.sum() == pytest.approx(d.total_bytes, rel=1e-9)
    assert np.all(p.layer_bytes >= -1e-6)
    if d.total_bytes <= c0:
        assert p.remote_bytes == 0


@settings(max_examples=60, deadline=None)
@given(demands, remotes, st.floats(0.01, 1.0))
def test_greedy_equals_its_linear_program(d, remote, share):
    shares = _shares(1e9, remote)
    room = min(d.total_bytes, sum(c for c, _ in remote))
    offload = share * room
    x = greedy_offload(d, shares, offload)
    bw = np.array([s.bandwidth_Bps for s in shares[1:]])
    greedy = float((x[:, 1:] * d.traffic[:, None] / bw[None, :]).sum())
    lp, _ = lp_bound(d, shares, offload)
    assert greedy == pytest.approx(lp, rel=1e-6, abs=1e-12)
    assert x[:, 1:].sum() == pytest.approx(offload, rel=1e-9)


def test_fits_nowhere_names_the_tiers():
    d = Demand(np.array([100e9, 0, 0, 0, 0]), np.ones(5), np.ones(5), 10)
    with pytest.raises(WorkloadError, match="fits nowhere.*hbm.*cxl-pool"):
        place(d, _shares(10e9, [(20e9, 1e11)]))


def test_rule_errors_name_the_tier_or_item():
    d = Demand(np.array([30e9, 10e9, 0, 0, 0]), np.ones(5), np.ones(5), 4)
    shares = _shares(40e9, [(5e9, 1e11)])
    with pytest.raises(WorkloadError, match="unknown tier 'mars'"):
        place(d, shares, rule={"weights": "mars"})
    with pytest.raises(WorkloadError, match="unknown item 'bias'"):
        place(d, shares, rule={"bias": "cxl-pool"})
    with pytest.raises(WorkloadError, match="memory tier 'cxl-pool': the rule places 10 GB"):
        place(d, shares, rule={"kv_cache": "cxl-pool"})
    with pytest.raises(WorkloadError, match="fraction: 1.5"):
        place(d, shares, rule={"kv_cache": {"cxl-pool": 1.5}})
    with pytest.raises(WorkloadError, match=r"layers: \[2, 9\]"):
        place(d, shares, rule={"kv_cache": [{"tier": "cxl-pool", "layers": [2, 9]}]})
    with pytest.raises(WorkloadError, match="bandwidth_Bps 0"):
        Share(tier("cxl-pool"), 1e9, 0)


def test_rule_per_layer():
    d = Demand(np.array([40e9, 8e9, 0, 0, 0]), np.ones(5), np.ones(5), 8)
    p = place(d, _shares(80e9, [(100e9, 1e11)]), rule={"weights": [{"tier": "cxl-pool", "layers": [4, 8]}]})
    remote = p.layer_bytes[:, 0, 1]
    assert np.allclose(remote[:4], 0) and np.allclose(remote[4:], 5e9)
    t = p.traffic_bytes()
    assert t[:4, 1].sum() == 0 and t[4:, 1].sum() == pytest.approx(20e9)
    assert p.staging_bytes == pytest.approx(5e9)


def test_demand_from_memory_fit_matches_the_fit():
    fit = memory_fit("llama3-70b", ParallelPlan(tp=4), "decode", batch=16, context=4096, gpu="lite-base")
    d = demand(fit, "decode", layers=80, micro_batches=1)
    assert d.total_bytes == pytest.approx(fit.total_bytes)
    assert d.stored[ITEMS.index("kv_cache")] == fit.kv_cache_bytes
