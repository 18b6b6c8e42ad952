"""Link utilization of the study's chosen plans: the data behind the report's utilization figure.

Stage: evaluation (see docs/design.md, "The study").  For the best plan of
one (model, mode) on every packet or direct fabric, the step of the largest
tensor-parallel collective that moves the most bytes is timed with the
max-min flow model (every replica's group at once, on the fabric the study
built) and the utilization of every busy link is kept, busiest first.
:func:`ocsnet.plot.link_utilization` draws these curves; it computes nothing.
"""

from __future__ import annotations

import numpy as np

from ..flow import phase_time
from ..traffic import Trace
from .algorithms import needs_fabric
from .records import Choice
from .timing import placed_ranks

__all__ = ["tp_step_utilization", "study_link_utilization"]


def tp_step_utilization(ev, fabric) -> dict | None:
    """Utilization of the busy links during the biggest step of a plan's largest tensor-parallel collective.

    Parameters
    ----------
    ev : Evaluation
        A full evaluation (its plan, collectives and placement strategy are used).
    fabric : Fabric
        The packet or direct fabric ``ev`` was evaluated on.

    Returns
    -------
    dict or None
        ``tp``, ``algorithm``, ``step_bytes`` (over all replicas), ``step_s``
        (the step's max-min time) and ``utilization`` (a list of link
        utilizations in ``(0, 1]``, busiest first); None when the plan has no
        tensor-parallel collective.
    """
    colls = [x for x in ev.profile.layer.collectives if x.group == "tp" and x.group_size > 1]
    if not colls:
        return None
    x = max(colls, key=lambda x: x.nbytes)
    placement = ev.options.placement if ev.options is not None else "topology-aware"
    ranks = placed_ranks(ev.plan, fabric, placement)
    tr = Trace.from_collective(x.kind, ranks.reshape(-1, ev.plan.tp), x.nbytes, x.algorithm, n_gpus=fabric.n_gpus,
                               fabric=fabric if needs_fabric(x.kind, x.algorithm) else None)
    demand = max(tr.demand, key=lambda m: m.sum())          # the step that moves the most bytes
    res = phase_time(fabric, demand, fidelity="max-min")
    u = np.sort(res.link_utilization[res.link_utilization > 0])[::-1]
    return {"tp": int(ev.plan.tp), "algorithm": x.algorithm, "step_bytes": float(demand.sum()),
            "step_s": float(res.time_s), "utilization": u.tolist()}


def study_link_utilization(choices: list[Choice], fabrics: dict, max_systems: int = 6) -> list[dict]:
    """One curve per packet or direct system of one (model, mode): its label and :func:`tp_step_utilization`.

    ``fabrics`` maps :attr:`System.fabric_key` to the fabric the study built.
    """
    out = []
    for c in choices:
        if c.best is None or c.system.kind == "OCS" or len(out) >= max_systems:
            continue
        data = tp_step_utilization(c.best, fabrics[c.system.fabric_key])
        if data is not None and data["utilization"]:
            out.append({"system": c.system.label, **data})
    return out
