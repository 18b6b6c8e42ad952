"""Memory tiers and placement: where weights, KV cache and activations live.

Stage 2 of the pipeline, next to :mod:`ocsnet.workload` (see docs/design.md,
"Memory tiers and placement").  :mod:`.tiers` loads the tiers of
``ocsnet/catalog/memory.toml`` (peer HBM, memory nodes, host DRAM) and
derives the local one from the GPU; :mod:`.placement` places one GPU's bytes
over them by a user rule or a greedy optimization with an LP check.  The
per-layer model times the remote reads on the fabric
(:mod:`ocsnet.evaluation.remote`).
"""

from .config import MEMORY_MODES, MemoryConfig, memory_config
from .placement import ITEMS, Demand, Placement, Share, demand, lp_bound, place
from .tiers import KINDS, MemoryTier, host_tier_for, local_tier, tier, tiers

__all__ = ["MEMORY_MODES", "MemoryConfig", "memory_config", "ITEMS", "KINDS", "Demand", "Placement", "Share", "MemoryTier", "demand", "place", "lp_bound",
           "tier", "tiers", "local_tier", "host_tier_for"]
