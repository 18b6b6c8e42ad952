"""ocsnet: networks for Lite-GPU AI clusters.

Generate fabrics, solve optical circuit switch schedules from LLM traffic, and
evaluate each model layer's collectives on a fabric.

``ocsnet.evaluate(model, plan, fabric, mode, ...)`` is the per-layer
evaluation (the function; its module is :mod:`ocsnet.evaluate` in
``sys.modules``).
"""

__version__ = "0.1.0"

from .evaluate import Evaluation, evaluate  # noqa: E402  (the function shadows its module name on purpose)

__all__ = ["evaluate", "Evaluation", "__version__"]
