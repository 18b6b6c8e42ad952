"""Synthetic traffic patterns: shapes, no self-traffic, seeded determinism."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis_budget import examples

from ocsnet.errors import FlowError
from ocsnet.flow import PATTERNS, pattern_demand, pattern_flows
from ocsnet.flow.patterns import MAX_FLOWS


@examples(30)
@given(n=st.integers(2, 60), seed=st.integers(0, 1000))
def test_pattern_shapes(n, seed):
    counts = {"all-to-all": n * (n - 1), "permutation": n, "ring": n, "incast": n - 1, "random": n}
    for name in PATTERNS:
        s, d = pattern_flows(name, n, seed=seed)
        assert len(s) == counts[name] and np.all(s != d) and np.all((0 <= d) & (d < n))
        s2, d2 = pattern_flows(name, n, seed=seed)
        assert np.array_equal(s, s2) and np.array_equal(d, d2)
    s, d = pattern_flows("all-to-all", n)
    assert len(set(zip(s.tolist(), d.tolist()))) == n * (n - 1)
    # a permutation with no fixed point that visits every rank in one cycle
    _, d = pattern_flows("permutation", n, seed=seed)
    assert sorted(d.tolist()) == list(range(n))
    x, seen = 0, set()
    while x not in seen:
        seen.add(x)
        x = int(d[x])
    assert len(seen) == n
    assert np.all(pattern_flows("incast", n)[1] == 0)


def test_demand_matrix_and_errors():
    m = pattern_demand("ring", 4, 2e6)
    assert m.shape == (4, 4) and m.sum() == 8e6 and m[3, 0] == 2e6
    assert pattern_demand("all-to-all", 1, 1.0).nnz == 0
    with pytest.raises(FlowError, match="pattern: 'butterfly' is not one of"):
        pattern_flows("butterfly", 4)
    with pytest.raises(FlowError, match="size_B"):
        pattern_demand("ring", 4, -1.0)
    n = int(np.sqrt(MAX_FLOWS)) + 2
    with pytest.raises(FlowError, match="all-to-all over"):
        pattern_flows("all-to-all", n)
