"""The ordered collective calls of a model step over placed GPUs: which groups run which collective, after how much compute.

Stage 2 of the pipeline (workload), the last step before the trace:
:func:`step_calls` walks a :class:`~ocsnet.workload.step.StepProfile` layer by
layer and stage by stage and emits one :class:`Call` per collective, with
the GPU ranks of every group that runs it at that moment and the compute
time since the previous call.  :func:`ocsnet.traffic.build_trace` expands
each call into its algorithm's steps (phases).

Pipeline schedules
------------------
``"steady"``: the pipeline is full (at least ``pp`` micro-batches in
flight), all stages run in lock-step on different micro-batches, so a call
at stage-local layer ``j`` holds the groups of every stage that has a layer
``j``; after the layers one call sends every stage's activations to the next
(training: forward slot, LM head, backward slot in reverse, gradients sent
back).  Warm-up and drain bubbles are not modelled.
``"sequential"``: one micro-batch at a time walks the stages in order (the
latency view).  Layer indices are then global; in ``"steady"`` they are
stage-local (equal to global when ``pp == 1``).
Default: ``"steady"`` when ``micro_batches >= pp``, else ``"sequential"``.

Identical calls share one ``groups`` array object, so the trace builder can
expand and place each distinct call once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import WorkloadError
from .layers import Collective, OpCost
from .step import StepProfile

__all__ = ["Call", "step_calls", "SCHEDULES"]

SCHEDULES = ("steady", "sequential")


@dataclass(frozen=True, eq=False)
class Call:
    """One collective run by many groups at once.

    ``groups`` is an int array (G, p) of fabric GPU ranks (for ``send-recv``
    the (source, destination) pairs); ``gap_s`` the compute before it.
    """

    kind: str
    algorithm: str
    nbytes: float
    group: str
    groups: np.ndarray
    gap_s: float
    label: str
    layer: int


class _Groups:
    """Group arrays per (parallel dimension, stages), cached so equal calls share one object."""

    def __init__(self, ranks: np.ndarray, ep: int):
        self.R, self.ep = ranks, ep
        self.cache: dict = {}

    def get(self, group: str, stages: tuple, backward: bool = False) -> np.ndarray:
        key = (group, stages, backward)
        if key in self.cache:
            return self.cache[key]
        R, ep = self.R, self.ep
        dp, pp, tp = R.shape
        sub = R[:, list(stages), :]
        ns = len(stages)
        if group == "tp":
            g = sub.reshape(-1, tp)
        elif group == "dp":
            g = sub.transpose(1, 2, 0).reshape(-1, dp)
        elif group == "ep":
            g = sub.reshape(dp // ep, ep, ns, tp).transpose(0, 2, 3, 1).reshape(-1, ep)
        elif group == "edp":
            g = sub.reshape(dp // ep, ep, ns, tp).transpose(1, 2, 3, 0).reshape(-1, dp // ep)
        elif group == "pp":            # stages = the sending stages; pairs (stage s, stage s+1)
            src = R[:, list(stages), :]
            dst = R[:, [s + 1 for s in stages], :]
            g = np.stack([dst, src] if backward else [src, dst], axis=-1).reshape(-1, 2)
        else:
            raise WorkloadError(f"group: {group!r} is not one of tp, dp, ep, edp, pp")
        g = np.ascontiguousarray(g)
        g.setflags(write=False)
        self.cache[key] = g
        return g


def step_calls(profile: StepProfile, ranks: np.ndarray, *,
               schedule: str | None = None) -> tuple[list[Call], float, dict]:
    """The collective calls of one step, in order.

    Parameters
    ----------
    profile : StepProfile
        From :func:`ocsnet.workload.step.step_profile`.
    ranks : ndarray (dp, pp, tp)
        Placement from :func:`ocsnet.workload.parallel.place`.
    schedule : {"steady", "sequential"}, optional
        Pipeline schedule (see the module docstring).

    Returns
    -------
    calls : list of Call
    tail_s : float
        Compute after the last call (e.g. the LM head of the last micro-batch).
    info : dict
        ``schedule``, ``layer_index`` ("stage-local" or "global"),
        ``phases`` bookkeeping for the trace's meta.
    """
    lp = profile.layer
    plan = lp.plan
    ranks = np.asarray(ranks)
    if ranks.shape != (plan.dp, plan.pp, plan.tp):
        raise WorkloadError(f"ranks: shape {ranks.shape} does not match the plan (dp, pp, tp) = "
                            f"{(plan.dp, plan.pp, plan.tp)}")
    mb, pp = profile.micro_batches, plan.pp
    if schedule is None:
        schedule = "steady" if mb >= pp else "sequential"
    if schedule not in SCHEDULES:
        raise WorkloadError(f"schedule: {schedule!r} is not one of {', '.join(SCHEDULES)}")
    L = profile.stage_layers
    offset = np.concatenate([[0], np.cumsum(L)[:-1]])
    G = _Groups(ranks, plan.ep)
    train = lp.shape.mode == "train"
    calls: list[Call] = []
    pending = 0.0

    def run(items, stages, layer):
        nonlocal pending
        for x in items:
            if isinstance(x, OpCost):
                pending += x.time_s
            else:
                emit(x, stages, layer, f"L{layer} {x.label}")

    def emit(c: Collective, stages, layer, label, backward=False):
        nonlocal pending
        calls.append(Call(c.kind, c.algorithm, c.nbytes, c.group, G.get(c.group, stages, backward),
                          pending, f"{label} {c.kind} {c.algorithm}", layer))
        pending = 0.0

    def layers(stages_of_j, backward):
        items = lp.backward_items if backward else lp.forward_items
        for stages, layer in (reversed(stages_of_j) if backward else stages_of_j):
            run(items, stages, layer)

    def send(stages, backward):
        if profile.pp_send is not None and stages:
            emit(profile.pp_send, tuple(stages), -1, "bwd pp" if backward else "pp", backward)

    steady_blocks = [(tuple(s for s in range(pp) if L[s] > j), j) for j in range(int(L.max()))]
    emb, head = profile.embedding.time_s, profile.lm_head.time_s
    for i in range(mb):
        if i == 0:
            pending += emb
        elif not train:
            pending += (emb + head) if (pp == 1 or schedule == "sequential") else max(emb, head)
        else:
            pending += emb
        if schedule == "steady":
            layers(steady_blocks, False)
            send(tuple(range(pp - 1)), False)
            if train:
                pending += head
                layers(steady_blocks, True)
                send(tuple(range(pp - 1)), True)
        else:
            for s in range(pp):
                layers([((s,), int(offset[s] + j)) for j in range(int(L[s]))], False)
                send((s,) if s < pp - 1 else (), False)
            if train:
                pending += head
                for s in reversed(range(pp)):
                    layers([((s,), int(offset[s] + j)) for j in range(int(L[s]))], True)
                    send((s - 1,) if s > 0 else (), True)
    for c in profile.grad_sync:
        emit(c, tuple(range(pp)), -1, c.label)
    tail = pending + (0.0 if train else head)
    info = {"schedule": schedule, "layer_index": "stage-local" if schedule == "steady" and pp > 1 else "global"}
    return calls, tail, info
