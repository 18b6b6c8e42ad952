"""Workload: model configurations, parallel plans and placement, per-layer operations.

Stage 2 of the pipeline.  :mod:`.models` loads transformer hyperparameters
from the catalog, :mod:`.parallel` splits a model over GPUs and places the
ranks on a fabric, :mod:`.layers` counts each op's FLOPs and bytes, times it
by roofline on a catalog GPU, lists the layer's collectives and checks that
the plan fits in memory.  :func:`ocsnet.traffic.build_trace` turns that into
a :class:`ocsnet.traffic.Trace`.
"""

from ..lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "ModelSpec": "models", "model": "models",
    "ParallelPlan": "parallel", "place": "parallel", "gpu_domains": "parallel",
    "MODES": "modes", "INFERENCE_MODES": "modes",
})
