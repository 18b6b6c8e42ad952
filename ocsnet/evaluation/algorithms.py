"""Which collective algorithm the evaluation runs: ``auto`` resolved on the fabric, fabric-aware steps.

Stage 6 of the pipeline (evaluation).  ``evaluate`` names an algorithm per
collective kind; ``"auto"`` (the default) and the fabric-aware algorithms of
:mod:`ocsnet.collectives.fabric_aware` need the fabric and the group's GPU
ranks.  :func:`concrete` turns ``auto`` into the fastest algorithm for the
group by the max-min flow model (:func:`ocsnet.flow.best_algorithm`; on an
OCS fabric the ideal-circuit estimate with the fabric's reconfiguration
delay), memoized per fabric; :func:`group_steps` expands any algorithm for a
group.  See docs/design.md, "Fabric-aware collectives".
"""

from __future__ import annotations

import weakref

import numpy as np

from ..collectives import AUTO, FABRIC_ALGORITHMS, expand
from ..fabric import Fabric

__all__ = ["DEFAULT_AUTO", "concrete", "group_steps", "needs_fabric"]

#: Algorithm per collective kind that ``evaluate`` uses unless told otherwise.
DEFAULT_AUTO = {"all-reduce": AUTO, "reduce-scatter": AUTO, "all-gather": AUTO, "all-to-all": AUTO}


def needs_fabric(kind: str, algorithm: str) -> bool:
    """True for ``auto`` and the fabric-aware algorithms."""
    return algorithm == AUTO or algorithm in FABRIC_ALGORITHMS.get(kind, ())


#: Groups larger than this resolve ``auto`` by the collectives stage's estimate, not the flow model.
FLOW_CHOICE_MAX_GROUP = 256


def concrete(kind: str, algorithm: str, fabric: Fabric, group, nbytes: float, memo: dict, *,
             flow: bool = True, reconfig_delay_s: float | None = None, ocs_ranks=None) -> str:
    """The algorithm a group runs: ``algorithm`` itself, or for ``auto`` the fastest that applies.

    ``memo`` is a per-fabric dict; the choice is kept under the group's
    shape (kind, size, bytes, ranks).  ``flow=False`` (the alpha-beta screen
    of a plan search) and groups above :data:`FLOW_CHOICE_MAX_GROUP` use
    :func:`ocsnet.collectives.fabric_aware.choose`'s estimate instead of the
    flow model.  ``ocs_ranks``: on an OCS fabric, the ranks of the circuit
    sub-problem's group (defaults to ``group``).
    """
    if algorithm != AUTO:
        return algorithm
    g = np.asarray(group if ocs_ranks is None else ocs_ranks, dtype=np.int64)
    if len(g) <= 1:
        return "ring" if kind != "all-to-all" else "pairwise"
    use_flow = flow and len(g) <= FLOW_CHOICE_MAX_GROUP
    key = ("auto", kind, float(nbytes), g.tobytes(), reconfig_delay_s, use_flow)
    hit = memo.get(key)
    if hit is None:
        from ..collectives.fabric_aware import choose, ocs_info
        from ..flow import best_algorithm
        if ocs_info(fabric) is not None:
            hit = _choose_ocs(kind, fabric, g, nbytes, reconfig_delay_s)
        elif use_flow:
            hit = best_algorithm(kind, fabric, g, nbytes)[0]
        else:
            hit = choose(kind, fabric, g, nbytes)
        memo[key] = hit
    return hit


def _choose_ocs(kind, fabric, g, nbytes, reconfig_delay_s):
    from ..collectives import ALGORITHMS
    from ..collectives.fabric_aware import applies, estimate_s, ocs_info
    p = len(g)
    ports = ocs_info(fabric)["ports_per_gpu"]
    best, best_t = None, np.inf
    for alg in (*FABRIC_ALGORITHMS.get(kind, ()), *ALGORITHMS[kind]):
        if alg in FABRIC_ALGORITHMS.get(kind, ()):
            if applies(kind, alg, fabric, g) is not None:
                continue
        elif (alg == "rhd" and kind != "all-reduce" and p & (p - 1)) or alg in ("tree", "double-binary-tree"):
            continue
        steps = expand(kind, p, nbytes, alg, fabric=fabric, ranks=g, as_arrays=True)
        # a step whose ranks talk to more peers than they have ports needs several circuit
        # configurations inside the step: not a candidate (and the costliest to schedule)
        if any(len(src) and max(np.bincount(src).max(), np.bincount(dst).max()) > ports
               for src, dst, _ in steps):
            continue
        t = estimate_s(fabric, g, steps, reconfig_delay_s=reconfig_delay_s)
        if t < best_t * (1 - 1e-9):
            best, best_t = alg, t
    return best or ALGORITHMS[kind][0]


# Steps of fabric-aware collectives per fabric (weak keys): a plan search expands the same
# group's collective for every plan and fidelity.
_STEPS: "weakref.WeakKeyDictionary[Fabric, dict]" = weakref.WeakKeyDictionary()
_STEPS_MAX = 4096


def group_steps(kind: str, p: int, nbytes: float, algorithm: str, fabric: Fabric, group) -> list:
    """Compact steps of one group's collective (fabric-aware algorithms expanded on ``group``, memoized)."""
    if not needs_fabric(kind, algorithm):
        return expand(kind, p, nbytes, algorithm, as_arrays=True)
    g = np.asarray(group, dtype=np.int64)
    memo = _STEPS.get(fabric)
    if memo is None:
        memo = _STEPS[fabric] = {}
    key = (kind, p, float(nbytes), algorithm, g.tobytes())
    hit = memo.get(key)
    if hit is None:
        if len(memo) >= _STEPS_MAX:
            memo.clear()
        hit = memo[key] = expand(kind, p, nbytes, algorithm, fabric=fabric, ranks=g, as_arrays=True)
    return hit
