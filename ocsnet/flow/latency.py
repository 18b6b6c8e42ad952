"""Congestion-free (alpha-beta) transfer times: hop latencies plus bytes over the bottleneck.

Stage 5 of the pipeline (flow model), the analytical fidelity.  A flow's
time is ``latency + bytes / bottleneck``: ``latency`` is the sum of the
per-hop latencies along its route (``Routes.latency_s``) and ``bottleneck``
the rate its route allows when alone on the fabric,
``1 / max_e(A[e, f] / c_e)`` (the smallest link capacity on a single path;
under ECMP, split traffic can use several paths at once).

This is the model of ASTRA-sim's congestion-unaware analytical backend
(``BasicTopology::send``: ``hops * latency + size / bandwidth``): on a fabric
read from an ASTRA-sim configuration by ``ocsnet.topology.from_astra_yaml``
(every link carries its dimension's latency and bandwidth; a Switch
dimension is two links, GPU to switch and switch to GPU), single-path
shortest routing gives the same delay for every pair whose addresses differ
in one dimension.  ASTRA-sim charges a pair that differs in several
dimensions as if it crossed only the first of them; here it crosses all of
them on its route (hop latencies add, the slowest dimension serializes),
which is ASTRA-sim's congestion-aware route.  ASTRA-sim also truncates to
whole nanoseconds; this model does not.

References
----------
.. [1] W. Won et al., "ASTRA-sim2.0: Modeling hierarchical networks and
   disaggregated systems for large-model training at scale", ISPASS 2023
   (the analytical network backend, github.com/astra-sim/astra-network-analytical).
"""

from __future__ import annotations

import numpy as np

from .. import checks
from ..errors import FlowError
from ..fabric import Fabric
from .maxmin import check_capacity
from .routing import METHODS, Routes, route

__all__ = ["bottleneck_Bps", "alpha_beta_time", "transfer_time"]


def bottleneck_Bps(routes: Routes, capacity) -> np.ndarray:
    """Rate (bytes/s) each flow gets alone on the fabric: ``1 / max_e(A[e, f] / c_e)``.

    ``inf`` for a flow on no link, 0 for a flow crossing a zero-capacity link.
    """
    A = routes.incidence
    c = check_capacity(capacity, A.shape[0])
    out = np.full(A.shape[1], np.inf)
    cnt = np.diff(A.indptr)
    cols = np.flatnonzero(cnt > 0)
    if len(cols):
        with np.errstate(divide="ignore"):
            load = A.data / c[A.indices]                 # seconds per byte of the flow on each link
        worst = np.maximum.reduceat(load, A.indptr[cols])
        with np.errstate(divide="ignore"):
            out[cols] = 1.0 / worst
    return out


def alpha_beta_time(routes: Routes, capacity, size_B) -> np.ndarray:
    """Congestion-free time of every flow: path latency plus bytes over its bottleneck rate.

    Parameters
    ----------
    routes : Routes
    capacity : array, shape (n_edges,)
        Link capacities, bytes/s.
    size_B : float or array, shape (n_flows,)
        Bytes, >= 0.

    Returns
    -------
    ndarray
        Seconds; ``inf`` for a flow with bytes on a zero-capacity link.

    Raises
    ------
    FlowError
        A negative or non-finite size, or capacities of the wrong length.
    """
    n = routes.n_flows
    size = np.broadcast_to(np.asarray(size_B, dtype=float), (n,)) if np.ndim(size_B) == 0 \
        else np.asarray(size_B, dtype=float)
    if size.shape != (n,):
        raise FlowError(f"size_B: expected {n} entries (one per flow), got shape {size.shape}")
    bad = np.flatnonzero(~(np.isfinite(size) & (size >= 0)))
    if len(bad):
        raise FlowError(f"size_B[{int(bad[0])}] (flow {int(bad[0])}): {float(size[bad[0]])!r} is out of range, allowed [0, inf)")
    bw = bottleneck_Bps(routes, capacity)
    with np.errstate(divide="ignore", invalid="ignore"):
        ser = np.where(size > 0, size / bw, 0.0)
    return routes.latency_s + ser


def transfer_time(fabric: Fabric, src, dst, nbytes, *, routing: str = "shortest",
                  gpu_forwarding: bool | None = None) -> np.ndarray:
    """Congestion-free alpha-beta time of point-to-point transfers, vectorized.

    Parameters
    ----------
    fabric : Fabric
    src, dst : int or array of int
        GPU ranks (broadcast against each other and ``nbytes``), ``src != dst``.
    nbytes : float or array
        Bytes of every transfer, >= 0.
    routing : {"shortest", "ecmp"}
        ``"shortest"`` (one path; ASTRA-sim's model) or an ECMP split.
    gpu_forwarding : bool, optional
        See :func:`ocsnet.flow.route`.  A fabric read from an ASTRA-sim
        configuration with several dimensions needs ``True``: its GPUs pass
        traffic between dimensions.

    Returns
    -------
    float or ndarray
        Seconds: the sum of per-hop latencies plus bytes over the bottleneck
        bandwidth.

    Raises
    ------
    FlowError
        Ranks out of range, ``src == dst``, a negative size, or no path.

    Examples
    --------
    A 4-GPU bidirectional ring, 1 us and 1 GB/s per link: 2 hops and 1 MB.

    >>> import numpy as np
    >>> from ocsnet.fabric import Fabric
    >>> s = np.r_[0:4, 0:4]; d = np.r_[[1, 2, 3, 0], [3, 0, 1, 2]]
    >>> ring = Fabric(["gpu"] * 4, s, d, 1e9, 1e-6, "cpo")
    >>> round(transfer_time(ring, 0, 2, 1e6) * 1e6, 6)        # microseconds
    1002.0
    """
    if not isinstance(fabric, Fabric):
        raise FlowError(f"fabric: expected an ocsnet Fabric, got {type(fabric).__name__}")
    checks.choice("routing", routing, METHODS, error=FlowError)
    scalar = np.ndim(src) == 0 and np.ndim(dst) == 0 and np.ndim(nbytes) == 0
    src = checks.array("src", src, integral=True, lo=0, error=FlowError)
    dst = checks.array("dst", dst, integral=True, lo=0, error=FlowError)
    nbytes = checks.array("nbytes", nbytes, lo=0, error=FlowError)
    try:
        s, d, nb = np.broadcast_arrays(np.atleast_1d(src), np.atleast_1d(dst), np.atleast_1d(nbytes))
    except ValueError:
        raise FlowError(f"src, dst, nbytes: shapes {np.shape(src)}, {np.shape(dst)}, {np.shape(nbytes)} "
                        "do not broadcast") from None
    r = route(fabric, s.ravel(), d.ravel(), method=routing, gpu_forwarding=gpu_forwarding)
    t = alpha_beta_time(r, fabric.capacity_Bps, nb.ravel()).reshape(s.shape)
    return float(t[0]) if scalar else t
