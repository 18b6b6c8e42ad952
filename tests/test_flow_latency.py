"""Alpha-beta transfer times: closed forms, ECMP bottlenecks, and ASTRA-sim's analytical backend."""

import itertools

import numpy as np
import pytest

from ocsnet.errors import FlowError
from ocsnet.flow import alpha_beta_time, bottleneck_Bps, route, transfer_time
from ocsnet.units import BYTES_PER_GIB
from test_flow_fabrics import fat_tree, ring, star


def test_ring_closed_form_vectorized():
    f = ring(8, cap=3e9, lat=250e-9)
    s, d = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    m = s != d
    nb = np.linspace(1e3, 1e7, m.sum())
    t = transfer_time(f, s[m], d[m], nb)
    hops = np.minimum((d[m] - s[m]) % 8, (s[m] - d[m]) % 8)
    np.testing.assert_allclose(t, hops * 250e-9 + nb / 3e9, rtol=1e-12)
    assert isinstance(transfer_time(f, 0, 4, 1e6), float)
    assert transfer_time(f, [[0], [1]], [2, 3], 1.0).shape == (2, 2)      # broadcast


def test_bottleneck_is_the_slowest_hop():
    # a star whose links all differ: GPU i's link has capacity (i + 1) GB/s each way
    f = star(4, cap=1e9)
    cap = f.capacity_Bps.copy()
    for e, (u, v) in enumerate(zip(f.src, f.dst)):
        cap[e] = (min(u, v) + 1) * 1e9
    r = route(f, [0, 3, 2], [3, 1, 3])
    np.testing.assert_allclose(bottleneck_Bps(r, cap), [1e9, 2e9, 3e9])
    np.testing.assert_allclose(alpha_beta_time(r, cap, 6e9), r.latency_s + [6.0, 3.0, 2.0])
    cap[0] = 0.0
    assert np.isinf(alpha_beta_time(r, cap, 1.0)[0])
    assert alpha_beta_time(r, cap, 0.0)[0] == r.latency_s[0]     # no bytes, no serialization


def test_ecmp_split_adds_paths():
    # k=4 fat-tree, 1 GB/s links: between pods the GPU's own uplink (fraction 1) is the bottleneck
    f = fat_tree(4, cap=1e9, lat=1e-7)
    assert transfer_time(f, 0, 15, 1e9, routing="ecmp") == pytest.approx(1.0 + 6e-7)
    # on an even ring the two directions tie at the antipode: ECMP uses both, twice the rate
    r8 = ring(8, cap=1e9, lat=0.0)
    assert transfer_time(r8, 0, 4, 1e9, routing="ecmp") == pytest.approx(0.5)
    assert transfer_time(r8, 0, 4, 1e9) == pytest.approx(1.0)


def test_errors():
    f = ring(4)
    with pytest.raises(FlowError, match=r"nbytes\[1\]: -2.0 is out of range"):      # the argument's own name
        transfer_time(f, [0, 1], [1, 2], [1.0, -2.0])
    with pytest.raises(FlowError, match="same GPU rank"):
        transfer_time(f, 1, 1, 1.0)


# ---- ASTRA-sim's congestion-unaware backend -------------------------------------------

def astra_formula(topology, npus, bw_GiBps, lat_ns, src, dst, nbytes):
    """ASTRA-sim's BasicTopology::send, written out here from its source: the first
    dimension whose address differs; hops * latency + bytes / (bandwidth in 2^30 B/s)."""
    k = np.array(npus)
    stride = np.concatenate([[1], np.cumprod(k[:-1])])
    a, b = (src // stride) % k, (dst // stride) % k
    dim = int(np.flatnonzero(a != b)[0])
    x, y, kd = a[dim], b[dim], k[dim]
    hops = {"Ring": min((y - x) % kd, (x - y) % kd), "FullyConnected": 1, "Switch": 2}[topology[dim]]
    return hops * lat_ns[dim] * 1e-9 + nbytes / (bw_GiBps[dim] * BYTES_PER_GIB)


CONFIGS = [
    (["Ring"], [8], [50.0], [500.0]),
    (["Switch"], [6], [100.0], [700.0]),
    (["FullyConnected"], [5], [25.0], [300.0]),
    (["Ring", "Switch"], [4, 3], [100.0, 50.0], [500.0, 1000.0]),
    (["Ring", "FullyConnected", "Switch"], [4, 3, 2], [200.0, 100.0, 50.0], [50.0, 500.0, 2000.0]),
    (["Ring", "Ring"], [3, 5], [64.0, 32.0], [10.0, 20.0]),
]


@pytest.mark.parametrize("topo,npus,bw,lat", CONFIGS)
def test_same_delay_as_astra_sim(topo, npus, bw, lat):
    astra = pytest.importorskip("ocsnet.topology.astra")
    cfg = {"topology": topo, "npus_count": npus, "bandwidth": bw, "latency": lat}
    fabric = astra.from_astra_yaml(cfg)
    n = fabric.n_gpus
    pairs = np.array([(s, d) for s, d in itertools.product(range(n), range(n)) if s != d])
    s, d = pairs[:, 0], pairs[:, 1]
    nb = np.full(len(s), 3 * 2.0 ** 20 + 17)
    ours = transfer_time(fabric, s, d, nb, gpu_forwarding=True)
    k = np.array(npus)
    stride = np.concatenate([[1], np.cumprod(k[:-1])])
    one_dim = ((s[:, None] // stride) % k != (d[:, None] // stride) % k).sum(axis=1) == 1
    # pairs that differ in one dimension: exactly ASTRA-sim's send delay (our own transcription ...)
    want = np.array([astra_formula(topo, npus, bw, lat, a, b, x) for a, b, x in zip(s, d, nb)])
    np.testing.assert_allclose(ours[one_dim], want[one_dim], rtol=1e-12)
    # ... and the topology package's, which truncates to whole ns as ASTRA-sim does
    exact = astra.astra_send_delay(cfg, s, d, nb)
    np.testing.assert_allclose(ours[one_dim], exact[one_dim], rtol=1e-12)
    trunc = astra.astra_send_delay(cfg, s, d, nb, integer_ns=True)
    assert np.all(np.abs(ours - exact)[one_dim] < 1e-18 + 1e-12 * exact[one_dim])
    assert np.all((ours[one_dim] * 1e9 - trunc[one_dim] * 1e9 >= -1e-6) & (ours[one_dim] * 1e9 - trunc[one_dim] * 1e9 < 1))
    # pairs that differ in several dimensions cross all of them here (ASTRA-sim's congestion-aware
    # route), which ASTRA-sim's congestion-unaware send charges as the first dimension only
    np.testing.assert_allclose(ours, astra.astra_send_delay(cfg, s, d, nb, multi_dim="all"), rtol=1e-12)
    if (~one_dim).any():
        assert np.all(ours[~one_dim] > exact[~one_dim])
