"""OCSProblem: input validation with the field named, storage, lower bound, construction from a trace."""

import numpy as np
import pytest
import scipy.sparse as sp

from ocsnet.errors import ScheduleError
from ocsnet.schedule.problem import OCSProblem


def ring(n, nbytes=1e6, shift=1):
    return np.roll(np.eye(n), shift, axis=1) * nbytes


def make(**kw):
    base = dict(demand=[ring(4), ring(4, 2e6, 2)], gap_s=[1e-3, 2e-3], ports=2, circuit_Bps=1e9,
                reconfig_delay_s=1e-3)
    base.update(kw)
    return OCSProblem(**base)


def test_dense_and_sparse_demand_are_stored_the_same():
    dense = np.stack([ring(4), ring(4, 2e6, 2)])
    a = make(demand=dense)
    b = make(demand=[sp.csr_matrix(m) for m in dense])
    assert a.P == b.P == 2 and a.N == b.N == 4
    for x, y in zip(a.demand, b.demand):
        assert sp.isspmatrix_csr(x) and x.dtype == np.float64
        assert (x != y).nnz == 0
        assert x.nnz == 4  # explicit zeros dropped


@pytest.mark.parametrize("kw, field", [
    (dict(demand=[ring(4) * -1]), "demand[0]"),
    (dict(demand=[ring(4), np.eye(4)]), "demand[1]"),                     # diagonal
    (dict(demand=[ring(4), ring(3)]), "demand[1]"),                       # shape mismatch
    (dict(demand=[np.ones((3, 4))]), "demand[0]"),                        # not square
    (dict(demand=np.ones((4, 4))), "demand"),                             # not 3-D
    (dict(demand=[]), "demand"),
    (dict(demand=[ring(4) * np.nan]), "demand[0]"),
    (dict(gap_s=[1e-3, -1.0]), "gap_s[1]"),
    (dict(gap_s=[1e-3]), "gap_s"),
    (dict(gap_s=[1e-3, np.nan]), "gap_s[1]"),
    (dict(ports=0), "ports"),
    (dict(ports=1.5), "ports"),
    (dict(circuit_Bps=0.0), "circuit_Bps"),
    (dict(circuit_Bps=np.inf), "circuit_Bps"),
    (dict(reconfig_delay_s=-1e-6), "reconfig_delay_s"),
    (dict(packet_Bps=-1.0), "packet_Bps"),
    (dict(reserved=np.full((4, 4), 1) - np.eye(4)), "reserved"),          # 3 per row > 2 ports
    (dict(reserved=ring(4, 0.5)), "reserved"),                            # not integer
    (dict(reserved=np.eye(4)), "reserved[0, 0]"),                         # diagonal
    (dict(reserved=np.zeros((3, 3))), "reserved"),
    (dict(allowed=np.ones((3, 3), bool)), "allowed"),
    (dict(allowed=np.zeros((4, 4), bool)), "demand[0]"),                  # never servable
    (dict(reserved=2 * ring(4, 1)), "demand[1]"),                         # all ports reserved for the ring
    (dict(period=(0, 2, 2)), "period"),
])
def test_invalid_problem_names_the_field(kw, field):
    with pytest.raises(ScheduleError) as e:
        make(**kw)
    assert str(e.value).startswith(field), str(e.value)


def test_unservable_demand_is_fine_with_a_packet_network_or_reserved_circuit():
    make(allowed=np.zeros((4, 4), bool), packet_Bps=1e8)
    p = make(reserved=ring(4, 1) + ring(4, 1, 2))      # ring and ring-2 pinned: everything served
    assert list(p.free_out) == [0, 0, 0, 0]


def test_lower_bound_closed_form():
    # phase 0: GPU 0 sends 1 MB to 1 and 3 MB to 2 -> row 4 MB; column max 3 MB
    D0 = np.zeros((3, 3)); D0[0, 1] = 1e6; D0[0, 2] = 3e6
    # phase 1: GPUs 0 and 1 both send 2 MB to 2 -> column 4 MB
    D1 = np.zeros((3, 3)); D1[0, 2] = 2e6; D1[1, 2] = 2e6
    p = OCSProblem([D0, D1], [1e-3, 5e-4], ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-2)
    assert p.lower_bound_s() == pytest.approx(1.5e-3 + 4e6 / 2e9 + 4e6 / 2e9)
    q = p.replace(packet_Bps=2e9)          # the packet network adds to every GPU's rate
    assert q.lower_bound_s() == pytest.approx(1.5e-3 + 2 * 4e6 / 4e9)
    np.testing.assert_allclose(p.row_sums(), [[4e6, 0, 0], [2e6, 2e6, 0]])
    np.testing.assert_allclose(p.col_sums(), [[0, 1e6, 3e6], [0, 0, 4e6]])
    r, c = p.support()
    assert list(zip(r.tolist(), c.tolist())) == [(0, 1), (0, 2), (1, 2)]


def test_replace_and_select():
    p = make()
    q = p.select([1])
    assert q.P == 1 and q.gap_s[0] == 2e-3 and (q.demand[0] != p.demand[1]).nnz == 0
    assert p.replace(ports=3).ports == 3 and p.ports == 2
    with pytest.raises(ScheduleError, match="ports"):
        p.replace(ports=-1)


def test_allowed_mask_and_free_ports():
    allowed = np.ones((4, 4), bool)
    allowed[0, 2] = False
    p = make(allowed=allowed, demand=[ring(4)], gap_s=[0.0], reserved=ring(4, 1, 3))
    assert not p.is_allowed([0], [2])[0] and p.is_allowed([0], [1])[0] and not p.is_allowed([1], [1])[0]
    assert list(p.free_out) == [1, 1, 1, 1] and list(p.free_in) == [1, 1, 1, 1]


def test_from_trace_with_an_ocs_fabric():
    from ocsnet.traffic import Trace

    t = Trace([sp.csr_matrix(ring(8)), sp.csr_matrix(ring(8, 1e6, 3))], [1e-4, 2e-4], period=None)

    from ocsnet.ocsinfo import OCSInfo

    class FakeFabric:                      # the only things from_trace reads
        n_gpus = 8
        name = "fake"
        ocs = OCSInfo(ports_per_gpu=4, domain_shape=(8,), planes_per_level=(4,), circuit_Bps=5e10,
                      circuit_latency_s=0.0, reconfig_delay_s=1e-5, ocs="fast-ocs", ocs_ports=8, link="cpo",
                      n_ocs=4)

    p = OCSProblem.from_trace(t, FakeFabric())
    assert (p.P, p.N, p.ports, p.circuit_Bps, p.reconfig_delay_s) == (2, 8, 4, 5e10, 1e-5)
    np.testing.assert_array_equal(p.gap_s, [1e-4, 2e-4])
    assert p.from_trace(t, FakeFabric(), reconfig_delay_s=0.0).reconfig_delay_s == 0.0
    with pytest.raises(ScheduleError, match="ports_per_gpu"):
        OCSProblem.from_trace(t, None, circuit_Bps=1e9, reconfig_delay_s=0.0)
    FakeFabric.n_gpus = 16
    with pytest.raises(ScheduleError, match="trace"):
        OCSProblem.from_trace(t, FakeFabric())


def test_from_trace_on_a_real_ocs_fabric():
    import ocsnet.topology as topo
    fab = topo.ocs_fabric(8, 2, ocs="fast-ocs")
    from ocsnet.traffic import Trace
    t = Trace([sp.csr_matrix(ring(8))], [1e-4])
    p = OCSProblem.from_trace(t, fab)
    assert p.ports == 2 and p.N == 8 and p.circuit_Bps > 0 and p.reconfig_delay_s > 0


def test_from_trace_takes_the_allowed_pairs_of_a_multi_level_grid():
    import ocsnet.topology as topo
    from ocsnet.traffic import Trace
    fab = topo.ocs_fabric(12, 2, ocs="fast-ocs", domain_shape=[4, 3])
    if fab.ocs.all_to_all:
        pytest.skip("grid fabric is all-to-all")
    mask = topo.allowed_pairs(fab)
    mask = mask.toarray() if sp.issparse(mask) else np.asarray(mask)
    i, j = np.argwhere(mask)[0]
    D = np.zeros((12, 12)); D[i, j] = 1e6
    p = OCSProblem.from_trace(Trace([sp.csr_matrix(D)], [0.0]), fab)
    np.testing.assert_array_equal(p.allowed, mask)
