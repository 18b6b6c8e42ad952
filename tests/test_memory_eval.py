"""Remote memory in the per-layer model and memory nodes on fabrics: closed forms and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ocsnet import evaluate
from ocsnet.errors import SpecError, WorkloadError
from ocsnet.fabric import Fabric
from ocsnet.flow import route
from ocsnet.memory import MemoryConfig, MemoryTier, memory_config
from ocsnet.topology import attach_memory, build, fat_tree, ocs_fabric, torus
from ocsnet.workload import ParallelPlan

KV = dict(batch=8, context=2048)


def _ev(fabric, plan, memory=None, **kw):
    args = dict(KV, fidelities=("alpha-beta", "max-min"))
    args.update(kw)
    return evaluate("llama3-70b", plan, fabric, "decode", memory=memory, **args)


# ---- memory nodes on fabrics ------------------------------------------------------------

def test_attach_memory_to_a_fat_tree_keeps_gpu_routes():
    base = fat_tree(4)
    f = attach_memory(base, 2, ports=4)
    mem = np.flatnonzero(f.kind == "memory")
    assert len(mem) == 2 and f.n_gpus == base.n_gpus
    assert f.n_edges == base.n_edges + 4
    for m in mem:                                        # one attachment point each way
        assert len(set(f.dst[f.src == m])) == 1 and len(set(f.src[f.dst == m])) == 1
        assert f.capacity_Bps[f.src == m].sum() == pytest.approx(4 * f.meta["memory"]["port_Bps"])
    s, d = np.meshgrid(np.arange(16), np.arange(16))
    keep = s.ravel() != d.ravel()
    a = route(base, s.ravel()[keep], d.ravel()[keep], method="ecmp")
    b = route(f, s.ravel()[keep], d.ravel()[keep], method="ecmp")
    assert np.array_equal(a.hops, b.hops) and np.allclose(a.latency_s, b.latency_s)


def test_attach_memory_to_torus_and_ocs():
    t = attach_memory(torus((4, 4)), 2, attach="auto")
    assert t.meta["memory"]["attach"] == "gpu"
    o = attach_memory(ocs_fabric(16, 4), 2, ports=4)
    assert o.meta["memory"]["attach"] == "ocs"
    mem = np.flatnonzero(o.kind == "memory")
    # port p of a memory node goes to an OCS of plane p mod planes
    for m in mem:
        nb = o.dst[o.src == m]
        assert set(o.kind[nb]) == {"ocs"} and len(set(o.node_attrs["plane"][nb].tolist())) == 4


def test_attach_memory_errors():
    with pytest.raises(SpecError, match="n_nodes"):
        attach_memory(fat_tree(4), 0)
    with pytest.raises(SpecError, match="attach: 'spine' needs packet switches"):
        attach_memory(torus((4, 4)), 1, attach="spine")
    with pytest.raises(SpecError, match="attach: 'moon' is not one of"):
        attach_memory(fat_tree(4), 1, attach="moon")
    with pytest.raises(SpecError, match="already has memory nodes"):
        attach_memory(attach_memory(fat_tree(4), 1), 1)
    with pytest.raises(SpecError, match="memory.colour: unknown key"):
        build("lite-fat-tree", n_gpus=64, tiers=2, memory={"colour": "red"})
    f = build("lite-fat-tree", n_gpus=64, tiers=2, memory={"tier": "cxl-pool", "n_nodes": 2, "port_GBps": 50})
    assert f.meta["memory"]["port_Bps"] == 50e9


# ---- closed forms ---------------------------------------------------------------------------

def _kv_fabric(B):
    """A 16-GPU torus of H100s with one memory node whose only link carries B bytes/s."""
    return attach_memory(torus((4, 4), gpu="h100-sxm"), 1, tier="cxl-pool", ports=1, port_Bps=B, attach="gpu")


@pytest.mark.parametrize("prefetch", [False, True])
def test_kv_streaming_takes_at_least_kv_bytes_over_bandwidth(prefetch):
    B = 5e9
    f = _kv_fabric(B)
    plan = ParallelPlan(tp=4)
    local = _ev(f, plan)
    ev = _ev(f, plan, MemoryConfig(("cxl-pool",), rule={"kv_cache": "cxl-pool"}, prefetch=prefetch))
    assert ev.fits and local.fits
    kv_all = ev.profile.memory.kv_cache_bytes * f.n_gpus         # every GPU's KV through the one node
    bound = kv_all / B
    step = ev.plan.pp * float(ev.stage_s.max())                   # pp = 1: one micro-batch per step
    assert step >= bound * (1 - 1e-9)
    if prefetch:
        assert step >= max(local.latency_s, bound) * (1 - 1e-9)
    else:                                                         # reads precede each layer: they add
        assert step >= local.latency_s + bound * (1 - 1e-9)
    assert step <= local.latency_s + 1.2 * bound                  # and the node link is the bottleneck


def test_kv_streaming_on_an_ocs_fabric():
    f = attach_memory(ocs_fabric(16, 4, gpu="h100-sxm"), 1, ports=4)
    plan = ParallelPlan(tp=4)
    ev = _ev(f, plan, MemoryConfig(("cxl-pool",), rule={"kv_cache": "cxl-pool"}, prefetch=False),
             schedule_time_limit_s=5.0)
    circ = f.meta["ocs"]["circuit_Bps"]
    per_gpu = min(circ, 4 * f.meta["memory"]["port_Bps"] / 16, 256e9 / 16)
    bound = ev.profile.memory.kv_cache_bytes / per_gpu
    assert ev.remote.reserved_ports == 1
    assert ev.latency_s >= bound


def _host(bw, lat=0.0):
    return MemoryTier("fast-host", "host", capacity_bytes=1e15, bandwidth_Bps=bw, latency_s=lat)


def test_host_tier_closed_form():
    f = fat_tree(4, gpu="h100-sxm")
    plan = ParallelPlan(tp=4)
    local = _ev(f, plan)
    bw, lat = 10e9, 2e-6
    ev = _ev(f, plan, MemoryConfig((_host(bw, lat),), rule={"kv_cache": "fast-host"}, prefetch=False))
    L = int(ev.profile.stage_layers.max())
    per_layer = ev.profile.memory.kv_cache_bytes / L / bw + lat      # the host tier is a private link
    assert ev.latency_s == pytest.approx(local.latency_s + L * per_layer, rel=1e-9)


@pytest.mark.parametrize("prefetch", [False, True])
def test_infinite_remote_bandwidth_is_local_hbm_host(prefetch):
    f = fat_tree(4, gpu="h100-sxm")
    plan = ParallelPlan(tp=4)
    local = _ev(f, plan)
    ev = _ev(f, plan, MemoryConfig((_host(1e30),), rule={"weights": "fast-host", "kv_cache": "fast-host"},
                                   prefetch=prefetch))
    assert ev.remote.placement.remote_bytes > 0
    assert ev.latency_s == pytest.approx(local.latency_s, rel=1e-9)
    assert ev.throughput_tps == pytest.approx(local.throughput_tps, rel=1e-9)


@pytest.mark.parametrize("prefetch", [False, True])
def test_infinite_remote_bandwidth_is_local_hbm_node(prefetch):
    # a star of 8 GPUs whose links and memory node are (practically) infinite and instantaneous
    n = 8
    kind = ["gpu"] * n + ["packet_switch"]
    src = np.r_[np.arange(n), np.full(n, n)]
    dst = np.r_[np.full(n, n), np.arange(n)]
    star = Fabric(kind, src, dst, 1e30, 0.0, "cpo", meta={"gpu": "h100-sxm"})
    f = attach_memory(star, 1, tier="huge", port_Bps=1e30, ports=1)
    huge = MemoryTier("huge", "node", capacity_bytes=1e15, bandwidth_Bps=1e30, latency_s=0.0)
    plan = ParallelPlan(tp=4)
    local = _ev(f, plan)
    ev = _ev(f, plan, MemoryConfig((huge,), rule={"kv_cache": "huge", "weights": {"huge": 0.5}}, prefetch=prefetch))
    assert ev.remote.placement.remote_bytes > 0
    # left: the memory link's own latency (catalog cpo), paid per layer without prefetch, hidden with it
    lat = 0.0 if prefetch else int(ev.profile.stage_layers.max()) * f.latency_s[f.src == n + 1].max()
    assert ev.latency_s == pytest.approx(local.latency_s + lat, rel=1e-9)


def test_remote_memory_admits_a_narrower_plan_and_never_overfills():
    f = build("lite-fat-tree", n_gpus=64, tiers=2, memory={"tier": "cxl-pool", "n_nodes": 2})
    plan = ParallelPlan(tp=2)                   # 70 GB of weights per Lite-GPU: no fit in 20 GB of HBM
    assert not _ev(f, plan, fidelities=("alpha-beta",)).fits
    ev = _ev(f, plan, memory_config("disaggregated", node_tier="cxl-pool"))
    assert ev.fits
    p = ev.remote.placement
    assert np.all(p.used_bytes <= p.capacity_bytes * (1 + 1e-9))
    assert ev.totals()["remote_GB"] > 50
    assert ev.remote.exposed_s.min() > 0 and ev.remote.need_Bps > 0 and ev.remote.have_Bps > 0
    assert ev.totals()["tokens_per_s_per_cost"] < ev.throughput_tps / (ev.gpus_per_replica * ev.gpu.relative_cost)


def test_memory_sharing_counts_lenders():
    f = build("lite-fat-tree", n_gpus=64, tiers=2)
    plan = ParallelPlan(tp=4, pp=2)
    ev = _ev(f, plan, memory_config("shared", peer_ratio=0.5))
    assert ev.remote.lenders == 4 and ev.gpus_per_replica == 12
    assert ev.plan.dp == 64 // 12


# ---- bad input ------------------------------------------------------------------------------

def test_memory_config_errors():
    with pytest.raises(SpecError, match="unknown name 'ramdisk'"):
        MemoryConfig(("ramdisk",))
    with pytest.raises(WorkloadError, match="peer_ratio"):
        MemoryConfig(("peer-hbm",))
    with pytest.raises(WorkloadError, match="peer_ratio: -1"):
        MemoryConfig(("peer-hbm",), peer_ratio=-1)
    with pytest.raises(WorkloadError, match="listed twice"):
        MemoryConfig(("cxl-pool", "cxl-pool"))
    with pytest.raises(WorkloadError, match="memory mode: 'cloud'"):
        memory_config("cloud")


def test_node_tier_without_nodes_and_fits_nowhere():
    f = fat_tree(4)
    with pytest.raises(WorkloadError, match="memory tier 'cxl-pool': the fabric .* has no memory nodes"):
        _ev(f, ParallelPlan(tp=4), memory_config("disaggregated", node_tier="cxl-pool"))
    with pytest.raises(WorkloadError, match="memory: expected an ocsnet.memory.MemoryConfig"):
        _ev(f, ParallelPlan(tp=4), memory="cxl-pool")
    tiny = MemoryTier("tiny-host", "host", capacity_bytes=1e6, bandwidth_Bps=1e9)
    ev = _ev(f, ParallelPlan(tp=1), MemoryConfig((tiny,)), fidelities=("alpha-beta",))
    assert not ev.fits
    assert any("fits nowhere" in x for x in ev.failures)
