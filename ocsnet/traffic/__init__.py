"""Traces: the ordered phases of a workload's traffic over a fabric's GPUs.

Stage 5 of the pipeline.  :class:`Trace` (in :mod:`.trace`) is the container:
demand matrices and compute gaps, shared repeats, period detection and a
lossless ``.npz`` format; :func:`build_trace` (in :mod:`.build`) makes the
trace of a whole model step from a model, a parallel plan and a fabric.
"""

from ..lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "Trace": "trace", "place_steps": "trace", "FORMAT_VERSION": "trace", "build_trace": "build",
})
