"""Lite-GPUs derived by the silicon model; cost per million tokens; the sensitivity analysis."""

from __future__ import annotations

import json
import math

import pytest

from ocsnet import hardware, silicon
from ocsnet.errors import SpecError
from ocsnet.evaluation.sensitivity import CostInputs, monte_carlo, tornado, usd_per_mtok

H100 = hardware.gpu("h100-sxm")


def test_named_variants_are_model_outputs_at_a_quarter():
    base, boost, oc = (hardware.gpu(n) for n in ("lite-base", "lite-netboost", "lite-overclock"))
    q = 0.25
    for g in (base, boost, oc):
        assert g.h100_equivalents == pytest.approx(q) and g.die_area_mm2 == pytest.approx(q * H100.die_area_mm2)
        assert g.hbm_bytes == pytest.approx(q * H100.hbm_bytes) and g.hbm_Bps == pytest.approx(q * H100.hbm_Bps)
        d = silicon.lite_design(H100, q)
        assert g.relative_cost == pytest.approx(d.relative_cost)          # same silicon, same cost
    # base: the H100's bandwidth-to-compute ratio; netboost: twice it, from the shoreline
    assert base.scaleout_Bps == pytest.approx(q * H100.scaleup_Bps)
    assert boost.scaleout_Bps == pytest.approx(2 * q * H100.scaleup_Bps, rel=1e-4)
    assert base.bf16_flops == pytest.approx(q * H100.bf16_flops) == boost.bf16_flops
    assert base.tdp_W == pytest.approx(q * H100.tdp_W)
    # overclock: the highest clock under the cooling limit, power from the voltage curve
    p = silicon.params()
    top = silicon.max_clock_factor(q * H100.die_area_mm2, H100.die_area_mm2, p)
    assert oc.clock_factor == pytest.approx(top) and 1.0 < top <= silicon.curve_max_clock(p)
    assert oc.bf16_flops == pytest.approx(q * top * H100.bf16_flops)
    assert oc.scaleout_Bps == pytest.approx(base.scaleout_Bps)              # the optics keep their rate
    assert oc.tdp_W > base.tdp_W
    # yield makes a quarter die cheaper per mm2, but HBM and packaging keep the silicon near the H100's
    assert 0.2 < base.relative_cost < 0.3


def test_fraction_one_reproduces_the_parent_spec():
    g = hardware.lite_gpu(H100, fraction=1, network="parent-ratio", name="same")
    assert g.bf16_flops == pytest.approx(H100.bf16_flops) and g.hbm_bytes == pytest.approx(H100.hbm_bytes)
    assert g.tdp_W == pytest.approx(H100.tdp_W) and g.relative_cost == pytest.approx(H100.relative_cost)
    assert g.scaleout_Bps == pytest.approx(H100.scaleup_Bps) and g.h100_equivalents == 1.0


@pytest.mark.parametrize("kw, field", [({"fraction": 0}, "fraction"), ({"fraction": 1.5}, "fraction"),
                                       ({"clock": 3.0}, "voltage curve"), ({"io": "smoke"}, "io"),
                                       ({"network": "wide"}, "network"),
                                       ({"params": {"wafer.price_usd": -5}}, "wafer.price_usd")])
def test_lite_gpu_errors_name_the_field(kw, field):
    with pytest.raises(SpecError, match=field):
        hardware.lite_gpu(H100, **kw)


def test_evaluate_reports_cost_per_million_tokens():
    from ocsnet import topology
    from ocsnet.evaluation import evaluate
    from ocsnet.workload import ParallelPlan

    fab = topology.build("lite-cpo-torus", gpu="lite-netboost", dims=[4, 4, 4])
    ev = evaluate("llama3-70b", ParallelPlan(tp=8, pp=2), fab, "decode", gpu="lite-netboost", batch=8, context=2048,
                  fidelities=("alpha-beta",), fidelity="alpha-beta", schedule=False)
    t = ev.totals()
    p = silicon.params()
    n = ev.gpus_per_replica
    capex = n * (ev.gpu.relative_cost + ev.network_cost_per_gpu) * p["tco.h100_price_usd"] \
        + n * ev.gpu.h100_equivalents * p["tco.host_usd_per_h100e"]
    watts = n * (ev.gpu.tdp_W + ev.network_W_per_gpu)
    per_s = capex / (p["tco.life_years"] * 365.25 * 86400) + watts * p["tco.pue"] * p["tco.electricity_usd_per_kWh"] / 3.6e6
    assert t["usd_per_million_tokens"] == pytest.approx(per_s / t["tokens_per_s"] * 1e6, rel=1e-12)
    dearer = ev.usd_per_million_tokens({"tco.electricity_usd_per_kWh": 0.3})
    assert dearer > t["usd_per_million_tokens"]


def _ci(label, tps, area, hbm, n=4, h100e=0.25, parent=False):
    return CostInputs(label=label, tokens_per_s=tps, n_gpus=n, h100e_per_gpu=h100e, network_cost_per_gpu=0.01,
                      watts=n * 200.0, area_mm2=area, hbm_GB=hbm, parent_area_mm2=814.0, parent_hbm_GB=80.0,
                      is_parent=parent)


def test_tornado_brackets_and_orders_by_swing():
    lite, h100 = _ci("lite", 1000.0, 203.5, 20.0), _ci("h100", 1000.0, 814.0, 80.0, n=1, h100e=1.0, parent=True)
    rows = tornado(lite, h100)
    p = silicon.params()
    assert {r["parameter"] for r in rows} == set(p.ranges)
    swings = [abs(r["ratio_high"] - r["ratio_low"]) for r in rows]
    assert swings == sorted(swings, reverse=True)
    assert rows[0]["ratio_default"] == pytest.approx(float(usd_per_mtok(lite, p) / usd_per_mtok(h100, p)))
    d = {r["parameter"]: r for r in rows}
    # a dearer defect density hurts the big die more: the Lite/H100 ratio falls
    assert d["yield.defect_density_per_cm2"]["ratio_high"] < d["yield.defect_density_per_cm2"]["ratio_low"]


def test_monte_carlo_is_seeded_and_bounded():
    h100 = _ci("h100", 1000.0, 814.0, 80.0, n=1, h100e=1.0, parent=True)
    same = _ci("same", 1000.0, 814.0, 80.0, n=1, h100e=1.0, parent=True)
    cheap = _ci("fast", 1e6, 203.5, 20.0)
    slow = _ci("slow", 1.0, 203.5, 20.0)
    a = monte_carlo([same, cheap, slow], h100, samples=500, seed=3)
    b = monte_carlo([same, cheap, slow], h100, samples=500, seed=3)
    assert json.dumps(a) == json.dumps(b)
    got = {r["system"]: r["p_beats_baseline"] for r in a}
    assert got == {"same": 0.0, "fast": 1.0, "slow": 0.0}
    r = next(r for r in a if r["system"] == "same")
    assert r["ratio_p05"] == pytest.approx(1.0) == r["ratio_p95"]
    mixed = monte_carlo([_ci("mid", 4000.0 * 0.2, 203.5, 20.0)], h100, samples=2000, seed=0)[0]
    assert 0.0 <= mixed["p_beats_baseline"] <= 1.0 and mixed["ratio_p05"] <= mixed["ratio_p50"] <= mixed["ratio_p95"]
    assert not math.isnan(mixed["ratio_p50"])
