"""Per-layer evaluation against closed forms and invariants."""

import dataclasses

import numpy as np
import pytest

from ocsnet import hardware
from ocsnet.errors import WorkloadError
from ocsnet.evaluation import evaluate
from ocsnet.topology import fat_tree, ocs_fabric, torus
from ocsnet.workload import ParallelPlan
from ocsnet.workload.models import model


def _tp_allreduces(ev):
    return [c for c in ev.collectives if c.kind == "all-reduce" and c.group == "tp"]


@pytest.mark.parametrize("p", [4, 8])
def test_ring_allreduce_on_a_ring_matches_closed_form(p):
    """2(p-1) steps of (link latency + n/(p B)) on a 1-D torus, both fidelities."""
    f = torus((p,), gpu="lite-netboost")
    ev = evaluate("llama3-70b", ParallelPlan(tp=p), f, "decode", batch=8, context=1024,
                  gpu="lite-netboost", algorithms={"all-reduce": "ring"}, fill=False)
    lat, B = float(f.latency_s[0]), float(f.capacity_Bps[0])
    colls = _tp_allreduces(ev)
    assert len(colls) == 2
    for c in colls:
        expect = 2 * (p - 1) * (lat + c.nbytes / p / B)
        assert c.alpha_beta_s == pytest.approx(expect, rel=1e-9)
        assert c.max_min_s == pytest.approx(expect, rel=1e-6)


def test_ring_allreduce_on_ocs_matches_closed_form():
    """On an OCS holding the ring, every step moves n/p over all d circuits of a pair."""
    n, d = 8, 4
    f = ocs_fabric(n, d, gpu="lite-netboost", ocs="ns-ocs")
    ev = evaluate("llama3-70b", ParallelPlan(tp=n), f, "decode", batch=8, context=1024,
                  gpu="lite-netboost", algorithms={"all-reduce": "ring"}, fill=False, reconfig_delay_s=0.0)
    o = f.ocs
    for c in _tp_allreduces(ev):
        expect = 2 * (n - 1) * (o.circuit_latency_s + c.nbytes / n / (d * o.circuit_Bps))
        assert c.alpha_beta_s == pytest.approx(expect, rel=1e-9)
        assert c.max_min_s == pytest.approx(expect, rel=1e-6)
        assert c.reconfig_s == 0.0


def test_rhd_on_slow_ocs_avoids_reconfiguration_or_pays_it():
    """rhd needs a new matching each step: with a 10 ms OCS the schedule holds one configuration
    (no exposed reconfiguration, slower steps); with a 10 ns OCS it reconfigures."""
    f = ocs_fabric(16, 8, gpu="lite-netboost", ocs="mems-3d")
    kw = dict(batch=8, context=1024, gpu="lite-netboost", algorithms={"all-reduce": "rhd"}, fill=False)
    slow = evaluate("llama3-70b", ParallelPlan(tp=16), f, "decode", reconfig_delay_s=10e-3, **kw)
    fast = evaluate("llama3-70b", ParallelPlan(tp=16), f, "decode", reconfig_delay_s=10e-9, **kw)
    assert slow.reconfig_s == 0.0
    assert fast.schedule.n_reconfigurations > 0
    assert fast.comm_s() < slow.comm_s()


def test_decode_flops_are_two_params_per_token():
    m = model("llama3-70b")
    plan = ParallelPlan(tp=4, pp=2)
    ev = evaluate(m, plan, fat_tree(4, gpu="h100-sxm"), "decode", batch=4, context=512,
                  gpu="h100-sxm", fidelities=("alpha-beta",))
    layer_flops = sum(o.flops for o in ev.ops) * plan.tp
    attention = next(o.flops for o in ev.ops if o.op == "attention") * plan.tp
    per_token = (layer_flops - attention) * m.layers / 4
    assert per_token == pytest.approx(2 * (m.params() - m.embedding_params()), rel=0.03)


def test_totals_are_consistent():
    f = fat_tree(4, gpu="lite-base")
    ev = evaluate("llama3-70b", ParallelPlan(tp=4, pp=4), f, "decode", batch=4, context=512)
    t = ev.totals()
    g = hardware.gpu("lite-base")
    assert t["tokens_per_s_per_h100e"] == pytest.approx(t["tokens_per_s_per_gpu"] / g.h100_equivalents)
    assert ev.latency_s == pytest.approx(ev.stage_s.sum() + 3 * ev.pp_send_s)
    assert ev.latency_s >= ev.plan.pp * ev.stage_s.min()
    assert t["tokens_per_s"] == pytest.approx(ev.batch / (ev.stage_s.max() + ev.pp_send_s))
    assert ev.replicas == f.n_gpus // 16
    table = ev.table()
    assert table[-1][0] == "layer total"
    assert sum(r[5] or 0 for r in table[:-1]) == pytest.approx(table[-1][5])


def test_overlap_never_slower():
    f = fat_tree(4, gpu="lite-base")
    a = evaluate("llama3-70b", ParallelPlan(tp=8, pp=2), f, "decode", batch=4, context=512)
    b = evaluate("llama3-70b", ParallelPlan(tp=8, pp=2), f, "decode", batch=4, context=512, overlap=True)
    assert b.layer_s == pytest.approx(max(a.compute_s, a.comm_s() + a.reconfig_s))
    assert b.layer_s <= a.layer_s


def test_more_network_bandwidth_never_hurts():
    kw = dict(batch=8, context=1024, fill=False, algorithms={"all-reduce": "ring"})
    base = evaluate("llama3-70b", ParallelPlan(tp=8), torus((8,), gpu="lite-base"), "decode", gpu="lite-base", **kw)
    boost = evaluate("llama3-70b", ParallelPlan(tp=8), torus((8,), gpu="lite-netboost"), "decode",
                     gpu="lite-netboost", **kw)
    assert boost.comm_s() < base.comm_s()
    assert boost.compute_s == pytest.approx(base.compute_s)


def test_memory_misfit_is_reported():
    ev = evaluate("llama3-405b", ParallelPlan(tp=4), fat_tree(4, gpu="lite-base"), "decode",
                  batch=8, context=1024, fidelities=("alpha-beta",))
    assert not ev.fits
    assert any(f.startswith("memory: needs") for f in ev.failures)


def test_latency_budget_check():
    ev = evaluate("llama3-70b", ParallelPlan(tp=8), fat_tree(4, gpu="lite-base"), "decode",
                  batch=4, context=512, latency_budget_s=1e-6, fidelities=("alpha-beta",))
    assert any(f.startswith("latency: TPOT") for f in ev.failures)


@pytest.mark.parametrize("kwargs,match", [
    (dict(mode="train"), "mode"),
    (dict(fidelity="exact"), "fidelity"),
    (dict(plan=ParallelPlan(tp=32, pp=2)), "needs 64 GPUs"),
])
def test_bad_input(kwargs, match):
    args = dict(model="llama3-70b", plan=ParallelPlan(tp=4), fabric=fat_tree(4), mode="decode")
    args.update(kwargs)
    with pytest.raises(WorkloadError, match=match):
        evaluate(args.pop("model"), args.pop("plan"), args.pop("fabric"), args.pop("mode"),
                 batch=4, context=512, **args)
