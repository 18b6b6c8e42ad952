"""Collective algorithms: patterns, volumes, data movement and closed-form times."""

import numpy as np
import pytest

from ocsnet.collectives import ALGORITHMS, alpha_beta_time, bytes_sent_per_rank, expand, step_time
from ocsnet.errors import WorkloadError

SIZES = [1, 2, 3, 5, 8, 12, 16]


@pytest.mark.parametrize("p", SIZES)
@pytest.mark.parametrize("kind,factor", [("all-reduce", lambda p: 2 * (p - 1) / p),
                                         ("reduce-scatter", lambda p: (p - 1) / p),
                                         ("all-gather", lambda p: (p - 1) / p)])
def test_ring_volume_and_pattern(kind, factor, p):
    N = 6e6
    steps = expand(kind, p, N, "ring")
    assert len(steps) == {"all-reduce": 2 * (p - 1)}.get(kind, p - 1)
    for m in steps:
        a = m.toarray()
        assert a.shape == (p, p) and np.all(np.diag(a) == 0)
        i, j = np.nonzero(a)
        assert np.array_equal(j, (i + 1) % p)
    np.testing.assert_allclose(bytes_sent_per_rank(steps, p), factor(p) * N)


def test_closed_form_matches_steps_ring():
    for p in SIZES:
        t = alpha_beta_time("all-reduce", p, 1e6, "ring", alpha_s=2e-6, bandwidth_Bps=1e9)
        assert t == pytest.approx(step_time(expand("all-reduce", p, 1e6), 2e-6, 1e9), rel=1e-12, abs=0)


def test_bad_input_is_refused():
    with pytest.raises(WorkloadError, match="group_size"):
        expand("all-reduce", 0, 1.0)
    with pytest.raises(WorkloadError, match="supported: " + ", ".join(ALGORITHMS["all-to-all"])):
        expand("all-to-all", 4, 1.0, "ring")
