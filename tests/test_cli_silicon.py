"""``ocsnet silicon``: the table, JSON, the figure and one-line errors with exit status 2."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsnet import hardware, silicon
from ocsnet.cli import main


def test_table_has_every_fraction(capsys):
    assert main(["silicon"]) == 0
    out = capsys.readouterr().out
    for f in ("1/2", "1/4", "1/8", "1/16"):
        assert f"\n{f.rjust(8)} " in out
    assert "dies_per_wafer" in out and "max_clock" in out and "assumptions" in out


def test_json_is_deterministic_and_matches_the_model(capsys):
    args = ["silicon", "--fractions", "1,1/4", "--json"]
    assert main(args) == 0
    one = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == one
    doc = json.loads(one)
    rows = {r["fraction"]: r for r in doc["rows"]}
    d = silicon.lite_design(hardware.gpu("h100-sxm"), 0.25)
    assert rows["1/4"]["gpu_usd"] == pytest.approx(d.cost.gpu_usd)
    assert rows["1"]["cost_per_h100e"] == pytest.approx(1.0)
    assert rows["1/4"]["bw_to_compute_vs_parent"] == pytest.approx(2.0, rel=1e-3)


def test_set_overrides_a_parameter(capsys):
    assert main(["silicon", "--fractions", "1/4", "--json", "--set", "hbm.usd_per_GB=30"]) == 0
    a = json.loads(capsys.readouterr().out)["rows"][0]["hbm_usd"]
    assert a == pytest.approx(20 * 30)


def test_plot_written(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["silicon", "--fractions", "1,1/4", "--plot", str(out)]) == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("args, field", [
    (["--fractions", "2"], "fraction"), (["--fractions", "0"], "fraction"), (["--fractions", "a/b"], "fraction"),
    (["--fractions", ","], "--fractions"), (["--gpu", "nope"], "gpu"), (["--set", "x"], "--set"),
    (["--set", "wafer.nope=1"], "wafer.nope"), (["--set", "yield.model=gauss"], "yield model"),
    (["--set", "yield.defect_density_per_cm2=-1"], "defect_density"),
    (["--set", "power.max_vdd_V=0.5"], "max_vdd_V"), (["--fractions", "1", "--set", "shoreline.aspect_ratio=3"], "reticle"),
])
def test_bad_input_one_line_exit_2(args, field, capsys):
    assert main(["silicon", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err and "Traceback" not in err


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=0, max_size=12))
def test_fuzz_fractions_never_traceback(text):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            rc = main(["silicon", "--fractions", text])
        except SystemExit as e:   # argparse rejects some strings (e.g. starting with '-')
            rc = e.code
    assert rc in (0, 2)
    if rc == 2:
        assert "Traceback" not in err.getvalue()
