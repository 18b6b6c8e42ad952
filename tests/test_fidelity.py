"""Precision (bf16/fp8), the calibration of kernels and collectives, and the measured cases (issue 15)."""

import dataclasses
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from ocsnet import evaluate, hardware
from ocsnet.errors import SpecError, WorkloadError
from ocsnet.evaluation import measured
from ocsnet.evaluation.per_layer import time_collective
from ocsnet.topology import dgx_cluster
from ocsnet.workload import ParallelPlan
from ocsnet.workload.calibration import ROOFLINE, Calibration, calibration
from ocsnet.workload.layers import layer_profile, roofline
from ocsnet.workload.step import memory_fit

IDEAL = Calibration(name="ideal", gemm_flops=(0.0,), gemm_efficiency=(1.0,), memory_bytes=(0.0,),
                    memory_efficiency=(1.0,), protocols=("p",), protocol_base_s=(0.0,),
                    protocol_step_nvlink_s=(0.0,), protocol_step_net_s=(0.0,), protocol_bandwidth_factor=(1.0,))


# ---- ideal settings reduce to the roofline ------------------------------------------------

@pytest.mark.parametrize("mode,kw", [("prefill", {"seq_len": 512}), ("decode", {"context": 2048})])
def test_ideal_calibration_is_the_roofline(mode, kw):
    plan = ParallelPlan(tp=4)
    base = layer_profile("llama2-70b", plan, mode, batch=3, **kw)
    for c in ("roofline", ROOFLINE, IDEAL):
        lp = layer_profile("llama2-70b", plan, mode, batch=3, calibration=c, **kw)
        assert [o.time_s for o in lp.ops] == pytest.approx([o.time_s for o in base.ops], rel=1e-12)


def test_ideal_calibration_evaluates_like_the_roofline():
    f = dgx_cluster(1)
    kw = dict(batch=2, seq_len=256, fidelities=("alpha-beta",), fidelity="alpha-beta")
    a = evaluate("llama2-13b", ParallelPlan(tp=8), f, "prefill", **kw)
    b = evaluate("llama2-13b", ParallelPlan(tp=8), f, "prefill", calibration=IDEAL, **kw)
    assert b.latency_s == pytest.approx(a.latency_s, rel=1e-12)
    assert time_collective(f, "all-reduce", 1e8, range(8), calibration=IDEAL) == \
        pytest.approx(time_collective(f, "all-reduce", 1e8, range(8)), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(flops=st.floats(1e3, 1e15), nbytes=st.floats(1e3, 1e12), tokens=st.integers(1, 10_000),
       kernels=st.integers(1, 5), kind=st.sampled_from(["gemm", "other"]))
def test_calibrated_op_is_never_faster_than_the_roofline(flops, nbytes, tokens, kernels, kind):
    g = hardware.gpu("h100-sxm")
    r = roofline(flops, nbytes, g)
    c = roofline(flops, nbytes, g, calibration=calibration("measured"), kind=kind, tokens=tokens, kernels=kernels)
    assert c.time_s >= r.time_s * (1 - 1e-12)
    assert c.time_s >= kernels * calibration("measured").kernel_overhead_s


@settings(max_examples=60, deadline=None)
@given(t=st.floats(1e-9, 1.0), steps=st.integers(1, 200), net=st.booleans())
def test_collective_protocols_only_add_time(t, steps, net):
    cal = calibration("measured")
    out = cal.collective_time(t, steps, net)
    assert out >= t
    # the fastest protocol: never slower than any single one
    lat = cal.protocol_step_net_s if net else cal.protocol_step_nvlink_s
    eff = cal.link_efficiency_other if net else cal.link_efficiency_copper
    for b, s, f in zip(cal.protocol_base_s, lat, cal.protocol_bandwidth_factor):
        assert out <= b + steps * s + t / (eff * f) + 1e-18


def test_tile_quantization_small_m():
    cal = calibration("measured")
    assert cal.tiled_tokens(8) == 64 and cal.tiled_tokens(64) == 64 and cal.tiled_tokens(65) == 128
    assert ROOFLINE.tiled_tokens(8) == 8


# ---- precision --------------------------------------------------------------------------------

def test_fp8_halves_weight_bytes_and_doubles_peak():
    plan = ParallelPlan(tp=4)
    kw = dict(batch=4, context=1024)
    b = memory_fit("llama2-70b", plan, "decode", **kw)
    f = memory_fit("llama2-70b", plan, "decode", dtype="fp8", **kw)
    assert f.weights_bytes == pytest.approx(b.weights_bytes / 2)
    assert f.kv_cache_bytes == pytest.approx(b.kv_cache_bytes / 2)
    mixed = memory_fit("llama2-70b", plan, "decode", dtype="fp8", kv_dtype="bf16", **kw)
    assert mixed.kv_cache_bytes == pytest.approx(b.kv_cache_bytes) and mixed.weights_bytes == f.weights_bytes
    g = hardware.gpu("h100-sxm")
    assert g.peak_flops("fp8") == pytest.approx(2 * g.peak_flops("bf16"), rel=1e-3)
    # a compute-bound prefill GEMM takes half the time; a memory-bound decode one too (half the bytes)
    pb = {o.op: o for o in layer_profile("llama2-70b", plan, "prefill", batch=8, seq_len=4096).ops}
    pf = {o.op: o for o in layer_profile("llama2-70b", plan, "prefill", batch=8, seq_len=4096, dtype="fp8").ops}
    assert pb["mlp"].bound == "compute" and pf["mlp"].time_s == pytest.approx(pb["mlp"].time_s / 2, rel=1e-3)
    db = {o.op: o for o in layer_profile("llama2-70b", plan, "decode", **kw).ops}
    df = {o.op: o for o in layer_profile("llama2-70b", plan, "decode", dtype="fp8", **kw).ops}
    assert db["mlp"].bound == "memory" and df["mlp"].time_s == pytest.approx(db["mlp"].time_s / 2, rel=1e-9)


def test_dtype_reaches_evaluate_and_the_trace():
    from ocsnet.traffic import build_trace
    f = dgx_cluster(1)
    ev = evaluate("llama2-7b", ParallelPlan(tp=2), f, "decode", batch=4, context=512, dtype="fp8",
                  fidelities=("alpha-beta",))
    assert ev.totals()["dtype"] == "fp8" and ev.totals()["kv_dtype"] == "fp8"
    tb = build_trace("llama2-7b", ParallelPlan(tp=2, dp=4), f, "prefill", batch=1, seq_len=128)
    tf = build_trace("llama2-7b", ParallelPlan(tp=2, dp=4), f, "prefill", batch=1, seq_len=128, dtype="fp8")
    assert tf.meta["dtype"] == "fp8"
    assert tf.demand[0].sum() == pytest.approx(tb.demand[0].sum() / 2)     # activations are half the bytes


# ---- bad input --------------------------------------------------------------------------------

def test_unknown_dtype_names_the_field():
    with pytest.raises(WorkloadError, match="dtype: 'fp4' is not one of bf16, fp8"):
        layer_profile("llama2-7b", ParallelPlan(), "decode", batch=1, context=8, dtype="fp4")
    with pytest.raises(WorkloadError, match="kv_dtype: 'int4'"):
        memory_fit("llama2-7b", ParallelPlan(), "decode", batch=1, context=8, kv_dtype="int4")
    with pytest.raises(SpecError, match="dtype: a100-sxm-80gb has no FP8"):
        layer_profile("llama2-7b", ParallelPlan(), "decode", batch=1, context=8, gpu="a100-sxm-80gb", dtype="fp8")


@pytest.mark.parametrize("field,value", [("link_efficiency_copper", 0.0), ("link_efficiency_other", 1.5),
                                         ("fp8_gemm_factor", -0.1)])
def test_efficiency_outside_0_1_is_refused(field, value):
    with pytest.raises(SpecError, match=rf"{field}: {value!r} is out of range, allowed \(0, 1\]"):
        dataclasses.replace(ROOFLINE, **{field: value})
    with pytest.raises(SpecError, match=r"gemm_efficiency: 1.2 is out of range, allowed \(0, 1\]"):
        Calibration(gemm_flops=(0.0,), gemm_efficiency=(1.2,))
    with pytest.raises(SpecError, match="calibration: unknown name 'nope'"):
        calibration("nope")


def test_measured_case_that_does_not_fit_names_the_case():
    case = dataclasses.replace(measured.cases()[0], name="too-big", model="llama2-70b", tp=1)
    with pytest.raises(WorkloadError, match="measured.too-big: the configuration does not fit in memory"):
        measured.predict(case)


def test_measured_catalog_rejects_bad_entries():
    with pytest.raises(SpecError, match="measured.x.kind: 'latency' is not one of"):
        measured._case("x", {"kind": "latency", "quantity": "latency_ms", "measured": 1.0, "system": "dgx-h100",
                              "source": "s"})
    with pytest.raises(SpecError, match="measured.x.seq_len: a ttft case needs it"):
        measured._case("x", {"kind": "ttft", "quantity": "latency_ms", "measured": 1.0, "system": "dgx-h100",
                              "source": "s", "model": "llama2-7b"})


# ---- the measured table ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def table():
    return measured.measured_table("measured")


def test_every_measured_case_has_a_source_and_a_prediction(table):
    assert len(table) >= 25
    for r in table:
        assert r["source"] and math.isfinite(r["predicted"]) and r["predicted"] > 0


def test_measured_table_within_its_bounds(table):
    """The calibration meets both goals over the measured set: median |error| <= 15%, every case within 35%."""
    s = measured.summary(table)
    assert s["median_abs_error"] <= measured.GOAL_MEDIAN
    assert s["max_abs_error"] <= measured.GOAL_MAX, [r["name"] for r in table if abs(r["error"]) > measured.GOAL_MAX]


def test_roofline_is_much_worse_on_the_same_table(table):
    rows = measured.measured_table("roofline")
    assert measured.summary(rows)["median_abs_error"] > 2 * measured.summary(table)["median_abs_error"]


def test_nccl_busbw_of_the_dgx():
    f = dgx_cluster(1)
    t = time_collective(f, "all-reduce", 8e9, range(8), algorithm="ring", calibration="measured")
    assert 2 * 7 / 8 * 8e9 / t / 1e9 == pytest.approx(370, rel=0.01)
    # small messages are latency-bound: at least NCCL's LL base latency plus one hop per step
    t = time_collective(f, "all-reduce", 8.0, range(8), algorithm="ring", calibration="measured")
    assert t >= 3.6e-6 + 14 * 0.47e-6


# ---- CLI ---------------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ocsnet", *args], capture_output=True, text=True)


def test_cli_validate_measured():
    r = _cli("validate", "--measured")
    assert r.returncode == 0, r.stderr        # both goals met
    assert "measured cases: median |error|" in r.stdout and "nccl-h100-allreduce-ring-8gpu" in r.stdout
    r = _cli("validate", "--measured", "--calibration", "nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "calibration" in r.stderr


@pytest.mark.parametrize("args,field", [(("--dtype", "fp4"), "dtype"), (("--kv-dtype", "x"), "kv_dtype"),
                                        (("--calibration", "x"), "calibration")])
def test_cli_traffic_bad_precision(args, field):
    r = _cli("traffic", "--model", "llama2-7b", "--mode", "decode", "--batch", "1", "--context", "8", *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and field in r.stderr and "Traceback" not in r.stderr


def test_study_config_checks_precision():
    from ocsnet.evaluation import study_config
    with pytest.raises(WorkloadError, match="study.dtype: 'fp4'"):
        study_config({"dtype": "fp4"})
    with pytest.raises(SpecError, match="calibration: unknown name"):
        study_config({"calibration": "x"})


# ---- FP8 only in the GEMMs (fp8_scope = "gemm") ----------------------------------------------------

GEMM_ONLY = dataclasses.replace(IDEAL, name="gemm-only", fp8_scope="gemm")


def test_fp8_scope_gemm_keeps_the_residual_stream_and_collectives_in_bf16():
    plan = ParallelPlan(tp=4)
    kw = dict(batch=2, seq_len=256)
    full = layer_profile("llama2-70b", plan, "prefill", dtype="fp8", calibration=IDEAL, **kw)
    gemm = layer_profile("llama2-70b", plan, "prefill", dtype="fp8", calibration=GEMM_ONLY, **kw)
    bf16 = layer_profile("llama2-70b", plan, "prefill", dtype="bf16", calibration=GEMM_ONLY, **kw)
    T, h = 2 * 256, 8192
    assert [c.nbytes for c in full.collectives] == [T * h * 1.0] * 2
    assert [c.nbytes for c in gemm.collectives] == [T * h * 2.0] * 2 == [c.nbytes for c in bf16.collectives]
    assert gemm.activation_bytes == 2.0 and full.activation_bytes == 1.0 and gemm.dtype_bytes == 1.0
    ops = {o.op: o for o in gemm.ops}
    ref = {o.op: o for o in full.ops}
    # weights stay FP8: the GEMMs move their FP8 weights plus 16-bit outputs and the quantization pass
    m = 8192 * (8192 + 2 * 1024) // 4
    # quantization reads 16-bit and writes FP8, the GEMM reads FP8: (2 + 1 + 1) bytes per input element
    assert ops["qkv"].hbm_bytes == m + T * 8192 * 4.0 + T * (8192 + 2 * 1024) // 4 * 2.0
    assert ref["qkv"].hbm_bytes == m + T * (8192 + (8192 + 2 * 1024) // 4)
    assert ops["attn-norm"].hbm_bytes == 2 * ref["attn-norm"].hbm_bytes
    # fused attention runs at the 16-bit peak: slower than at the FP8 peak, never faster
    assert ops["attention"].time_s >= ref["attention"].time_s


def test_fp8_scope_changes_nothing_in_bf16():
    plan = ParallelPlan(tp=2)
    a = layer_profile("llama2-13b", plan, "prefill", batch=2, seq_len=300, calibration=IDEAL)
    b = layer_profile("llama2-13b", plan, "prefill", batch=2, seq_len=300, calibration=GEMM_ONLY)
    assert [o.time_s for o in a.ops] == [o.time_s for o in b.ops]
    assert [c.nbytes for c in a.collectives] == [c.nbytes for c in b.collectives]


def test_fp8_scope_gemm_adds_one_quantization_kernel_per_gemm():
    cal = dataclasses.replace(GEMM_ONLY, kernel_overhead_s=1e-3)      # overhead dominates: count kernels
    lp = layer_profile("llama2-7b", ParallelPlan(), "decode", batch=1, context=16, dtype="fp8", calibration=cal)
    n = {o.op: round(o.time_s / 1e-3) for o in lp.ops}
    assert n == {"attn-norm": 1, "qkv": 3, "attention": 1, "out-proj": 2, "mlp-norm": 1, "mlp": 5}


# ---- wave quantization over the GPU's SMs ---------------------------------------------------------

def _waves_brute(tokens, widths, tm, tn, sms, split):
    """Simulate the SMs taking tiles wave by wave; the busy fraction weighted by each GEMM's work."""
    work = busy = 0.0
    for n, k in widths:
        tiles = -(-tokens // tm) * -(-n // tn)
        if split and tiles < sms:
            tiles *= sms // tiles
        waves, left = 0, tiles
        while left > 0:
            left -= sms
            waves += 1
        work += n * k
        busy += n * k * waves * sms / tiles
    return work / busy


@settings(max_examples=80, deadline=None)
@given(tokens=st.integers(1, 5000), n=st.lists(st.integers(1, 40_000), min_size=1, max_size=3),
       tm=st.sampled_from([1, 64, 128]), tn=st.sampled_from([64, 128, 256]), sms=st.integers(1, 200),
       split=st.booleans())
def test_wave_factor_matches_a_wave_by_wave_count(tokens, n, tm, tn, sms, split):
    cal = Calibration(name="w", gemm_tile_m=tm, gemm_tile_n=tn, gemm_split_k=split)
    widths = tuple((x, 1000 + x) for x in n)
    f = cal.wave_factor(tokens, widths, sms)
    assert 0 < f <= 1
    assert f == pytest.approx(_waves_brute(tokens, widths, tm, tn, sms, split), rel=1e-12)
    if split:
        assert f >= Calibration(name="w", gemm_tile_m=tm, gemm_tile_n=tn).wave_factor(tokens, widths, sms) - 1e-12


def test_wave_factor_is_one_without_tile_width_or_sm_count():
    cal = Calibration(name="w", gemm_tile_m=64, gemm_tile_n=128)
    assert cal.wave_factor(128, ((4096, 4096),), 0) == 1.0
    assert Calibration(name="w", gemm_tile_m=64).wave_factor(128, ((4096, 4096),), 132) == 1.0
    # 7B out-projection at 128 tokens on an H100: 2 x 32 tiles on 132 SMs, one wave, 64/132 busy
    assert cal.wave_factor(128, ((4096, 4096),), 132) == pytest.approx(64 / 132)


def test_sm_counts_in_the_catalog_and_of_a_lite_gpu():
    assert hardware.gpu("h100-sxm").sm_count == 132 and hardware.gpu("a100-sxm-80gb").sm_count == 108
    lite = hardware.lite_gpu(hardware.gpu("h100-sxm"), fraction=0.25)
    assert lite.sm_count == 33
    # fewer SMs, less wave loss: the same small GEMM keeps a larger share of a Lite-GPU busy
    cal = Calibration(name="w", gemm_tile_m=64, gemm_tile_n=128)
    assert cal.wave_factor(128, ((4096, 4096),), lite.sm_count) > cal.wave_factor(128, ((4096, 4096),), 132)


@pytest.mark.parametrize("field,value", [("fp8_scope", "some"), ("gemm_tile_n", -1), ("gemm_tile_n", 2.5),
                                         ("gemm_split_k", 1)])
def test_bad_calibration_fields_are_named(field, value):
    with pytest.raises(SpecError, match=field):
        Calibration(name="bad", **{field: value})


# ---- NVLS: all-reduce reduced in the NVLink switch ---------------------------------------------------

def test_nvls_all_reduce_on_a_sharp_nvswitch():
    from ocsnet.evaluation.timing import nvls_link_Bps
    cal = calibration("measured")
    h100 = dgx_cluster(2)
    assert nvls_link_Bps(h100, range(8)) == pytest.approx(450e9)
    assert nvls_link_Bps(h100, range(4, 12)) == 0.0                 # two NVSwitch domains: no NVLS
    a100 = dgx_cluster(1, gpu="a100-sxm-80gb", nvswitch="nvswitch2")
    assert nvls_link_Bps(a100, range(8)) == 0.0                      # second-generation NVSwitch: no SHARP
    S = 4e9
    for n in (5, 6, 8):
        t = time_collective(h100, "all-reduce", S, range(n), calibration=cal)
        # closed form: each GPU sends S up and receives S down at the NVLS fraction of NVLink
        assert t == pytest.approx(cal.nvls_latency_s + S / (450e9 * cal.nvls_algbw_fraction), rel=1e-9)
        ring = time_collective(h100, "all-reduce", S, range(n), algorithm="ring", calibration=cal)
        assert ring > t                                               # NCCL_ALGO=Ring: no NVLS
    # small messages: the ring's latency wins, NVLS is not taken
    assert time_collective(h100, "all-reduce", 8.0, range(8), calibration=cal) == \
        time_collective(h100, "all-reduce", 8.0, range(8), algorithm="ring", calibration=cal)
    # A100: the same as the ring
    assert time_collective(a100, "all-reduce", S, range(8), calibration=cal) == \
        time_collective(a100, "all-reduce", S, range(8), algorithm="ring", calibration=cal)
    # the roofline has no NVLS
    assert ROOFLINE.nvls_time(S, 450e9) == math.inf


@pytest.mark.parametrize("field,value", [("nvls_algbw_fraction", 1.5), ("nvls_algbw_fraction", -0.1),
                                         ("nvls_latency_s", -1.0)])
def test_bad_nvls_fields_are_named(field, value):
    with pytest.raises(SpecError, match=field):
        Calibration(name="bad", **{field: value})


@settings(max_examples=60, deadline=None)
@given(wire=st.floats(1e-9, 1.0), lat=st.floats(0.0, 1e-3), steps=st.integers(1, 200), net=st.booleans())
def test_route_latency_is_not_slowed_by_protocols(wire, lat, steps, net):
    cal = calibration("measured")
    t = cal.collective_time(wire + lat, steps, net, latency_s=lat)
    assert t <= cal.collective_time(wire + lat, steps, net) + 1e-15      # never slower than scaling all of it
    assert t >= cal.collective_time(wire, steps, net) - 1e-15            # never faster than no route latency
    assert t >= wire + lat - 1e-15                                        # never faster than the wire and the hops
