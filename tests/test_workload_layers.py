"""Per-layer ops: FLOPs and bytes against closed forms and hand counts, roofline, memory fit, collectives."""

import pytest

from ocsnet import hardware
from ocsnet.errors import WorkloadError
from ocsnet.workload import ParallelPlan, model
from ocsnet.workload.layers import Collective, layer_profile, roofline
from ocsnet.workload.models import _build
from ocsnet.workload.step import memory_fit, step_profile


def op(lp, name):
    return next(o for o in lp.ops if o.op == name)


def tiny():
    """h=8, 2 query heads of 4, 1 KV head, swiglu FFN 16, 2 layers, vocab 10."""
    src = {k: "test" for k in ("layers", "hidden_size", "ffn_size", "attention_heads", "kv_heads",
                               "head_dim", "vocab_size", "max_context_tokens", "published_params")}
    return _build("tiny", {"description": "t", "layers": 2, "hidden_size": 8, "ffn_size": 16,
                           "activation": "swiglu", "attention_heads": 2, "kv_heads": 1, "head_dim": 4,
                           "vocab_size": 10, "max_context_tokens": 32, "tied_embeddings": False,
                           "position_embedding": "rope", "norm": "rmsnorm", "linear_bias": False,
                           "published_params": 1.0, "source": src})


def test_tiny_model_hand_counts_prefill_tp2():
    m = tiny()
    lp = layer_profile(m, ParallelPlan(tp=2), "prefill", batch=2, seq_len=3, gpu="h100-sxm")
    # T = 6 tokens; per GPU: 1 query head (4 wide), the KV head replicated (4 wide), FFN 8 wide.
    assert op(lp, "qkv").flops == 2 * 6 * 8 * (4 + 4 + 4)
    assert op(lp, "qkv").hbm_bytes == 2 * (8 * 12 + 6 * 8 + 6 * 12)
    # causal pairs 2 * 3*4/2 = 12; 4 FLOPs per pair per head dim; read Q, K, V; write O, K, V cache
    assert op(lp, "attention").flops == 4 * 1 * 4 * 12
    assert op(lp, "attention").hbm_bytes == 2 * (6 * 4 + 2 * 6 * 4 + 6 * 4 + 2 * 6 * 4)
    assert op(lp, "out-proj").flops == 2 * 6 * 4 * 8
    assert op(lp, "out-proj").hbm_bytes == 2 * (4 * 8 + 6 * 4 + 6 * 8)
    assert op(lp, "mlp").flops == 2 * 6 * (3 * 8 * 8)
    assert op(lp, "mlp").hbm_bytes == 2 * (3 * 8 * 8 + 6 * 8 * 2 + 6 * 8 * 2)
    assert op(lp, "attn-norm").flops == (1 + 4) * 6 * 8 and op(lp, "attn-norm").hbm_bytes == 2 * 4 * 6 * 8
    ar = lp.collectives
    assert [(c.kind, c.group, c.group_size, c.nbytes, c.after) for c in ar] == [
        ("all-reduce", "tp", 2, 6 * 8 * 2, "out-proj"), ("all-reduce", "tp", 2, 6 * 8 * 2, "mlp")]


@pytest.mark.parametrize("name", ["llama3-70b", "llama3-405b", "gpt3-175b"])
def test_decode_flops_are_two_per_parameter_per_token(name):
    m = model(name)
    b, ctx = 16, 128
    lp = layer_profile(m, ParallelPlan(), "decode", batch=b, context=ctx)
    gemm = sum(op(lp, n).flops for n in ("qkv", "out-proj", "mlp"))
    bias = (m.q_dim + 2 * m.kv_dim + m.hidden_size) + (m.mlp_matrices - 1) * m.ffn_size + m.hidden_size
    assert gemm == pytest.approx(2 * b * (m.attention_params() + m.mlp_params() - (bias if m.linear_bias else 0)))
    sp = step_profile(m, ParallelPlan(), "decode", batch=b, context=ctx, require_fit=False)
    total = m.layers * lp.flops + sp.lm_head.flops
    assert total == pytest.approx(2 * m.params() * b, rel=0.03)            # attention small at ctx 128
    att = m.layers * op(lp, "attention").flops
    assert att == 4 * m.layers * m.q_dim * b * ctx


def test_prefill_flops_params_times_tokens_plus_causal_attention():
    m = model("llama3-70b")
    b, S = 2, 2048
    lp = layer_profile(m, ParallelPlan(), "prefill", batch=b, seq_len=S)
    non_attn = m.layers * (lp.flops - op(lp, "attention").flops)
    assert non_attn == pytest.approx(2 * m.layer_params() * m.layers * b * S, rel=0.001)
    full_square = 4 * m.q_dim * b * S * S
    assert op(lp, "attention").flops == pytest.approx(full_square / 2, rel=1e-3)   # causal: half


def test_gqa_kv_cache_bytes_closed_form():
    m = model("llama3-70b")
    b, ctx = 4, 1000
    fit = memory_fit(m, ParallelPlan(), "decode", batch=b, context=ctx)
    assert fit.kv_cache_bytes == 2 * 80 * 8 * 128 * ctx * b * 2
    assert memory_fit(m, ParallelPlan(tp=8), "decode", batch=b, context=ctx).kv_cache_bytes == fit.kv_cache_bytes / 8
    # tp = 16 > 8 KV heads: each GPU keeps one (replicated) KV head
    big = model("llama3-405b")
    f16 = memory_fit(big, ParallelPlan(tp=16), "decode", batch=b, context=ctx, gpu="h100-sxm")
    assert f16.kv_cache_bytes == 2 * 126 * 1 * 128 * ctx * b * 2
    # fp8 cache halves it
    assert memory_fit(m, ParallelPlan(), "decode", batch=b, context=ctx, dtype_bytes=1).kv_cache_bytes == fit.kv_cache_bytes / 2


def test_decode_attention_reads_each_kv_head_once_per_group():
    m = model("llama3-70b")
    lp = layer_profile(m, ParallelPlan(tp=8), "decode", batch=3, context=500)
    kv_read = 2 * 1 * 128 * 500 * 3 * 2                                     # one KV head per GPU
    q_io = 2 * 3 * 8 * 128 * 2                                               # read q, write o (8 heads)
    new_kv = 2 * 128 * 3 * 2
    assert op(lp, "attention").hbm_bytes == kv_read + q_io + new_kv


def test_roofline_by_hand_and_bounds_on_h100():
    h = hardware.gpu("h100-sxm")
    r = roofline(1e12, 1e9, h)
    tc = 1e12 / (h.bf16_flops * h.compute_efficiency)
    tm = 1e9 / (h.hbm_Bps * h.memory_efficiency)
    assert r.time_s == max(tc, tm) and r.bound == ("compute" if tc >= tm else "memory")
    assert roofline(0, 0, h).bound == "-"
    pre = layer_profile("llama3-70b", ParallelPlan(tp=8), "prefill", batch=8, seq_len=4096, gpu=h)
    dec = layer_profile("llama3-70b", ParallelPlan(tp=8), "decode", batch=1, context=4096, gpu=h)
    for name in ("qkv", "out-proj", "mlp", "attention"):
        assert op(pre, name).bound == "compute"
        assert op(dec, name).bound == "memory"


def test_lite_gpus_timed_by_the_same_code():
    # A Lite-GPU is a quarter H100: tp=4 on Lite-GPUs reads a quarter of the weights per GPU
    # at a quarter of the bandwidth, so a weight-bound decode MLP takes about as long.
    m = model("llama3-70b")
    h = layer_profile(m, ParallelPlan(tp=2), "decode", batch=1, context=128, gpu="h100-sxm")
    lite = layer_profile(m, ParallelPlan(tp=8), "decode", batch=1, context=128, gpu="lite-base")
    assert op(lite, "mlp").time_s == pytest.approx(op(h, "mlp").time_s, rel=0.01)
    fast = layer_profile(m, ParallelPlan(tp=8), "prefill", batch=4, seq_len=2048, gpu="lite-overclock")
    base = layer_profile(m, ParallelPlan(tp=8), "prefill", batch=4, seq_len=2048, gpu="lite-base")
    clock = hardware.gpu("lite-overclock").clock_factor                              # the silicon model's
    assert op(base, "mlp").time_s / op(fast, "mlp").time_s == pytest.approx(clock)  # compute-bound: clock


def test_sequence_parallel_collectives_and_norm_sharding():
    lp = layer_profile("llama3-70b", ParallelPlan(tp=8, sp=True), "prefill", batch=1, seq_len=1024)
    kinds = [(c.kind, c.after) for c in lp.collectives]
    assert kinds == [("all-gather", "attn-norm"), ("reduce-scatter", "out-proj"),
                     ("all-gather", "mlp-norm"), ("reduce-scatter", "mlp")]
    assert all(c.nbytes == 1024 * 8192 * 2 for c in lp.collectives)       # full buffer (nccl-tests)
    plain = layer_profile("llama3-70b", ParallelPlan(tp=8), "prefill", batch=1, seq_len=1024)
    assert op(lp, "attn-norm").flops * 8 == op(plain, "attn-norm").flops


def test_training_backward_twice_forward_and_four_all_reduces():
    lp = layer_profile("llama3-70b", ParallelPlan(tp=4), "train", batch=1, seq_len=512)
    fwd = sum(o.flops for o in lp.ops if not o.op.startswith("bwd:"))
    bwd = sum(o.flops for o in lp.ops if o.op.startswith("bwd:"))
    assert bwd == pytest.approx(2 * fwd)
    assert [(c.kind, c.after) for c in lp.collectives] == [
        ("all-reduce", "out-proj"), ("all-reduce", "mlp"), ("all-reduce", "bwd:mlp"), ("all-reduce", "bwd:qkv")]
    assert lp.n_forward == 8
    sp = layer_profile("llama3-70b", ParallelPlan(tp=4, sp=True), "train", batch=1, seq_len=512)
    assert len(sp.collectives) == 8
    assert [c.kind for c in sp.backward_items if isinstance(c, Collective)] == [
        "all-gather", "reduce-scatter", "all-gather", "reduce-scatter"]


def test_moe_experts_and_all_to_all():
    m = model("mixtral-8x22b")
    h, f = m.hidden_size, m.ffn_size
    # one token, one GPU: exactly 2 of 8 experts are read
    lp = layer_profile(m, ParallelPlan(), "decode", batch=1, context=16)
    assert op(lp, "experts").flops == 2 * 2 * 3 * h * f
    assert op(lp, "experts").hbm_bytes == pytest.approx(2 * (2 * 3 * h * f + 2 * 2 * (h + f)))
    assert lp.collectives == []
    # many tokens: every expert is read
    big = layer_profile(m, ParallelPlan(), "prefill", batch=4, seq_len=1024)
    assert op(big, "experts").hbm_bytes >= 2 * 8 * 3 * h * f
    ep = layer_profile(m, ParallelPlan(tp=2, dp=4, ep=4), "prefill", batch=1, seq_len=256)
    a2a = [c for c in ep.collectives if c.kind == "all-to-all"]
    assert [(c.group, c.group_size, c.after, c.nbytes) for c in a2a] == [
        ("ep", 4, "router", 256 * 2 * h * 2), ("ep", 4, "experts", 256 * 2 * h * 2)]


def test_memory_shortfall_message_and_errors():
    fit = memory_fit("llama3-405b", ParallelPlan(tp=8), "decode", batch=64, context=4096, gpu="lite-base")
    assert not fit.fits and fit.shortfall_bytes == pytest.approx(fit.total_bytes - 20e9)
    assert fit.message().startswith(f"needs {fit.total_bytes / 1e9:.3g} GB per GPU, has 20 GB")
    with pytest.raises(WorkloadError, match=r"memory: .*needs .* GB per GPU, has 20 GB"):
        step_profile("llama3-405b", ParallelPlan(tp=8), "decode", batch=64, context=4096, gpu="lite-base")
    ok = step_profile("llama3-405b", ParallelPlan(tp=8), "decode", batch=64, context=4096, gpu="lite-base",
                      require_fit=False)
    assert not ok.memory.fits


def test_training_memory_terms():
    m = model("llama3-70b")
    plan = ParallelPlan(tp=8, pp=2, dp=4)
    a = memory_fit(m, plan, "train", batch=1, seq_len=2048, micro_batches=8)
    b = memory_fit(m, plan, "train", batch=1, seq_len=2048, micro_batches=8, grad_sync="reduce-scatter")
    assert a.optimizer_bytes == pytest.approx(12 * a.weights_bytes / 2)      # fp32 master + Adam m, v
    assert b.optimizer_bytes == pytest.approx(a.optimizer_bytes / 4)         # distributed over dp
    assert a.gradient_bytes == a.weights_bytes and a.kv_cache_bytes == 0
    one = memory_fit(m, plan, "train", batch=1, seq_len=2048, micro_batches=1)
    assert a.activation_bytes == pytest.approx(2 * one.activation_bytes)     # min(pp, micro-batches) in flight


@pytest.mark.parametrize("kw,match", [
    (dict(mode="serve", batch=1, context=1), "mode: 'serve'"),
    (dict(mode="decode", batch=1), "context: decode needs"),
    (dict(mode="prefill", batch=1), "seq_len: prefill needs"),
    (dict(mode="decode", batch=0, context=4), "batch: 0"),
    (dict(mode="decode", batch=1, context=10**6), r"context: 1000000 is out of range for llama3-70b, allowed integers \[1, 131072\]"),
    (dict(mode="decode", batch=1, context=8, algorithms={"gossip": "ring"}), "algorithms: 'gossip'"),
])
def test_input_errors(kw, match):
    with pytest.raises(WorkloadError, match=match):
        layer_profile("llama3-70b", ParallelPlan(), **kw)


def test_table_has_units_and_totals():
    lp = layer_profile("llama3-70b", ParallelPlan(tp=8), "decode", batch=8, context=4096)
    assert lp.HEADER == ("op", "GFLOPs", "hbm_MB", "time_us", "bound", "collective", "group", "group_size",
                         "coll_MB", "algorithm")
    rows = lp.table()
    assert rows[-1][0] == "total" and rows[-1][1] == pytest.approx(lp.flops / 1e9)
    assert rows[3][5] == "all-reduce" and rows[3][0] == "out-proj"
    assert lp.time_s == pytest.approx(sum(o.time_s for o in lp.ops))


def test_tiny_model_inference_memory_by_hand():
    m = tiny()
    fit = memory_fit(m, ParallelPlan(), "decode", batch=2, context=4, gpu="h100-sxm")
    assert fit.weights_bytes == 2 * m.params()
    assert fit.kv_cache_bytes == 2 * 2 * 4 * 4 * 2 * 2           # K and V, 2 layers, 1 head of 4, ctx 4, batch 2
    assert fit.activation_bytes == 2 * (2 * (2 * 8 + 3 * 16) + 2 * 10)
    two = memory_fit(m, ParallelPlan(pp=2), "decode", batch=2, context=4, gpu="h100-sxm")
    # fullest stage is the last: one layer, the LM head (10 x 8) and the final norm (8)
    assert two.weights_bytes == 2 * (m.layer_params() + 10 * 8 + 8) and two.stage == 1
