"""Serving: SLO presets, requests and traces, the simulator against its plain loop and queueing theory,
goodput, the phase split, the study section's inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ocsnet import serving as sv
from ocsnet.errors import OcsnetError, SpecError
from ocsnet.serving.engine import run_replica
from ocsnet.serving.reference import run_replica_plain


def toy_model(capacity=200_000, pp=1):
    """An iteration model with hand-made tables (no evaluation): weight-bound then compute-bound."""
    return sv.IterationModel(
        base=sv.PiecewiseLinear([0, 1, 64, 512, 8192], [0.01, 0.01, 0.011, 0.02, 0.2]),
        attn_prefill=sv.PiecewiseLinear([0, 1e3, 1e6, 1e8], [0, 1e-5, 2e-3, 0.3]),
        attn_decode=sv.PiecewiseLinear([0, 1e3, 1e5, 1e7], [0, 2e-5, 1e-3, 0.09]),
        capacity_tokens=capacity, kv_bytes_per_token=1000.0, gpus=4, h100_equivalents=0.25, watts=2000.0,
        cost=1.2, pp=pp)


# ---- SLOs ---------------------------------------------------------------------------------

def test_presets_are_the_mlperf_server_numbers():
    want = {"llama2-70b": (2000, 200), "llama2-70b-interactive": (450, 40), "llama3.1-405b": (6000, 175),
            "llama3.1-405b-interactive": (4500, 80)}
    p = sv.presets()
    for name, (ttft, tpot) in want.items():
        s = p[name]
        assert (round(s.ttft_s * 1e3), round(s.tpot_s * 1e3), s.percentile) == (ttft, tpot, 99.0)
        assert "mlperf.conf" in s.source["ttft_ms"] and "mlperf.conf" in s.source["percentile"]
    assert sv.preset_for_model("llama3-405b").name == "llama3.1-405b"


@pytest.mark.parametrize("spec, field", [({"ttft_ms": 100, "tpot_ms": 10}, "percentile"),
                                         ({"ttft_ms": -1, "tpot_ms": 10, "percentile": 99}, "ttft_ms"),
                                         ({"ttft_ms": 1, "tpot_ms": 10, "percentile": 120}, "percentile"),
                                         ({"ttft_ms": 1, "tpot": 10, "percentile": 99}, "tpot"),
                                         ("no-such-preset", "preset")])
def test_bad_slo_names_the_field(spec, field):
    with pytest.raises(SpecError, match=field):
        sv.slo(spec)


def test_slo_percentile_ignores_one_token_requests():
    s = sv.slo({"ttft_ms": 100, "tpot_ms": 10, "percentile": 50})
    assert s.met(np.array([0.05, 0.05]), np.array([0.005, np.nan]))
    assert not s.met(np.array([0.05, 0.2, 0.3]), np.array([0.005, 0.005, 0.005]))


# ---- requests and traces ------------------------------------------------------------------

def test_trace_round_trip(tmp_path):
    r = sv.generate(50, 5.0, prompt={"mean": 300, "std": 100, "min": 1}, output=20, seed=3)
    sv.write_trace(r, tmp_path / "t.csv")
    back = sv.read_trace(tmp_path / "t.csv")
    assert np.allclose(back.arrival_s, r.arrival_s - r.arrival_s[0], atol=1e-6)
    assert (back.prompt == r.prompt).all() and (back.output == r.output).all()


def test_azure_datetime_timestamps(tmp_path):
    p = tmp_path / "azure.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
                 "2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:15:51.2224670,879,55\n")
    r = sv.read_trace(p)
    assert np.allclose(r.arrival_s, [0.0, 4.314579, 4.541877])
    assert r.prompt.tolist() == [374, 396, 879] and r.output.tolist() == [44, 109, 55]


@pytest.mark.parametrize("text, msg", [
    ("TIMESTAMP,ContextTokens\n0,1\n", "missing column 'GeneratedTokens'"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n1,-3,5\n", "line 3: ContextTokens '-3'"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n2,10,5\n1,10,5\n", "line 4: TIMESTAMP"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,x\n", "line 2: GeneratedTokens 'x'"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "no requests"),
])
def test_bad_traces_name_the_row(tmp_path, text, msg):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(SpecError, match=msg):
        sv.read_trace(p)


def test_synthetic_workload_follows_its_published_statistics():
    w = sv.workloads()["azure-conv-2023"]
    r = sv.synthetic("azure-conv-2023", n=40_000, seed=0)
    assert r.prompt.min() >= w["prompt_min_tokens"] and r.prompt.max() <= w["prompt_max_tokens"]
    assert r.output.min() >= w["output_min_tokens"] and r.output.max() <= w["output_max_tokens"]
    # clipping moves the mean a little: within 5% of the published mean
    assert abs(r.prompt.mean() / w["prompt_mean_tokens"] - 1) < 0.05
    assert abs(r.output.mean() / w["output_mean_tokens"] - 1) < 0.05
    assert abs(r.rate / (w["requests"] / w["span_s"]) - 1) < 0.03
    assert all(isinstance(v, str) and v for v in w["source"].values())


def test_gamma_arrivals_have_the_asked_variability():
    r = sv.generate(50_000, 10.0, arrival="gamma", cv=2.0, seed=1)
    gaps = np.diff(r.arrival_s)
    assert abs(gaps.mean() * 10 - 1) < 0.03 and abs(gaps.std() / gaps.mean() - 2.0) < 0.1


# ---- the simulator ------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.sampled_from([0, 64, 512]), rate=st.floats(1.0, 40.0),
       max_batch=st.integers(1, 48), cap=st.integers(5_000, 80_000), prefilled=st.booleans())
def test_event_jumps_equal_the_plain_loop(seed, chunk, rate, max_batch, cap, prefilled):
    r = sv.generate(120, rate, prompt={"mean": 600, "std": 500, "min": 1, "max": 4000},
                    output={"mean": 60, "std": 80, "min": 1, "max": 800}, seed=seed)
    kw = dict(capacity_tokens=cap, max_batch=max_batch, max_tokens=2048, chunk=chunk, prefilled=prefilled)
    m = toy_model()
    a = run_replica(r.arrival_s, r.prompt, r.output, m, **kw)
    b = run_replica_plain(r.arrival_s, r.prompt, r.output, m, **kw)
    for x, y in zip(a, b):
        assert np.allclose(x, y, rtol=1e-9, atol=1e-9)


def test_times_are_causal_and_tokens_counted():
    r = sv.generate(400, 20.0, prompt={"mean": 500, "std": 300, "min": 1}, output={"mean": 50, "std": 40, "min": 1},
                    seed=2)
    res = sv.simulate(sv.Deployment(toy_model(), replicas=3, chunk=256), r)
    assert (res.admit_s >= res.arrival_s).all() and (res.first_s > res.admit_s).all()
    assert (res.finish_s >= res.first_s).all()
    one = r.output == 1
    assert (res.finish_s[one] == res.first_s[one]).all()
    # a single request alone: TTFT is its prefill; each later token one decode iteration
    m = toy_model()
    solo = sv.simulate(sv.Deployment(m), sv.Requests([0.0], [1000], [3]))
    it = [m.time_s(1, (), 1000 + g) for g in (1, 2)]
    assert math.isclose(solo.ttft_s[0], m.prefill_s(1000))
    assert math.isclose(solo.e2e_s[0], m.prefill_s(1000) + sum(it))


def test_md1_waiting_time_matches_pollaczek_khinchine():
    """No batching, fixed lengths, Poisson arrivals: an M/D/1 queue.  W = rho D / (2 mu (1 - rho))."""
    m = toy_model()
    P, O = 500, 20
    D = m.prefill_s(P) + sum(m.time_s(1, (), P + g) for g in range(1, O))
    for rho in (0.5, 0.8):
        lam = rho / D
        batches = []
        for seed in range(8):
            r = sv.generate(6000, lam, prompt=P, output=O, seed=seed)
            res = sv.simulate(sv.Deployment(m, max_batch=1), r)
            w = res.wait_s[500:]                       # drop the warm-up from an empty system
            batches += [b.mean() for b in np.array_split(w, 5)]
        mean, se = float(np.mean(batches)), float(np.std(batches, ddof=1) / math.sqrt(len(batches)))
        pk = lam * D * D / (2 * (1 - rho))
        assert abs(mean - pk) <= 3 * se, (rho, mean, pk, se)
        assert se < 0.15 * pk                          # the interval is tight enough to mean something


def test_a_request_that_cannot_fit_is_named():
    with pytest.raises(SpecError, match="request 1 needs 3000 tokens of KV cache"):
        sv.simulate(sv.Deployment(toy_model(capacity=2000)), sv.Requests([0, 1], [100, 2900], [10, 100]))


@pytest.mark.parametrize("field, value", [("replicas", 0), ("max_batch", 0), ("chunk", -1), ("max_tokens", 1.5)])
def test_bad_deployment_names_the_field(field, value):
    with pytest.raises(SpecError, match=field):
        sv.Deployment(toy_model(), **{field: value})


def test_pipeline_counts_as_virtual_replicas():
    d = sv.Deployment(toy_model(capacity=100_000, pp=4), replicas=2)
    assert d.slots == 8 and d.slot_capacity_tokens == 25_000


# ---- goodput --------------------------------------------------------------------------------

def test_goodput_is_the_edge_of_the_slo():
    m = toy_model()
    r = sv.generate(600, 1.0, prompt={"mean": 800, "std": 400, "min": 1, "max": 4000},
                    output={"mean": 80, "std": 60, "min": 1, "max": 500}, seed=4)
    s = sv.slo({"ttft_ms": 800, "tpot_ms": 60, "percentile": 90})
    d = sv.Deployment(m, replicas=2)
    g = sv.goodput(d, r, s, rtol=0.01)["goodput_per_s"]
    assert g > 0
    ok = lambda rate: s.met(*(lambda x: (x.ttft_s, x.tpot_s))(sv.simulate(d, r.scaled(rate))))  # noqa: E731
    assert ok(g) and not ok(1.05 * g)
    # more replicas sustain more
    assert sv.goodput(sv.Deployment(m, replicas=4), r, s)["goodput_per_s"] > 1.5 * g
    n = sv.size_replicas(sv.Deployment(m), r, s, 1.5 * g)
    assert ok_n(m, r, s, 1.5 * g, n) and not ok_n(m, r, s, 1.5 * g, n - 1)


def ok_n(m, r, s, rate, n):
    if n < 1:
        return False
    res = sv.simulate(sv.Deployment(m, replicas=n), r.scaled(rate))
    return s.met(res.ttft_s, res.tpot_s)


# ---- phase split ----------------------------------------------------------------------------

def test_kv_bytes_per_token_is_the_formula():
    from ocsnet.workload.models import model
    m = model("llama3-70b")
    assert sv.kv_bytes_per_token("llama3-70b") == 2 * m.layers * m.kv_heads * m.head_dim * 2


def test_split_request_path():
    m = toy_model()
    tr = sv.KVTransfer(1e-3, 1e9, 1000.0, layers=10, overlap=False)
    sp = sv.SplitDeployment(sv.Deployment(m), sv.Deployment(m), tr)
    res = sv.simulate_split(sp, sv.Requests([0.0], [1000], [3]))
    x = 1e-3 + 1000 * 1000 / 1e9
    assert math.isclose(res.ttft_s[0], m.prefill_s(1000))
    assert math.isclose(res.e2e_s[0], m.prefill_s(1000) + x + sum(m.time_s(1, (), 1000 + g) for g in (1, 2)))
    # layer-wise overlap hides all but one layer's share when the prefill is long enough
    tro = sv.KVTransfer(1e-3, 1e9, 1000.0, layers=10, overlap=True)
    assert math.isclose(float(tro.exposed_s(1000, 10.0)), x / 10)


def test_tabulated_replica_and_transfer_on_a_fabric():
    from ocsnet import topology
    from ocsnet.workload import ParallelPlan

    f = topology.fat_tree(4, gpu="h100-sxm")
    m = sv.tabulate("llama3-70b", ParallelPlan(tp=4), f, gpu="h100-sxm", max_tokens=1024,
                    fidelities=("alpha-beta",), fidelity="alpha-beta")
    ys = m.base.ys
    assert all(b >= a - 1e-12 for a, b in zip(ys, ys[1:]))          # more tokens never faster
    assert m.attn_decode(2e5) > m.attn_decode(1e5) > 0
    # capacity: HBM left after weights, in KV tokens of the replica
    per_gpu_kv = m.kv_bytes_per_token / 4
    assert 0 < m.capacity_tokens * per_gpu_kv < 80e9
    tr = sv.kv_transfer(f, f, m, m, 80)
    assert tr.bandwidth_Bps > 0 and tr.latency_s >= 0
    # one replica's 4 GPUs send to 4 others: at most 4 host links' worth of bandwidth
    assert tr.bandwidth_Bps <= 4 * max(f.capacity_Bps) * (1 + 1e-9)
    with pytest.raises(OcsnetError):
        sv.tabulate("llama3-405b", ParallelPlan(tp=1), f, gpu="h100-sxm", max_tokens=64)


def test_every_preset_of_a_model():
    assert [s.name for s in sv.presets_for_model("llama3-70b")] == ["llama2-70b", "llama2-70b-interactive"]
    assert sv.preset_for_model("llama3-70b").name == "llama2-70b"
    assert sv.presets_for_model("gpt3-175b") == []


def test_an_slo_no_rate_meets_has_zero_goodput():
    r = sv.generate(200, 1.0, prompt=4000, output=10, seed=0)
    g = sv.goodput(sv.Deployment(toy_model()), r, sv.slo({"ttft_ms": 1, "tpot_ms": 100, "percentile": 99}))
    assert g["goodput_per_s"] == 0.0 and g["result"] is None
    assert float(np.percentile(g["floor"].ttft_s, 99)) > 1e-3
