"""The Lite-GPU versus H100 study and `ocsnet compare` on a small configuration."""

import json

import pytest

from ocsnet.cli import main
from ocsnet.errors import SpecError
from ocsnet.evaluation import DEFAULT_STUDY, run_study, study_config, summary_table, write_report

SMALL = {
    "models": ["llama3-70b"],
    "modes": ["decode"],
    "variants": ["lite-base", "lite-netboost"],
    "tp": [2, 4, 8],
    "pp": [1, 2, 4],
    "algorithms": ["ring", "rhd"],
    "baseline": {"label": "H100 DGX", "fabric": "h100-dgx", "gpu": "h100-sxm", "overrides": {"n_nodes": 8}},
    "lite_fabrics": {
        "packet": {"fabric": "lite-fat-tree", "overrides": {"n_gpus": 256}},
        "OCS": {"fabric": "lite-ocs", "overrides": {"n_gpus": 256}},
        "CPO torus": {"fabric": "lite-cpo-torus", "overrides": {"dims": [8, 8, 4]}},
    },
    "sweep_reconfig_delay_us": [0.01, 1000],
    "sweep_tp": [8],
    "sweep_models": ["llama3-70b"],
}


@pytest.fixture(scope="module")
def result():
    return run_study(SMALL, progress=False)


def test_every_system_has_a_choice(result):
    rows = result.summary_rows()
    assert len(rows) == 1 + 2 * 3
    assert all(r["plan"] != "none fits" for r in rows)
    base = rows[0]
    assert base["system"] == "H100 DGX"
    assert base["throughput_vs_h100"] == pytest.approx(1.0) and base["latency_vs_h100"] == pytest.approx(1.0)


def test_the_choice_is_the_best_candidate_within_the_latency_limit(result):
    """Default rule: every system's step latency (TPOT here) within the model's SLO preset."""
    from ocsnet.evaluation.study import slo_limit

    assert result.config["latency_limit"] == "slo"
    row = result.choices[("llama3-70b", "decode")]
    limit, what = slo_limit("llama3-70b", "decode")
    assert limit == pytest.approx(0.2) and "llama2-70b" in what
    for c in row:
        ok = [x for x in c.candidates if x["latency_s"] <= limit]
        if not ok:      # nothing meets the limit: the unconstrained best, flagged
            ok = c.candidates
            assert any(f.startswith("latency: no plan") for f in c.best.failures)
        assert c.best.totals()["tokens_per_s_per_h100e"] == pytest.approx(max(x["full"] for x in ok))


def test_the_relative_rule_is_an_option():
    cfg = dict(SMALL, variants=["lite-netboost"], tp=[4, 8], pp=[1, 2], latency_limit="relative",
               latency_vs_baseline=1.0, analyses=[], sweep_models=[])
    result = run_study(cfg, progress=False)
    row = result.choices[("llama3-70b", "decode")]
    limit = result.config["latency_vs_baseline"] * row[0].best.latency_s
    for c in row:
        ok = [x for x in c.candidates if c.system.kind == "baseline" or x["latency_s"] <= limit]
        if not ok:      # nothing meets the limit: the unconstrained best, flagged
            ok = c.candidates
            assert any(f.startswith("latency: no plan") for f in c.best.failures)
        assert c.best.totals()["tokens_per_s_per_h100e"] == pytest.approx(max(x["full"] for x in ok))


def test_bad_latency_rule_is_named():
    with pytest.raises(SpecError, match="study.latency_limit: 'fast' is not one of slo, relative"):
        study_config({"latency_limit": "fast"})


def test_network_boost_helps_lite_gpus(result):
    """Twice the bandwidth-to-compute ratio: at least as good on every fabric (Canakci et al.)."""
    rows = {r["system"]: r for r in result.summary_rows()}
    for kind in ("packet", "OCS", "CPO torus"):
        assert rows[f"Lite netboost / {kind}"]["tokens_per_s_per_h100e"] >= \
            rows[f"Lite base / {kind}"]["tokens_per_s_per_h100e"] * (1 - 1e-9)


def test_sweep_ring_is_flat_and_rhd_pays_reconfiguration(result):
    rows = [r for r in result.sweep if r["plan"].startswith("tp=8")]
    ring = {r["reconfig_delay_us"]: r for r in rows if r["algorithm"] == "ring"}
    rhd = {r["reconfig_delay_us"]: r for r in rows if r["algorithm"] == "rhd"}
    assert ring[0.01]["layer_us"] == pytest.approx(ring[1000]["layer_us"])
    assert rhd[0.01]["layer_us"] <= rhd[1000]["layer_us"]


def test_report_folder(result, tmp_path):
    md = write_report(result, tmp_path)
    text = md.read_text()
    assert "## Summary" in text and "H100 DGX" in text
    for name in ("summary.csv", "summary.json", "layers.csv", "config.json", "reconfig_sweep.csv",
                 "normalized.png", "layers.png", "reconfig_sweep.png", "ocs_schedule.png"):
        assert (tmp_path / name).exists(), name
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["models"] == ["llama3-70b"] and set(cfg) == set(DEFAULT_STUDY) | {"analyses"} | set(cfg["analyses"])
    assert "H100 DGX" in summary_table(result)


def test_silicon_analysis(result, tmp_path):
    """How small: one row per model, mode and fabric; the best fraction is the cheapest cell; the
    Monte Carlo covers every Lite system; the section and its files are written."""
    data = result.extras["silicon"]
    assert {r["fabric"] for r in data["how_small"]} == {"OCS", "CPO torus"}
    for r in data["how_small"]:
        ok = [c for c in r["cells"] if c["usd_per_mtok"] is not None]
        assert ok and r["best_usd_per_mtok"] == min(c["usd_per_mtok"] for c in ok)
        assert r["best_vs_h100"] == pytest.approx(r["best_usd_per_mtok"] / r["h100_usd_per_mtok"])
    lites = [r for r in result.summary_rows() if r["system"] != "H100 DGX"]
    assert {r["system"] for r in data["monte_carlo"]} == {r["system"] for r in lites}
    assert all(0 <= r["p_beats_baseline"] <= 1 for r in data["monte_carlo"])
    costs = {r["system"]: r["usd_per_mtok"] for r in data["systems"]}
    assert costs["H100 DGX"] == pytest.approx(result.summary_rows()[0]["usd_per_million_tokens"])
    md = write_report(result, tmp_path).read_text()
    assert "## How small should a GPU be?" in md and "P(beats H100)" in md
    for name in ("silicon.json", "how_small.csv", "silicon.png", "tornado.png"):
        assert (tmp_path / name).exists(), name


@pytest.mark.parametrize("section, match", [
    ({"fractions": ["2"]}, "study.silicon.fractions"), ({"io": "smoke"}, "study.silicon.io"),
    ({"clock": "fast"}, "study.silicon.clock"), ({"parameters": {"wafer.nope": 1}}, "study.silicon.parameters"),
    ({"monte_carlo_samples": 0}, "monte_carlo_samples"), ({"colour": 1}, "study.silicon.colour"),
])
def test_silicon_section_refused_before_the_search(section, match):
    with pytest.raises(SpecError, match=match):
        study_config({"silicon": section})


def test_config_refuses_unknown_keys():
    with pytest.raises(SpecError, match="study.bogus"):
        study_config({"bogus": 1})
    with pytest.raises(SpecError, match="objective"):
        study_config({"objective": "speed"})


@pytest.mark.parametrize("argv,match", [
    (["compare", "--tp", "0"], "--tp"),
    (["compare", "--models", "gpt5"], "gpt5"),
    (["compare", "--reconfig-delay", "fast"], "--reconfig-delay"),
    (["compare", "--modes", "train"], "modes"),
])
def test_cli_bad_input_one_line_exit_2(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        rc = main(argv)
        raise SystemExit(rc)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_cli_compare_small(tmp_path, capsys):
    cfg = dict(SMALL, variants=["lite-netboost"], lite_fabrics={"OCS": SMALL["lite_fabrics"]["OCS"]},
               sweep_reconfig_delay_us=[0.01])
    path = tmp_path / "study.json"
    path.write_text(json.dumps(cfg))
    rc = main(["compare", "--config", str(path), "-o", str(tmp_path / "out"), "--no-figures", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Lite netboost / OCS" in out and "report:" in out
    assert (tmp_path / "out" / "report.md").exists()


def test_failures_section(result, tmp_path):
    data = result.extras["failures"]
    rows = {r["system"]: r for r in data["rows"]}
    assert "H100 DGX" in rows and "ocs" not in rows["H100 DGX"]["policies"]
    lite_ocs = next(r for r in data["rows"] if r["kind"] == "OCS")
    pol = lite_ocs["policies"]
    assert pol["ocs"]["lost_share"] <= pol["spares"]["lost_share"] <= pol["none"]["lost_share"]
    for r in data["rows"]:
        for v in r["policies"].values():
            assert 0 <= v["lost_share"] <= 1 and v["goodput_per_h100e"] > 0
            # the Monte Carlo mean agrees with the analytic steady state within its interval (loosely)
            assert abs(v["mc_lost_share"] - v["lost_share"]) <= 4 * v["mc_ci95"] + 2e-3
    write_report(result, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Failures" in text and "**Answer.**" in text
    assert (tmp_path / "failures.png").exists() and (tmp_path / "failures.csv").exists()
