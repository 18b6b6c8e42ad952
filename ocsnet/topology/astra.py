"""ASTRA-sim analytical network configurations: read, write, and ASTRA-sim's own send delay.

Stage 3 of the pipeline.  ASTRA-sim's analytical network backend
(github.com/astra-sim/astra-network-analytical) describes a network in YAML::

    topology: [ Ring, FullyConnected, Switch ]   # one building block per dimension
    npus_count: [ 2, 8, 4 ]                      # NPUs per dimension: 2 x 8 x 4 = 64
    bandwidth: [ 200.0, 100.0, 50.0 ]            # GB/s per uni-directional link
    latency: [ 50.0, 500.0, 2000.0 ]             # ns per link

The rules below mirror that backend's source (``common/Type.hh``,
``common/network-parser/NetworkParser.cc``, ``congestion_unaware/*`` and
``congestion_aware/*``); they were read there, not guessed:

- **Units.** ``bandwidth`` is GB/s with **1 GB = 2^30 bytes** (its
  ``bw_GBps_to_Bpns``: ``bw * 2^30 / 1e9`` bytes/ns), ``latency`` is ns per
  link.  So this module converts ``bandwidth`` with ``units.BYTES_PER_GIB``
  and names it ``bandwidth_GiBps`` everywhere it keeps it.
- **Validity** (``NetworkParser::check_validity``): the four lists have one
  entry per dimension, every ``npus_count > 1``, every ``bandwidth > 0``,
  every ``latency >= 0``; building blocks are ``Ring``, ``FullyConnected``,
  ``Switch``.  ASTRA-sim exits the process on a violation; we raise
  :class:`~ocsnet.errors.SpecError` naming the key.
- **NPU numbering** (``translate_address``): NPU id = mixed-radix address,
  dimension 0 fastest: ``id = a_0 + k_0 * (a_1 + k_1 * (a_2 + ...))``.
- **Structure** (congestion-aware builders): in every dimension each line
  of NPUs that differ only in that coordinate forms one building block.
  Ring: NPU ``i`` to ``i+1 (mod k)`` in both directions (bidirectional by
  default; a 2-NPU ring is one link per direction); FullyConnected: a link
  for every ordered pair; Switch: one switch per line, every NPU linked to it
  both ways.  Every link has the dimension's bandwidth and latency.  Switch
  devices are numbered after the NPUs in order of creation: dimension by
  dimension, lines in order of their first NPU.
- **Send delay, congestion-unaware** (``BasicTopology::send``):
  ``hops * latency + bytes / bandwidth`` of ONE building block, truncated to
  an integer number of ns (its ``EventTime``).  Hops: Ring = the shorter way
  round (``min(d, k - d)`` for bidirectional rings), FullyConnected = 1,
  Switch = 2.  A multi-dimensional send (``MultiDimTopology::send``) only
  uses **the first (lowest) dimension in which source and destination
  differ**: a send between NPUs that differ in several dimensions is charged
  as if it crossed that one dimension only.
- **Routing, congestion-aware** (``MultiDimTopology::route``): dimension
  order, lowest first, through every dimension that differs.

:func:`astra_send_delay` gives the congestion-unaware delay (``multi_dim=
"first"``, the default, is exactly ASTRA-sim) and, with ``multi_dim="all"``,
its natural extension to the congestion-aware route: hops and latencies of
every differing dimension add up and the slowest of them sets the
serialization (``sum(hops_d * latency_d) + bytes / min(bandwidth_d)``).  That
second form is what an alpha-beta model computes on the fabric that
:func:`from_astra_yaml` builds, for every pair; for pairs that differ in one
dimension both forms agree.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import hardware, units
from ..errors import FabricError, FlowError, SpecError
from ..fabric import Fabric

__all__ = ["AstraConfig", "read_astra_config", "from_astra_yaml", "to_astra_yaml", "astra_send_delay",
           "BLOCKS"]

BLOCKS = ("Ring", "FullyConnected", "Switch")
_KEYS = ("topology", "npus_count", "bandwidth", "latency")


@dataclasses.dataclass(frozen=True)
class AstraConfig:
    """An ASTRA-sim analytical network, one entry per dimension, in ASTRA-sim's units."""

    topology: tuple[str, ...]
    npus_count: tuple[int, ...]
    bandwidth_GiBps: tuple[float, ...]     # ASTRA-sim "GB/s", 1 GB = 2^30 B
    latency_ns: tuple[float, ...]

    @property
    def n_npus(self) -> int:
        return math.prod(self.npus_count)

    @property
    def bandwidth_Bps(self) -> np.ndarray:
        return np.asarray(self.bandwidth_GiBps, dtype=float) * units.BYTES_PER_GIB

    @property
    def latency_s(self) -> np.ndarray:
        return np.array([units.to_si("latency_ns", x) for x in self.latency_ns])

    def as_dict(self) -> dict:
        """The config as ASTRA-sim's YAML keys."""
        return {"topology": list(self.topology), "npus_count": list(self.npus_count),
                "bandwidth": list(self.bandwidth_GiBps), "latency": list(self.latency_ns)}


def _as_list(data: Mapping, key: str, where: str) -> list:
    if key not in data:
        raise SpecError(f"{where}: missing key {key!r} (an ASTRA-sim network needs {', '.join(_KEYS)})")
    v = data[key]
    if not isinstance(v, (list, tuple)):
        raise SpecError(f"{where}.{key}: expected a list with one entry per dimension, e.g. [ 8 ], got {v!r}")
    return list(v)


def read_astra_config(config) -> AstraConfig:
    """Parse and validate an ASTRA-sim analytical network config (a YAML path, a mapping or an AstraConfig).

    Raises
    ------
    SpecError
        Unreadable YAML, an unknown or missing key, lists of different
        lengths, an unknown building block, ``npus_count <= 1``,
        ``bandwidth <= 0`` or ``latency < 0``; the message names the key.

    Examples
    --------
    >>> cfg = read_astra_config({"topology": ["Ring", "Switch"], "npus_count": [4, 2],
    ...                          "bandwidth": [50.0, 25.0], "latency": [500.0, 1000.0]})
    >>> cfg.n_npus, cfg.bandwidth_Bps.tolist() == [50 * 2**30, 25 * 2**30]
    (8, True)
    """
    if isinstance(config, AstraConfig):
        return config
    where = "astra config"
    if isinstance(config, (str, Path)):
        import yaml

        where = str(config)
        text = Path(config).read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpecError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    else:
        data = config
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected a mapping with keys {', '.join(_KEYS)}")
    extra = sorted(set(data) - set(_KEYS))
    if extra:
        raise SpecError(f"{where}: unknown key {extra[0]!r}; allowed: {', '.join(_KEYS)}")
    topo = _as_list(data, "topology", where)
    npus = _as_list(data, "npus_count", where)
    bw = _as_list(data, "bandwidth", where)
    lat = _as_list(data, "latency", where)
    if not topo:
        raise SpecError(f"{where}.topology: must list at least one dimension")
    for key, vals in (("npus_count", npus), ("bandwidth", bw), ("latency", lat)):
        if len(vals) != len(topo):
            raise SpecError(f"{where}.{key}: has {len(vals)} entries but topology has {len(topo)} dimensions")
    for i, t in enumerate(topo):
        if t not in BLOCKS:
            raise SpecError(f"{where}.topology[{i}]: {t!r} is not one of {', '.join(BLOCKS)}")
    for i, k in enumerate(npus):
        if isinstance(k, bool) or not isinstance(k, int) or k <= 1:
            raise SpecError(f"{where}.npus_count[{i}]: {k!r} is out of range, allowed integers [2, inf)")
    for key, vals, lo_open in (("bandwidth", bw, True), ("latency", lat, False)):
        for i, x in enumerate(vals):
            ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            if not ok or (x <= 0 if lo_open else x < 0):
                rng = "(0, inf) GB/s" if lo_open else "[0, inf) ns"
                raise SpecError(f"{where}.{key}[{i}]: {x!r} is out of range, allowed {rng}")
    return AstraConfig(tuple(topo), tuple(int(k) for k in npus), tuple(float(x) for x in bw),
                       tuple(float(x) for x in lat))


def _hops(block: str, k: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ASTRA-sim's hop count inside one building block between local ids a != b."""
    if block == "Ring":
        cw = (b - a) % k
        return np.minimum(cw, k - cw)          # bidirectional ring: the shorter way
    if block == "FullyConnected":
        return np.ones_like(a)
    return np.full_like(a, 2)                  # Switch: NPU -> switch -> NPU


def _addresses(cfg: AstraConfig, ids: np.ndarray) -> np.ndarray:
    k = np.asarray(cfg.npus_count, dtype=np.int64)
    strides = np.concatenate([[1], np.cumprod(k[:-1])])
    return (ids[:, None] // strides) % k


def astra_send_delay(config, src, dst, nbytes, *, multi_dim: str = "first", integer_ns: bool = False):
    """ASTRA-sim's congestion-unaware delay of one send, from the config alone.

    Parameters
    ----------
    config : path, mapping or AstraConfig
        The ASTRA-sim network (see :func:`read_astra_config`).
    src, dst : int or array of int
        NPU ids (ASTRA-sim numbering, which is also the GPU rank of
        :func:`from_astra_yaml`); ``src != dst`` elementwise.
    nbytes : float or array
        Bytes sent, > 0.
    multi_dim : {"first", "all"}
        ``"first"``: exactly ASTRA-sim, only the lowest differing dimension
        counts.  ``"all"``: every differing dimension (its congestion-aware
        route), latencies added, the slowest bandwidth serializes.
    integer_ns : bool
        Truncate to whole nanoseconds as ASTRA-sim's ``EventTime`` does.

    Returns
    -------
    float or ndarray
        Delay in seconds: ``hops * latency + nbytes / bandwidth``.

    Raises
    ------
    FlowError
        ``src == dst``, an id out of range, or ``nbytes <= 0``.

    Examples
    --------
    >>> cfg = {"topology": ["Ring"], "npus_count": [8], "bandwidth": [50.0], "latency": [500.0]}
    >>> round(astra_send_delay(cfg, 0, 3, 2**20) * 1e9, 3)      # 3 hops x 500 ns + 1 MiB / 50 GiB/s
    21031.25
    """
    cfg = read_astra_config(config)
    if multi_dim not in ("first", "all"):
        raise SpecError(f"multi_dim: {multi_dim!r} is not one of 'first', 'all'")
    scalar = np.ndim(src) == 0 and np.ndim(dst) == 0 and np.ndim(nbytes) == 0
    s, d, nb = np.broadcast_arrays(np.atleast_1d(np.asarray(src, dtype=np.int64)),
                                   np.atleast_1d(np.asarray(dst, dtype=np.int64)),
                                   np.atleast_1d(np.asarray(nbytes, dtype=float)))
    n = cfg.n_npus
    for name, ids in (("src", s), ("dst", d)):
        bad = np.flatnonzero((ids < 0) | (ids >= n))
        if len(bad):
            raise FlowError(f"{name}: NPU {int(ids[bad[0]])} is out of range, allowed [0, {n - 1}]")
    same = np.flatnonzero(s == d)
    if len(same):
        raise FlowError(f"src, dst: both are NPU {int(s[same[0]])}; ASTRA-sim sends need src != dst")
    badb = np.flatnonzero(~(np.isfinite(nb) & (nb > 0)))
    if len(badb):
        raise FlowError(f"nbytes: {nb[badb[0]]!r} is out of range, allowed (0, inf)")
    sa, da = _addresses(cfg, s), _addresses(cfg, d)
    differ = sa != da
    # ASTRA-sim's own arithmetic, in ns and bytes/ns, so integer_ns truncates what it truncates.
    bw_Bpns = np.asarray(cfg.bandwidth_GiBps) * units.BYTES_PER_GIB / 1e9
    lat_ns = np.asarray(cfg.latency_ns)
    hops = np.zeros(differ.shape, dtype=np.int64)
    for dim, (block, k) in enumerate(zip(cfg.topology, cfg.npus_count)):
        sel = differ[:, dim]
        hops[sel, dim] = _hops(block, k, sa[sel, dim], da[sel, dim])
    if multi_dim == "first":
        first = np.argmax(differ, axis=1)
        rows = np.arange(len(s))
        delay_ns = hops[rows, first] * lat_ns[first] + nb / bw_Bpns[first]
    else:
        slowest = np.where(differ, bw_Bpns, np.inf).min(axis=1)
        delay_ns = (hops * lat_ns).sum(axis=1) + nb / slowest
    if integer_ns:
        delay_ns = np.floor(delay_ns)
    out = delay_ns * 1e-9
    return float(out[0]) if scalar else out


def from_astra_yaml(config, *, gpu: str = "h100-sxm", link: str = "copper-nvlink", switch: str = "nvswitch3",
                    name: str | None = None) -> Fabric:
    """The fabric of an ASTRA-sim analytical network config.

    Parameters
    ----------
    config : path, mapping or AstraConfig
        The YAML file (or its parsed content).
    gpu, link, switch : str
        Catalog names recorded on the nodes and edges (``model``, ``link``) so
        metrics can price the fabric; capacities and latencies come from the
        config, not the catalog.  Edge tech is the link's.
    name : str, optional
        Default: the file's stem, else ``astra-`` and the building blocks.

    Returns
    -------
    Fabric
        GPU rank = ASTRA-sim NPU id; switch nodes (kind ``packet_switch``)
        follow in ASTRA-sim's device order.  Every directed edge has the
        dimension's bandwidth (2^30-byte GB/s converted to bytes/s) and latency;
        the per-link latency of the config stands for link and switch
        together, so an NPU->switch->NPU path costs two latencies as in
        ASTRA-sim.  Edge attribute ``dim``; node attribute ``dim`` (the
        dimension of a switch, -1 for GPUs).  ``meta["astra"]`` keeps the
        config (``bandwidth_GiBps``, ``latency_ns``) and ``meta`` the GPU-to-GPU
        ``diameter_hops`` and ``avg_hops``.  ``meta["gpu_forwarding"]`` is
        true: ASTRA-sim's routes pass through intermediate NPUs (around a
        ring, and from one dimension to the next), so a flow model must let
        GPUs forward on these fabrics even when they hold switches.

    Raises
    ------
    SpecError
        An invalid config (see :func:`read_astra_config`) or catalog name.

    Examples
    --------
    >>> f = from_astra_yaml({"topology": ["Ring", "Switch"], "npus_count": [4, 2],
    ...                      "bandwidth": [100.0, 50.0], "latency": [500.0, 1000.0]})
    >>> f.n_gpus, len(f.nodes_of_kind("packet_switch")), f.n_edges
    (8, 4, 32)
    """
    cfg = read_astra_config(config)
    g, lk, sw = hardware.gpu(gpu), hardware.link(link), hardware.switch(switch)
    n = cfg.n_npus
    k = np.asarray(cfg.npus_count, dtype=np.int64)
    strides = np.concatenate([[1], np.cumprod(k[:-1])]).astype(np.int64)
    ids = np.arange(n, dtype=np.int64)
    bw, lat = cfg.bandwidth_Bps, cfg.latency_s
    src, dst, cap, late, dims, sw_dim = [], [], [], [], [], []
    n_sw = 0
    for dim, (block, kd, st) in enumerate(zip(cfg.topology, k, strides)):
        c = (ids // st) % kd
        if block == "Ring":
            sel = ids if kd > 2 else ids[c == 0]        # a 2-NPU ring is one link per direction
            u = sel
            v = sel + ((c[sel] + 1) % kd - c[sel]) * st
            a, b = np.concatenate([u, v]), np.concatenate([v, u])
        elif block == "FullyConnected":
            other = (c[:, None] + np.arange(1, kd)) % kd
            a = np.repeat(ids, kd - 1)
            b = (ids[:, None] + (other - c[:, None]) * st).ravel()
        else:
            base = ids[c == 0]                           # first NPU of every line, ascending
            line_sw = n + n_sw + np.arange(len(base))
            member = ids - c * st                        # first NPU of each NPU's line
            sw_node = line_sw[np.searchsorted(base, member)]
            a, b = np.concatenate([ids, sw_node]), np.concatenate([sw_node, ids])
            sw_dim.append(np.full(len(base), dim, dtype=np.int64))
            n_sw += len(base)
        src.append(a)
        dst.append(b)
        cap.append(np.full(len(a), bw[dim]))
        late.append(np.full(len(a), lat[dim]))
        dims.append(np.full(len(a), dim, dtype=np.int64))
    kind = np.array(["gpu"] * n + ["packet_switch"] * n_sw, dtype=object)
    node_dim = np.concatenate([np.full(n, -1, dtype=np.int64)] + sw_dim)
    per_dim = []
    for block, kd in zip(cfg.topology, cfg.npus_count):
        per_dim.append({"Ring": (kd // 2, (kd * kd // 4) / kd), "FullyConnected": (1, (kd - 1) / kd),
                        "Switch": (2, 2 * (kd - 1) / kd)}[block])   # (max hops, mean hops incl. i == j)
    meta = {"generator": "astra", "gpu": g.name, "link": lk.name, "switch": sw.name, "n_gpus": n,
            "astra": {"topology": list(cfg.topology), "npus_count": list(cfg.npus_count),
                      "bandwidth_GiBps": list(cfg.bandwidth_GiBps), "latency_ns": list(cfg.latency_ns)},
            "diameter_hops": int(sum(h for h, _ in per_dim)),
            "avg_hops": sum(m for _, m in per_dim) * n / (n - 1),
            "gpu_forwarding": True}
    if name is None:
        name = Path(config).stem if isinstance(config, (str, Path)) else "astra-" + "_".join(cfg.topology)
    return Fabric(kind, np.concatenate(src), np.concatenate(dst), np.concatenate(cap), np.concatenate(late),
                  lk.tech, gpus=ids, name=name, meta=meta,
                  node_attrs={"model": np.array([g.name] * n + [sw.name] * n_sw), "dim": node_dim},
                  edge_attrs={"link": np.full(len(np.concatenate(dims)), lk.name), "dim": np.concatenate(dims)})


# ---- writing -----------------------------------------------------------------------------

def _infer_config(fabric: Fabric) -> AstraConfig:
    """The ASTRA-sim config a fabric was built from, or one it has the form of."""
    m = fabric.meta
    gib = units.BYTES_PER_GIB
    if "astra" in m:
        a = m["astra"]
        return read_astra_config({"topology": a["topology"], "npus_count": a["npus_count"],
                                  "bandwidth": a["bandwidth_GiBps"], "latency": a["latency_ns"]})
    gen = m.get("generator")
    gpu_only = bool((fabric.kind == "gpu").all()) and fabric.n_edges > 0
    if gen == "torus" and m.get("wrap", True) and gpu_only and "dim" in fabric.edge_attrs:
        dims = list(m["dims"])
        dim = fabric.edge_attrs["dim"]
        bw, lat = [], []
        for i in range(len(dims)):
            sel = dim == i
            bw.append(float(fabric.capacity_Bps[sel][0]) / gib)
            lat.append(units.from_si("latency_ns", float(fabric.latency_s[sel][0])))
        return read_astra_config({"topology": ["Ring"] * len(dims), "npus_count": dims,
                                  "bandwidth": bw, "latency": lat})
    if gen == "fully_connected" and gpu_only:
        return read_astra_config({"topology": ["FullyConnected"], "npus_count": [fabric.n_gpus],
                                  "bandwidth": [float(fabric.capacity_Bps[0]) / gib],
                                  "latency": [units.from_si("latency_ns", float(fabric.latency_s[0]))]})
    raise FabricError(f"fabric {fabric.name!r} (generator {gen!r}) has no ASTRA-sim form: only fabrics read "
                      "with from_astra_yaml, tori (wrap=True) and cliques can be written as an ASTRA-sim config")


def _same_fabric(a: Fabric, b: Fabric) -> bool:
    return (a.n_nodes == b.n_nodes and a.n_edges == b.n_edges and list(a.kind) == list(b.kind)
            and np.array_equal(a.gpus, b.gpus) and np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)
            and np.allclose(a.capacity_Bps, b.capacity_Bps, rtol=1e-12, atol=0)
            and np.allclose(a.latency_s, b.latency_s, rtol=1e-12, atol=0))


def _num(x: float) -> str:
    return repr(float(x))


def to_astra_yaml(fabric: Fabric, path) -> Path:
    """Write a fabric as an ASTRA-sim analytical network config; return the path.

    Accepted: fabrics built by :func:`from_astra_yaml`, wrap-around tori
    (one ``Ring`` per dimension) and cliques (``FullyConnected``).  The
    config is rebuilt into a fabric and compared with ``fabric`` (nodes,
    edges, capacities, latencies); a fabric that has been changed, or whose
    links differ inside a dimension, is refused rather than written wrong.

    Raises
    ------
    FabricError
        The fabric has no ASTRA-sim form; the message says why.

    Examples
    --------
    >>> import tempfile, os
    >>> from ocsnet.topology.direct import torus
    >>> p = to_astra_yaml(torus((4, 4)), os.path.join(tempfile.mkdtemp(), "t.yml"))
    >>> from_astra_yaml(p).n_edges
    64
    """
    cfg = _infer_config(fabric)
    rebuilt = from_astra_yaml(cfg)
    if not _same_fabric(fabric, rebuilt):
        raise FabricError(f"fabric {fabric.name!r}: its links do not match the ASTRA-sim config "
                          f"{cfg.as_dict()} (changed after it was built, or links differ inside a dimension)")
    text = "\n".join([
        f"# {fabric.name}: written by ocsnet; bandwidth in GB/s with 1 GB = 2^30 B, latency in ns",
        f"topology: [ {', '.join(cfg.topology)} ]",
        f"npus_count: [ {', '.join(str(k) for k in cfg.npus_count)} ]",
        f"bandwidth: [ {', '.join(_num(x) for x in cfg.bandwidth_GiBps)} ]  # GB/s",
        f"latency: [ {', '.join(_num(x) for x in cfg.latency_ns)} ]  # ns",
    ]) + "\n"
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path

