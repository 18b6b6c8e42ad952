"""Validation checks of the topology stage: ASTRA-sim fabrics and the k-ary fat-tree.

Part of :mod:`ocsnet.validation` (see there for the report).  Each function
is a generator of :class:`~ocsnet.validation.Check` taking ``quick`` and
``seed``.  The references are ASTRA-sim's analytical send delay, computed
from its configuration alone, and the fat-tree closed forms.

References
----------
W. Won et al., "ASTRA-sim2.0: Modeling hierarchical networks and disaggregated
systems for large-model training at scale", ISPASS 2023 (analytical network backend).
M. Al-Fares, A. Loukissas, A. Vahdat, "A scalable, commodity data center network
architecture", SIGCOMM 2008 (k-ary fat-tree).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .. import flow, topology
from .check import Check, worst_check, worst_pair

__all__ = ["astra_checks", "fat_tree_checks", "ASTRA_CONFIGS"]


# ---- 5. ASTRA-sim --------------------------------------------------------------------

#: ASTRA-sim analytical network configurations (its GB/s are 2^30 bytes/s, latency ns), after the
#: examples in astra-sim/astra-sim ``examples/network/analytical/`` and astra-network-analytical ``input/``.
ASTRA_CONFIGS: dict[str, dict] = {
    "Ring_8npus": {"topology": ["Ring"], "npus_count": [8], "bandwidth": [50.0], "latency": [500.0]},
    "HGX-H100-validated": {"topology": ["Switch"], "npus_count": [8], "bandwidth": [400.0], "latency": [936.25]},
    "FullyConnected": {"topology": ["FullyConnected"], "npus_count": [16], "bandwidth": [50.0], "latency": [500.0]},
    "Switch": {"topology": ["Switch"], "npus_count": [16], "bandwidth": [50.0], "latency": [500.0]},
    "Ring_Ring": {"topology": ["Ring", "Ring"], "npus_count": [4, 4], "bandwidth": [50.0, 50.0],
                  "latency": [500.0, 500.0]},
    "Ring_FullyConnected_Switch": {"topology": ["Ring", "FullyConnected", "Switch"], "npus_count": [2, 8, 4],
                                   "bandwidth": [200.0, 100.0, 50.0], "latency": [50.0, 500.0, 2000.0]},
}
_ASTRA_QUICK = ("Ring_8npus", "HGX-H100-validated", "Ring_Ring")


def astra_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """:func:`ocsnet.flow.transfer_time` on ASTRA-sim fabrics against ASTRA-sim's send delay, every pair.

    ASTRA-sim's congestion-unaware backend charges a send between NPUs that
    differ in several dimensions as if it crossed only the first of them;
    ocsnet routes it through every dimension.  So pairs that differ in one
    dimension are compared with ASTRA-sim's rule, and all pairs with the
    rule of its congestion-aware route (latencies add, the slowest
    dimension serializes); the note counts the pairs where the two rules part.
    """
    from ..topology.astra import astra_send_delay

    names = _ASTRA_QUICK if quick else tuple(ASTRA_CONFIGS)
    nbytes = float(2 ** 20)
    one_dim, multi = [], []
    parted = 0
    for name in names:
        cfg = ASTRA_CONFIGS[name]
        f = topology.from_astra_yaml(cfg, name=name)
        n = f.n_gpus
        s, d = np.divmod(np.flatnonzero(~np.eye(n, dtype=bool)), n)          # every ordered pair
        k = np.asarray(cfg["npus_count"])
        stride = np.concatenate([[1], np.cumprod(k[:-1])])
        n_diff = ((s[:, None] // stride) % k != (d[:, None] // stride) % k).sum(axis=1)
        multi_dim = len(k) > 1
        t = flow.transfer_time(f, s, d, nbytes, routing="shortest", gpu_forwarding=True)   # NPUs relay, as in ASTRA-sim
        first = astra_send_delay(cfg, s, d, nbytes, multi_dim="first")
        sel = n_diff == 1
        one_dim += [(t[sel], first[sel], name)]
        if multi_dim:
            multi += [(t, astra_send_delay(cfg, s, d, nbytes, multi_dim="all"), name)]
            parted += int((~np.isclose(first, astra_send_delay(cfg, s, d, nbytes, multi_dim="all"),
                                       rtol=1e-9)).sum())

    def flat(cases):
        o = np.concatenate([c[0] for c in cases])
        r = np.concatenate([c[1] for c in cases])
        lab = np.concatenate([[c[2]] * len(c[0]) for c in cases])
        go, gr, i = worst_pair(o, r)
        return go, gr, f"worst of {len(o)} pairs: {lab[i]}"

    o, r, note = flat(one_dim)
    yield Check(name="transfer time vs ASTRA-sim send", group="astra",
                what=f"alpha-beta transfer time of 1 MiB between every pair of NPUs that differ in one dimension, "
                     f"on the fabric built from each ASTRA-sim config ({', '.join(names)}), against ASTRA-sim's "
                     "congestion-unaware send delay hops x latency + bytes / bandwidth",
                quantity="time_ns", ocsnet=o, reference=r, tolerance=1e-9,
                source="ASTRA-sim analytical backend, BasicTopology::send", note=note)
    if multi:
        o, r, note = flat(multi)
        yield Check(name="transfer time vs ASTRA-sim route, all pairs", group="astra",
                    what="alpha-beta transfer time of 1 MiB between every pair of the multi-dimensional configs "
                         "against ASTRA-sim's congestion-aware dimension-order route: per-dimension hop latencies "
                         "add, the slowest dimension's bandwidth serializes",
                    quantity="time_ns", ocsnet=o, reference=r, tolerance=1e-9,
                    source="ASTRA-sim analytical backend, MultiDimTopology::route",
                    note=note + f"; ASTRA-sim's congestion-unaware send charges only the first differing "
                                f"dimension and so differs from this on {parted} pairs (not compared)")


# ---- 6. fat-tree ---------------------------------------------------------------------

def fat_tree_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """Counts, diameter and bisection of ``topology.fat_tree(k)`` against Al-Fares et al. (2008)."""
    from ..topology import metrics
    from ..topology.metrics_bisection import bisection

    ks = (4,) if quick else (4, 8, 16, 24)
    rows: dict[str, list] = {q: [] for q in ("hosts", "switches", "links", "diameter", "bisection", "maxflow")}
    for k in ks:
        f = topology.fat_tree(k)
        s = metrics.summary(f)
        link = float(f.capacity_Bps.min())
        lab = f"k={k}"
        rows["hosts"].append((s["n_gpus"], k ** 3 / 4, lab))
        rows["switches"].append((s["n_packet_switches"], 5 * k ** 2 / 4, lab))
        rows["links"].append((s["n_links"], 3 * k ** 3 / 4, lab))
        rows["diameter"].append((s["diameter_hops"], 6, lab))
        rows["bisection"].append((s["bisection_TBps"] * 1e12, k ** 3 / 8 * link, lab))
        rows["maxflow"].append((bisection(f, "rank-split")["bisection_Bps"], k ** 3 / 8 * link, lab))
    src = "closed form, Al-Fares et al. 2008"
    ktxt = ", ".join(map(str, ks))
    spec = [("hosts", "hosts k^3/4", "GPU count of metrics.summary", "n_hosts"),
            ("switches", "switches 5k^2/4", "packet-switch count of metrics.summary", "n_switches"),
            ("links", "links 3k^3/4", "bidirectional link count of metrics.summary", "n_links"),
            ("diameter", "diameter 6 hops", "GPU-to-GPU diameter of metrics.summary", "diameter_hops"),
            ("bisection", "bisection k^3/8 x link", "bisection of metrics.summary", "bisection_TBps"),
            ("maxflow", "min cut of a pod split", "max flow between GPU ranks [0, N/2) and the rest (OR-Tools)",
             "bisection_TBps")]
    for key, name, what, q in spec:
        yield worst_check(rows[key], name=name, group="fat-tree",
                          what=f"{what} for the k-ary fat-tree, k = {ktxt}", quantity=q, source=src,
                          tolerance=1e-12)
