"""ocsnet.validation: the quick run agrees, and every check flags a component that returns a wrong number."""

import dataclasses
import doctest
import json
import math

import numpy as np
import pytest

import ocsnet.flow
import ocsnet.schedule
import ocsnet.topology.metrics
import ocsnet.validation as validation
import ocsnet.validation.models as vmodels
import ocsnet.validation.network as vnet
import ocsnet.validation.topology as vtopo
from ocsnet.errors import SpecError
from ocsnet.validation import GROUPS, Check, ValidationReport, run, worst_pair
from ocsnet.validation.run import OPT_IN
from ocsnet.workload import layers, models


@pytest.fixture(scope="module")
def quick_report():
    return run(quick=True)


def _by_group(report, group):
    return [c for c in report.checks if c.group == group]


# ---- the quick run ---------------------------------------------------------------------

def test_quick_run_agrees_everywhere(quick_report):
    r = quick_report
    assert r.ok, r.table(verbose=True)
    assert r.quick and r.n_disagree == 0 and r.n_agree == len(r) >= 25
    assert [c.group for c in r.checks] == sorted((c.group for c in r.checks), key=list(GROUPS).index)
    assert {c.group for c in r.checks} == set(GROUPS) - set(OPT_IN)
    names = [(c.group, c.name) for c in r.checks]
    assert len(set(names)) == len(names)
    for c in r.checks:
        assert c.what and c.source and c.quantity and not c.error
        assert math.isfinite(c.ocsnet) and math.isfinite(c.reference)
        assert c.time_s >= 0


def test_quick_run_covers_the_brief(quick_report):
    names = {c.name for c in quick_report.checks}
    for must in ("ring all-reduce on a ring", "ring reduce-scatter on a ring", "ring all-gather on a ring",
                 "rhd all-reduce on a clique", "bus-bandwidth factors", "max-min rates vs LP, random",
                 "exact CP-SAT vs brute force", "heuristic vs lower bound, ring trace",
                 "decode FLOPs/token, attention excluded", "transfer time vs ASTRA-sim send",
                 "hosts k^3/4", "switches 5k^2/4", "bisection k^3/8 x link", "H100 dense BF16 peak",
                 "Llama3-70B prefill GEMMs compute-bound", "Llama3-70B decode GEMMs memory-bound",
                 "Lite-GPU (netboost) vs H100, llama3-70b decode"):
        assert must in names


def test_table_and_json(quick_report):
    r = quick_report
    text = r.table()
    head = text.splitlines()[0]
    for h in ValidationReport.HEADER:
        assert h in head
    assert "time_us" in text and "rate_GBps" in text           # units of every row's quantity
    assert len(text.splitlines()) == len(r) + 2                 # header, rule, one line per agreeing check
    assert r.table(verbose=True).count("    what: ") == len(r)
    d = json.loads(r.to_json())
    assert d["format"] == "ocsnet-validation" and d["ok"] is True and d["n_checks"] == len(r)
    assert "time_ms" not in d["checks"][0]
    assert "time_ms" in json.loads(r.to_json(timing=True))["checks"][0]
    c0 = r.checks[0]
    assert d["checks"][0]["ocsnet"] == pytest.approx(c0.display(c0.ocsnet))
    assert r.summary() == f"validation: {len(r)} checks, {len(r)} agree, 0 disagree (quick)"


def test_json_is_deterministic_for_a_seed():
    a = run(quick=True, groups=["flow", "schedule"], seed=3).to_json()
    b = run(quick=True, groups=["flow", "schedule"], seed=3).to_json()
    assert a == b
    assert run(quick=True, groups=["flow"], seed=4).to_json() != run(quick=True, groups=["flow"], seed=5).to_json()


def test_run_rejects_bad_arguments():
    with pytest.raises(SpecError, match="groups: 'nope'"):
        run(quick=True, groups=["nope"])
    with pytest.raises(SpecError, match="seed"):
        run(quick=True, groups=["flow"], seed=-1)


def test_docstring_examples():
    for mod in (validation, vnet, vtopo, vmodels):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0


# ---- Check semantics -----------------------------------------------------------------------

def _check(o, r, **kw):
    base = dict(name="x", group="flow", what="w", quantity="time_us", source="s", tolerance=1e-3)
    base.update(kw)
    return Check(ocsnet=o, reference=r, **base)


def test_check_relations():
    assert _check(1.0005, 1.0).passed and not _check(1.002, 1.0).passed
    assert _check(0.9995, 1.0).passed and not _check(0.998, 1.0).passed
    assert _check(2.0, 1.0, relation=">=").passed and _check(0.9995, 1.0, relation=">=").passed
    assert not _check(0.99, 1.0, relation=">=").passed
    assert _check(0.5, 1.0, relation="<=").passed and not _check(1.01, 1.0, relation="<=").passed
    assert not _check(math.nan, 1.0).passed and not _check(1.0, math.inf).passed
    assert _check(0.0, 0.0).passed and not _check(1e-9, 0.0).passed
    assert not _check(1.0, 1.0, error="boom").passed
    assert _check(3.0, 2.0).rel_diff == pytest.approx(0.5)
    assert _check(1.0, -2.0).rel_diff == pytest.approx(1.5)
    with pytest.raises(SpecError, match="relation"):
        _check(1, 1, relation="~")
    with pytest.raises(SpecError, match="tolerance"):
        _check(1, 1, tolerance=-1)


def test_check_display_units_and_json_nulls():
    c = _check(2e-6, 2e-6)
    assert c.display(c.ocsnet) == pytest.approx(2.0)            # seconds shown as us
    assert _check(3.0, 3.0, quantity="n_links").display(3.0) == 3.0
    d = _check(math.nan, 1.0).to_dict()
    assert d["ocsnet"] is None and d["rel_diff"] is None and d["passed"] is False
    rep = ValidationReport([_check(math.inf, 1.0)])
    json.loads(rep.to_json())                                   # no NaN/Infinity tokens
    assert not rep.ok and rep.n_disagree == 1 and "DISAGREE" in rep.table()
    assert not ValidationReport([]).ok


def test_worst_pair():
    assert worst_pair([1, 2, 3], [1, 2, 3.3]) == (3.0, 3.3, 2)
    assert worst_pair([1, np.nan], [1, 1]) [2] == 1
    assert worst_pair([0.0, 5.0], [0.0, 5.0]) == (0.0, 0.0, 0)
    with pytest.raises(SpecError):
        worst_pair([1, 2], [1])


# ---- every check can fail -----------------------------------------------------------------

def _failing(report):
    return {c.name for c in report.checks if not c.passed}


def test_collective_checks_flag_a_slow_fluid_model(monkeypatch):
    import ocsnet.flow.fluid as fluid
    real = fluid.completion_times
    monkeypatch.setattr(fluid, "completion_times", lambda *a, **k: real(*a, **k) * 1.1)
    bad = _failing(run(quick=True, groups=["collectives"]))
    assert {"ring all-reduce on a ring", "ring reduce-scatter on a ring", "ring all-gather on a ring",
            "rhd all-reduce on a clique", "pairwise all-to-all on a clique"} <= bad
    assert "bus-bandwidth factors" not in bad


def test_collective_checks_flag_a_wrong_trace_time(monkeypatch):
    real = ocsnet.flow.trace_time

    def slow(*a, **k):
        res = real(*a, **k)
        return dataclasses.replace(res, makespan_s=res.makespan_s * (1 + 1e-6))

    monkeypatch.setattr(ocsnet.flow, "trace_time", slow)
    assert "ring all-reduce on a ring" in _failing(run(quick=True, groups=["collectives"]))


def test_bus_factor_check_flags_a_wrong_expansion(monkeypatch):
    import ocsnet.collectives as coll
    real = coll.expand

    def heavy(kind, p, n, algorithm=None, **kw):
        steps = real(kind, p, n, algorithm, **kw)
        return steps + steps[:1] if algorithm == "rhd" else steps     # one extra step

    monkeypatch.setattr(coll, "expand", heavy)
    # the traces are expanded by the same function, so the timed rhd check sees the extra step too
    assert _failing(run(quick=True, groups=["collectives"])) == {"bus-bandwidth factors", "rhd all-reduce on a clique"}


def test_flow_checks_flag_wrong_rates(monkeypatch):
    real = ocsnet.flow.max_min_fair
    monkeypatch.setattr(ocsnet.flow, "max_min_fair", lambda *a, **k: real(*a, **k) * (1 + 1e-4))
    assert _failing(run(quick=True, groups=["flow"])) == {"max-min rates vs LP, random",
                                                          "max-min rates vs LP, routed"}


def test_flow_check_flags_an_unfair_allocation(monkeypatch):
    """Equal split per link (not max-min) is feasible but wrong where bottlenecks differ."""
    def equal_share(A, c, cap=None, **kw):
        import scipy.sparse as sp
        A = sp.csr_matrix(A)
        n = np.asarray((A > 0).sum(axis=0)).ravel()
        per_link = np.where(np.diff(A.indptr) > 0, c / np.maximum(np.diff(A.indptr), 1), np.inf)
        share = np.full(A.shape[1], np.inf)
        coo = A.tocoo()
        np.minimum.at(share, coo.col, per_link[coo.row] / coo.data)
        if cap is not None:
            share = np.minimum(share, cap)
        return np.where(n > 0, share, np.inf if cap is None else cap)

    monkeypatch.setattr(ocsnet.flow, "max_min_fair", equal_share)
    assert "max-min rates vs LP, random" in _failing(run(quick=True, groups=["flow"]))


def test_schedule_checks_flag_a_worse_schedule(monkeypatch):
    real = ocsnet.schedule.solve

    def worse(problem, method="auto", **kw):
        s = real(problem, method, **kw)
        s.makespan_s *= 1.01
        return s

    monkeypatch.setattr(ocsnet.schedule, "solve", worse)
    assert _failing(run(quick=True, groups=["schedule"])) == {"exact CP-SAT vs brute force",
                                                              "heuristic vs lower bound, ring trace"}


def test_flops_checks_flag_wrong_counts(monkeypatch):
    real = layers.roofline
    monkeypatch.setattr(layers, "roofline", lambda flops, *a, **k: real(flops * 1.05, *a, **k))
    bad = _failing(run(quick=True, groups=["flops"]))
    assert {"decode FLOPs/token, attention excluded", "decode FLOPs/token, attention included"} <= bad
    monkeypatch.setattr(layers, "roofline", real)
    monkeypatch.setattr(models.ModelSpec, "params", lambda self: 0.9 * self.published_params)
    assert _failing(run(quick=True, groups=["flops"])) == {"llama3-70b parameter count"}


def test_astra_check_flags_a_wrong_transfer_time(monkeypatch):
    real = ocsnet.flow.transfer_time
    monkeypatch.setattr(ocsnet.flow, "transfer_time", lambda *a, **k: real(*a, **k) + 1e-9)
    assert _failing(run(quick=True, groups=["astra"])) == {"transfer time vs ASTRA-sim send",
                                                           "transfer time vs ASTRA-sim route, all pairs"}


def test_fat_tree_checks_flag_wrong_metrics(monkeypatch):
    real = ocsnet.topology.metrics.summary

    def off(f):
        s = dict(real(f))
        s["n_links"] += 1
        s["bisection_TBps"] *= 0.5
        return s

    monkeypatch.setattr(ocsnet.topology.metrics, "summary", off)
    assert _failing(run(quick=True, groups=["fat-tree"])) == {"links 3k^3/4", "bisection k^3/8 x link"}


def test_literature_checks_flag_wrong_hardware_and_bounds(monkeypatch):
    real = layers.roofline

    def always_compute(*a, **k):
        return dataclasses.replace(real(*a, **k), bound="compute")

    monkeypatch.setattr(layers, "roofline", always_compute)
    monkeypatch.setitem(vmodels.PUBLISHED, "h100_bf16_sparse_flops", (2 * 1000e12, "a wrong datasheet"))
    monkeypatch.setattr(vmodels, "_lite_checks", lambda quick: iter([_check(1.0, 1.0, relation=">=")]))
    r = run(quick=True, groups=["literature"])
    bad = _failing(r)
    assert "H100 dense BF16 peak" in bad
    assert "Llama3-70B decode GEMMs memory-bound" in bad        # labelled compute-bound: flagged
    dec = next(c for c in r.checks if c.name == "Llama3-70B decode GEMMs memory-bound")
    assert "compute" in dec.error


def test_lite_check_reports_a_disagreement(monkeypatch):
    """If the study found the Lite-GPU cluster well behind per H100-equivalent, the check says so."""
    import ocsnet.evaluation.study as study
    real = study.StudyResult.summary_rows

    def halved(self):
        rows = real(self)
        for r in rows:
            if r["gpu"].startswith("lite") and "throughput_vs_h100" in r:
                r["throughput_vs_h100"] *= 0.5
        return rows

    monkeypatch.setattr(study.StudyResult, "summary_rows", halved)
    [c] = vmodels._lite_checks(quick=True)
    assert not c.passed and c.ocsnet < 1.0 - vmodels.LITE_STUDY["tolerance"] and c.relation == ">="
    assert "DISAGREE" in ValidationReport([c]).table()


def test_a_crashing_component_is_a_disagreement_not_a_crash(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(ocsnet.flow, "max_min_fair", boom)
    r = run(quick=True, groups=["flow", "fat-tree"])
    assert not r.ok
    bad = [c for c in r.checks if not c.passed]
    assert len(bad) == 1 and "kernel exploded" in bad[0].error and bad[0].group == "flow"
    assert all(c.passed for c in r.checks if c.group == "fat-tree")
    assert "kernel exploded" in r.table()


# ---- the references themselves ----------------------------------------------------------

def test_snake_is_a_hamiltonian_ring_of_the_torus():
    from ocsnet.topology import torus
    f = torus((4, 4))
    order = vnet._snake((4, 4))
    assert sorted(order) == list(range(16))
    for a, b in zip(order, order[1:] + order[:1]):
        assert f.edge_ids(np.array([a]), np.array([b]))[0] >= 0


def test_ring_trace_bound_is_reached_by_the_obvious_schedule():
    """Brute-force-free witness: hold all ports on the current direction, switch under each gap."""
    prob, bound = vnet._ring_trace_problem(4, 1, 2, 4e6)
    # each phase: 1 MB per GPU over 2 circuits of 25 GB/s = 20 us; 6 phases; 2 gaps of 20 us
    assert bound == pytest.approx(2 * 20e-6 + 6 * 1e6 / (2 * 25e9))
    assert prob.lower_bound_s() <= bound * (1 + 1e-12)


def test_astra_configs_match_the_test_data():
    from pathlib import Path
    from ocsnet.topology.astra import read_astra_config
    data = Path(__file__).parent / "data" / "astra"
    for name, cfg in vtopo.ASTRA_CONFIGS.items():
        assert read_astra_config(cfg) == read_astra_config(data / f"{name}.yml")


def test_published_table_is_sourced():
    for key, (value, source) in vmodels.PUBLISHED.items():
        assert value > 0 and len(source) > 20, key


@pytest.mark.slow
def test_quick_lite_study_matches_the_default_cluster_sizes():
    """The quick run's small clusters give the same per-replica answer as the default study's."""
    import ocsnet.evaluation.study as study
    quick = dict(vmodels.LITE_STUDY["quick"])
    base = {"modes": ["decode"], "variants": ["lite-netboost"], "sweep_models": [], "models": quick["models"]}
    small = study.run_study({**base, **quick}, progress=False).summary_rows()
    full = study.run_study(base, progress=False).summary_rows()
    for a, b in zip(small, full):
        assert a["system"] == b["system"]
        assert a["throughput_vs_h100"] == pytest.approx(b["throughput_vs_h100"], rel=1e-3)
