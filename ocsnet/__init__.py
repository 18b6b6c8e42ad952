"""ocsnet: networks for Lite-GPU AI clusters.

Generate fabrics, solve optical circuit switch schedules from LLM traffic, and
evaluate each model layer's collectives on a fabric.

``ocsnet.evaluate(model, plan, fabric, mode, ...)`` is the per-layer
evaluation (:func:`ocsnet.evaluation.evaluate`), loaded on first use so that
``import ocsnet`` stays cheap.
"""

__version__ = "0.1.0"

__all__ = ["evaluate", "Evaluation", "__version__"]


def __getattr__(name):
    # Lazy: the evaluation pulls in numpy, scipy and the flow model.
    if name in ("evaluate", "Evaluation"):
        from . import evaluation
        return getattr(evaluation, name)
    raise AttributeError(f"module 'ocsnet' has no attribute {name!r}")
