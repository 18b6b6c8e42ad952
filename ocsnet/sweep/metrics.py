"""The columns a sweep stores for every design point, with their units in their names.

Stage: sweep (see docs/design.md).  No imports: the spec checks objectives
against these names, the point evaluation fills them, the store types them.
"""

__all__ = ["METRICS", "TEXT_METRICS", "FAILURE_METRICS", "STATUSES"]

STATUSES = ("ok", "infeasible", "failed")

#: Metric columns of a result row (float unless named in :data:`TEXT_METRICS`), with units in the names.
METRICS = ("tokens_per_s_per_h100e", "tokens_per_s_per_gpu", "tokens_per_s_per_kW", "tokens_per_s_per_cost",
           "usd_per_million_tokens", "latency_ms", "layer_us", "compute_us", "comm_us", "reconfig_us",
           "memory_GB", "gpus_per_replica", "batch", "failures", "plans_evaluated",
           # the GPU the point ran (derived ones differ from the catalog)
           "gpu_h100e", "gpu_relative_cost", "gpu_tdp_W", "gpu_network_GBps", "gpu_hbm_GB",
           # failures (with the repair_policy knob): blast radius of one GPU, capacity lost, goodput
           "blast_radius_h100e", "blast_radius_share", "capacity_lost_share", "failures_per_h",
           "goodput_tokens_per_s_per_h100e", "goodput_tokens_per_s_per_kW", "goodput_tokens_per_s_per_cost",
           "elapsed_s")
#: Metrics that need the repair_policy knob.
FAILURE_METRICS = ("blast_radius_h100e", "blast_radius_share", "capacity_lost_share", "failures_per_h",
                   "goodput_tokens_per_s_per_h100e", "goodput_tokens_per_s_per_kW", "goodput_tokens_per_s_per_cost")
TEXT_METRICS = ("plan", "algorithm")

