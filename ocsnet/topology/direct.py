"""Direct fabrics of co-packaged optics: GPUs cabled to each other with no switch.

Stage 3 of the pipeline.  With co-packaged optics a Lite-GPU has enough
optical shoreline to cable GPUs straight to each other (Canakci et al.,
HotOS 2025).  Three families:

- :func:`torus`: a k-ary n-cube of any dimension (a 1-D torus is a ring);
- :func:`fully_connected`: a clique;
- :func:`fully_connected_groups`: cliques joined by dragonfly global links.

Bandwidth convention: unless a link rate is given, a GPU's network
bandwidth (catalog) is split evenly over its ports, so fabrics of different
shapes compare at equal GPU bandwidth.  Edge latency is the link's (no switch
is entered).  Every node carries ``model`` (GPU catalog name), every edge
``link`` (link catalog name).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import hardware
from ..errors import SpecError
from ..fabric import Fabric
from .. import checks

__all__ = ["torus", "fully_connected", "fully_connected_groups"]


def _build(n, u, v, cap, *, g, lk, name, meta, edge_attrs=None):
    """A GPU-only fabric from undirected links (u, v, cap): both directions of each."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    cap = np.broadcast_to(np.asarray(cap, dtype=float), u.shape)
    eattrs = {"link": np.full(2 * len(u), lk.name)}
    for k, a in (edge_attrs or {}).items():
        eattrs[k] = np.concatenate([a, a])
    return Fabric(np.full(n, "gpu", dtype=object), np.concatenate([u, v]), np.concatenate([v, u]),
                  np.concatenate([cap, cap]), lk.latency_s, lk.tech, gpus=np.arange(n), name=name, meta=meta,
                  node_attrs={"model": np.full(n, g.name)}, edge_attrs=eattrs)


def torus(dims: int | Sequence[int], *, gpu: str = "lite-base", link: str = "cpo",
          link_Bps: float | None = None, wrap: bool = True, name: str | None = None) -> Fabric:
    """A k-ary n-cube (torus) of GPUs, or a mesh with ``wrap=False``.

    Parameters
    ----------
    dims : int or sequence of int
        Size ``k_i >= 2`` of every dimension; an int is a 1-D torus (a ring).
        GPU rank = mixed-radix index, dimension 0 fastest:
        ``rank = sum(c_i * prod(k_0..k_{i-1}))``.
    gpu, link : str
        Catalog names of the GPU and the link technology.
    link_Bps : float, optional
        Bandwidth of one port (bytes/s per direction).  Default: the GPU's
        network bandwidth over its ``2 * len(dims)`` ports.
    wrap : bool
        True: torus (wrap-around links).  False: mesh.
    name : str, optional

    Returns
    -------
    Fabric
        GPUs only; edge attribute ``dim`` is the dimension of each link.  In a
        torus dimension of size 2 both ports of a GPU lead to the same
        neighbour: they form ONE link of ``2 * link_Bps`` (two parallel
        cables merged), so every GPU keeps its full bandwidth.  In a mesh every
        link has ``link_Bps``.

        ``meta`` holds ``diameter_hops = sum(floor(k_i/2))`` (mesh:
        ``sum(k_i - 1)``), ``avg_hops`` (mean GPU-to-GPU distance over ordered
        pairs) and, when the largest dimension ``k`` is even,
        ``bisection_Bps = 2 * N / k * link_Bps`` (mesh: ``N / k * link_Bps``):
        per direction, the cut across the largest dimension.

    Raises
    ------
    SpecError
        A dimension is below 2, a bandwidth is not positive, or a catalog name is unknown.

    Examples
    --------
    >>> f = torus((4, 4, 4))
    >>> f.n_gpus, f.n_edges, f.meta["diameter_hops"]
    (64, 384, 6)
    >>> torus(8).meta["bisection_Bps"] == 2 * torus(8).meta["link_Bps"]
    True

    References
    ----------
    Dally and Towles, "Principles and Practices of Interconnection Networks"
    (2004), ch. 5 (k-ary n-cubes); Jouppi et al., ISCA 2023 (TPU v4 3-D torus).
    """
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
        dims = [dims]
    if isinstance(dims, (str, bytes)) or not hasattr(dims, "__len__") or len(dims) == 0:
        raise SpecError(f"dims: expected a list of dimension sizes such as [4, 4, 4], got {dims!r}")
    dims = [checks.integer(f"dims[{i}]", k, lo=2) for i, k in enumerate(dims)]
    if not isinstance(wrap, (bool, np.bool_)):
        raise SpecError(f"wrap: expected true or false, got {wrap!r}")
    g, lk = hardware.gpu(gpu), hardware.link(link)
    ndim = len(dims)
    b = checks.positive("link_Bps", g.network_Bps / (2 * ndim) if link_Bps is None else link_Bps)
    n = math.prod(dims)
    r = np.arange(n, dtype=np.int64)
    stride = 1
    us, vs, caps, dimv = [], [], [], []
    for i, k in enumerate(dims):
        c = (r // stride) % k
        if wrap and k > 2:
            sel, cap = r, b                       # link c -> c+1 (mod k) for every c
        else:
            sel, cap = r[c < k - 1], (2 * b if wrap else b)   # k == 2 torus: one doubled link
        cs = c[sel]
        nxt = (cs + 1) % k
        us.append(sel)
        vs.append(sel + (nxt - cs) * stride)
        caps.append(np.full(len(sel), cap))
        dimv.append(np.full(len(sel), i, dtype=np.int64))
        stride *= k
    if wrap:
        diameter = sum(k // 2 for k in dims)
        mean = sum((k * k // 4) / k for k in dims)        # mean ring distance, i == j included
    else:
        diameter = sum(k - 1 for k in dims)
        mean = sum((k * k - 1) / (3 * k) for k in dims)   # mean line distance
    meta = {"generator": "torus", "dims": dims, "wrap": bool(wrap), "gpu": g.name, "link": lk.name,
            "link_Bps": b, "n_gpus": n, "ports_per_gpu": 2 * ndim,
            "diameter_hops": diameter, "avg_hops": mean * n / (n - 1)}
    kmax = max(dims)
    if kmax % 2 == 0:
        meta["bisection_Bps"] = (2 if wrap else 1) * n // kmax * b
    label = "x".join(map(str, dims))
    return _build(n, np.concatenate(us), np.concatenate(vs), np.concatenate(caps), g=g, lk=lk,
                  name=name or f"{'torus' if wrap else 'mesh'}-{label}", meta=meta,
                  edge_attrs={"dim": np.concatenate(dimv)})


def fully_connected(n_gpus: int, *, gpu: str = "lite-base", link: str = "cpo",
                    link_Bps: float | None = None, name: str | None = None) -> Fabric:
    """A clique: every GPU cabled to every other.

    Parameters
    ----------
    n_gpus : int
        Number of GPUs, >= 2.
    gpu, link : str
        Catalog names.
    link_Bps : float, optional
        Bandwidth of each link per direction.  Default: the GPU's network
        bandwidth split over its ``n - 1`` links.
    name : str, optional

    Returns
    -------
    Fabric
        ``n (n-1)`` directed edges; ``meta``: diameter 1, ``avg_hops`` 1 and
        ``bisection_Bps = floor(n/2) * ceil(n/2) * link_Bps``.

    Examples
    --------
    >>> f = fully_connected(8)
    >>> f.n_edges, f.meta["diameter_hops"]
    (56, 1)
    """
    n = checks.integer("n_gpus", n_gpus, lo=2)
    g, lk = hardware.gpu(gpu), hardware.link(link)
    b = checks.positive("link_Bps", g.network_Bps / (n - 1) if link_Bps is None else link_Bps)
    iu, ju = np.triu_indices(n, 1)
    meta = {"generator": "fully_connected", "n_gpus": n, "gpu": g.name, "link": lk.name, "link_Bps": b,
            "ports_per_gpu": n - 1, "diameter_hops": 1, "avg_hops": 1.0,
            "bisection_Bps": (n // 2) * (n - n // 2) * b}
    return _build(n, iu, ju, b, g=g, lk=lk, name=name or f"clique-{n}", meta=meta)


def fully_connected_groups(n_gpus: int, group_size: int, *, gpu: str = "lite-base", link: str = "cpo",
                           link_Bps: float | None = None, name: str | None = None) -> Fabric:
    """Cliques of ``group_size`` GPUs joined by dragonfly global links.

    Parameters
    ----------
    n_gpus : int
        Number of GPUs, a multiple of ``group_size``.
    group_size : int
        GPUs per group ``a`` (a clique); ``g = n_gpus / a`` groups.
    gpu, link : str
        Catalog names (local and global links use the same technology).
    link_Bps : float, optional
        Bandwidth of every link.  Default: the GPU's network bandwidth over its
        ``a - 1 + h`` ports, ``h = ceil((g - 1) / a)`` global ports per GPU.
    name : str, optional

    Returns
    -------
    Fabric
        GPU rank ``G * a + x`` is GPU ``x`` of group ``G``.  Every pair of groups
        is joined by exactly one global link (the dragonfly with one global
        channel per group pair, Kim et al., ISCA 2008), placed with the
        "palm-tree" arrangement: global port ``k`` of group ``G``
        (``0 <= k <= g - 2``, owned by its GPU ``k mod a``) goes to group
        ``G + k + 1 (mod g)``, where it lands on port ``g - 2 - k``.  Edge
        attribute ``global`` marks the global links.  ``meta`` holds
        ``n_groups``, ``global_ports_per_gpu`` and ``diameter_hops``: 3
        (local, global, local) with several groups of several GPUs, 1 for a
        single group or groups of one GPU (plain cliques, which also get
        ``avg_hops`` and ``bisection_Bps``).

    Raises
    ------
    SpecError
        ``group_size`` does not divide ``n_gpus``, or a value is out of range.

    Examples
    --------
    >>> f = fully_connected_groups(16, 4)
    >>> f.meta["n_groups"], f.meta["global_ports_per_gpu"], f.n_edges // 2
    (4, 1, 30)

    References
    ----------
    Kim, Dally, Scott and Abts, "Technology-driven, highly-scalable dragonfly
    topology", ISCA 2008; Camarero, Vallejo and Beivide, "Topological
    characterization of Hamming and dragonfly networks and its implications on
    routing", ACM TACO 2014 (palm-tree arrangement).
    """
    n = checks.integer("n_gpus", n_gpus, lo=2)
    a = checks.integer("group_size", group_size, lo=1, hi=n)
    if n % a:
        raise SpecError(f"group_size: {a} does not divide n_gpus = {n}")
    ng = n // a
    h = -(-(ng - 1) // a)
    ports = a - 1 + h
    g, lk = hardware.gpu(gpu), hardware.link(link)
    b = checks.positive("link_Bps", g.network_Bps / ports if link_Bps is None else link_Bps)
    iu, ju = np.triu_indices(a, 1)
    base = (np.arange(ng, dtype=np.int64) * a)[:, None]
    lu, lv = (base + iu).ravel(), (base + ju).ravel()
    G = np.repeat(np.arange(ng, dtype=np.int64), max(ng - 1, 0))
    k = np.tile(np.arange(max(ng - 1, 0), dtype=np.int64), ng)
    H = (G + k + 1) % ng
    once = G < H                                     # each group pair is listed from both ends
    G, k, H = G[once], k[once], H[once]
    gu = G * a + k % a
    gv = H * a + (ng - 2 - k) % a
    u = np.concatenate([lu, gu])
    v = np.concatenate([lv, gv])
    is_global = np.concatenate([np.zeros(len(lu), bool), np.ones(len(gu), bool)])
    meta = {"generator": "fully_connected_groups", "n_gpus": n, "group_size": a, "n_groups": ng,
            "global_ports_per_gpu": h, "ports_per_gpu": ports, "gpu": g.name, "link": lk.name, "link_Bps": b}
    if ng == 1 or a == 1:
        meta.update({"diameter_hops": 1, "avg_hops": 1.0, "bisection_Bps": (n // 2) * (n - n // 2) * b})
    else:
        # Exactly 3: groups 0 and 1 share no third-group neighbour (in any group the ports
        # toward them are consecutive, so owned by different GPUs), hence a non-endpoint GPU
        # of group 0 is 3 hops from a non-endpoint GPU of group 1.
        meta["diameter_hops"] = 3
    return _build(n, u, v, b, g=g, lk=lk, name=name or f"groups-{n}x{a}", meta=meta,
                  edge_attrs={"global": is_global})
