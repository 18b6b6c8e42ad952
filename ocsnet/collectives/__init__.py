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

from .algorithms import ALGORITHMS, AUTO, FABRIC_ALGORITHMS, PIPELINED, expand
from .cost import alpha_beta_time, bus_bandwidth_factor, n_steps
from .steps import bytes_received_per_rank, bytes_sent_per_rank, step_time, to_matrices
from .trees import binary_tree, double_binary_tree


def __getattr__(name: str):
    # the fabric-aware layer and the bounds load on first use (they need networkx, scipy's LP solver)
    if name in ("lower_bound_s", "lower_bounds"):
        from . import bounds
        return getattr(bounds, name)
    if name in ("choose_algorithm", "fabric_program"):
        from . import fabric_aware
        return fabric_aware.choose if name == "choose_algorithm" else fabric_aware.fabric_program
    if name == "simulate":
        from .program import simulate
        return simulate
    raise AttributeError(f"module 'ocsnet.collectives' has no attribute {name!r}")

__all__ = [
    "ALGORITHMS", "FABRIC_ALGORITHMS", "AUTO", "PIPELINED", "expand", "lower_bound_s", "lower_bounds",
    "choose_algorithm", "fabric_program", "simulate", "alpha_beta_time", "bus_bandwidth_factor", "n_steps",
    "step_time", "bytes_sent_per_rank", "bytes_received_per_rank", "to_matrices",
    "binary_tree", "double_binary_tree",
]
