"""Collective algorithms expanded into steps, and their alpha-beta cost.

Stage 4 of the pipeline: the workload names each layer's collectives; this
package turns one collective into its sequential steps (given the fabric and
the group's GPU ranks, also with the fabric-aware algorithms of
:mod:`~ocsnet.collectives.fabric_aware` and ``algorithm="auto"``; lower
bounds in :mod:`~ocsnet.collectives.bounds`) (demand matrices over
the group's ranks) that :mod:`ocsnet.traffic` places onto the GPUs as phases,
and gives the closed-form alpha-beta time that the evaluation uses.

>>> from ocsnet.collectives import expand, alpha_beta_time, step_time
>>> steps = expand("reduce-scatter", 8, 8e6, "rhd")
>>> [float(m.data[0]) for m in steps]
[4000000.0, 2000000.0, 1000000.0]
>>> t = alpha_beta_time("reduce-scatter", 8, 8e6, "rhd", alpha_s=1e-6, bandwidth_Bps=1e9)
>>> abs(t - step_time(steps, 1e-6, 1e9)) < 1e-15
True
"""

from ..lazy import exports

# The fabric-aware layer (scipy's LP solver) loads on first use like every other name.
__all__, __getattr__, __dir__ = exports(__name__, {
    "ALGORITHMS": "algorithms", "FABRIC_ALGORITHMS": "algorithms", "AUTO": "algorithms",
    "PIPELINED": "algorithms", "expand": "expansion",
    "lower_bound_s": "bounds", "lower_bounds": "bounds",
    "choose_algorithm": "fabric_aware:choose", "fabric_program": "fabric_aware", "simulate": "program",
    "alpha_beta_time": "cost", "bus_bandwidth_factor": "cost", "n_steps": "cost",
    "step_time": "steps", "bytes_sent_per_rank": "steps", "bytes_received_per_rank": "steps",
    "to_matrices": "steps",
    "binary_tree": "trees", "double_binary_tree": "trees",
})
