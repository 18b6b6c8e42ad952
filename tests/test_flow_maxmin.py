"""Max-min fair rates against a sequence of LPs (HiGHS), Python-loop filling, and the
bottleneck characterization."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import FlowError
from ocsnet.flow import max_min_fair, route
from ocsnet.flow.reference import max_min_fair_loops, max_min_fair_lp
from test_flow_fabrics import fat_tree, torus2

FRACTIONS = [0.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.25, 1 / 3, 0.7]


@st.composite
def instances(draw, max_links=6, max_flows=8, inf_links=True):
    L = draw(st.integers(1, max_links))
    F = draw(st.integers(1, max_flows))
    A = np.array(draw(st.lists(st.sampled_from(FRACTIONS), min_size=L * F, max_size=L * F))).reshape(L, F)
    c = np.array(draw(st.lists(st.floats(0.1, 100.0), min_size=L, max_size=L)))
    if inf_links and draw(st.booleans()):
        c[draw(st.integers(0, L - 1))] = np.inf
    cap = None
    if draw(st.booleans()):
        cap = np.array(draw(st.lists(st.one_of(st.floats(0.05, 50.0), st.just(np.inf)), min_size=F, max_size=F)))
    return A, c, cap


def bottleneck_ok(A, c, cap, r, tol=1e-7):
    """Every flow is at its cap, unbounded, or crosses a saturated link on which its rate is the largest."""
    A = np.asarray(A, dtype=float)
    load = A @ np.where(np.isfinite(r), r, 0.0)
    sat = np.isfinite(c) & (load >= c * (1 - tol))
    for f in range(A.shape[1]):
        if cap is not None and r[f] >= cap[f] * (1 - tol):
            continue
        on = np.flatnonzero((A[:, f] > 0) & np.isfinite(c))
        if not len(on):
            assert np.isinf(r[f]) and (cap is None or np.isinf(cap[f]))
            continue
        ok = [l for l in on if sat[l] and r[f] >= r[A[l] > 0].max() * (1 - tol)]
        if not ok:
            return False
    return True


def feasible(A, c, cap, r):
    load = np.asarray(A, dtype=float) @ np.where(np.isfinite(r), r, 0.0)
    fin = np.isfinite(c)
    ok = np.all(load[fin] <= c[fin] * (1 + 1e-9) + 1e-12)
    return ok and (cap is None or np.all(r <= cap * (1 + 1e-12)))


def assert_rates_close(got, want, rtol=1e-6):
    assert np.array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=1e-12)


@examples(200)
@given(instances())
def test_agrees_with_lp_sequence(inst):
    A, c, cap = inst
    r = max_min_fair(sp.csr_matrix(A), c, cap)
    assert_rates_close(r, max_min_fair_lp(A, c, cap))
    assert feasible(A, c, cap, r)
    assert bottleneck_ok(A, c, cap, r)


@examples(100)
@given(seed=st.integers(0, 2**31), L=st.integers(5, 60), F=st.integers(5, 200), ecmp=st.booleans())
def test_agrees_with_loops_on_larger_instances(seed, L, F, ecmp):
    """Random sparse routes with mixed capacities (log-uniform over four decades), some caps,
    some flows on no link."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, min(L, 6) + 1, size=F)
    rows = np.concatenate([rng.choice(L, size=x, replace=False) for x in k])
    cols = np.repeat(np.arange(F), k)
    vals = rng.choice([0.5, 0.25, 1.0], size=len(rows)) if ecmp else np.ones(len(rows))
    A = sp.csc_matrix((vals, (rows, cols)), shape=(L, F))
    c = 10 ** rng.uniform(0, 4, L)
    cap = np.where(rng.random(F) < 0.2, 10 ** rng.uniform(-1, 3, F), np.inf)
    r, info = max_min_fair(A, c, cap, return_info=True)
    assert_rates_close(r, max_min_fair_loops(A, c, cap), rtol=1e-9)
    assert feasible(A.toarray(), c, cap, r)
    assert bottleneck_ok(A.toarray(), c, cap, r)
    # every flow on a link is frozen exactly once (flows on no link are settled before the rounds)
    assert info["rounds"] <= L + F and sum(info["frozen_per_round"]) == int((k > 0).sum())


def test_flows_without_links_get_their_cap_or_inf():
    A = sp.csc_matrix((2, 3))
    assert max_min_fair(A, [1.0, 2.0]).tolist() == [np.inf] * 3
    assert max_min_fair(A, [1.0, 2.0], [5.0, np.inf, 0.0]).tolist() == [5.0, np.inf, 0.0]
    # on infinite links only: the same
    B = sp.csc_matrix(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert max_min_fair(B, [np.inf, 3.0]).tolist() == [np.inf, 3.0]
    assert max_min_fair(B, [np.inf, 3.0], 2.0).tolist() == [2.0, 2.0]


def test_hand_cases():
    # the classic: flow 0 crosses both links, flows 1 and 2 one each
    A = np.array([[1, 1, 0], [1, 0, 1]], dtype=float)
    assert max_min_fair(A, [1.0, 2.0]).tolist() == [0.5, 0.5, 1.5]
    # a fractional (ECMP) flow: half of flow 0 on each of two links, flow 1 alone on the first
    A = np.array([[0.5, 1.0], [0.5, 0.0]])
    np.testing.assert_allclose(max_min_fair(A, [3.0, 10.0]), [2.0, 2.0])
    # a zero-capacity link stops its flows and nothing else
    A = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert max_min_fair(A, [0.0, 4.0]).tolist() == [0.0, 4.0]


def test_independent_levels_freeze_in_one_round():
    """L disjoint links at L different levels: all are local minima, one round
    (progressive filling one level at a time needs L rounds)."""
    L = 500
    A = sp.identity(L, format="csc")
    c = np.arange(1.0, L + 1)
    r, info = max_min_fair(A, c, return_info=True)
    assert r.tolist() == c.tolist()
    assert info["rounds"] == 1


def test_chain_rounds_follow_the_chain():
    """Flow i crosses links i and i+1, capacities rising along the chain: each round
    can only settle the head of the chain, so rounds grow with its length."""
    n = 40
    rows = np.concatenate([np.arange(n), np.arange(1, n + 1)])
    cols = np.concatenate([np.arange(n), np.arange(n)])
    A = sp.csc_matrix((np.ones(2 * n), (rows, cols)), shape=(n + 1, n))
    c = 2.0 * 1.1 ** np.arange(n + 1)
    r, info = max_min_fair(A, c, return_info=True)
    assert_rates_close(r, max_min_fair_loops(A, c), rtol=1e-12)
    assert 2 <= info["rounds"] <= n


@pytest.mark.parametrize("fabric", [fat_tree(6), torus2(5, 5)])
@pytest.mark.parametrize("method", ["shortest", "ecmp"])
def test_on_routed_fabrics(fabric, method):
    rng = np.random.default_rng(3)
    n = fabric.n_gpus
    s = rng.integers(0, n, 400)
    d = (s + rng.integers(1, n, 400)) % n
    A = route(fabric, s, d, method=method).incidence
    c = fabric.capacity_Bps * rng.uniform(0.5, 2.0, fabric.n_edges)
    r = max_min_fair(A, c)
    assert_rates_close(r, max_min_fair_loops(A, c), rtol=1e-9)
    assert bottleneck_ok(A.toarray(), c, None, r)


def test_dense_and_sparse_inputs_agree():
    rng = np.random.default_rng(0)
    A = (rng.random((8, 20)) < 0.3) * rng.choice([0.5, 1.0], (8, 20))
    c = rng.uniform(1, 5, 8)
    for fmt in (np.asarray, sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        assert_rates_close(max_min_fair(fmt(A), c), max_min_fair_lp(A, c))


def test_bad_input_named():
    A = np.ones((2, 3))
    with pytest.raises(FlowError, match="2 rows .* capacity has 3 entries|capacity: expected 2 entries"):
        max_min_fair(A, [1.0, 2.0, 3.0])
    with pytest.raises(FlowError, match=r"capacity\[1\] \(link 1\): -1.0 is out of range"):
        max_min_fair(A, [1.0, -1.0])
    with pytest.raises(FlowError, match=r"capacity\[0\] \(link 0\): nan"):
        max_min_fair(A, [np.nan, 1.0])
    with pytest.raises(FlowError, match=r"rate_cap_Bps\[2\] \(flow 2\): -0.5"):
        max_min_fair(A, [1.0, 1.0], [1.0, 1.0, -0.5])
    with pytest.raises(FlowError, match="rate_cap_Bps: expected 3 entries"):
        max_min_fair(A, [1.0, 1.0], [1.0, 1.0])
    B = np.array([[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(FlowError, match=r"link 1, flow 1"):
        max_min_fair(B, [1.0, 1.0])
    with pytest.raises(FlowError, match=r"link 0, flow 0"):
        max_min_fair(np.array([[np.nan]]), [1.0])
    with pytest.raises(FlowError, match="2-D"):
        max_min_fair(np.ones(3), [1.0])


def test_links_renumbered_as_they_empty():
    """Most links settle in the first round (disjoint one-flow links), a chain goes on for
    many rounds on a few links; infinite links and fabric-sized link spaces in between."""
    n_free, n = 2000, 30
    rows = np.concatenate([np.arange(n_free), n_free + np.arange(n), n_free + 1 + np.arange(n),
                           [n_free + n + 5] * 3])
    cols = np.concatenate([np.arange(n_free), n_free + np.arange(n), n_free + np.arange(n),
                           n_free + np.arange(3)])
    L = n_free + n + 10                             # a few links carry nothing
    A = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(L, n_free + n))
    c = np.concatenate([np.linspace(1, 2, n_free), 5.0 * 1.2 ** np.arange(n + 1), np.full(9, np.inf)])
    r, info = max_min_fair(A, c, return_info=True)
    assert_rates_close(r, max_min_fair_loops(A, c), rtol=1e-12)
    assert info["rounds"] >= 3 and info["frozen_per_round"][0] >= n_free


@examples(60)
@given(st.lists(st.integers(1, 40_000), min_size=1, max_size=7), st.integers(0, 1000))
def test_bucket_widths_are_an_optimal_partition(n_cols, seed):
    """The dynamic program against every partition of the distinct widths into runs."""
    import itertools
    from ocsnet.flow.maxmin import _BUCKET_COST_ENTRIES, _widths
    rng = np.random.default_rng(seed)
    widths = np.sort(rng.choice(np.arange(1, 200), size=len(n_cols), replace=False))
    n_cols = np.array(n_cols)

    def cost(tops):
        cls = np.searchsorted(tops, widths)
        return len(tops) * _BUCKET_COST_ENTRIES + int((tops[cls] * n_cols).sum())

    k = len(widths)
    best = min(cost(widths[list(c) + [k - 1]]) for r in range(k) for c in itertools.combinations(range(k - 1), r))
    got = _widths(widths, n_cols)
    assert got[-1] == widths[-1] and set(got) <= set(widths)
    assert cost(got) == best


def test_demand_is_the_old_keyword_of_the_rate_cap():
    """``demand`` means bytes elsewhere; the rate cap is ``rate_cap_Bps``, ``demand=`` still works."""
    A = np.array([[1.0, 1.0]])
    assert max_min_fair(A, [10.0], demand=[1.0, np.inf]).tolist() == [1.0, 9.0]
    assert max_min_fair(A, [10.0], rate_cap_Bps=[1.0, np.inf]).tolist() == [1.0, 9.0]
    with pytest.raises(FlowError, match="demand: is the old name of rate_cap_Bps"):
        max_min_fair(A, [10.0], [1.0, 1.0], demand=[1.0, 1.0])
    with pytest.raises(FlowError, match=r"demand\[0\]"):
        max_min_fair(A, [10.0], demand=[-1.0, 1.0])

