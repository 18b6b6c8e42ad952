"""Fabric-aware collectives: symbolic data correctness, volumes, times against closed forms, bounds, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ocsnet import topology
from ocsnet.collectives import (bytes_sent_per_rank, expand, fabric_program, lower_bound_s, lower_bounds,
                                simulate)
from ocsnet.collectives.fabric_aware import choose
from ocsnet.collectives.program import SymbolicError
from ocsnet.collectives.rings import hierarchical_program, multi_ring_program, walecki_cycles
from ocsnet.errors import WorkloadError
from ocsnet.flow import phase_time
from ocsnet.topology.shape import block_shapes, torus_block

KINDS = ("all-reduce", "reduce-scatter", "all-gather")


def flow_time(fabric, ranks, steps) -> float:
    """Max-min time of compact steps of a group, step after step."""
    n = fabric.n_gpus
    r = np.asarray(ranks)
    total, cache = 0.0, {}
    for s, d, nb in steps:
        key = id(s), id(nb)
        if key not in cache:
            cache[key] = phase_time(fabric, sp.csr_matrix((nb, (r[s], r[d])), shape=(n, n))).time_s
        total += cache[key]
    return total


@st.composite
def torus_groups(draw):
    nd = draw(st.integers(1, 3))
    dims = tuple(draw(st.integers(2, 5)) for _ in range(nd))
    wrap = draw(st.booleans())
    f = topology.torus(dims, wrap=wrap)
    # a block: a (cyclic) interval per dimension
    lo = [draw(st.integers(0, k - 1)) for k in dims]
    ext = [draw(st.integers(1, k)) for k in dims]
    if not wrap:
        ext = [min(e, k - a) for e, k, a in zip(ext, dims, lo)]
    axes = [((a + np.arange(e)) % k) for a, e, k in zip(lo, ext, dims)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, nd)
    stride = np.cumprod([1, *dims[:-1]])
    ranks = (grid * stride).sum(axis=1)
    perm = draw(st.permutations(list(range(len(ranks)))))
    return f, ranks[np.asarray(perm, dtype=np.int64)]


@settings(max_examples=40, deadline=None)
@given(torus_groups(), st.sampled_from(KINDS + ("all-to-all",)), st.floats(1.0, 1e9))
def test_torus_programs_compute_the_collective(group, kind, nbytes):
    f, ranks = group
    if len(ranks) < 2:
        return
    prog = fabric_program(kind, "torus", f, ranks, nbytes, symbolic=True)
    simulate(prog)                                    # raises if any rank misses any reduced chunk
    steps = prog.steps()
    p = len(ranks)
    sent = bytes_sent_per_rank(steps, p)
    factor = {"all-reduce": 2 * (p - 1) / p, "reduce-scatter": (p - 1) / p,
              "all-gather": (p - 1) / p, "all-to-all": (p - 1) / p}[kind]
    if kind != "all-to-all":                          # bucket algorithms are bandwidth-optimal per rank
        np.testing.assert_allclose(sent, factor * nbytes, rtol=1e-9)
    else:                                             # dimension-ordered: one hop per dimension
        assert sent.min() >= factor * nbytes * (1 - 1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.sampled_from(KINDS), st.floats(1.0, 1e9))
def test_hierarchical_program_is_correct(G, L, kind, nbytes):
    rng = np.random.default_rng(G * 10 + L)
    members = rng.permutation(G * L).reshape(G, L)
    simulate(hierarchical_program(kind, members, nbytes, symbolic=True))


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 20), st.sampled_from(KINDS))
def test_multi_ring_program_is_correct(p, kind):
    rings = walecki_cycles(p)
    rings = rings + [c[::-1] for c in rings]
    simulate(multi_ring_program(kind, p, 1e6, rings, symbolic=True))


@pytest.mark.parametrize("p", list(range(3, 41)) + [64, 100])
def test_walecki_cycles_are_edge_disjoint_hamiltonian(p):
    cycles = walecki_cycles(p)
    seen = set()
    for c in cycles:
        assert sorted(c) == list(range(p))
        for i in range(p):
            e = frozenset((c[i], c[(i + 1) % p]))
            assert e not in seen
            seen.add(e)
    if p % 2 == 1 or ((p - 2) // 2) % 2 == 1:
        assert len(cycles) == ((p - 1) // 2 if p % 2 else p // 2 - 1)


def test_simulate_catches_a_broken_program():
    f = topology.torus((3, 4))
    prog = fabric_program("all-reduce", "torus", f, np.arange(12), 1e6, symbolic=True)
    del prog.steps_moves[-1]                          # drop the last all-gather step
    with pytest.raises(SymbolicError):
        simulate(prog)
    prog = fabric_program("reduce-scatter", "torus", f, np.arange(12), 1e6, symbolic=True)
    prog.steps_moves[1] = prog.steps_moves[1] + prog.steps_moves[1]   # a step sent twice: double count
    with pytest.raises(SymbolicError, match="twice"):
        simulate(prog)


@pytest.mark.parametrize("dims", [(4, 4, 4), (8, 8), (6,)])
def test_torus_all_reduce_reaches_the_injection_bound(dims):
    # closed form: 2 (p-1)/p N over the capacity of all 2n links of a GPU, plus one link latency per step
    f = topology.torus(dims, gpu="lite-netboost")
    p = f.n_gpus
    N = 1e9
    steps = expand("all-reduce", p, N, "torus", fabric=f, ranks=np.arange(p), as_arrays=True)
    assert len(steps) == 2 * sum(k - 1 for k in dims)
    b = f.meta["link_Bps"]
    inj = 2 * (p - 1) / p * N / (2 * len(dims) * b)
    t = flow_time(f, np.arange(p), steps)
    lat = float(f.latency_s.max())
    assert t == pytest.approx(inj + len(steps) * lat, rel=1e-9)
    assert lower_bound_s("all-reduce", f, None, N) == pytest.approx(inj, rel=1e-12)


def test_torus_on_sub_blocks_and_lines():
    f = topology.torus((4, 4, 4))
    for size in (2, 4, 8, 16, 32):
        shape = block_shapes((4, 4, 4), size)[0]
        ranks = np.arange(size)                    # contiguous ranks are the first block
        b = torus_block(f, ranks)
        assert b is not None and tuple(m for m in shape if m > 1) == b.shape
        simulate(fabric_program("all-reduce", "torus", f, ranks, 1e6, symbolic=True))


@pytest.mark.parametrize("fabric,ranks", [
    (topology.torus((4, 4), gpu="lite-netboost"), np.arange(16)),
    (topology.torus((4, 4), gpu="lite-netboost"), np.array([0, 1, 4, 5])),
    (topology.fully_connected(7, gpu="lite-netboost"), np.arange(7)),
    (topology.fully_connected(8, gpu="lite-netboost"), np.arange(8)),
    (topology.fat_tree(4), np.arange(16)),
])
def test_lower_bound_holds_for_every_algorithm(fabric, ranks):
    p = len(ranks)
    for kind in ("all-reduce", "all-gather"):
        lb = lower_bound_s(kind, fabric, ranks, 1e8)
        for alg in ("ring", "direct", "torus", "multi-ring", "auto"):
            try:
                steps = expand(kind, p, 1e8, alg, fabric=fabric, ranks=ranks, as_arrays=True)
            except WorkloadError:
                continue
            assert flow_time(fabric, ranks, steps) >= lb * (1 - 1e-9), (kind, alg)


def test_auto_picks_the_fabric_aware_algorithm_and_never_raises():
    t = topology.torus((4, 4, 4), gpu="lite-netboost")
    assert choose("all-reduce", t, np.arange(64), 1e9) == "torus"
    c = topology.fully_connected(7, gpu="lite-netboost")
    assert choose("all-reduce", c, np.arange(7), 1e9) in ("two-shot", "multi-ring")
    ft = topology.fat_tree(4)
    for kind in ("all-reduce", "reduce-scatter", "all-gather", "all-to-all", "broadcast", "send-recv"):
        for p in (1, 2, 3, 16):
            expand(kind, p, 1e6, "auto", fabric=ft, ranks=np.arange(p))
    a, b = expand("all-reduce", 4, 1e6, "auto"), expand("all-reduce", 4, 1e6)      # no fabric: the default
    assert len(a) == len(b) and all((x != y).nnz == 0 for x, y in zip(a, b))


def test_algorithms_that_do_not_apply_say_why():
    ft = topology.fat_tree(4)
    with pytest.raises(WorkloadError, match=r"torus: the group of 4 GPUs .* is not a torus"):
        expand("all-reduce", 4, 1e6, "torus", fabric=ft, ranks=[0, 1, 2, 3])
    t = topology.torus((4, 4))
    with pytest.raises(WorkloadError, match="not a block"):
        expand("all-reduce", 3, 1e6, "torus", fabric=t, ranks=[0, 1, 5])
    with pytest.raises(WorkloadError, match="multi-ring"):
        expand("all-reduce", 4, 1e6, "multi-ring", fabric=ft, ranks=[0, 1, 2, 3])
    with pytest.raises(WorkloadError, match="needs the fabric"):
        expand("all-reduce", 4, 1e6, "torus")
    with pytest.raises(WorkloadError, match="ranks"):
        expand("all-reduce", 4, 1e6, "torus", fabric=t, ranks=[0, 1, 1, 2])
    with pytest.raises(WorkloadError, match="hierarchical"):
        expand("all-reduce", 16, 1e6, "hierarchical", fabric=t, ranks=np.arange(16))


def test_hierarchical_on_dgx_nodes_and_bounds():
    f = topology.dgx_cluster(2)
    p = f.n_gpus
    steps = expand("all-reduce", p, 1e8, "hierarchical", fabric=f, ranks=np.arange(p), as_arrays=True)
    simulate(fabric_program("all-reduce", "hierarchical", f, np.arange(p), 1e8, symbolic=True))
    b = lower_bounds("all-reduce", f, np.arange(p), 1e8)
    assert b["cut_s"] > 0                                  # the scale-out links between the two nodes
    assert flow_time(f, np.arange(p), steps) >= max(b.values())


def test_lp_bound_against_closed_forms_and_algorithms():
    from ocsnet.collectives.synth import lp_bound_s
    # clique of p with links b: every rank receives (p-1) N / p over p-1 links -> N / (p b)
    for p in (3, 4, 5):
        f = topology.fully_connected(p, link_Bps=1e9)
        assert lp_bound_s("all-gather", f, np.arange(p), 6e9) == pytest.approx(6e9 / (p * 1e9), rel=1e-6)
    # a unidirectional-capacity ring of 8: the ring all-gather is optimal in both directions
    f = topology.torus(8, gpu="lite-netboost")
    r = np.arange(8)
    lp = lp_bound_s("reduce-scatter", f, r, 1e9)
    best = collective_time_of(f, r, "reduce-scatter", "torus")
    assert lp <= best * (1 + 1e-9)
    assert lp == pytest.approx(best, rel=1e-3)
    b = lower_bounds("all-gather", topology.fat_tree(4), np.arange(16), 1e9, lp=True)
    assert "lp_s" in b and b["lp_s"] >= b["injection_s"] * (1 - 1e-6)


def collective_time_of(f, r, kind, alg):
    return flow_time(f, r, expand(kind, len(r), 1e9, alg, fabric=f, ranks=r, as_arrays=True))


@pytest.mark.parametrize("fabric", [topology.fully_connected(5, gpu="lite-netboost"),
                                    topology.torus((3, 3), gpu="lite-netboost"),
                                    topology.fully_connected_groups(8, 4, gpu="lite-netboost")])
def test_synthesized_is_correct_and_near_its_lp(fabric):
    from ocsnet.collectives.synth import lp_bound_s
    r = np.arange(fabric.n_gpus)
    for kind in KINDS:
        simulate(fabric_program(kind, "synthesized", fabric, r, 1e9, symbolic=True))
    t = collective_time_of(fabric, r, "all-gather", "synthesized")
    lp = lp_bound_s("all-gather", fabric, r, 1e9)
    assert lp * (1 - 1e-9) <= t <= 1.3 * lp
    if fabric.meta["generator"] == "fully_connected":
        assert t == pytest.approx(lp, rel=1e-3)        # one tree per source: the direct all-gather


def test_synthesized_refuses_what_it_cannot_do():
    with pytest.raises(WorkloadError, match="synthesized: .* no direct GPU-to-GPU links"):
        expand("all-gather", 4, 1e6, "synthesized", fabric=topology.fat_tree(4), ranks=[0, 1, 2, 3])
    with pytest.raises(WorkloadError, match="too large for the LP"):
        expand("all-gather", 64, 1e6, "synthesized", fabric=topology.torus((4, 4, 4)), ranks=np.arange(64))


def test_best_algorithm_by_the_flow_model():
    from ocsnet.flow import best_algorithm, collective_time
    f = topology.torus((4, 4), gpu="lite-netboost")
    r = np.arange(16)
    name, times = best_algorithm("all-reduce", f, r, 1e8)
    assert name == "torus" and times["torus"] == min(times.values())
    assert times["ring"] == pytest.approx(flow_time(f, r, expand("all-reduce", 16, 1e8, as_arrays=True)), rel=1e-12)
    # collective_time agrees with plain phase_time step by step
    steps = expand("all-reduce", 16, 1e8, "torus", fabric=f, ranks=r, as_arrays=True)
    assert collective_time(f, r, steps) == pytest.approx(flow_time(f, r, steps), rel=1e-12)
