"""ocsnet: networks for Lite-GPU AI clusters.

Generate fabrics, solve optical circuit switch schedules from LLM traffic, and
evaluate each model layer's collectives on a fabric.

``ocsnet.evaluate(model, plan, fabric, mode, options)`` is the per-layer
evaluation (:func:`ocsnet.evaluation.evaluate`, options in
:class:`ocsnet.evaluation.EvalOptions`), loaded on first use so that
``import ocsnet`` stays cheap (see docs/design.md, "Layout and import rules").
"""

__version__ = "0.1.0"

from .lazy import exports

# Lazy: the evaluation pulls in numpy, scipy and the flow model.
__all__, __getattr__, __dir__ = exports(__name__, {
    "evaluate": "evaluation", "Evaluation": "evaluation", "EvalOptions": "evaluation",
})
__all__ = [*__all__, "__version__"]
