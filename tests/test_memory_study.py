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
        study.run_study({**SMALL, "memory": {**SMALL["memory"], **section}}, progress=False)
