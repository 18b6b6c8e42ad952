"""Small fabrics for the flow-model tests, built here so the tests do not depend on
the topology generators, plus brute-force routing with networkx to compare against."""

from __future__ import annotations

import networkx as nx
import numpy as np

from ocsnet.fabric import Fabric


def ring(n: int, cap=1e9, lat=1e-6, bidirectional: bool = True) -> Fabric:
    """n GPUs in a ring, GPU i linked to i+1 (and back if bidirectional)."""
    s = np.arange(n)
    d = (s + 1) % n
    if bidirectional:
        s, d = np.concatenate([s, d]), np.concatenate([d, s])
    return Fabric(["gpu"] * n, s, d, cap, lat, "cpo", name=f"ring{n}")


def torus2(a: int, b: int, cap=1e9, lat=1e-6) -> Fabric:
    """An a x b torus of GPUs (a, b >= 3), rank = x + a * y."""
    idx = np.arange(a * b).reshape(b, a)
    s, d = [], []
    for ax in (0, 1):
        for sh in (1, -1):
            s.append(idx.ravel())
            d.append(np.roll(idx, sh, axis=ax).ravel())
    return Fabric(["gpu"] * (a * b), np.concatenate(s), np.concatenate(d), cap, lat, "cpo", name=f"torus{a}x{b}")


def fat_tree(k: int, cap=1e9, lat=1e-6) -> Fabric:
    """The k-ary fat-tree (Al-Fares et al.): GPUs first, then edge, aggregation and core switches."""
    h = k // 2
    n_gpu, n_edge, n_agg, n_core = k ** 3 // 4, k * h, k * h, h * h
    e0, a0, c0 = n_gpu, n_gpu + n_edge, n_gpu + n_edge + n_agg
    u, v = [], []
    for g in range(n_gpu):
        u.append(g); v.append(e0 + g // h)
    for p in range(k):
        for i in range(h):
            for j in range(h):
                u.append(e0 + p * h + i); v.append(a0 + p * h + j)
    for p in range(k):
        for j in range(h):
            for m in range(h):
                u.append(a0 + p * h + j); v.append(c0 + j * h + m)
    u, v = np.array(u), np.array(v)
    kind = ["gpu"] * n_gpu + ["packet_switch"] * (n_edge + n_agg + n_core)
    return Fabric(kind, np.concatenate([u, v]), np.concatenate([v, u]), cap, lat, "pluggable", name=f"ft{k}")


def star(n: int, cap=1e9, lat=1e-6) -> Fabric:
    """n GPUs on one packet switch (node n)."""
    g = np.arange(n)
    sw = np.full(n, n)
    return Fabric(["gpu"] * n + ["packet_switch"], np.concatenate([g, sw]), np.concatenate([sw, g]),
                  cap, lat, "copper", name=f"star{n}")


def random_fabric(seed: int, n_gpus: int = 6, n_sw: int = 4, p: float = 0.5, gpu_links: int = 2) -> Fabric:
    """A random connected switched fabric: a random switch graph, each GPU on 1..gpu_links switches,
    random capacities and latencies."""
    rng = np.random.default_rng(seed)
    g = nx.gnp_random_graph(n_sw, p, seed=int(rng.integers(1 << 30)))
    for i in range(n_sw - 1):                 # keep it connected
        g.add_edge(i, i + 1)
    u = [n_gpus + a for a, b in g.edges] + [n_gpus + b for a, b in g.edges]
    v = [n_gpus + b for a, b in g.edges] + [n_gpus + a for a, b in g.edges]
    for gpu in range(n_gpus):
        for sw in rng.choice(n_sw, size=int(rng.integers(1, gpu_links + 1)), replace=False):
            u += [gpu, n_gpus + sw]
            v += [n_gpus + sw, gpu]
    m = len(u)
    return Fabric(["gpu"] * n_gpus + ["packet_switch"] * n_sw, u, v, rng.uniform(1e9, 4e9, m),
                  rng.uniform(1e-7, 1e-6, m), "pluggable", name=f"random{seed}")


def random_direct(seed: int, n: int = 7, p: float = 0.4) -> Fabric:
    """A random connected directed graph of GPUs only (GPUs forward)."""
    rng = np.random.default_rng(seed)
    g = nx.gnp_random_graph(n, p, seed=int(rng.integers(1 << 30)), directed=True)
    for i in range(n):                        # a directed cycle keeps it strongly connected
        g.add_edge(i, (i + 1) % n)
    u, v = map(np.array, zip(*g.edges))
    return Fabric(["gpu"] * n, u, v, rng.uniform(1e9, 4e9, len(u)), rng.uniform(1e-7, 1e-6, len(u)), "cpo")


def transit_graph(fabric: Fabric, s_node: int, t_node: int, forwarding: bool) -> nx.DiGraph:
    """The directed graph a flow from s to t may use: no OCS node, and no GPU other than
    s and t unless GPUs forward."""
    G = fabric.graph
    keep = [x for x in G if G.nodes[x]["kind"] != "ocs"
            and (forwarding or G.nodes[x]["kind"] != "gpu" or x in (s_node, t_node))]
    return G.subgraph(keep)


def brute_ecmp(fabric: Fabric, s_rank: int, t_rank: int, forwarding: bool) -> dict:
    """Per-hop ECMP fractions of one flow, edge (u, v) -> fraction, with networkx and Python loops."""
    s, t = int(fabric.gpus[s_rank]), int(fabric.gpus[t_rank])
    G = transit_graph(fabric, s, t, forwarding)
    dist = nx.shortest_path_length(G, target=t)
    out = {}
    frontier = {s: 1.0}
    while frontier:
        nxt = {}
        for u, x in frontier.items():
            if u == t:
                continue
            hops = [w for w in G.successors(u) if dist.get(w, -1) == dist[u] - 1]
            for w in hops:
                out[(u, w)] = out.get((u, w), 0.0) + x / len(hops)
                nxt[w] = nxt.get(w, 0.0) + x / len(hops)
        frontier = nxt
    return out


# ---- the helpers themselves, against closed forms ----------------------------------

def test_fat_tree_counts():
    for k in (2, 4, 6):
        f = fat_tree(k)
        assert f.n_gpus == k ** 3 // 4
        assert f.n_nodes - f.n_gpus == 5 * k * k // 4
        assert f.n_edges == 2 * 3 * k ** 3 // 4
        gpu_sw = f.graph.subgraph([x for x in f.graph if f.kind[x] != "gpu" or x in (0, f.gpus[-1])])
        assert nx.shortest_path_length(gpu_sw, 0, int(f.gpus[-1])) == 6


def test_ring_torus_counts():
    assert ring(5).n_edges == 10 and ring(5, bidirectional=False).n_edges == 5
    t = torus2(3, 4)
    assert t.n_edges == 4 * 12
    assert nx.diameter(t.graph.to_undirected()) == 1 + 2


def test_brute_ecmp_sums_to_one_per_layer():
    f = fat_tree(4)
    fr = brute_ecmp(f, 0, 15, False)
    assert abs(sum(fr.values()) - 6) < 1e-12         # six layers of edges, each carrying the whole flow
