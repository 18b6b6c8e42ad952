"""Reliability (after the evaluation): failure rates, blast radius, availability and goodput.

* :mod:`.rates`: component failure rates from the catalog (Llama 3 anchor),
  repair times and their scaling to Lite-GPUs (:func:`failure_model`);
* :mod:`.blast`: a :class:`Deployment` and the capacity each component's
  failure takes (:func:`blast_matrices`, :func:`blast_radius`, :func:`blast_summary`);
* :mod:`.availability`: the analytic steady state, a seeded vectorized Monte
  Carlo and goodput, with no spares, hot spares, or OCS spare substitution.

See docs/design.md, "Faults and reliability".
"""

from .availability import POLICIES, Components, analytic, components, goodput, monte_carlo, ocs_swap_s
from .blast import BLAST_KINDS, Deployment, blast_matrices, blast_radius, blast_summary, deployment, port_loss
from .rates import KINDS, SCALINGS, FailureModel, anchor_interruptions_per_h, failure_model, gpu_rates

__all__ = ["failure_model", "FailureModel", "gpu_rates", "anchor_interruptions_per_h", "KINDS", "SCALINGS",
           "Deployment", "deployment", "blast_matrices", "blast_radius", "blast_summary", "BLAST_KINDS", "port_loss",
           "components", "Components", "analytic", "monte_carlo", "goodput", "ocs_swap_s", "POLICIES"]
