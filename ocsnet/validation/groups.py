"""The validation groups by name (no heavy imports: ``ocsnet validate --help`` lists them).

Stage: validation (see docs/design.md).
"""

__all__ = ["GROUPS", "OPT_IN"]

#: Check groups in the order they run, and the module that computes each.
GROUPS: dict[str, str] = {
    "collectives": "network:collective_checks",
    "flow": "network:flow_checks",
    "schedule": "network:schedule_checks",
    "flops": "models:flops_checks",
    "astra": "topology:astra_checks",
    "fat-tree": "topology:fat_tree_checks",
    "literature": "models:literature_checks",
    "silicon": "silicon:silicon_checks",
    "queueing": "serving:queueing_checks",
    "memory": "memory:memory_checks",
    "measured": "measured:measured_checks",
}
#: Groups that run only when asked for (``--measured`` or ``--only measured``).
OPT_IN = ("measured",)
