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
    ([ring(3), ring(4)], [0.0, 0.0], r"demand\[1\].*n_gpus = 3"),
    ([ring(3), -ring(3)], [0.0, 0.0], r"demand\[1\].*negative"),
    ([sp.csr_matrix(np.eye(3))], [0.0], r"demand\[0\].*diagonal entry \(0, 0\)"),
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
