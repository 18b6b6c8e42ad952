"""Building the trace of a whole model step over a fabric (stage 5: workload -> Trace).

:func:`build_trace` turns a model, a parallel plan and a fabric into the
ordered phases of one step: every collective step a phase, the roofline
compute between them as gaps.  The container itself is :mod:`.trace`.
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..errors import WorkloadError
from .trace import Trace, place_steps

__all__ = ["build_trace"]


def build_trace(model, plan, fabric, mode: str, *, batch: int, seq_len: int | None = None,
                context: int | None = None, algorithms: dict | None = None,
                placement: str | np.ndarray = "topology-aware", gpu=None, dtype_bytes: float | None = None,
                micro_batches: int = 1, schedule: str | None = None, grad_sync: str = "all-reduce",
                require_fit: bool = True, dtype: str = "bf16", kv_dtype: str | None = None,
                calibration=None) -> Trace:
    """The trace of one whole model step over a fabric's GPUs.

    Every collective step is a phase holding the traffic of all groups that
    run it at that moment (e.g. step 2 of the attention all-reduce in every
    TP group); gaps are the roofline compute times of the ops in between
    (:mod:`ocsnet.workload.layers`).  Identical layers make the trace
    periodic; :attr:`Trace.period` is set by :meth:`Trace.detect_period`.

    Compactness: each distinct call (kind, algorithm, bytes, groups) is
    expanded (:func:`ocsnet.collectives.expand`) and placed
    (:func:`place_steps`) once; its phases are shared objects in every
    layer that repeats it, so memory grows with the distinct phases, not with
    the layers (a Llama3-405B decode step over 65,536 GPUs holds a handful of
    matrices).

    Parameters
    ----------
    model : str or ModelSpec
    plan : ParallelPlan
    fabric : Fabric
        Its GPU ranks index the demand matrices (N = ``fabric.n_gpus``);
        GPUs the plan does not use carry no traffic.
    mode : {"prefill", "decode", "train"}
    batch, seq_len, context, dtype_bytes, micro_batches, grad_sync, require_fit
        As in :func:`ocsnet.workload.step.step_profile`.
    dtype, kv_dtype, calibration
        Precision (activations, hence collective bytes, and the KV cache) and
        the kernel efficiency model of the compute gaps, as in
        :func:`ocsnet.workload.step.step_profile`.
    algorithms : dict, optional
        Collective kind -> algorithm, e.g. ``{"all-reduce": "rhd"}``; checked
        against :data:`ocsnet.collectives.ALGORITHMS`.
    placement : {"topology-aware", "contiguous"} or ndarray (dp, pp, tp)
        Strategy for :func:`ocsnet.workload.place`, or the ranks themselves.
    gpu : str or GPUSpec, optional
        GPU that times the compute; default ``fabric.meta["gpu"]`` if the
        fabric names one, else ``"h100-sxm"``.
    schedule : {"steady", "sequential"}, optional
        Pipeline schedule, see :mod:`ocsnet.workload.program`.

    Returns
    -------
    Trace
        ``meta`` records model, mode, plan, algorithms, sizes, GPU, fabric,
        placement, schedule, ``stage_layers``, ``phases_per_layer`` and
        ``tail_compute_s`` (compute after the last phase, e.g. the LM head).

    Raises
    ------
    WorkloadError
        Invalid model, plan, sizes, algorithm, a fabric too small, or a plan
        that does not fit in memory.

    Examples
    --------
    >>> from ocsnet.workload import ParallelPlan
    >>> from ocsnet.fabric import Fabric
    >>> fab = Fabric(["gpu"] * 8, [], [], [], [], [])
    >>> t = build_trace("llama3-70b", ParallelPlan(tp=8), fab, "decode", batch=8, context=1024,
    ...                 placement="contiguous")
    >>> len(t), t.meta["phases_per_layer"], t.period
    (2240, 28, (1, 28, 79))
    """
    from .. import collectives, hardware
    from ..workload import parallel, program, step
    from ..workload.models import model as get_model

    from ..fabric import Fabric
    from ..workload.parallel import check_plan

    m = get_model(model)
    check_plan(plan)
    if not isinstance(fabric, Fabric):
        raise WorkloadError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    if algorithms is not None and not isinstance(algorithms, dict):
        raise WorkloadError(f"algorithms: expected a table of collective kind -> algorithm, got {algorithms!r:.60}")
    algos = dict(algorithms or {})
    for kind, alg in algos.items():
        if kind in collectives.ALGORITHMS and alg not in collectives.ALGORITHMS[kind]:
            raise WorkloadError(f"algorithms: {alg!r} is not supported for {kind}, "
                                f"supported: {', '.join(collectives.ALGORITHMS[kind])}")
    if gpu is None:
        gpu = fabric.meta.get("gpu", "h100-sxm") if isinstance(fabric.meta.get("gpu"), str) else "h100-sxm"
    g = hardware.gpu(gpu)
    prof = step.step_profile(m, plan, mode, batch=batch, seq_len=seq_len, context=context, gpu=g,
                             dtype_bytes=dtype_bytes, algorithms=algos, micro_batches=micro_batches,
                             grad_sync=grad_sync, require_fit=require_fit, dtype=dtype, kv_dtype=kv_dtype,
                             calibration=calibration)
    if isinstance(placement, str):
        ranks = parallel.place(plan, fabric, placement)
        strategy = placement
    else:
        ranks = checks.array("placement", placement, integral=True, empty=True, error=WorkloadError)
        strategy = "given"
        if ranks.shape != (plan.dp, plan.pp, plan.tp):
            raise WorkloadError(f"placement: shape {ranks.shape}, expected (dp, pp, tp) = {(plan.dp, plan.pp, plan.tp)}")
        if ranks.size and (ranks.min() < 0 or ranks.max() >= fabric.n_gpus or len(np.unique(ranks)) != ranks.size):
            raise WorkloadError(f"placement: ranks must be distinct GPU ranks in [0, {fabric.n_gpus - 1}]")
    calls, tail, info = program.step_calls(prof, ranks, schedule=schedule)
    N = fabric.n_gpus
    cache: dict = {}
    demand, gaps, labels, layer = [], [], [], []
    carry = 0.0                                      # compute of calls with no steps (groups of one)
    for c in calls:
        key = (c.kind, c.algorithm, c.nbytes, id(c.groups))
        mats = cache.get(key)
        if mats is None:
            steps = collectives.expand(c.kind, c.groups.shape[1], c.nbytes, c.algorithm)
            mats = place_steps(steps, c.groups, N, disjoint=c.kind != "send-recv")
            cache[key] = mats
        S = len(mats)
        for i, mat in enumerate(mats):
            demand.append(mat)
            gaps.append(c.gap_s + carry if i == 0 else 0.0)
            labels.append(f"{c.label} {i + 1}/{S}")
            layer.append(c.layer)
        carry = carry + c.gap_s if S == 0 else 0.0
    tail += carry
    per_layer = 0
    for x in prof.layer.items:
        if isinstance(x, step.Collective):
            per_layer += collectives.n_steps(x.kind, x.group_size, x.algorithm)
    meta = {
        "model": m.name, "mode": mode, "plan": plan.as_dict(), "algorithms": prof.layer.algorithms,
        "batch": int(batch), "seq_len": prof.layer.shape.seq_len, "context": prof.layer.shape.context,
        "micro_batches": prof.micro_batches, "gpu": g.name, "dtype_bytes": prof.layer.dtype_bytes,
        "dtype": prof.layer.dtype, "kv_dtype": prof.layer.kv_dtype, "calibration": prof.layer.calibration,
        "fabric": fabric.name, "placement": strategy, "stage_layers": prof.stage_layers.tolist(),
        "phases_per_layer": per_layer, "tail_compute_s": tail, "grad_sync": grad_sync, **info,
    }
    t = Trace(demand, gaps, labels=labels, layer=layer, meta=meta, n_gpus=N)
    t.detect_period()
    return t
