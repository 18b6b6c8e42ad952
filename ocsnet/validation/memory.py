"""Validation of remote memory: placement against its LP, KV streaming against its bound, the local limit.

Stage: validation (see docs/design.md, "Memory tiers and placement" and "Validation").
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .check import Check

__all__ = ["memory_checks"]


def memory_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """The greedy placement against scipy's LP; a decode step streaming its KV cache from one memory
    node of bandwidth B against KV bytes / B; a remote tier of unbounded bandwidth against local HBM;
    host DRAM against its closed form."""
    from .. import evaluate
    from ..memory import Demand, MemoryConfig, MemoryTier, Share, local_tier, lp_bound, tier
    from ..memory.placement import place
    from ..topology import attach_memory, fat_tree, torus
    from ..workload import ParallelPlan

    rng = np.random.default_rng(seed)
    for k in range(1 if quick else 4):
        d = Demand(rng.uniform(1e9, 80e9, 5) * np.array([1, 1, 0.01, 0, 0]), np.array([1.0, 0.25, 2, 2, 2]),
                   np.array([1.0, 0.25, 1, 1, 1]), int(rng.integers(4, 120)))
        shares = [Share(local_tier("lite-base"), 20e9, 837e9), Share(tier("cxl-pool"), rng.uniform(5e9, 60e9), 3e10),
                  Share(tier("host-dram"), rng.uniform(5e9, 60e9), 1.6e10)]
        p = place(d, shares)
        lp, _ = lp_bound(d, shares, p.remote_bytes)
        yield Check(name=f"placement greedy vs LP #{k}", group="memory",
                    what=f"remote traffic over bandwidth of the greedy placement ({d.layers} layers, 2 remote tiers) "
                         "against the same transportation problem solved as an LP",
                    quantity="time_us", ocsnet=p.estimate_s, reference=lp, source="LP (scipy HiGHS)", tolerance=1e-6)
    B = 5e9
    f = attach_memory(torus((4, 4), gpu="h100-sxm"), 1, tier="cxl-pool", ports=1, port_Bps=B, attach="gpu")
    plan = ParallelPlan(tp=4)
    kw = dict(batch=8, context=2048)
    ev = evaluate("llama3-70b", plan, f, "decode", memory=MemoryConfig(("cxl-pool",), rule={"kv_cache": "cxl-pool"}),
                  **kw)
    kv = ev.profile.memory.kv_cache_bytes * f.n_gpus
    yield Check(name="KV streaming bound", group="memory",
                what="decode step of Llama3-70B (tp=4, 16 H100s on a 4x4 torus) whose KV cache streams from one "
                     "memory node behind a 5 GB/s link, against KV bytes / B",
                quantity="time_ms", ocsnet=float(ev.stage_s.max()), reference=kv / B, relation=">=",
                source="closed form (every byte crosses the node's link)", tolerance=1e-9)
    g = fat_tree(4, gpu="h100-sxm")
    local = evaluate("llama3-70b", plan, g, "decode", **kw)
    free = MemoryTier("free-host", "host", capacity_bytes=1e15, bandwidth_Bps=1e30)
    ev = evaluate("llama3-70b", plan, g, "decode", **kw,
                  memory=MemoryConfig((free,), rule={"weights": "free-host", "kv_cache": "free-host"}))
    yield Check(name="unbounded remote bandwidth is local HBM", group="memory",
                what="TPOT with weights and KV cache on a remote tier of unbounded bandwidth and no latency, "
                     "against local HBM only", quantity="time_ms", ocsnet=ev.latency_s, reference=local.latency_s,
                source="closed form (the limit)", tolerance=1e-9)
    host = MemoryTier("slow-host", "host", capacity_bytes=1e15, bandwidth_Bps=10e9, latency_s=2e-6)
    ev = evaluate("llama3-70b", plan, g, "decode", **kw,
                  memory=MemoryConfig((host,), rule={"kv_cache": "slow-host"}, prefetch=False))
    L = int(ev.profile.stage_layers.max())
    ref = local.latency_s + L * (ev.profile.memory.kv_cache_bytes / L / 10e9 + 2e-6)
    yield Check(name="host DRAM closed form", group="memory",
                what="TPOT with the KV cache in host DRAM (10 GB/s, 2 us) and no prefetch, against local TPOT plus "
                     "every layer's KV share over the link plus its latency", quantity="time_ms",
                ocsnet=ev.latency_s, reference=ref, source="closed form", tolerance=1e-9)
