"""Validation: hold ocsnet's models against numbers computed another way.

The last stage of the pipeline, beside the evaluation: it imports every
earlier stage and nothing imports it but the CLI.  :func:`run` computes a
list of named :class:`Check` objects, each comparing one number ocsnet
produces with an independent number (a closed form, an LP, a brute-force
optimum, another simulator's formula or a published figure), and returns
them as a :class:`ValidationReport`.  Every number is computed live; nothing
here is a stored result.

The checks come in groups (:data:`GROUPS`):

``collectives``
    Collectives timed by the max-min flow model on ring, torus and clique
    fabrics against the alpha-beta closed forms (Thakur et al. 2005), and the
    bytes each rank sends against the nccl-tests bus-bandwidth factors.
``flow``
    :func:`ocsnet.flow.max_min_fair` against the LP sequence of
    :func:`ocsnet.flow.reference.max_min_fair_lp` on random instances.
``schedule``
    The exact CP-SAT scheduler against brute-force enumeration on tiny OCS
    problems; the heuristic against the closed-form lower bound on ring traces
    whose optimum reaches it.
``flops``
    Per-layer decode FLOPs against ``2 N`` per token (Kaplan et al. 2020) and
    against the count with attention (Hoffmann et al. 2022, appendix F);
    computed parameter counts against the published ones.
``astra``
    :func:`ocsnet.flow.transfer_time` on fabrics built from ASTRA-sim
    configurations against ASTRA-sim's analytical send delay, every pair.
``fat-tree``
    Host, switch and link counts, diameter and bisection of the k-ary
    fat-tree against Al-Fares et al. (2008).
``literature``
    Catalog figures against datasheets, and qualitative results the
    literature reports (prefill compute-bound and decode memory-bound on an
    H100; Lite-GPUs with boosted network bandwidth against the H100 in
    decode, Canakci et al. 2025).

A check that raises is reported as a disagreement carrying the error, so a
broken component never hides behind a crash.

Examples
--------
>>> from ocsnet.validation import run
>>> report = run(quick=True, groups=["fat-tree"])
>>> report.ok, report.summary().startswith("validation: ")
(True, True)
"""

from ..lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "Check": "check", "ValidationReport": "check", "RELATIONS": "check", "worst_pair": "check", "OPT_IN": "groups",
    "worst_check": "check", "run": "run", "GROUPS": "groups",
})
