"""The study's memory section on a small configuration: rows per memory architecture, report, config checks."""

import csv

import pytest

from ocsnet.errors import SpecError
from ocsnet.evaluation import report, study

SMALL = {"models": ["llama3-70b"], "modes": ["decode"], "variants": ["lite-netboost"],
         "lite_fabrics": {"packet": {"fabric": "lite-fat-tree", "overrides": {"n_gpus": 64, "tiers": 2}}},
         "baseline": {"label": "H100 DGX", "fabric": "h100-dgx", "gpu": "h100-sxm", "overrides": {"n_nodes": 2}},
         "decode": {"batch": 8, "context": 1024}, "tp": [2, 4, 8], "pp": [1, 2], "algorithms": ["ring"],
         "sweep_models": [], "top_k": 1, "analyses": ["memory"],
         "memory": {"node_tier": "cxl-pool", "n_nodes": 2, "ports_per_node": 4, "port_GBps": 100}}


def test_memory_section_rows_and_report(tmp_path):
    res = study.run_study(SMALL, progress=False)
    data = res.extras["memory"]
    rows = data["rows"]
    kinds = {(r["fabric"], r["memory"]) for r in rows}
    assert kinds == {("packet", "local"), ("packet", "shared"), ("packet", "disaggregated")}
    local = next(r for r in rows if r["memory"] == "local")
    for r in rows:
        if r["memory"] != "local" and r.get("fits"):
            # the search only tries plans no wider than the local choice
            assert r["gpus_per_replica"] >= 1
            tp = int(r["plan"].split()[0].split("=")[1])
            assert tp <= int(local["plan"].split()[0].split("=")[1])
            assert r["remote_GB"] >= 0 and r["need_TBps"] >= 0
    md = report.write_report(res, tmp_path, figures=False).read_text()
    assert "## Memory architecture" in md and "memory.toml" in md
    with open(tmp_path / "memory.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


def test_memory_section_config_is_checked():
    with pytest.raises(SpecError, match=r"memory\.nodes"):
        study.study_config({**SMALL, "memory": {"nodes": 3}})


@pytest.mark.parametrize("section, field", [({"memory_modes": ["cloud"]}, "memory_modes"),
                                            ({"node_tier": "host-dram"}, "node_tier"),
                                            ({"n_nodes": 0}, "n_nodes"), ({"port_GBps": -1}, "port_GBps")])
def test_memory_section_bad_values_are_named(section, field):
    with pytest.raises(SpecError, match=rf"study\.memory\.{field}"):
        study.study_config({**SMALL, "memory": {**SMALL["memory"], **section}})   # before any plan search


def test_plan_search_picks_a_narrower_plan_with_remote_memory():
    from ocsnet.evaluation.records import System
    from ocsnet.evaluation.search import choose
    from ocsnet.memory import memory_config
    from ocsnet.topology import build
    from ocsnet.workload.models import model

    cfg = study.study_config({**SMALL, "tp": [1, 2, 4, 8], "pp": [1], "analyses": []})
    f = build("lite-fat-tree", n_gpus=64, tiers=2, gpu="lite-netboost",
              memory={"tier": "cxl-pool", "n_nodes": 4, "ports": 8})
    sys_ = System("Lite", "lite-fat-tree", "lite-netboost")
    local = choose(cfg, sys_, f, model("llama3-70b"), "decode", None)
    remote = choose(cfg, sys_, f, model("llama3-70b"), "decode", None,
                    memory=memory_config("disaggregated", node_tier="cxl-pool"))
    assert local.best.plan.tp >= 8                    # 140 GB of weights over 20 GB Lite-GPUs
    assert remote.screened > local.screened           # narrower plans are screened with their reads
    assert remote.best.fits and remote.best.remote is not None
    # with a (practically) free remote tier a narrower plan, with fewer all-reduce bytes, wins
    from ocsnet.memory import MemoryConfig, MemoryTier
    free = MemoryTier("free-host", "host", capacity_bytes=1e15, bandwidth_Bps=1e18)
    fast = choose(cfg, sys_, f, model("llama3-70b"), "decode", None, memory=MemoryConfig((free,)))
    assert fast.best.plan.tp < local.best.plan.tp and fast.best.fits
    assert fast.best.totals()["tokens_per_s_per_h100e"] > local.best.totals()["tokens_per_s_per_h100e"]
