"""Collective algorithms: patterns, volumes, data movement and closed-form times.

Independent truths used here: a step-by-step simulation of the data (integer
contributions per rank and chunk, so a missing or double-counted contribution
shows), the known per-rank volumes (nccl-tests bus-bandwidth factors), the
one-port lower bounds of Chan et al. (2007), and brute-force pattern checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_budget import examples

from ocsnet.collectives import (ALGORITHMS, PIPELINED, alpha_beta_time, binary_tree, bus_bandwidth_factor,
                                bytes_received_per_rank, bytes_sent_per_rank, double_binary_tree, expand,
                                n_steps, step_time)
from ocsnet.errors import OcsnetError, WorkloadError

SIZES = [1, 2, 3, 5, 8, 12, 16]
ALL_PAIRS = [(k, a) for k, algos in ALGORITHMS.items() for a in algos]


def applicable(kind, algorithm, p):
    return not (algorithm == "rhd" and kind != "all-reduce" and p & (p - 1))


def cases(sizes=SIZES):
    for kind, alg in ALL_PAIRS:
        for p in sizes:
            if applicable(kind, alg, p):
                for k in ((1, 3) if (kind, alg) in PIPELINED else (1,)):
                    yield kind, alg, p, k


def nonzeros(m):
    c = sp.coo_matrix(m)
    order = np.lexsort((c.col, c.row))
    return c.row[order], c.col[order], c.data[order]


# ---- structure common to every algorithm --------------------------------------------
@pytest.mark.parametrize("kind,alg,p,k", list(cases()))
def test_steps_are_valid_demand_matrices(kind, alg, p, k):
    steps = expand(kind, p, 3e6, alg, chunks=k)
    assert len(steps) == n_steps(kind, p, alg, chunks=k)
    if p == 1:
        assert steps == []
    for m in steps:
        assert isinstance(m, sp.csr_matrix) and m.shape == (p, p)
        assert m.nnz > 0 and np.all(m.data > 0)
        a = m.toarray()
        assert np.all(np.diag(a) == 0)
        r, c, _ = nonzeros(m)
        assert len(set(zip(r.tolist(), c.tolist()))) == m.nnz  # no duplicate pairs
    # compact form is the same data
    arrays = expand(kind, p, 3e6, alg, chunks=k, as_arrays=True)
    assert len(arrays) == len(steps)
    for (src, dst, nb), m in zip(arrays, steps):
        np.testing.assert_array_equal(sp.csr_matrix((nb, (src, dst)), shape=(p, p)).toarray(), m.toarray())


# ---- patterns -----------------------------------------------------------------------
def is_partial_permutation(m):
    a = m.toarray() > 0
    return a.sum(axis=0).max() <= 1 and a.sum(axis=1).max() <= 1


@pytest.mark.parametrize("kind,alg,p,k", [c for c in cases() if c[1] in
                                          ("ring", "rhd", "pairwise", "tree", "double-binary-tree", "pipeline")])
def test_one_port_steps_fit_one_ocs_matching(kind, alg, p, k):
    for m in expand(kind, p, 1e6, alg, chunks=k):
        assert is_partial_permutation(m)


@pytest.mark.parametrize("p", SIZES)
def test_ring_sends_only_to_successor(p):
    for kind in ("all-reduce", "reduce-scatter", "all-gather"):
        for m in expand(kind, p, 1e6, "ring"):
            r, c, _ = nonzeros(m)
            assert np.array_equal(r, np.arange(p)) and np.array_equal(c, (r + 1) % p)


@pytest.mark.parametrize("p", [2, 4, 8, 16, 32])
def test_rhd_partners_are_xor_of_a_power_of_two(p):
    for kind in ("all-reduce", "reduce-scatter", "all-gather"):
        dists = []
        for m in expand(kind, p, 1e6, "rhd"):
            r, c, _ = nonzeros(m)
            x = r ^ c
            assert np.all(x == x[0]) and x[0] & (x[0] - 1) == 0  # one power of two per step
            assert np.array_equal(r, np.arange(p))  # a full permutation
            dists.append(int(x[0]))
        L = p.bit_length() - 1
        halving = [p >> (j + 1) for j in range(L)]
        doubling = [1 << j for j in range(L)]
        assert dists == {"reduce-scatter": halving, "all-gather": doubling,
                         "all-reduce": halving + doubling}[kind]


@pytest.mark.parametrize("p", [3, 5, 6, 7, 12, 13])
def test_rhd_all_reduce_non_power_of_two_pre_and_post_step(p):
    steps = expand("all-reduce", p, 1e6, "rhd")
    pp = 1 << (p.bit_length() - 1)
    r = p - pp
    pre, post = steps[0].toarray(), steps[-1].toarray()
    evens = np.arange(0, 2 * r, 2)
    assert set(zip(*np.nonzero(pre))) == {(int(e), int(e) + 1) for e in evens}
    assert np.array_equal(post, pre.T)
    active = np.setdiff1d(np.arange(p), evens)
    for m in steps[1:-1]:
        a = m.toarray()
        assert np.array_equal(a > 0, (a > 0).T)  # exchanges
        assert np.array_equal(np.flatnonzero(a.sum(axis=1)), active)
        assert is_partial_permutation(m)


@pytest.mark.parametrize("p", SIZES)
def test_pairwise_all_to_all_step_s_is_shift_by_s(p):
    steps = expand("all-to-all", p, 6e6, "pairwise")
    assert len(steps) == max(p - 1, 0)
    for s, m in enumerate(steps, start=1):
        r, c, d = nonzeros(m)
        assert np.array_equal(r, np.arange(p)) and np.array_equal(c, (r + s) % p)
        np.testing.assert_allclose(d, 6e6 / p)


@pytest.mark.parametrize("p", [2, 3, 5, 12])
def test_direct_is_one_step_to_every_peer(p):
    N = 6e6
    for kind, per_peer in (("reduce-scatter", N / p), ("all-gather", N / p), ("all-to-all", N / p),
                           ("all-reduce", N)):
        (m,) = expand(kind, p, N, "direct")
        np.testing.assert_allclose(m.toarray(), per_peer * (1 - np.eye(p)))
    (m,) = expand("broadcast", p, N, "direct")
    assert np.flatnonzero(m.toarray()[0]).tolist() == list(range(1, p)) and m.nnz == p - 1


@pytest.mark.parametrize("p", SIZES)
def test_send_recv_pipeline_and_ring(p):
    steps = expand("send-recv", p, 4e6, "pipeline", chunks=4)
    assert len(steps) == (4 if p > 1 else 0)
    for m in steps:
        r, c, d = nonzeros(m)
        assert np.array_equal(r, np.arange(p - 1)) and np.array_equal(c, r + 1)
        np.testing.assert_allclose(d, 1e6)
    for m in expand("send-recv", p, 4e6, "ring", chunks=2):
        r, c, d = nonzeros(m)
        assert np.array_equal(c, (r + 1) % p) and len(r) == p


# ---- trees --------------------------------------------------------------------------
def check_binary_tree(parent, depth, root):
    p = len(parent)
    assert parent[root] == -1 and np.sum(parent == -1) == 1
    kids = np.flatnonzero(parent >= 0)
    assert np.bincount(parent[kids], minlength=p).max(initial=0) <= 2
    assert np.array_equal(depth[kids], depth[parent[kids]] + 1) and depth[root] == 0
    assert depth.max() == p.bit_length() - 1  # complete: depth floor(log2 p)


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 31, 33, 100])
def test_double_binary_tree_has_disjoint_interiors_and_distinct_slots(p):
    (pa, da, sa), (pb, db, sb) = double_binary_tree(p)
    check_binary_tree(pa, da, 0)
    check_binary_tree(pb, db, p - 1)
    assert not set(pa[pa >= 0].tolist()) & set(pb[pb >= 0].tolist())
    for parent, slot in ((pa, sa), (pb, sb)):  # siblings differ
        for q in np.unique(parent[parent >= 0]):
            kids = np.flatnonzero(parent == q)
            assert len(set(slot[kids].tolist())) == len(kids)
    both = (pa >= 0) & (pb >= 0)
    assert np.all(sa[both] != sb[both])


def simulate_tree(steps, trees, p, k, reduce_steps):
    """Move integer contributions through the trees: the c-th message on an edge carries chunk c.

    Returns (values, complete) per (rank, tree, chunk): after a correct
    all-reduce every rank holds the sum of all contributions of every chunk.
    """
    T = len(trees)
    rng = np.random.default_rng(p * 100 + k)
    x = rng.integers(1, 1 << 20, size=(p, T, k))
    val = x.copy()
    sent = {}
    for s, m in enumerate(steps):
        old = val.copy()
        r, c, _ = nonzeros(m)
        for i, j in zip(r.tolist(), c.tolist()):
            if s < reduce_steps:  # child -> parent: add the child's partial sum
                t = [t for t, (par, _, _) in enumerate(trees) if par[i] == j]
            else:  # parent -> child: replace by the parent's total
                t = [t for t, (par, _, _) in enumerate(trees) if par[j] == i]
            assert len(t) == 1, f"step {s}: {i}->{j} is not a tree edge"
            t = t[0]
            n = sent.get((s < reduce_steps, i, j), 0)
            sent[(s < reduce_steps, i, j)] = n + 1
            assert n < k, f"edge {i}->{j} used more than {k} times"
            if s < reduce_steps:
                val[j, t, n] += old[i, t, n]
            else:
                val[j, t, n] = old[i, t, n]
    return val, x.sum(axis=0)


@pytest.mark.parametrize("p", [2, 3, 4, 5, 7, 8, 12, 16, 21])
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("alg", ["tree", "double-binary-tree"])
def test_tree_all_reduce_moves_the_data(alg, p, k):
    N = 1e6
    steps = expand("all-reduce", p, N, alg, chunks=k)
    trees = [binary_tree(p)] if alg == "tree" else list(double_binary_tree(p))
    chunk = N / k / len(trees)
    for m in steps:
        np.testing.assert_allclose(m.data, chunk)
    val, total = simulate_tree(steps, trees, p, k, reduce_steps=len(steps) // 2)
    assert np.array_equal(val, np.broadcast_to(total, val.shape))
    # each non-root sends its data up once per tree; each parent sends it down once per child
    expect = np.zeros(p)
    for parent, _, _ in trees:
        expect += (parent >= 0) * N / len(trees)
        expect += np.bincount(parent[parent >= 0], minlength=p) * N / len(trees)
    np.testing.assert_allclose(bytes_sent_per_rank(steps), expect)


@pytest.mark.parametrize("p", [2, 3, 6, 9])
@pytest.mark.parametrize("k", [1, 4])
def test_tree_broadcast_moves_the_data(p, k):
    steps = expand("broadcast", p, 1e6, "tree", chunks=k)
    val, _ = simulate_tree(steps, [binary_tree(p)], p, k, reduce_steps=0)
    assert np.all(val[:, 0, :] == val[0, 0, :])  # everyone holds the root's chunks


# ---- data movement of the chunked algorithms ------------------------------------------
def simulate(steps, p, C, rule, start, chunk_bytes):
    """Synchronous step simulation on integer chunk values.

    ``rule(s, i, j)`` -> (chunk ids that i sends to j in step s, "add" or "set").
    ``start`` (p, C) int values, -1 where a rank holds nothing.  Checks every
    message's bytes against the chunks it carries and that the sender holds them.
    """
    val = start.copy()
    for s, m in enumerate(steps):
        old = val.copy()
        r, c, d = nonzeros(m)
        for i, j, b in zip(r.tolist(), c.tolist(), d.tolist()):
            ids, op = rule(s, i, j)
            ids = np.atleast_1d(ids)
            assert b == pytest.approx(len(ids) * chunk_bytes, rel=1e-12), (s, i, j)
            assert np.all(old[i, ids] >= 0), f"step {s}: rank {i} sends a chunk it does not hold"
            if op == "add":
                val[j, ids] += old[i, ids]
            else:
                val[j, ids] = old[i, ids]
    return val


def contributions(p, C, seed=0):
    return np.random.default_rng(seed).integers(1, 1 << 20, size=(p, C))


@pytest.mark.parametrize("p", SIZES)
def test_ring_reduce_scatter_all_gather_all_reduce_data(p):
    N = 1e6
    x = contributions(p, p)
    total = x.sum(axis=0)
    rs = lambda s, i, j: ((i - s - 1) % p, "add")          # noqa: E731
    ag = lambda s, i, j: ((i - s) % p, "set")              # noqa: E731
    val = simulate(expand("reduce-scatter", p, N), p, p, rs, x, N / p)
    assert np.array_equal(np.diag(val), total)              # rank r holds the sum of chunk r
    own = np.where(np.eye(p, dtype=bool), x, -1)
    val = simulate(expand("all-gather", p, N), p, p, ag, own, N / p)
    assert np.array_equal(val, np.broadcast_to(np.diag(x), (p, p)))
    ar = lambda s, i, j: rs(s, i, j) if s < p - 1 else ag(s - (p - 1), i, j)  # noqa: E731
    val = simulate(expand("all-reduce", p, N), p, p, ar, x, N / p)
    assert np.array_equal(val, np.broadcast_to(total, (p, p)))


def rhd_rule(p, nranks, old_of_new, halving_first):
    """Chunks exchanged by recursive halving (keep the half that matches your bit) and doubling."""
    L = nranks.bit_length() - 1
    new_of_old = {int(o): n for n, o in enumerate(old_of_new)}
    C = np.arange(nranks)

    def rule(s, i, j):
        a, b = new_of_old[i], new_of_old[j]
        if s < L and halving_first:  # distance nranks >> (s+1); higher bits already agree
            d = nranks >> (s + 1)
            high = ~(2 * d - 1)
            return C[((C & high) == (a & high)) & ((C & d) == (b & d))], "add"
        t = s - L if halving_first else s
        d = 1 << t
        return C[(C >> t) == (a >> t)], "set"  # my block of 2^t chunks
    return rule


@pytest.mark.parametrize("p", [2, 4, 8, 16])
def test_rhd_reduce_scatter_all_gather_data(p):
    N = 1e6
    x = contributions(p, p, 1)
    ident = np.arange(p)
    val = simulate(expand("reduce-scatter", p, N, "rhd"), p, p, rhd_rule(p, p, ident, True), x, N / p)
    assert np.array_equal(np.diag(val), x.sum(axis=0))
    own = np.where(np.eye(p, dtype=bool), x, -1)
    val = simulate(expand("all-gather", p, N, "rhd"), p, p, rhd_rule(p, p, ident, False), own, N / p)
    assert np.array_equal(val, np.broadcast_to(np.diag(x), (p, p)))


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7, 8, 12, 13, 16])
def test_rhd_all_reduce_data_any_size(p):
    N = 1e6
    pp = 1 << (p.bit_length() - 1)
    r = p - pp
    old = np.array([2 * n + 1 if n < r else n + r for n in range(pp)])
    inner = rhd_rule(p, pp, old, True)
    steps = expand("all-reduce", p, N, "rhd")
    off = 1 if r else 0
    everything = np.arange(pp)

    def rule(s, i, j):
        if r and s == 0:
            return everything, "add"
        if r and s == len(steps) - 1:
            return everything, "set"
        return inner(s - off, i, j)
    x = contributions(p, pp, 2)
    val = simulate(steps, p, pp, rule, x, N / pp)
    assert np.array_equal(val, np.broadcast_to(x.sum(axis=0), (p, pp)))


@pytest.mark.parametrize("p", [2, 3, 5, 8])
def test_direct_and_two_shot_data(p):
    N = 1e6
    x = contributions(p, p, 3)
    total = x.sum(axis=0)
    allc = np.arange(p)
    val = simulate(expand("all-reduce", p, N, "direct"), p, p, lambda s, i, j: (allc, "add"), x, N / p)
    assert np.array_equal(val, np.broadcast_to(total, (p, p)))
    two = lambda s, i, j: (j, "add") if s == 0 else (i, "set")  # noqa: E731
    val = simulate(expand("all-reduce", p, N, "two-shot"), p, p, two, x, N / p)
    assert np.array_equal(val, np.broadcast_to(total, (p, p)))
    val = simulate(expand("reduce-scatter", p, N, "direct"), p, p, lambda s, i, j: (j, "add"), x, N / p)
    assert np.array_equal(np.diag(val), total)
    own = np.where(np.eye(p, dtype=bool), x, -1)
    val = simulate(expand("all-gather", p, N, "direct"), p, p, lambda s, i, j: (i, "set"), own, N / p)
    assert np.array_equal(val, np.broadcast_to(np.diag(x), (p, p)))


@pytest.mark.parametrize("p", SIZES)
@pytest.mark.parametrize("alg", ["pairwise", "direct"])
def test_all_to_all_delivers_every_block(p, alg):
    N = 1e6
    # block (i -> j) lives at chunk index i*p + j; rank i starts with its row of blocks
    x = contributions(p, p * p, 4)
    start = np.full((p, p * p), -1)
    for i in range(p):
        start[i, i * p:(i + 1) * p] = x[i, i * p:(i + 1) * p]
    val = simulate(expand("all-to-all", p, N, alg), p, p * p, lambda s, i, j: (i * p + j, "set"), start, N / p)
    for j in range(p):
        for i in range(p):
            if i != j:
                assert val[j, i * p + j] == x[i, i * p + j]


@pytest.mark.parametrize("p", [2, 3, 5, 9])
@pytest.mark.parametrize("k", [1, 2, 6])
def test_chain_broadcast_and_pipeline_data(p, k):
    N = 1e6
    start = np.full((p, k), -1)
    start[0] = contributions(1, k, 5)[0]
    count = {}

    def fifo(s, i, j):
        n = count.get((i, j), 0)
        count[(i, j)] = n + 1
        return n, "set"
    val = simulate(expand("broadcast", p, N, "ring", chunks=k), p, k, fifo, start, N / k)
    assert np.all(val == start[0])
    count.clear()
    msg = contributions(p, k, 6)
    own = np.full((p, p * k), -1)  # rank i's message to i+1 is chunks i*k .. i*k+k-1
    for i in range(p):
        own[i, i * k:(i + 1) * k] = msg[i]

    def sr(s, i, j):
        n = count.get((i, j), 0)
        count[(i, j)] = n + 1
        return i * k + n, "set"
    val = simulate(expand("send-recv", p, N, "pipeline", chunks=k), p, p * k, sr, own, N / k)
    for i in range(p - 1):
        assert np.array_equal(val[i + 1, i * k:(i + 1) * k], msg[i])


# ---- volumes ------------------------------------------------------------------------
@pytest.mark.parametrize("p", SIZES + [32])
def test_bandwidth_optimal_algorithms_send_the_bus_volume(p):
    N = 7e6
    for kind, alg in ALL_PAIRS:
        if alg in ("ring", "rhd", "pairwise", "two-shot") or (alg == "direct" and kind != "all-reduce"
                                                              and kind != "broadcast"):
            if kind == "send-recv" or kind == "broadcast" or not applicable(kind, alg, p):
                continue
            if alg == "rhd" and p & (p - 1):
                continue
            steps = expand(kind, p, N, alg)
            np.testing.assert_allclose(bytes_sent_per_rank(steps, p), bus_bandwidth_factor(kind, p) * N)
            np.testing.assert_allclose(bytes_received_per_rank(steps, p), bus_bandwidth_factor(kind, p) * N)


def test_bus_bandwidth_factors_nccl_tests():
    assert bus_bandwidth_factor("all-reduce", 8) == 2 * 7 / 8
    assert bus_bandwidth_factor("all-gather", 8) == bus_bandwidth_factor("reduce-scatter", 8) == 7 / 8
    assert bus_bandwidth_factor("all-to-all", 4) == 3 / 4
    assert bus_bandwidth_factor("broadcast", 4) == bus_bandwidth_factor("send-recv", 2) == 1
    assert bus_bandwidth_factor("all-reduce", 1) == 0


# ---- closed forms --------------------------------------------------------------------
@pytest.mark.parametrize("kind,alg,p,k", list(cases(SIZES + [4, 6, 7, 9, 31, 33])))
def test_closed_form_equals_step_by_step_time(kind, alg, p, k):
    for alpha, B in ((1e-6, 1e9), (0.0, 3e11), (5e-5, 1.0)):
        t = alpha_beta_time(kind, p, 3e6, alg, alpha_s=alpha, bandwidth_Bps=B, chunks=k)
        assert t == pytest.approx(step_time(expand(kind, p, 3e6, alg, chunks=k), alpha, B), rel=1e-12, abs=0)


@examples(150)
@given(pair=st.sampled_from(ALL_PAIRS), p=st.integers(1, 40), k=st.integers(1, 6),
       N=st.one_of(st.just(0.0), st.floats(1.0, 1e12)), alpha=st.floats(0, 1e-3), B=st.floats(1e6, 1e13))
def test_closed_form_equals_steps_hypothesis(pair, p, k, N, alpha, B):
    kind, alg = pair
    if not applicable(kind, alg, p):
        p = 1 << (p.bit_length() - 1)
    if (kind, alg) not in PIPELINED:
        k = 1
    steps = expand(kind, p, N, alg, chunks=k, as_arrays=True)
    assert len(steps) == n_steps(kind, p, alg, chunks=k)
    t = alpha_beta_time(kind, p, N, alg, alpha_s=alpha, bandwidth_Bps=B, chunks=k)
    assert t == pytest.approx(step_time(steps, alpha, B, group_size=p), rel=1e-9, abs=1e-18)
    # nothing is created or lost: what is sent is received
    assert bytes_sent_per_rank(steps, p).sum() == pytest.approx(bytes_received_per_rank(steps, p).sum())


@pytest.mark.parametrize("p", [2, 3, 5, 8, 12, 16, 64])
def test_times_respect_one_port_lower_bounds(p):
    """Chan et al. (2007): one-port lower bounds, ceil(log2 p) alpha and the bus volume over B."""
    logp = int(np.ceil(np.log2(p)))
    N, B = 1e8, 1e9
    for kind, alg in ALL_PAIRS:
        if not applicable(kind, alg, p):
            continue
        k = 4 if (kind, alg) in PIPELINED else 1
        beta_only = alpha_beta_time(kind, p, N, alg, alpha_s=0.0, bandwidth_Bps=B, chunks=k)
        need = {"broadcast": 1.0, "send-recv": 1.0}.get(kind, bus_bandwidth_factor(kind, p))
        assert beta_only >= need * N / B * (1 - 1e-12), (kind, alg)
        if alg not in ("direct", "two-shot") and kind not in ("send-recv", "all-to-all"):
            alpha_only = alpha_beta_time(kind, p, 0.0, alg, alpha_s=1.0, bandwidth_Bps=B, chunks=k)
            assert alpha_only >= logp, (kind, alg)


def test_textbook_forms():
    p, N, a, B = 16, 1.6e7, 2e-6, 1e9
    f = lambda kind, alg, **kw: alpha_beta_time(kind, p, N, alg, alpha_s=a, bandwidth_Bps=B, **kw)  # noqa: E731
    assert f("all-reduce", "ring") == pytest.approx(2 * (p - 1) * a + 2 * (p - 1) / p * N / B)
    assert f("all-reduce", "rhd") == pytest.approx(2 * 4 * a + 2 * (p - 1) / p * N / B)
    assert f("reduce-scatter", "rhd") == pytest.approx(4 * a + (p - 1) / p * N / B)
    assert f("all-to-all", "pairwise") == pytest.approx((p - 1) * (a + N / p / B))
    assert f("all-to-all", "direct") == pytest.approx(a + (p - 1) / p * N / B)
    assert f("all-reduce", "direct") == pytest.approx(a + (p - 1) * N / B)
    # pipelined double binary tree approaches the ring's bandwidth term, half the single tree's
    big = dict(chunks=4096)
    t_dbt = alpha_beta_time("all-reduce", p, N, "double-binary-tree", alpha_s=0, bandwidth_Bps=B, **big)
    t_tree = alpha_beta_time("all-reduce", p, N, "tree", alpha_s=0, bandwidth_Bps=B, **big)
    assert t_dbt == pytest.approx(2 * N / B, rel=0.01) and t_tree == pytest.approx(2 * t_dbt, rel=1e-9)


# ---- compact form, sharing, scale ----------------------------------------------------
def test_equal_steps_share_read_only_arrays():
    steps = expand("all-reduce", 64, 1e6)
    assert all(m is steps[0] for m in steps)
    with pytest.raises(ValueError):
        steps[0].data[0] = 1.0
    m = steps[0].copy()
    m.data[0] = 1.0  # a copy is writable
    assert (steps[0] * 2).sum() == pytest.approx(2 * 1e6)


def test_large_ring_all_reduce_is_compact():
    steps = expand("all-reduce", 4096, 1e9, as_arrays=True)
    assert len(steps) == 8190 and len({id(s) for s in steps}) == 1
    assert step_time(steps, 1e-6, 1e11) == pytest.approx(
        alpha_beta_time("all-reduce", 4096, 1e9, alpha_s=1e-6, bandwidth_Bps=1e11))


def test_zero_bytes_keeps_the_steps():
    steps = expand("all-reduce", 4, 0.0)
    assert len(steps) == 6 and all(m.nnz == 4 and not m.data.any() for m in steps)
    assert step_time(steps, 1e-6, 1e9) == pytest.approx(6e-6)


# ---- refusals -----------------------------------------------------------------------
@pytest.mark.parametrize("args,kw,field", [
    (("all-reduce", 0, 1.0), {}, "group_size"),
    (("all-reduce", 2.5, 1.0), {}, "group_size"),
    (("all-reduce", True, 1.0), {}, "group_size"),
    (("all-reduce", 4, -1.0), {}, "nbytes"),
    (("all-reduce", 4, float("nan")), {}, "nbytes"),
    (("all-reduce", 4, float("inf")), {}, "nbytes"),
    (("all-reduce", 4, "1 GB"), {}, "nbytes"),
    (("all-reduce", 4, 1.0, "tree"), {"chunks": 0}, "chunks"),
    (("all-reduce", 4, 1.0, "ring"), {"chunks": 2}, "chunks"),
    (("all-gather", 6, 1.0, "rhd"), {}, "group_size"),
    (("reduce-scatter", 12, 1.0, "rhd"), {}, "group_size"),
    (("all-to-all", 4, 1.0, "ring"), {}, "algorithm"),
    (("all-reduce", 4, 1.0, "bruck"), {}, "algorithm"),
    (("reduce", 4, 1.0), {}, "kind"),
])
def test_bad_input_names_the_field(args, kw, field):
    with pytest.raises(WorkloadError, match=f"^{field}:"):
        expand(*args, **kw)


def test_unsupported_pair_lists_the_supported_ones():
    with pytest.raises(WorkloadError, match="supported: pairwise, direct"):
        expand("all-to-all", 4, 1.0, "rhd")
    with pytest.raises(OcsnetError, match="alpha_s"):
        alpha_beta_time("all-reduce", 4, 1.0, alpha_s=-1.0, bandwidth_Bps=1e9)
    with pytest.raises(WorkloadError, match="bandwidth_Bps"):
        alpha_beta_time("all-reduce", 4, 1.0, alpha_s=0.0, bandwidth_Bps=0.0)
    with pytest.raises(WorkloadError, match="bandwidth_Bps"):
        step_time(expand("all-reduce", 4, 1.0), 0.0, -1.0)
    with pytest.raises(WorkloadError, match="kind"):
        bus_bandwidth_factor("gather", 4)


def test_rhd_all_reduce_on_non_power_of_two_costs_the_extra_steps():
    assert n_steps("all-reduce", 12, "rhd") == 2 * 3 + 2
    assert n_steps("all-reduce", 16, "rhd") == 2 * 4
