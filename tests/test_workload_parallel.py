"""Parallel plans: validation errors, stage split, placement properties."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import WorkloadError
from ocsnet.fabric import Fabric
from ocsnet.workload import ParallelPlan, gpu_domains, model, place


def dgx_like(n_nodes, gpus_per_node=8, *, interleave=True):
    """GPUs in NVLink nodes (one NVSwitch each) plus one packet leaf per GPU rail.

    With ``interleave`` GPU rank r sits in node r % n_nodes, so contiguous
    rank blocks cross nodes and only a topology-aware placement keeps TP
    groups inside a node.
    """
    G = n_nodes * gpus_per_node
    kind = ["gpu"] * G + ["nvswitch"] * n_nodes + ["packet_switch"] * gpus_per_node
    gpu_node = np.arange(G) // gpus_per_node            # node of GPU node-index
    local = np.arange(G) % gpus_per_node
    nvs = G + gpu_node
    leaf = G + n_nodes + local
    src = np.concatenate([np.arange(G), nvs, np.arange(G), leaf])
    dst = np.concatenate([nvs, np.arange(G), leaf, np.arange(G)])
    tech = ["copper"] * (2 * G) + ["pluggable"] * (2 * G)
    if interleave:   # rank r -> node r % n_nodes, slot r // n_nodes
        r = np.arange(G)
        gpus = (r % n_nodes) * gpus_per_node + r // n_nodes
    else:
        gpus = np.arange(G)
    return Fabric(kind, src, dst, 1e9, 1e-6, tech, gpus=gpus, name="dgx-like")


def node_of_rank(fab, gpus_per_node=8):
    return fab.gpus // gpus_per_node                      # node index of each GPU rank


def test_world_size_and_str():
    p = ParallelPlan(tp=8, pp=2, dp=4, ep=2, sp=True)
    assert p.world_size == 64
    assert str(p) == "tp=8 pp=2 dp=4 ep=2 sp"


@pytest.mark.parametrize("kw,name,match", [
    (dict(tp=7), "llama3-70b", "tp: 7 does not divide llama3-70b's attention_heads = 64"),
    (dict(tp=64), "gpt3-175b", "tp: 64 does not divide gpt3-175b's attention_heads = 96"),
    (dict(tp=12), "llama3-405b", "attention_heads"),
    (dict(tp=6), "mixtral-8x22b", "tp: 6 and mixtral-8x22b's kv_heads = 8 must divide one another"),
    (dict(pp=200), "llama3-70b", "pp: 200 stages but llama3-70b has only 80 layers"),
    (dict(ep=2, dp=2), "llama3-70b", "ep: 2 > 1 but llama3-70b is dense"),
    (dict(ep=3, dp=3), "mixtral-8x22b", "ep: 3 does not divide mixtral-8x22b's experts = 8"),
])
def test_validation_says_which_constraint(kw, name, match):
    with pytest.raises(WorkloadError, match=match):
        ParallelPlan(**kw).validate(model(name))


@pytest.mark.parametrize("kw,match", [(dict(tp=0), "tp: 0"), (dict(dp=2, ep=4), "ep: 4 must divide dp = 2"),
                                      (dict(sp=True), "sp"), (dict(pp=1.5), "pp")])
def test_constructor_errors(kw, match):
    with pytest.raises(WorkloadError, match=match):
        ParallelPlan(**kw)


def test_kv_heads_replicated_when_tp_exceeds_them():
    m = model("llama3-405b")
    assert ParallelPlan(tp=16).validate(m).kv_heads_per_gpu(m) == 1
    assert ParallelPlan(tp=4).kv_heads_per_gpu(m) == 2


def test_uneven_stages():
    m = model("llama3-405b")
    s = ParallelPlan(tp=16, pp=4).validate(m).stage_layers(m)
    assert s.tolist() == [32, 32, 31, 31] and s.sum() == 126


def test_contiguous_is_megatron_order():
    r = place(ParallelPlan(tp=2, pp=3, dp=2), 12, "contiguous")
    assert r.shape == (2, 3, 2)
    d, s, t = np.meshgrid(range(2), range(3), range(2), indexing="ij")
    assert np.array_equal(r, s * 4 + d * 2 + t)


def test_refuses_too_small_fabric_and_bad_strategy():
    fab = dgx_like(2)
    with pytest.raises(WorkloadError, match="needs 32 GPUs, fabric 'dgx-like' has 16"):
        place(ParallelPlan(tp=8, dp=4), fab)
    with pytest.raises(WorkloadError, match="unknown strategy"):
        place(ParallelPlan(tp=8), fab, "random")


def test_domains_of_dgx_like_fabric():
    fab = dgx_like(4)
    doms = dict(gpu_domains(fab))
    node = node_of_rank(fab)
    # NVLink domains are exactly the nodes; leaves are the rails (same local index).
    assert np.array_equal(doms["nvlink"][:, None] == doms["nvlink"][None, :], node[:, None] == node[None, :])
    assert (np.bincount(doms["leaf"]) == 4).all()
    assert next(iter(dict(gpu_domains(fab)))) == "nvlink"   # finest first


@pytest.mark.parametrize("tp,pp,dp", [(8, 2, 2), (4, 1, 8), (2, 4, 4), (8, 1, 3)])
def test_topology_aware_tp_groups_inside_one_node(tp, pp, dp):
    fab = dgx_like(4)
    plan = ParallelPlan(tp=tp, pp=pp, dp=dp)
    r = place(plan, fab, "topology-aware")
    node = node_of_rank(fab)
    assert len(np.unique(r)) == r.size == plan.world_size
    assert (node[r] == node[r][:, :, :1]).all()          # every TP group in one node
    c = place(plan, fab, "contiguous")
    if tp > 1:
        assert not (node[c] == node[c][:, :, :1]).all()   # the interleaved order defeats contiguous


def test_topology_aware_uses_leftovers_when_domains_too_small():
    fab = dgx_like(4)                                     # 4 nodes of 8
    r = place(ParallelPlan(tp=16, dp=2), fab, "topology-aware")
    assert len(np.unique(r)) == 32
    # Every TP group spans exactly two nodes (the smallest number that can hold 16).
    node = node_of_rank(fab)
    assert all(len(np.unique(node[g])) == 2 for g in r.reshape(-1, 16))


@examples(40)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 6),
       st.sampled_from([4, 6, 8]), st.booleans())
def test_placement_is_injective(tp_exp, pp, dp, n_nodes, per_node, interleave):
    tp = 2 ** (tp_exp - 1)
    fab = dgx_like(n_nodes, per_node, interleave=interleave)
    plan = ParallelPlan(tp=tp, pp=pp, dp=dp)
    for strategy in ("contiguous", "topology-aware"):
        if plan.world_size > fab.n_gpus:
            with pytest.raises(WorkloadError):
                place(plan, fab, strategy)
            continue
        r = place(plan, fab, strategy)
        assert r.shape == (dp, pp, tp)
        assert len(np.unique(r)) == r.size and r.min() >= 0 and r.max() < fab.n_gpus
        if strategy == "topology-aware" and per_node % tp == 0:
            node = node_of_rank(fab, per_node)
            assert (node[r] == node[r][:, :, :1]).all()


def test_node_attribute_domains():
    # A switchless fabric whose GPUs carry a `node` attribute: groups follow it.
    G = 12
    kind = ["gpu"] * G
    src = np.arange(G)
    dst = (np.arange(G) + 1) % G
    node = np.array([0, 1, 2] * 4)                        # node of GPU index
    fab = Fabric(kind, np.r_[src, dst], np.r_[dst, src], 1e9, 0.0, "cpo", node_attrs={"node": node})
    r = place(ParallelPlan(tp=4, dp=3), fab)
    assert (node[fab.gpus][r] == node[fab.gpus][r][:, :, :1]).all()


def test_topology_aware_on_generated_dgx_cluster():
    pytest.importorskip("ocsnet.topology.packet")        # the packet generators land separately
    from ocsnet import topology
    fab = topology.dgx_cluster(8)                        # 8 servers x 8 H100s, NVSwitch inside each
    node = fab.node_attrs["node"][fab.gpus]
    for tp, pp, dp in ((8, 2, 4), (4, 4, 4), (2, 1, 32)):
        r = place(ParallelPlan(tp=tp, pp=pp, dp=dp), fab)
        assert len(np.unique(r)) == r.size
        assert (node[r] == node[r][:, :, :1]).all()
    assert dict(gpu_domains(fab)).keys() >= {"nvlink", "leaf"}
