"""Optical, direct and interchange topology code: build, apply circuits, file round trip, ASTRA-sim delay.

Each table compares the vectorized library call with a per-edge (or per-pair)
Python baseline measured in the same run, on the sizes the baseline can reach.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import scipy.sparse as sp

from benchmarks._util import measure, mib, print_table


def _ocs(n, d):
    from ocsnet.topology.optical import ocs_fabric
    f = ocs_fabric(n, d)
    return f.n_edges


def _ocs_baseline(n, d):
    """Per-port Python loop into a networkx DiGraph (what a naive generator does), one OCS per plane-line."""
    import networkx as nx
    from ocsnet.topology.optical import ocs_fabric
    shape = ocs_fabric.__globals__["_domain_shape"](n, 136, "mems-3d", None)
    ppl = ocs_fabric.__globals__["_planes_per_level"](d, len(shape), None)
    g = nx.DiGraph()
    stride, unit = 1, 0
    for s, dl in zip(shape, ppl):
        for _ in range(dl):
            for r in range(n):
                c = (r // stride) % s
                line = (r // (stride * s)) * stride + r % stride
                u = ("ocs", unit + line)
                g.add_edge(r, u, capacity_Bps=1.0, latency_s=1.0, tech="cpo")
                g.add_edge(u, r, capacity_Bps=1.0, latency_s=1.0, tech="cpo")
                _ = c
            unit += n // s
        stride *= s
    return g.number_of_edges()


def _circuits(n, d):
    r = np.arange(n)
    from ocsnet.topology.optical import ocs_fabric
    f = ocs_fabric(n, d)
    shape = f.ocs.domain_shape
    s0 = shape[0]
    ring = sp.csr_matrix((np.ones(n, np.int64), (r, (r // s0) * s0 + (r + 1) % s0)), shape=(n, n))
    return f, ring + ring.T


def _apply(f, C):
    from ocsnet.topology.circuits import apply_circuits
    return apply_circuits(f, C).n_edges


def _apply_baseline(f, C):
    """Python loop over circuits: validate budgets and pairs, build an edge dict."""
    from ocsnet.topology.circuits import pair_level
    d = f.ocs.ports_per_gpu
    C = C.tocoo()
    rows, cols, edges = {}, {}, {}
    b = f.ocs.circuit_Bps
    for i, j, v in zip(C.row.tolist(), C.col.tolist(), C.data.tolist()):
        if i == j or v < 0 or pair_level(f, [i], [j])[0] < 0:
            raise ValueError
        rows[i] = rows.get(i, 0) + v
        cols[j] = cols.get(j, 0) + v
        edges[(i, j)] = v * b
    assert max(rows.values()) <= d and max(cols.values()) <= d
    return len(edges)


def _torus(dims):
    from ocsnet.topology.direct import torus
    return torus(dims).n_edges


def _torus_baseline(dims):
    """networkx periodic grid graph (its own generator), then attributes edge by edge."""
    import networkx as nx
    g = nx.grid_graph(dim=list(dims)[::-1], periodic=True).to_directed()
    for u, v in g.edges:
        g.edges[u, v].update(capacity_Bps=1.0, latency_s=1.0, tech="cpo")
    return g.number_of_edges()


def _io(fab_fn, ext):
    from ocsnet.topology import io
    f = fab_fn()
    with tempfile.TemporaryDirectory() as d:
        p = io.write(f, os.path.join(d, "f" + ext))
        size = os.path.getsize(p)
        g = io.read(p)
    assert g.n_edges == f.n_edges
    return size


def _astra_all_pairs(n):
    from ocsnet.topology.astra import astra_send_delay
    cfg = {"topology": ["Ring", "FullyConnected", "Switch"], "npus_count": [2, n // 8, 4],
           "bandwidth": [200.0, 100.0, 50.0], "latency": [50.0, 500.0, 2000.0]}
    s, t = np.nonzero(~np.eye(n, dtype=bool))
    return float(astra_send_delay(cfg, s, t, 1e6, multi_dim="all").sum())


def _astra_loop(n):
    from ocsnet.topology.astra import astra_send_delay
    cfg = {"topology": ["Ring", "FullyConnected", "Switch"], "npus_count": [2, n // 8, 4],
           "bandwidth": [200.0, 100.0, 50.0], "latency": [50.0, 500.0, 2000.0]}
    total = 0.0
    for s in range(n):
        for t in range(n):
            if s != t:
                total += astra_send_delay(cfg, s, t, 1e6, multi_dim="all")
    return total


def _row(label, size, m, base=None, extra=()):
    t = m["time_s"]
    bt = base["time_s"] if base else None
    return [label, size, None if t is None else t * 1e3, mib(m["peak_rss_B"]),
            None if bt is None else bt * 1e3, None if (t is None or bt is None) else bt / t, *extra]


def _warm() -> None:
    """Import and load the catalog in the parent, so forked cases time the work, not imports."""
    import networkx  # noqa: F401
    from ocsnet import hardware
    from ocsnet.topology import astra, direct, io, optical  # noqa: F401
    hardware.gpu("lite-base"), hardware.link("cpo"), hardware.ocs("mems-3d")
    optical.ocs_fabric(16, 2)
    io.to_node_link(direct.torus(4))


def main(quick: bool = False) -> None:
    _warm()
    d = 8
    sizes = [1024, 4096] if quick else [1024, 4096, 16384, 65536, 262144, 524288]
    base_max = 4096 if quick else 16384
    rows = []
    for n in sizes:
        m = measure(_ocs, n, d)
        b = measure(_ocs_baseline, n, d) if n <= base_max else None
        rows.append(_row("ocs_fabric", n, m, b, (m["result"],)))
    print_table("ocs_fabric(n, 8 ports): vectorized vs per-port networkx loop",
                ["case", "n_gpus", "time_ms", "peak_MiB", "baseline_ms", "speedup", "n_edges"], rows)

    rows = []
    for n in sizes:
        f, C = _circuits(n, d)           # built in the parent: the forked cases time apply only
        m = measure(_apply, f, C)
        b = measure(_apply_baseline, f, C) if n <= base_max else None
        del f, C
        rows.append(_row("apply_circuits", n, m, b, (m["result"],)))
    print_table("apply_circuits (2 circuits per GPU, sparse): vectorized vs per-circuit loop",
                ["case", "n_gpus", "time_ms", "peak_MiB", "baseline_ms", "speedup", "n_circuit_edges"], rows)

    tori = [(16, 16, 4), (16, 16, 16)] if quick else [(16, 16, 4), (16, 16, 16), (32, 32, 32), (64, 64, 64),
                                                        (64, 64, 128)]
    rows = []
    for dims in tori:
        n = int(np.prod(dims))
        m = measure(_torus, dims)
        b = measure(_torus_baseline, dims) if n <= (4096 if quick else 32768) else None
        rows.append(_row("torus", n, m, b, ("x".join(map(str, dims)),)))
    print_table("torus: vectorized vs networkx grid_graph(periodic) + per-edge attributes",
                ["case", "n_gpus", "time_ms", "peak_MiB", "baseline_ms", "speedup", "dims"], rows)

    from ocsnet.topology.direct import torus
    from ocsnet.topology.optical import ocs_fabric
    fabs = [("torus 16x16x4", lambda: torus((16, 16, 4)))] if quick else [
        ("torus 16x16x16", lambda: torus((16, 16, 16))), ("ocs 4096x8", lambda: ocs_fabric(4096, 8)),
        ("torus 32x32x32", lambda: torus((32, 32, 32)))]
    rows = []
    for label, fn in fabs:
        for ext in (".json", ".graphml"):
            m = measure(_io, fn, ext)
            rows.append([f"{label} {ext}", m["time_s"] and m["time_s"] * 1e3, mib(m["peak_rss_B"]),
                         m["result"] and m["result"] / 2**20])
    print_table("write + read round trip", ["case", "time_ms", "peak_MiB", "file_MiB"], rows)

    rows = []
    for n in ([64, 256] if quick else [64, 256, 1024, 4096]):
        m = measure(_astra_all_pairs, n)
        b = measure(_astra_loop, n) if n <= (64 if quick else 256) else None
        rows.append(_row("astra_send_delay all pairs", n, m, b, (n * (n - 1),)))
    print_table("astra_send_delay over all pairs: one vectorized call vs a call per pair",
                ["case", "n_npus", "time_ms", "peak_MiB", "baseline_ms", "speedup", "pairs"], rows)


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv)
