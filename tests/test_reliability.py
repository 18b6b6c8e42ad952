"""Reliability: catalog rates (Llama 3 counts), Lite-GPU scaling, blast radius against degrade and by
hand, the analytic steady state against the Monte Carlo, the Llama 3 interruption rate, goodput."""

import math

import numpy as np
import pytest

from ocsnet import reliability as rl
from ocsnet.errors import FaultError
from ocsnet.faults import degrade
from ocsnet.topology import dgx_cluster, leaf_spine, ocs_fabric, torus


@pytest.fixture(scope="module")
def fm():
    return rl.failure_model()


def test_catalog_counts_are_the_llama3_table(fm):
    assert sum(fm.counts.values()) == 419                      # counts, not the misprinted percentages
    assert fm.counts["gpu"] == 148 + 19 + 17 + 6 + 6
    assert fm.counts["hbm"] == 72
    # one interruption about every 3.1 hours on 16,384 GPUs over 54 days
    assert 1 / rl.anchor_interruptions_per_h(fm) == pytest.approx(54 * 24 / 419)
    assert 3.0 < 1 / rl.anchor_interruptions_per_h(fm) < 3.2


def test_lite_scaling_is_proportional_by_default(fm):
    h = rl.gpu_rates(fm, "h100-sxm", ports=1)
    lite = rl.gpu_rates(fm, "lite-base", ports=8)
    assert lite["gpu"] == pytest.approx(h["gpu"] * 203.5 / 814)
    assert lite["hbm"] == pytest.approx(h["hbm"] * 0.25)
    assert lite["port"] == pytest.approx(h["port"] * 8)
    assert lite["host"] == pytest.approx(h["host"] * 0.25)
    assert lite["software"] == pytest.approx(h["software"])
    fm2 = rl.failure_model(scaling={"software": "per_h100_equivalent"})
    assert rl.gpu_rates(fm2, "lite-base", ports=8)["software"] == pytest.approx(h["software"] * 0.25)


@pytest.mark.parametrize("kw, msg", [
    ({"rates_per_h": {"gpu": -1}}, r"rates_per_h.gpu: -1 is out of range, allowed \[0, inf\)"),
    ({"rates_per_h": {"cpu": 1}}, "rates_per_h.cpu: unknown kind"),
    ({"repair_h": {"gpu": float("nan")}}, "repair_h.gpu"),
    ({"scaling": {"gpu": "cubic"}}, "scaling.gpu: 'cubic' is not one of"),
])
def test_bad_knobs_are_named(kw, msg):
    with pytest.raises(FaultError, match=msg):
        rl.failure_model(**kw)


def test_spare_pool_errors(fm):
    dep = rl.deployment(torus([4, 4], link_Bps=1e9), "lite-base", 4)
    with pytest.raises(FaultError, match=r"spares: 17 is larger than the cluster \(16 GPUs\)"):
        rl.components(dep, fm, policy="spares", spares=17)
    with pytest.raises(FaultError, match="spares"):
        rl.components(dep, fm, policy="spares", spares=-1)
    with pytest.raises(FaultError, match="policy: 'ocs' needs a fabric with an OCS"):
        rl.components(dep, fm, policy="ocs", spares=2)
    with pytest.raises(FaultError, match="gpus_per_replica"):
        rl.deployment(torus([4, 4], link_Bps=1e9), "lite-base", 17)


# ---- blast radius ------------------------------------------------------------------------
def test_gpu_failure_takes_its_whole_replica():
    dep = rl.deployment(torus([8, 8], link_Bps=1e9), "lite-base", 32, comm_fraction=0.2)
    b = rl.blast_radius(dep, "gpu:40")
    assert b["replicas_stopped"] == [1] and b["gpus"] == 32
    assert b["h100_equivalents"] == pytest.approx(8.0) and b["share_of_tokens"] == pytest.approx(0.5)


def test_port_loss_is_a_partial_slowdown_by_hand():
    c = 0.3
    dep = rl.deployment(torus([4, 4], link_Bps=1e9), "lite-base", 4, comm_fraction=c)
    b = rl.blast_radius(dep, "port:5/0")
    d = 4                                       # a 2-D torus GPU has 4 ports
    want = 1 - 1 / (1 + c / (d - 1))
    assert b["replicas_stopped"] == [] and b["replicas_slowed"] == {1: pytest.approx(want)}
    assert b["share_of_tokens"] == pytest.approx(want / 4)


def test_switch_blast_matches_degrade():
    f = leaf_spine(64, gpus_per_leaf=8)
    dep = rl.deployment(f, "lite-base", 16, comm_fraction=0.25)
    mats = rl.blast_matrices(dep)
    B = mats["switch"][0]
    sw = mats["switch_nodes"]
    for k in range(len(sw)):
        dg = degrade(f, f"switch:{int(sw[k])}")
        cut = set(dep.replica[dg.cut_off].tolist())
        stopped = set(B.getrow(k).indices[B.getrow(k).data >= 1].tolist())
        assert stopped == cut
    # a spine failure slows every replica that spans leaves (16 GPUs over two 8-GPU leaves)
    u = f.meta["uplinks_per_leaf"]
    row = B.getrow(len(sw) - 1)
    assert np.allclose(row.data, rl.port_loss(u, 0.25)) and row.nnz == dep.n_replicas


def test_dgx_nic_matters_only_when_a_replica_spans_servers():
    f = dgx_cluster(4, gpus_per_node=8)
    inside = rl.deployment(f, "h100-sxm", 8, comm_fraction=0.3)
    across = rl.deployment(f, "h100-sxm", 16, comm_fraction=0.3)
    assert rl.blast_radius(inside, "port:3/0")["share_of_tokens"] == 0.0
    assert rl.blast_radius(across, "port:3/0")["replicas_stopped"] == [0]
    nv = int(np.flatnonzero(f.kind == "nvswitch")[1])
    assert rl.blast_radius(inside, f"switch:{nv}")["replicas_stopped"] == [1]


def test_ocs_plane_slows_everyone():
    f = ocs_fabric(64, 4)
    dep = rl.deployment(f, "lite-base", 16, comm_fraction=0.4)
    b = rl.blast_radius(dep, "plane:0")
    assert b["replicas_stopped"] == [] and len(b["replicas_slowed"]) == 4
    assert b["share_of_tokens"] == pytest.approx(float(rl.port_loss(4, 0.4)))


def test_blast_of_every_component_is_vectorized_and_summarized():
    dep = rl.deployment(torus([8, 8, 8], link_Bps=1e9), "lite-base", 32, comm_fraction=0.3)
    s = rl.blast_summary(dep)
    assert s["gpu"]["units"] == 512 and s["gpu"]["gpus_stopped_max"] == 32
    assert s["port"]["replicas_stopped_max"] == 0 and s["port"]["slowdown_only_units"] == 512
    assert s["host"]["gpus_stopped_max"] == 32          # 8 H100e per host = 32 Lite-GPUs


# ---- availability -----------------------------------------------------------------------------
def test_llama3_interruptions_reproduced(fm):
    f = dgx_cluster(2048, gpus_per_node=8)                    # 16,384 H100s, one synchronous job
    dep = rl.deployment(f, "h100-sxm", 16384, comm_fraction=0.3)
    c = rl.components(dep, fm)
    a = rl.analytic(c)
    assert 1 / a["interruptions_per_h"] == pytest.approx(54 * 24 / 419, rel=1e-9)
    rates = [rl.monte_carlo(c, days=54, seed=s)["outage_failures_per_h"] for s in range(5)]
    mean = float(np.mean(rates))
    sd = math.sqrt(a["interruptions_per_h"] / (54 * 24 * 5))   # Poisson count over 5 x 54 days
    assert abs(mean - a["interruptions_per_h"]) < 4 * sd
    assert 2.9 < 1 / mean < 3.3


@pytest.mark.parametrize("policy, spares", [("none", 0), ("spares", 24), ("spares", 200), ("ocs", 24)])
def test_monte_carlo_agrees_with_analytic(fm, policy, spares):
    f = ocs_fabric(1024, 8) if policy == "ocs" else leaf_spine(1024, gpus_per_leaf=32)
    fmx = rl.failure_model(rates_per_h={"switch": 2e-5})
    dep = rl.deployment(f, "lite-base", 32, comm_fraction=0.3, tokens_per_s=1e5)
    c = rl.components(dep, fmx, policy=policy, spares=spares, weights_B_per_gpu=4e9)
    a = rl.analytic(c)
    ms = [rl.monte_carlo(c, days=60, seed=s) for s in range(4)]
    lost = np.mean([m["lost_share"] for m in ms])
    ci = np.mean([m["ci95"] for m in ms]) / 2 + 1e-4          # four runs: half the width of one
    assert abs(lost - a["lost_share"]) < 2.5 * ci, (lost, a["lost_share"], ci)
    assert a["lost_share_first_order"] >= a["outage_share"] - 1e-12
    # determinism: same seed, same numbers
    assert rl.monte_carlo(c, days=5, seed=7) == rl.monte_carlo(c, days=5, seed=7)


def test_ocs_swap_beats_manual_spares(fm):
    f = ocs_fabric(1024, 8)
    dep = rl.deployment(f, "lite-base", 32, comm_fraction=0.3)
    lost = {}
    for pol in ("none", "spares", "ocs"):
        c = rl.components(dep, fm, policy=pol, spares=64, weights_B_per_gpu=4e9)
        lost[pol] = rl.analytic(c)["lost_share"]
    assert lost["ocs"] < lost["spares"] < lost["none"]
    assert rl.ocs_swap_s(dep, 4e9) == pytest.approx(f.meta["ocs"]["reconfig_delay_s"] + 4e9 / dep.gpu.network_Bps)


def test_goodput():
    g = rl.goodput(1000.0, 0.9, h100_equivalents=10.0, power_kW=2.0, cost=5.0)
    assert g == {"tokens_per_s": 900.0, "tokens_per_s_per_h100e": 90.0, "tokens_per_s_per_kW": 450.0,
                 "tokens_per_s_per_cost": 180.0}


def test_doctests():
    import doctest
    import importlib
    res = doctest.testmod(importlib.import_module("ocsnet.reliability.rates"))
    assert res.failed == 0 and res.attempted > 0


def test_spare_domains(fm):
    f = leaf_spine(1024, gpus_per_leaf=32)
    fmx = rl.failure_model(rates_per_h={"gpu": 2e-4})         # many failures: pools run dry
    dep = rl.deployment(f, "lite-base", 32, comm_fraction=0.3)
    one = rl.components(dep, fmx, policy="spares", spares=8)
    split = rl.components(dep, fmx, policy="spares", spares=1, domain_gpus=128)   # 8 pools of 1
    a1, a8 = rl.analytic(one), rl.analytic(split)
    assert split.n_domains == 8 and a8["p_spare"] < a1["p_spare"]       # pooling helps
    ms = [rl.monte_carlo(split, days=60, seed=s)["lost_share"] for s in range(4)]
    ci = np.std(ms, ddof=1) / 2 * 2.5 + 2e-4
    assert abs(np.mean(ms) - a8["lost_share"]) < ci + 0.1 * a8["lost_share"]
    with pytest.raises(FaultError, match=r"spares: 200 is larger than its spare domain \(128 GPUs\)"):
        rl.components(dep, fmx, policy="spares", spares=200, domain_gpus=128)
    with pytest.raises(FaultError, match="domain_gpus"):
        rl.components(dep, fmx, policy="spares", spares=1, domain_gpus=0)


@pytest.mark.parametrize("section, msg", [
    ({"spare_fraction": 2}, r"study.failures.spare_fraction: 2 is out of range"),
    ({"runs": 1}, "study.failures.runs"),
    ({"days": 0}, "study.failures.days"),
    ({"policies": ["all"]}, "study.failures.policies: 'all'"),
    ({"mode": "train"}, "study.failures.mode"),
])
def test_study_section_is_checked_before_the_search(section, msg):
    from ocsnet.evaluation import study_config
    with pytest.raises(FaultError, match=msg):
        study_config({"failures": section})


def test_p_spare_is_the_poisson_queue(fm):
    from scipy.stats import poisson
    dep = rl.deployment(leaf_spine(1024, gpus_per_leaf=32), "lite-base", 32, comm_fraction=0.3)
    fmx = rl.failure_model(rates_per_h={"gpu": 1e-4})
    for S in (1, 4, 16):
        c = rl.components(dep, fmx, policy="spares", spares=S)
        lam = c.rate_per_s[c.spare].sum()
        assert rl.analytic(c)["p_spare"] == pytest.approx(poisson.cdf(S - 1, lam * c.spare_repair_s), rel=1e-12)
