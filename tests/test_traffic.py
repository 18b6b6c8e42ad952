"""Trace container: validation, totals, periodicity, placement, save/load."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from ocsnet.errors import WorkloadError
from ocsnet.traffic import Trace, place_steps


def ring(n, b=1.0):
    return sp.csr_matrix(np.roll(np.eye(n), 1, axis=1) * b)


def test_basic_fields_and_totals():
    m = ring(4, 1e6)
    t = Trace([m, m, 2 * m.toarray()], [1e-3, 0, 0], labels=["a", "b", "c"], layer=[0, 0, 1],
              meta={"model": "x", "plan": (2, 1)})
    assert t.n_gpus == 4 and len(t) == t.n_phases == 3
    assert t.total_bytes() == 16e6
    assert np.array_equal(t.phase_bytes(), [4e6, 4e6, 8e6])
    assert t.meta["plan"] == [2, 1]            # JSON-normal form
    assert t.demand[0] is t.demand[1]          # a shared object stays shared
    assert np.array_equal(t.dense(2), 2 * np.roll(np.eye(4), 1, axis=1) * 1e6)


@pytest.mark.parametrize("demand,gap,match", [
    ([np.ones((3, 4))], [0.0], r"demand\[0\].*square"),
    ([ring(3), ring(4)], [0.0, 0.0], r"demand\[1\]: shape \(4, 4\) does not match \(N, N\) = \(3, 3\)"),
    ([ring(3), -ring(3)], [0.0, 0.0], r"demand\[1\].*negative"),
    ([sp.csr_matrix(np.eye(3))], [0.0], r"demand\[0\]\[0, 0\]: 1.0 is on the diagonal"),
    ([ring(3) * np.inf], [0.0], r"demand\[0\].*finite"),
    ([ring(3), ring(3)], [0.0, -1.0], r"gap_s\[1\]"),
    ([ring(3)], [0.0, 1.0], r"gap_s: has 2"),
    ([ring(3)], [np.nan], r"gap_s\[0\]"),
])
def test_validation_names_field_and_phase(demand, gap, match):
    with pytest.raises(WorkloadError, match=match):
        Trace(demand, gap)


def test_bad_labels_layer_period_meta():
    with pytest.raises(WorkloadError, match="labels"):
        Trace([ring(3)], [0], labels=["a", "b"])
    with pytest.raises(WorkloadError, match="layer"):
        Trace([ring(3)], [0], layer=[0, 1])
    with pytest.raises(WorkloadError, match="period: phase 1 differs"):
        Trace([ring(3), 2 * ring(3)], [0, 0], period=(0, 1, 2))
    with pytest.raises(WorkloadError, match="meta"):
        Trace([ring(3)], [0], meta={"f": object()})
    with pytest.raises(WorkloadError, match="n_gpus"):
        Trace([], [])
    assert Trace([], [], n_gpus=5).n_gpus == 5


def brute_period(keys):
    """Best (start, length, repeats) by trying every block: most coverage, then shortest."""
    P = len(keys)
    best, cover = None, 0
    for k in range(1, P // 2 + 1):
        for s in range(P):
            r = 1
            while s + (r + 1) * k <= P and keys[s + r * k: s + (r + 1) * k] == keys[s: s + k]:
                r += 1
            if r >= 2 and r * k > cover:
                best, cover = (s, k, r), r * k
    return best, cover


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=0, max_size=14),
       st.integers(1, 4), st.integers(0, 5), st.lists(st.integers(0, 2), max_size=4))
def test_detect_period_matches_brute_force(block, reps, pre_len, suffix):
    pre = [3 + (i % 2) for i in range(pre_len)]
    seq = pre + block * reps + suffix
    if not seq:
        return
    mats = [ring(3, 1.0), ring(3, 2.0), sp.csr_matrix(np.roll(np.eye(3), 2, axis=1)),
            ring(3, 5.0), ring(3, 6.0)]
    t = Trace([mats[v] for v in seq], np.zeros(len(seq)))
    got = t.detect_period()
    want, cover = brute_period(seq)
    if want is None:
        assert got is None
    else:
        assert got[1] * got[2] == cover
        assert got[1] == min(k for k in range(1, len(seq) // 2 + 1)
                             if brute_cover_for_length(seq, k) == cover)
        s, k, r = got
        assert all(seq[s + i * k: s + (i + 1) * k] == seq[s: s + k] for i in range(r))


def brute_cover_for_length(keys, k):
    best = 0
    for s in range(len(keys)):
        r = 1
        while s + (r + 1) * k <= len(keys) and keys[s + r * k: s + (r + 1) * k] == keys[s: s + k]:
            r += 1
        if r >= 2:
            best = max(best, r * k)
    return best


def test_period_compares_gaps_and_values_not_objects():
    a, b = ring(4, 1.0), ring(4, 1.0)          # equal content, different objects
    t = Trace([a, b, a, b], [1.0, 0.0, 1.0, 0.0])
    assert t.detect_period() == (0, 2, 2)
    t2 = Trace([a, b, a, b], [1.0, 0.0, 1.0, 0.5])
    assert t2.detect_period() is None or t2.detect_period()[1] * t2.detect_period()[2] < 4


def test_prefix_period_suffix():
    x, y, z = ring(3, 1), ring(3, 2), ring(3, 7)
    t = Trace([z, x, y, x, y, x, y, z], [5, 0, 1, 0, 1, 0, 1, 0], labels=list("abcdefgh"))
    assert t.detect_period() == (1, 2, 3)
    assert t.prefix().labels == ["a"]
    one = t.one_period()
    assert one.labels == ["b", "c"] and one.meta["repeats"] == 3
    assert t.suffix().labels == ["h"]
    # Prefix + period * repeats + suffix reproduces the totals.
    assert (t.prefix().total_bytes() + t.repeats * one.total_bytes() + t.suffix().total_bytes()
            == t.total_bytes())
    assert t.prefix().total_gap_s() + 3 * one.total_gap_s() + t.suffix().total_gap_s() == t.total_gap_s()


def test_place_steps_vectorized_equals_loop():
    rng = np.random.default_rng(0)
    p, G, N = 4, 3, 16
    steps = [sp.csr_matrix(np.where(np.eye(p), 0, rng.integers(0, 3, (p, p)))) for _ in range(3)]
    steps.append(steps[0].copy())
    groups = rng.permutation(N)[: G * p].reshape(G, p)
    got = place_steps(steps, groups, N)
    for s, m in enumerate(steps):
        want = np.zeros((N, N))
        d = m.toarray()
        for g in range(G):
            for i in range(p):
                for j in range(p):
                    want[groups[g, i], groups[g, j]] += d[i, j]
        assert np.array_equal(got[s].toarray(), want)
    assert got[3] is got[0]                    # equal steps share one object
    with pytest.raises(WorkloadError, match="twice"):
        place_steps(steps, [[0, 1, 2, 3], [3, 4, 5, 6]], N)
    with pytest.raises(WorkloadError, match="out of range"):
        place_steps(steps, [[0, 1, 2, 99]], N)


def test_save_load_exact_and_deterministic(tmp_path):
    rng = np.random.default_rng(1)
    mats = [sp.random(6, 6, density=0.4, random_state=i, format="csr") for i in range(3)]
    mats = [m - sp.diags(m.diagonal()) for m in mats]
    mats[1] = mats[1] * np.pi                  # values without short binary forms
    order = [0, 1, 2, 1, 2, 1, 2, 0]
    t = Trace([mats[i] for i in order], rng.random(8) * 1e-6, labels=[f"p{i}" for i in range(8)],
              layer=[0, 1, 1, 2, 2, 3, 3, -1], meta={"model": "tiny", "algorithms": {"all-reduce": "ring"}})
    t.detect_period()
    a = t.save(tmp_path / "a.npz")
    b = Trace.load(a)
    assert b == t and b.period == t.period
    for p in range(len(t)):
        assert np.array_equal(b.dense(p), t.dense(p))
    assert np.array_equal(b.gap_s, t.gap_s)
    b.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert b.demand[1] is b.demand[3]          # repeats stay shared after loading
    arrs = np.load(a)                          # plain numpy can read it
    assert arrs["gap_s"].shape == (8,)


def test_load_rejects_other_files(tmp_path):
    f = tmp_path / "x.npz"
    f.write_bytes(b"not a zip")
    with pytest.raises(WorkloadError, match="not an ocsnet trace"):
        Trace.load(f)
    np.savez(tmp_path / "y.npz", a=np.zeros(3))
    with pytest.raises(WorkloadError, match="no trace.json"):
        Trace.load(tmp_path / "y.npz")


def test_concat_and_select():
    t = Trace([ring(3)], [1.0], labels=["a"])
    u = Trace([ring(3, 2)], [2.0], labels=["b"], layer=[4])
    c = Trace.concat([t, u, t])
    assert c.labels == ["a", "b", "a"] and c.total_bytes() == 3 + 6 + 3
    assert c.select([0, 2]).labels == ["a", "a"]
    with pytest.raises(WorkloadError, match="traces\\[1\\]"):
        Trace.concat([t, Trace([ring(4)], [0])])


# ---- build_trace -----------------------------------------------------------------------

from ocsnet import collectives, topology                     # noqa: E402
from ocsnet.fabric import Fabric                              # noqa: E402
from ocsnet.traffic import build_trace                        # noqa: E402
from ocsnet.workload import ParallelPlan, model, place       # noqa: E402
from ocsnet.workload.step import step_profile                 # noqa: E402


def bare(n):
    return Fabric(["gpu"] * n, [], [], [], [], [], name=f"bare{n}")


def naive_trace(name, plan, n, mode, ranks, **kw):
    """Independent dense construction: loop over layers, collectives, groups, steps (pp = 1)."""
    prof = step_profile(name, plan, mode, require_fit=False, **kw)
    phases = []
    for layer in range(model(name).layers):
        for c in prof.layer.collectives:
            assert c.group == "tp"
            steps = collectives.expand(c.kind, c.group_size, c.nbytes, c.algorithm)
            for st in steps:
                D = np.zeros((n, n))
                s = st.toarray()
                for d in range(plan.dp):
                    g = ranks[d, 0]
                    for i in range(len(g)):
                        for j in range(len(g)):
                            D[g[i], g[j]] += s[i, j]
                phases.append(D)
    return phases


@pytest.mark.parametrize("alg", ["ring", "rhd", "direct"])
def test_build_trace_equals_naive_loop(alg):
    plan = ParallelPlan(tp=4, dp=3)
    ranks = np.random.default_rng(3).permutation(16)[:12].reshape(3, 1, 4)
    t = build_trace("llama3-70b", plan, bare(16), "decode", batch=2, context=64, placement=ranks,
                    algorithms={"all-reduce": alg}, require_fit=False)
    want = naive_trace("llama3-70b", plan, 16, "decode", ranks, batch=2, context=64,
                       algorithms={"all-reduce": alg})
    assert len(t) == len(want)
    for p in range(len(t)):
        assert np.array_equal(t.dense(p), want[p])


def test_phase_count_bytes_and_gaps_match_the_profile():
    m = model("llama3-70b")
    plan = ParallelPlan(tp=8, dp=2)
    t = build_trace(m, plan, bare(16), "decode", batch=4, context=256, placement="contiguous")
    p, N = 8, 4 * 8192 * 2                                    # group size, all-reduce buffer (tokens x h x 2 B)
    steps = 2 * (p - 1)                                       # ring all-reduce
    assert len(t) == m.layers * 2 * steps == m.layers * t.meta["phases_per_layer"]
    # ring all-reduce: every rank sends 2 (p-1)/p N; 2 groups, 2 all-reduces per layer
    assert t.total_bytes() == pytest.approx(m.layers * 2 * 2 * p * 2 * (p - 1) / p * N)
    prof = step_profile(m, plan, "decode", batch=4, context=256)
    compute = m.layers * prof.layer.time_s + prof.embedding.time_s + prof.lm_head.time_s
    assert t.total_gap_s() + t.meta["tail_compute_s"] == pytest.approx(compute)
    assert t.labels[1] == "L0 attn-out all-reduce ring 2/14"
    assert (t.layer[: t.meta["phases_per_layer"]] == 0).all() and t.layer[-1] == 79


def test_llama3_405b_decode_period_is_one_layer():
    t = build_trace("llama3-405b", ParallelPlan(tp=16), bare(16), "decode", batch=8, context=2048)
    per_layer = t.meta["phases_per_layer"]
    assert per_layer == 2 * 2 * 15 and len(t) == 126 * per_layer
    s, k, r = t.period
    assert k == per_layer and r >= 125 and s + k * r <= len(t)
    one = t.one_period()
    assert len(one) == per_layer and one.meta["repeats"] == r
    assert len({id(m) for m in t.demand}) == 1                # every ring step is the same matrix


def test_detect_period_anchored_path(monkeypatch):
    monkeypatch.setattr(Trace, "EXACT_PHASES", 8)
    monkeypatch.setattr(Trace, "ANCHORS", 4)
    t = build_trace("llama3-70b", ParallelPlan(tp=4), bare(4), "decode", batch=2, context=64)
    assert t.period[1] == t.meta["phases_per_layer"] and t.period[2] >= 79
    monkeypatch.setattr(Trace, "EXACT_PHASES", 10**9)
    assert t.detect_period() == t.period


def test_topology_aware_keeps_tp_traffic_inside_dgx_nodes():
    pytest.importorskip("ocsnet.topology.packet")        # the packet generators land separately
    fab = topology.dgx_cluster(4)
    node = fab.node_attrs["node"][fab.gpus]
    plan = ParallelPlan(tp=8, pp=2, dp=2)
    t = build_trace("llama3-70b", plan, fab, "decode", batch=4, context=512, micro_batches=2)
    assert t.meta["schedule"] == "steady"
    for p in range(len(t)):
        c = t.demand[p].tocoo()
        same = node[c.row] == node[c.col]
        if t.labels[p].startswith("pp"):
            assert not same.any()                             # stage to stage crosses nodes
        else:
            assert same.all()


def test_pipeline_sends_and_schedules():
    m = model("llama3-70b")
    plan = ParallelPlan(tp=2, pp=2, dp=2)
    fab = bare(8)
    seq = build_trace(m, plan, fab, "prefill", batch=1, seq_len=128, placement="contiguous", schedule="sequential")
    st = build_trace(m, plan, fab, "prefill", batch=1, seq_len=128, placement="contiguous", schedule="steady")
    R = place(plan, 8, "contiguous")
    sends = [p for p, s in enumerate(seq.labels) if s.startswith("pp")]
    assert len(sends) == 1
    D = seq.dense(sends[0])
    nb = 128 * 8192 * 2
    want = np.zeros((8, 8))
    want[R[:, 0, :].ravel(), R[:, 1, :].ravel()] = nb
    assert np.array_equal(D, want)
    # Same traffic either way; steady runs both stages' layers in the same phases.
    assert seq.total_bytes() == pytest.approx(st.total_bytes())
    assert len(seq) == 2 * len(st) - 1
    assert seq.meta["layer_index"] == "global" and st.meta["layer_index"] == "stage-local"


def test_training_trace_has_backward_and_gradient_sync():
    m = model("llama3-70b")
    plan = ParallelPlan(tp=2, pp=1, dp=4)
    t = build_trace(m, plan, bare(8), "train", batch=1, seq_len=256, placement="contiguous", require_fit=False,
                    grad_sync="reduce-scatter")
    sync = [p for p, s in enumerate(t.labels) if s.startswith("grad-sync")]
    assert len(sync) == 2 * 3 and sync[-1] == len(t) - 1       # ring RS + AG over dp = 4
    R = place(plan, 8, "contiguous")
    dp_of = np.empty(8, int)
    dp_of[R[:, 0, :].ravel()] = np.repeat(np.arange(4), 2)
    tp_of = np.empty(8, int)
    tp_of[R.ravel()] = np.tile(np.arange(2), 4)
    c = t.demand[sync[0]].tocoo()
    assert (tp_of[c.row] == tp_of[c.col]).all()               # DP groups: same tensor rank
    assert len(t) == m.layers * 4 * 2 + len(sync)             # 4 all-reduces of 2 steps (tp = 2) per layer + sync


def test_moe_trace_all_to_all_inside_ep_groups():
    plan = ParallelPlan(tp=2, dp=4, ep=4)
    t = build_trace("mixtral-8x22b", plan, bare(8), "decode", batch=4, context=128, placement="contiguous",
                    require_fit=False)
    R = place(plan, 8, "contiguous")
    tp_of = np.empty(8, int)
    tp_of[R.ravel()] = np.tile(np.arange(2), 4)
    a2a = [p for p, s in enumerate(t.labels) if "all-to-all" in s]
    assert len(a2a) == 56 * 2 * 3                              # pairwise: p - 1 steps, 2 per layer
    for p in a2a[:6]:
        c = t.demand[p].tocoo()
        assert (tp_of[c.row] == tp_of[c.col]).all()


def test_built_trace_save_load_roundtrip(tmp_path):
    t = build_trace("gpt3-175b", ParallelPlan(tp=4, pp=2, dp=2), bare(16), "prefill", batch=1, seq_len=512,
                    require_fit=False, micro_batches=2)
    f = t.save(tmp_path / "t.npz")
    u = Trace.load(f)
    assert u == t and u.meta["model"] == "gpt3-175b" and u.meta["plan"]["pp"] == 2
    assert f.stat().st_size < 200_000                          # distinct matrices stored once


def test_build_trace_errors():
    with pytest.raises(WorkloadError, match="needs 32 GPUs"):
        build_trace("llama3-70b", ParallelPlan(tp=8, dp=4), bare(16), "decode", batch=1, context=8)
    with pytest.raises(WorkloadError, match="algorithms: 'bogus' is not supported for all-reduce"):
        build_trace("llama3-70b", ParallelPlan(tp=8), bare(8), "decode", batch=1, context=8,
                    algorithms={"all-reduce": "bogus"})
    with pytest.raises(WorkloadError, match="memory"):
        build_trace("llama3-405b", ParallelPlan(tp=8), bare(8), "decode", batch=64, context=4096, gpu="lite-base")
    with pytest.raises(WorkloadError, match="placement: shape"):
        build_trace("llama3-70b", ParallelPlan(tp=8), bare(8), "decode", batch=1, context=8, placement=np.zeros((1, 2)))


def test_from_collective_places_every_group_at_once():
    groups = np.array([[5, 1, 7], [0, 3, 2]])
    t = Trace.from_collective("all-to-all", groups, 3e6, "pairwise", n_gpus=8, gap_s=2e-6, layer=4,
                              label="moe-dispatch all-to-all pairwise")
    steps = collectives.expand("all-to-all", 3, 3e6, "pairwise")
    assert len(t) == len(steps) == 2
    assert np.array_equal(t.gap_s, [2e-6, 0.0]) and (t.layer == 4).all()
    for p, st in enumerate(steps):
        want = np.zeros((8, 8))
        for g in groups:
            want[np.ix_(g, g)] += st.toarray()
        assert np.array_equal(t.dense(p), want)
    assert t.labels == ["moe-dispatch all-to-all pairwise 1/2", "moe-dispatch all-to-all pairwise 2/2"]
