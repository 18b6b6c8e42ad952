"""ocsnet: networks for Lite-GPU AI clusters.

Generate fabrics, solve optical circuit switch schedules from LLM traffic, and
evaluate each model layer's collectives on a fabric.
"""

__version__ = "0.1.0"
