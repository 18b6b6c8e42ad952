"""Expansion of collectives into steps: vectorized ``expand`` against a per-step Python loop.

For every (kind, algorithm) and group size p, the time and peak memory of
``ocsnet.collectives.expand`` (a list of CSR matrices) against a
straightforward construction that fills a dict-of-keys matrix entry by entry
in a Python loop per step and converts it to CSR, both measured in the same
run in forked processes.  The baseline is skipped (``-``) where it would set
more than BASELINE_MAX_ENTRIES entries (minutes of Python loops).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmarks._util import measure, mib, print_table
from ocsnet.collectives import ALGORITHMS, PIPELINED, binary_tree, double_binary_tree, expand

NBYTES = float(2 ** 28)  # 256 MiB buffer
CHUNKS = 8  # for the pipelined algorithms
BASELINE_MAX_ENTRIES = 1_000_000


# ---- the baseline: one dict-of-keys matrix per step, filled pair by pair ------------------
def _loop_steps(kind: str, alg: str, p: int, N: float, k: int):
    """Yield each step as a list of (i, j, bytes), built with plain Python loops."""
    L = p.bit_length() - 1
    if alg == "ring" and kind in ("all-reduce", "reduce-scatter", "all-gather"):
        n = 2 * (p - 1) if kind == "all-reduce" else p - 1
        for _ in range(n):
            yield [(i, (i + 1) % p, N / p) for i in range(p)]
    elif alg == "direct" and kind == "broadcast":
        yield [(0, j, N) for j in range(1, p)]
    elif alg in ("direct", "two-shot"):
        per = N if (kind, alg) == ("all-reduce", "direct") else N / p
        for _ in range(2 if alg == "two-shot" else 1):
            yield [(i, j, per) for i in range(p) for j in range(p) if i != j]
    elif alg == "rhd":  # p a power of two here
        halving = [(p >> (s + 1), N / 2 ** (s + 1)) for s in range(L)]
        doubling = [(1 << s, N * 2 ** s / p) for s in range(L)]
        plan = {"reduce-scatter": halving, "all-gather": doubling, "all-reduce": halving + doubling}[kind]
        for d, b in plan:
            yield [(i, i ^ d, b) for i in range(p)]
    elif alg == "pairwise":
        for s in range(1, p):
            yield [(i, (i + s) % p, N / p) for i in range(p)]
    elif kind == "send-recv":
        for _ in range(k):
            yield [(i, (i + 1) % p, N / k) for i in range(p if alg == "ring" else p - 1)]
    elif (kind, alg) == ("broadcast", "ring"):
        for s in range(p - 2 + k):
            yield [(i, i + 1, N / k) for i in range(p - 1) if 0 <= s - i < k]
    else:  # trees: bucket (rank, chunk) events by step
        trees = [binary_tree(p)] if alg == "tree" else list(double_binary_tree(p))
        b = N / k / len(trees)
        phases = (True, False) if kind == "all-reduce" else (False,)
        for reduce in phases:
            buckets: dict[int, list] = {}
            for parent, depth, slot in trees:
                H = int(depth.max())
                for x in range(p):
                    if parent[x] < 0:
                        continue
                    for c in range(k):
                        if reduce:
                            buckets.setdefault(2 * (c + H - depth[x]) + slot[x], []).append((x, parent[x], b))
                        else:
                            buckets.setdefault(2 * (c + depth[x] - 1) + slot[x], []).append((parent[x], x, b))
            for s in sorted(buckets):
                yield buckets[s]


def baseline_expand(kind: str, alg: str, p: int, N: float, k: int):
    out = []
    for pairs in _loop_steps(kind, alg, p, N, k):
        d = sp.dok_matrix((p, p))
        for i, j, b in pairs:
            d[i, j] = d.get((i, j), 0.0) + b
        out.append(d.tocsr())
    return len(out), int(sum(m.nnz for m in out))


def fast_expand(kind: str, alg: str, p: int, N: float, k: int):
    out = expand(kind, p, N, alg, chunks=k)
    return len(out), int(sum(m.nnz for m in out))


def main(quick: bool = False) -> None:
    sizes = (8, 64) if quick else (8, 64, 512, 4096)
    rows = []
    for kind, algos in ALGORITHMS.items():
        for alg in algos:
            k = CHUNKS if (kind, alg) in PIPELINED else 1
            for p in sizes:
                entries = sum(len(s[0]) for s in expand(kind, p, NBYTES, alg, chunks=k, as_arrays=True))
                ours = measure(fast_expand, kind, alg, p, NBYTES, k)
                base = (measure(baseline_expand, kind, alg, p, NBYTES, k)
                        if entries <= BASELINE_MAX_ENTRIES else {"time_s": None, "peak_delta_B": None})
                if base["time_s"] is not None:
                    assert base["result"] == ours["result"], (kind, alg, p)  # same steps, same entries
                t, tb = ours["time_s"], base["time_s"]
                rows.append([kind, alg, p, ours["result"][0] if ours["result"] else None, entries,
                             None if t is None else t * 1e3, mib(ours["peak_delta_B"]),
                             None if tb is None else tb * 1e3, mib(base["peak_delta_B"]),
                             None if (t is None or tb is None) else tb / t])
    print_table(f"expand: vectorized vs per-step Python loop (dict-of-keys), nbytes = 256 MiB, "
                f"chunks = {CHUNKS} where pipelined",
                ["kind", "algorithm", "p", "steps", "entries", "time_ms", "mem_MiB",
                 "loop_time_ms", "loop_mem_MiB", "speedup"], rows)


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv)
