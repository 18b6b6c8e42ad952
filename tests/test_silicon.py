"""The silicon model: closed forms, brute force and properties (docs/design.md, "Silicon")."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsnet import silicon
from ocsnet.errors import SpecError
from ocsnet.silicon import wafer
from ocsnet.validation.silicon import corner_count

H100 = NS(name="h100", die_area_mm2=814.0, hbm_bytes=80e9, hbm_Bps=3.35e12, scaleup_Bps=450e9, tdp_W=700.0,
          bf16_flops=989.4e12)


# ---- dies per wafer ------------------------------------------------------------------

def _brute(w, h, s, R, ox, oy):
    """Count dies by testing the four corners of every grid cell (plain loops)."""
    return corner_count(w, h, s, R, ox, oy, tol=1e-9)


@settings(max_examples=25, deadline=None)
@given(w=st.floats(2.0, 30.0), h=st.floats(2.0, 30.0), s=st.floats(0.0, 0.5),
       ox=st.floats(0.0, 1.0), oy=st.floats(0.0, 1.0), d=st.floats(50.0, 150.0))
def test_dies_at_offsets_matches_brute_force(w, h, s, ox, oy, d):
    ox, oy = ox * (w + s), oy * (h + s)
    got = wafer.dies_at_offsets(w, h, [ox], [oy], wafer_diameter_mm=d, edge_exclusion_mm=0.0, scribe_mm=s)[0]
    assert got == _brute(w, h, s, d / 2.0, ox, oy)


def test_exact_is_the_best_offset_of_its_grid_by_brute_force():
    w, h, s, d = 7.3, 9.1, 0.1, 80.0
    gx, gy = wafer.offset_grid(w + s, w, 6), wafer.offset_grid(h + s, h, 6)
    best = max(_brute(w, h, s, d / 2, x, y) for x in gx for y in gy)
    assert wafer.dies_per_wafer(w, h, wafer_diameter_mm=d, edge_exclusion_mm=0, scribe_mm=s, offset_steps=6) == best


@settings(max_examples=30, deadline=None)
@given(area=st.floats(20.0, 850.0), aspect=st.floats(1.0, 1.3))
def test_exact_and_formula_agree_within_a_few_percent(area, aspect):
    w, h = silicon.die_dimensions(area, aspect)
    exact = silicon.dies_per_wafer(w, h)
    formula = silicon.dies_per_wafer(w, h, method="formula")
    # the formula's edge-loss term is an approximation that the best offset beats (by up to ~13% for
    # large dies); no layout beats the area bound: the usable circle over one die's footprint
    d, s = 300.0 - 2 * 3.0, 0.1
    assert 0.97 * formula <= exact <= math.pi * d * d / 4 / ((w + s) * (h + s))


def test_dies_per_wafer_decreases_with_area():
    counts = [silicon.dies_per_wafer(*silicon.die_dimensions(a, 1.27)) for a in (50, 100, 200, 400, 800)]
    assert counts == sorted(counts, reverse=True)


def test_reticle_limit_refused_unless_stitching():
    with pytest.raises(SpecError, match="reticle"):
        silicon.check_reticle(30, 30)
    silicon.check_reticle(30, 30, allow_stitching=True)
    silicon.check_reticle(33, 26)                       # either orientation
    with pytest.raises(SpecError, match="reticle"):
        silicon.gpu_cost(1000, 80)
    assert silicon.gpu_cost(1000, 80, allow_stitching=True).gpu_usd > 0


# ---- yield ----------------------------------------------------------------------------

def test_poisson_is_exp_minus_ad():
    a, d = 250.0, 0.09
    assert silicon.die_yield(a, d, model="poisson") == pytest.approx(math.exp(-a / 100 * d), rel=1e-12)


def test_closed_forms_of_every_model():
    ad = 0.5   # 500 mm2 at 0.1 per cm2
    y = {m: silicon.die_yield(500, 0.1, model=m, alpha=3.0, critical_layers=7) for m in silicon.YIELD_MODELS}
    assert y["murphy"] == pytest.approx(((1 - math.exp(-ad)) / ad) ** 2)
    assert y["seeds"] == pytest.approx(math.exp(-math.sqrt(ad)))
    assert y["bose-einstein"] == pytest.approx((1 + ad / 7) ** -7)
    assert y["negative-binomial"] == pytest.approx((1 + ad / 3) ** -3)
    # the usual ordering for the same AD: Poisson is the most pessimistic of the clustered models
    assert y["poisson"] < y["murphy"] < y["negative-binomial"]


@settings(max_examples=40, deadline=None)
@given(area=st.floats(1.0, 900.0), d=st.floats(0.0, 1.0))
def test_negative_binomial_tends_to_poisson(area, d):
    p = silicon.die_yield(area, d, model="poisson")
    assert silicon.die_yield(area, d, alpha=1e7) == pytest.approx(p, rel=1e-5, abs=1e-9)
    assert silicon.die_yield(area, d, alpha=1.0) == pytest.approx(1 / (1 + area / 100 * d))


@settings(max_examples=40, deadline=None)
@given(a1=st.floats(1.0, 900.0), a2=st.floats(1.0, 900.0), d=st.floats(0.001, 1.0),
       model=st.sampled_from(silicon.YIELD_MODELS))
def test_yield_in_unit_interval_and_falls_with_area(a1, a2, d, model):
    y1, y2 = silicon.die_yield(min(a1, a2), d, model=model), silicon.die_yield(max(a1, a2), d, model=model)
    assert 0 < y2 <= y1 <= 1


def test_yield_vectorized_and_zero_density():
    y = silicon.die_yield(np.array([10.0, 100.0, 800.0]), 0.0)
    assert np.all(y == 1.0)


@pytest.mark.parametrize("kw, field", [({"defect_density_per_cm2": -0.1}, "defect_density"),
                                       ({"area_mm2": 0.0}, "area_mm2"),
                                       ({"model": "gauss"}, "yield model"),
                                       ({"alpha": 0.0}, "alpha")])
def test_yield_errors_name_the_field(kw, field):
    args = {"area_mm2": 100.0, "defect_density_per_cm2": 0.1}
    args.update(kw)
    a, d = args.pop("area_mm2"), args.pop("defect_density_per_cm2")
    with pytest.raises(SpecError, match=field):
        silicon.die_yield(a, d, **args)


# ---- cost -----------------------------------------------------------------------------

def test_h100_cost_near_published_estimate():
    c = silicon.gpu_cost(814, 80)
    build = silicon.params()["tco.h100_build_usd"]
    assert 0.5 * build < c.gpu_usd < 1.5 * build       # Epoch AI: $3,320
    assert c.hbm_usd == pytest.approx(80 * silicon.params()["hbm.usd_per_GB"])


def test_good_die_cost_is_raw_plus_test_over_yield():
    c = silicon.gpu_cost(300, 16)
    assert c.good_die_usd == pytest.approx((c.raw_die_usd + c.test_usd) / c.yield_total)
    assert c.raw_die_usd == pytest.approx(silicon.params()["wafer.price_usd"] / c.dies_per_wafer)


@settings(max_examples=20, deadline=None)
@given(a1=st.floats(20.0, 800.0), a2=st.floats(20.0, 800.0))
def test_good_die_cost_per_area_rises_with_area(a1, a2):
    lo, hi = sorted((a1, a2))
    if hi - lo < 5:
        return
    c1, c2 = silicon.gpu_cost(lo, 0), silicon.gpu_cost(hi, 0)
    assert c1.good_die_usd / lo < c2.good_die_usd / hi * 1.02   # 2%: whole-die rounding at the edge


def test_params_overrides_and_unknown_keys():
    p = silicon.params({"wafer.price_usd": 20000})
    assert silicon.gpu_cost(400, 0, params=p).raw_die_usd > silicon.gpu_cost(400, 0).raw_die_usd
    with pytest.raises(SpecError, match="no_such"):
        silicon.params({"wafer.no_such": 1})
    with pytest.raises(SpecError, match="wafer.price_usd"):
        silicon.params({"wafer.price_usd": -1})


def test_every_number_has_a_source_and_ranges_hold_the_default():
    p = silicon.params()
    for k, v in p.values.items():
        if isinstance(v, float):
            assert p.sources[k]
    for k, (lo, hi) in p.ranges.items():
        assert lo <= p[k] <= hi and p.range_sources[k]


# ---- power, clock, shoreline and the Lite design ----------------------------------------

def test_fraction_one_reproduces_the_parent():
    d = silicon.lite_design(H100, 1.0, network="parent-ratio")
    assert d.relative_cost == pytest.approx(1.0)
    assert d.tdp_W == pytest.approx(H100.tdp_W)
    assert d.network_Bps == pytest.approx(H100.scaleup_Bps)
    assert d.max_clock_factor == pytest.approx(1.0, abs=1e-9)
    assert silicon.lite_design(H100, 1.0).network_ratio_factor == pytest.approx(1.0, rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(f=st.floats(0.02, 1.0))
def test_shoreline_ratio_grows_as_inverse_sqrt_of_fraction(f):
    d = silicon.lite_design(H100, f, network="shoreline")
    one = silicon.lite_design(H100, 1.0, network="shoreline")
    assert d.network_ratio_factor / one.network_ratio_factor == pytest.approx(1 / math.sqrt(f), rel=1e-9)


def test_quarter_die_has_twice_the_bandwidth_to_compute():
    assert silicon.lite_design(H100, 0.25).network_ratio_factor == pytest.approx(2.0, rel=1e-3)


@settings(max_examples=20, deadline=None)
@given(f1=st.floats(0.02, 1.0), f2=st.floats(0.02, 1.0))
def test_max_clock_rises_as_the_die_shrinks(f1, f2):
    lo, hi = sorted((f1, f2))
    p = silicon.params()
    m_lo = silicon.max_clock_factor(lo * 814, 814, p)
    m_hi = silicon.max_clock_factor(hi * 814, 814, p)
    assert m_lo >= m_hi - 1e-9
    assert m_lo <= silicon.curve_max_clock(p) + 1e-12


def test_clock_under_the_cooling_limit_meets_it():
    p = silicon.params()
    a = 0.25 * 814
    c = silicon.max_clock_factor(a, 814, p)
    lim = silicon.flux_limit_factor(a, 814, p)
    assert silicon.power_factor(c, p) == pytest.approx(lim, rel=1e-6) or c == pytest.approx(silicon.curve_max_clock(p))


def test_voltage_curve_inverse_and_errors():
    p = silicon.params()
    v = silicon.voltage_for_clock(1.1, p)
    kw = {k: p[f"power.{k}"] for k in ("nominal_vdd_V", "threshold_V", "alpha_power")}
    assert silicon.clock_factor(v, **kw) == pytest.approx(1.1, rel=1e-9)
    assert silicon.voltage_for_clock(1.0, p) == pytest.approx(p["power.nominal_vdd_V"], rel=1e-9)
    with pytest.raises(SpecError, match="voltage curve"):
        silicon.voltage_for_clock(2.0, p)
    with pytest.raises(SpecError, match="voltage curve"):
        silicon.lite_design(H100, 0.25, clock=2.0)
    with pytest.raises(SpecError, match="cooling limit"):
        silicon.lite_design(H100, 1.0, clock=1.1)


def test_power_at_nominal_clock_scales_with_fraction():
    for f in (0.5, 0.25, 0.125):
        assert silicon.lite_design(H100, f).power_fraction == pytest.approx(f)
    assert silicon.lite_design(H100, 0.25, clock="max").power_fraction > 0.25


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, "x", "1/0", float("nan")])
def test_fraction_outside_unit_interval_refused(bad):
    with pytest.raises(SpecError, match="fraction"):
        silicon.lite_design(H100, bad)


def test_parent_ratio_network_needs_the_shoreline():
    d = silicon.lite_design(H100, 0.25, network="parent-ratio")
    assert d.network_ratio_factor == pytest.approx(1.0)
    with pytest.raises(SpecError, match="shoreline"):
        silicon.lite_design(H100, 1.0, network="parent-ratio", params={"shoreline.cpo_Gbps_per_mm": 10})


def test_tco_closed_form():
    p = silicon.params()
    capex = 1e6
    s = silicon.tco_usd_per_s(capex, 1e4, p)
    life = p["tco.life_years"] * 365.25 * 86400
    assert s == pytest.approx(capex / life + 1e4 * p["tco.pue"] * p["tco.electricity_usd_per_kWh"] / 3.6e6)
    assert silicon.usd_per_million_tokens(2e3, capex, 1e4, p) == pytest.approx(s / 2e3 * 1e6)
    assert silicon.usd_per_million_tokens(0.0, capex, 1e4, p) == math.inf


def test_user_catalog_file_overrides_silicon_parameters(tmp_path):
    from ocsnet import folders, hardware

    f = tmp_path / "silicon-mine.toml"
    f.write_text('[wafer]\nprice_usd = 20000\n[wafer.source]\nprice_usd = "my foundry quote"\n')
    hardware.load_catalog(f)
    try:
        p = silicon.params()
        assert p["wafer.price_usd"] == 20000 and p.sources["wafer.price_usd"] == "my foundry quote"
        assert p["hbm.usd_per_GB"] == 15.0                      # the rest stays built-in
    finally:
        folders.remove_path(f)
    assert silicon.params()["wafer.price_usd"] == 16988.0
    bad = tmp_path / "silicon-bad.toml"
    bad.write_text('[wafer]\nprice_usd = 20000\n')
    hardware.load_catalog(bad)
    try:
        with pytest.raises(SpecError, match="no source"):
            silicon.params()
    finally:
        folders.remove_path(bad)


@settings(max_examples=40, deadline=None)
@given(area=st.floats(1.0, 900.0), d1=st.floats(0.0, 1.0), d2=st.floats(0.0, 1.0),
       model=st.sampled_from(silicon.YIELD_MODELS))
def test_yield_falls_with_defect_density(area, d1, d2, model):
    lo, hi = sorted((d1, d2))
    assert silicon.die_yield(area, hi, model=model) <= silicon.die_yield(area, lo, model=model)


def test_light_names_match_the_model_and_import_no_numpy():
    import subprocess
    import sys

    from ocsnet.silicon import cost, design, yields

    assert silicon.IO_KINDS == cost.IO_KINDS and set(design.IO_DENSITY) == set(silicon.IO_KINDS)
    assert silicon.YIELD_MODELS == yields.YIELD_MODELS
    code = "import sys, ocsnet.silicon.names, ocsnet.silicon; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
