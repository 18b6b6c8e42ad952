"""The study's extension point: registered analyses get their config section, run after the
plan search and add a section to the report."""

import sys
import types

import pytest

from ocsnet.errors import SpecError
from ocsnet.evaluation import report, study

SMALL = {"models": ["llama3-70b"], "modes": ["decode"], "variants": ["lite-netboost"],
         "lite_fabrics": {"OCS": {"fabric": "lite-ocs", "overrides": {"n_gpus": 64}}},
         "baseline": {"label": "H100 DGX", "fabric": "h100-dgx", "gpu": "h100-sxm", "overrides": {"n_nodes": 2}},
         "decode": {"batch": 8, "context": 1024}, "tp": [4, 8], "pp": [1], "algorithms": ["ring"],
         "sweep_models": [], "top_k": 1}


@pytest.fixture
def toy(monkeypatch):
    mod = types.ModuleType("toy_analysis")
    mod.DEFAULTS = {"scale": 2.0}
    seen = {}

    def analyse(cfg, result, fabrics, *, progress):
        seen["cfg"] = cfg["toy"]
        n = sum(1 for cs in result.choices.values() for c in cs if c.best is not None)
        return {"chosen": n, "scaled": n * cfg["toy"]["scale"]}

    def rep(data, outdir, *, figures):
        (outdir / "toy.json").write_text(str(data["scaled"]))
        return ["## Toy", "", f"{data['chosen']} systems chosen"]

    mod.analyse, mod.report = analyse, rep
    monkeypatch.setitem(sys.modules, "toy_analysis", mod)
    monkeypatch.setitem(study.ANALYSES, "toy", "toy_analysis")
    return seen


def test_analysis_config_runs_and_reports(toy, tmp_path):
    res = study.run_study({**SMALL, "toy": {"scale": 3.0}}, progress=False)
    assert toy["cfg"] == {"scale": 3.0}
    chosen = res.extras["toy"]["chosen"]
    assert chosen == 2 and res.extras["toy"]["scaled"] == 6.0
    md = report.write_report(res, tmp_path, figures=False).read_text()
    assert "## Toy" in md and "2 systems chosen" in md
    assert (tmp_path / "toy.json").read_text() == "6.0"


def test_analysis_off_and_unknown_keys(toy):
    cfg = study.study_config({**SMALL, "analyses": []})
    assert cfg["analyses"] == [] and cfg["toy"] == {}
    assert study.study_config(SMALL)["toy"] == {"scale": 2.0}
    with pytest.raises(SpecError, match=r"study\.toy\.bogus: unknown key"):
        study.study_config({**SMALL, "toy": {"bogus": 1}})
    with pytest.raises(SpecError, match=r"study\.analyses: 'nope' is not an analysis"):
        study.study_config({**SMALL, "analyses": ["nope"]})
