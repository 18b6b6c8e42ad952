"""Lower bounds on the optimal makespan of an OCS scheduling problem.

Stage 4 of the pipeline (``ocsnet.schedule``).
"""

from __future__ import annotations

__all__ = ["lower_bound_s"]


def lower_bound_s(problem) -> float:
    """The best proven lower bound on the optimal makespan, seconds."""
    return problem.lower_bound_s()
