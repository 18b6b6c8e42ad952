"""Topology generators, metrics and file formats (stage 3 of the pipeline).

Each generator is a plain function named after what it builds and returns a
:class:`ocsnet.fabric.Fabric`.  Names are resolved lazily from the submodules
below, so importing :mod:`ocsnet.topology` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # packet switching
    "fat_tree": "packet", "leaf_spine": "packet", "clos": "packet",
    "rail_optimized": "packet", "dgx_cluster": "packet",
    # optical circuit switching: the wiring, then circuits set on it
    "ocs_fabric": "optical",
    "apply_circuits": "circuits", "allowed_pairs": "circuits", "pair_level": "circuits",
    # co-packaged optics, direct fabrics
    "torus": "direct", "fully_connected": "direct", "fully_connected_groups": "direct",
    # hybrid
    "hybrid": "hybrid",
    # memory nodes on any fabric
    "attach_memory": "memory_nodes",
    # interchange
    "from_networkx": "io", "read": "io", "write": "io",
    "to_node_link": "io", "from_node_link": "io",
    "from_astra_yaml": "astra", "to_astra_yaml": "astra", "astra_send_delay": "astra",
    "read_astra_config": "astra",
    # named specs
    "build": "spec", "load_spec": "spec", "list_specs": "spec",
    # metrics
    "summary": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'ocsnet.topology' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)


def __dir__():
    return __all__
