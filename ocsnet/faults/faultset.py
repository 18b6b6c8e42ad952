"""What failed: a :class:`FaultSet` of GPUs, links, switches, OCS planes, hosts and optical ports.

Stage 3 of the pipeline (faults, after the topology).  A fault set is a plain,
hashable value; :func:`ocsnet.faults.degrade` applies it to a fabric.  It is
written by hand, parsed from the command-line syntax of :func:`parse_faults`
(``gpu:17,link:3-9,switch:spine-2,plane:1,port:5/0,host:2``), and checked
against a fabric by :meth:`FaultSet.resolve`, which names the first component
that does not exist.

Component names (see :func:`node_index`):

* a node index (``130``), ``gpuK`` / ``gpu-K`` (GPU rank ``K``);
* ``leaf-K``, ``spine-K``, ``core-K``: the ``K``-th packet switch of tier 1, 2
  or 3 of a folded Clos (node attribute ``tier``); ``nvswitch-K``, ``ocs-K``,
  ``nic-K``: the ``K``-th node of that kind;
* a node label of a fabric wrapped from networkx.

A link is ``A-B`` (both directions; with names containing ``-`` write
``A~B``), or ``A>B`` (one direction).  A port is ``GPU/K``: the ``K``-th
optical port of a GPU, i.e. its ``K``-th outgoing link in node order (on an
OCS fabric that is its link to plane ``K``'s switch); a lost port removes both
directions of that link.  A host is a server of a DGX-style fabric (node
attribute ``node``): its GPUs and its NVSwitch fail together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import FaultError
from ..fabric import Fabric

__all__ = ["FaultSet", "parse_faults", "node_index", "FAULT_KINDS"]

#: Kinds of a fault in the ``kind:value`` syntax.
FAULT_KINDS = ("gpu", "link", "switch", "plane", "port", "host")
_TIERS = {"leaf": 1, "spine": 2, "core": 3}


def _ints(values, name: str) -> tuple[int, ...]:
    out = []
    for v in values:
        if isinstance(v, bool) or not float(v).is_integer() or int(v) < 0:
            raise FaultError(f"{name}: {v!r} is not a non-negative integer")
        out.append(int(v))
    return tuple(sorted(set(out)))


@dataclass(frozen=True)
class FaultSet:
    """Failed components of a fabric.

    Parameters
    ----------
    gpus : sequence of int
        GPU ranks that failed (the GPU and every link of it are gone).
    links : sequence of (u, v) or (u, v, both)
        Node indices of failed links; ``both`` (default true) fails both
        directions, false only ``u -> v``.  Names are accepted (resolved by
        :meth:`resolve`).
    switches : sequence of int or str
        Non-GPU nodes that failed (packet switches, NVSwitches, NICs, OCS units).
    planes : sequence of int
        OCS planes that failed: every OCS unit of the plane and its links.
    ports : sequence of (gpu_rank, k)
        Lost optical port ``k`` of a GPU (a dead transceiver or CPO lane).
    hosts : sequence of int
        Servers (node attribute ``node``) whose GPUs and NVSwitch failed.
    """

    gpus: tuple = ()
    links: tuple = ()
    switches: tuple = ()
    planes: tuple = ()
    ports: tuple = ()
    hosts: tuple = ()
    _resolved: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "gpus", _ints(self.gpus, "gpus"))
        object.__setattr__(self, "planes", _ints(self.planes, "planes"))
        object.__setattr__(self, "hosts", _ints(self.hosts, "hosts"))
        links = []
        for lk in self.links:
            lk = tuple(lk)
            if len(lk) not in (2, 3):
                raise FaultError(f"links: {lk!r} is not (u, v) or (u, v, both)")
            links.append((lk[0], lk[1], bool(lk[2]) if len(lk) == 3 else True))
        object.__setattr__(self, "links", tuple(sorted(set(links), key=repr)))
        object.__setattr__(self, "switches", tuple(sorted(set(self.switches), key=repr)))
        ports = []
        for pt in self.ports:
            pt = tuple(pt)
            if len(pt) != 2:
                raise FaultError(f"ports: {pt!r} is not (gpu_rank, port)")
            ports.append(_ints(pt[:1], "ports") + _ints(pt[1:], "ports"))
        object.__setattr__(self, "ports", tuple(sorted(set(ports))))

    @property
    def empty(self) -> bool:
        return not (self.gpus or self.links or self.switches or self.planes or self.ports or self.hosts)

    def __len__(self) -> int:
        return (len(self.gpus) + len(self.links) + len(self.switches) + len(self.planes)
                + len(self.ports) + len(self.hosts))

    def union(self, other: "FaultSet") -> "FaultSet":
        """Both fault sets at once."""
        return FaultSet(self.gpus + other.gpus, self.links + other.links, self.switches + other.switches,
                        self.planes + other.planes, self.ports + other.ports, self.hosts + other.hosts)

    def resolve(self, fabric: Fabric) -> "FaultSet":
        """The same faults with every name turned into a node index, checked against ``fabric``.

        Raises
        ------
        FaultError
            A GPU rank, node, link, plane, port or host does not exist in the
            fabric; the message names it and the allowed range.
        """
        n, N = fabric.n_nodes, fabric.n_gpus
        for g in self.gpus:
            if g >= N:
                raise FaultError(f"gpu:{g}: no such GPU rank, allowed [0, {N - 1}]")
        links = []
        for u, v, both in self.links:
            a, b = node_index(fabric, u, "link"), node_index(fabric, v, "link")
            if fabric.edge_ids([a], [b])[0] < 0:
                raise FaultError(f"link:{u}-{v}: the fabric has no link from node {a} to node {b}")
            if both and fabric.edge_ids([b], [a])[0] < 0:
                raise FaultError(f"link:{u}-{v}: the fabric has no link from node {b} to node {a} "
                                 f"(fail one direction with link:{u}>{v})")
            links.append((a, b, both))
        switches = []
        for s in self.switches:
            i = node_index(fabric, s, "switch")
            if fabric.kind[i] == "gpu":
                raise FaultError(f"switch:{s}: node {i} is a GPU; fail it with gpu:{int(fabric.gpu_rank[i])}")
            switches.append(i)
        planes = plane_ids(fabric)
        for p in self.planes:
            if p not in planes:
                rng = f"[0, {max(planes)}]" if planes else "none (the fabric has no OCS plane)"
                raise FaultError(f"plane:{p}: no such OCS plane, allowed {rng}")
        deg = np.diff(fabric.csr.indptr)
        for g, k in self.ports:
            if g >= N:
                raise FaultError(f"port:{g}/{k}: no such GPU rank, allowed [0, {N - 1}]")
            d = int(deg[fabric.gpus[g]])
            if k >= d:
                raise FaultError(f"port:{g}/{k}: GPU {g} has {d} ports, allowed [0, {d - 1}]")
        if self.hosts:
            srv = fabric.node_attrs.get("node")
            if srv is None:
                raise FaultError("host: the fabric has no servers (node attribute 'node'); fail GPUs instead")
            top = int(srv.max())
            for h in self.hosts:
                if h > top:
                    raise FaultError(f"host:{h}: no such server, allowed [0, {top}]")
        return FaultSet(self.gpus, links, switches, self.planes, self.ports, self.hosts, _resolved=True)

    def to_json(self) -> dict:
        """A JSON-able description (lists, in canonical order)."""
        return {"gpus": list(self.gpus), "links": [[u, v, b] for u, v, b in self.links],
                "switches": list(self.switches), "planes": list(self.planes),
                "ports": [list(p) for p in self.ports], "hosts": list(self.hosts)}

    def __str__(self) -> str:
        parts = [f"gpu:{g}" for g in self.gpus]
        parts += [f"link:{u}{_link_sep(u, v, b)}{v}" for u, v, b in self.links]
        parts += [f"switch:{s}" for s in self.switches]
        parts += [f"plane:{p}" for p in self.planes]
        parts += [f"port:{g}/{k}" for g, k in self.ports]
        parts += [f"host:{h}" for h in self.hosts]
        return ",".join(parts)


def _link_sep(u, v, both: bool) -> str:
    if not both:
        return ">"
    return "~" if "-" in f"{u}{v}" else "-"


def plane_ids(fabric: Fabric) -> set[int]:
    """OCS plane numbers of a fabric (node attribute ``plane`` of its OCS units)."""
    pl = fabric.node_attrs.get("plane")
    if pl is None:
        return set()
    ocs = fabric.kind == "ocs"
    return {int(p) for p in np.unique(pl[ocs]) if p >= 0}


def node_index(fabric: Fabric, ref, field_name: str = "node") -> int:
    """The node index named by ``ref`` (see the module docstring for the names).

    Raises
    ------
    FaultError
        No node has that name or index.
    """
    n = fabric.n_nodes
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        if not 0 <= int(ref) < n:
            raise FaultError(f"{field_name}:{ref}: node index out of range, allowed [0, {n - 1}]")
        return int(ref)
    s = str(ref).strip()
    if re.fullmatch(r"\d+", s):
        return node_index(fabric, int(s), field_name)
    if fabric.labels is not None:
        for i, lab in enumerate(fabric.labels):
            if str(lab) == s:
                return i
    m = re.fullmatch(r"([a-z_]+)-?(\d+)", s)
    if m:
        what, k = m.group(1), int(m.group(2))
        if what == "gpu":
            if k >= fabric.n_gpus:
                raise FaultError(f"{field_name}:{s}: no such GPU rank, allowed [0, {fabric.n_gpus - 1}]")
            return int(fabric.gpus[k])
        if what in _TIERS:
            tier = fabric.node_attrs.get("tier")
            cand = (np.flatnonzero((tier == _TIERS[what]) & (fabric.kind == "packet_switch"))
                    if tier is not None else np.zeros(0, np.int64))
        elif what in ("nvswitch", "ocs", "nic", "packet_switch"):
            cand = fabric.nodes_of_kind(what)
        else:
            cand = None
        if cand is not None:
            if k >= len(cand):
                rng = f"[0, {len(cand) - 1}]" if len(cand) else "none (the fabric has no such node)"
                raise FaultError(f"{field_name}:{s}: no {what} number {k}, allowed {rng}")
            return int(cand[k])
    raise FaultError(f"{field_name}:{s}: no such node; name a node index, gpuK, leaf-K, spine-K, core-K, "
                     "nvswitch-K, ocs-K or nic-K")


def parse_faults(spec: str) -> FaultSet:
    """Parse ``kind:value[,kind:value...]`` (kinds in :data:`FAULT_KINDS`) into a :class:`FaultSet`.

    Examples
    --------
    >>> f = parse_faults("gpu:17,link:3-9,link:4>5,switch:spine-2,plane:1,port:5/0")
    >>> f.gpus, f.planes, f.ports
    ((17,), (1,), ((5, 0),))
    >>> str(parse_faults("link:leaf-0~spine-1"))
    'link:leaf-0~spine-1'
    """
    if not isinstance(spec, str):
        raise FaultError(f"faults: expected a string such as 'gpu:17,link:3-9', got {spec!r}")
    acc = {k: [] for k in FAULT_KINDS}
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            continue
        kind, sep, val = item.partition(":")
        kind = kind.strip().lower()
        val = val.strip()
        if not sep or kind not in FAULT_KINDS or not val:
            raise FaultError(f"faults: {item!r} is not kind:value with kind one of {', '.join(FAULT_KINDS)}")
        if kind in ("gpu", "plane", "host"):
            if not re.fullmatch(r"\d+", val):
                raise FaultError(f"{kind}:{val}: expected a non-negative integer")
            acc[kind].append(int(val))
        elif kind == "switch":
            acc[kind].append(int(val) if val.isdigit() else val)
        elif kind == "port":
            m = re.fullmatch(r"(\d+)/(\d+)", val)
            if not m:
                raise FaultError(f"port:{val}: expected GPU/K, e.g. port:5/0 (GPU rank 5, its port 0)")
            acc[kind].append((int(m.group(1)), int(m.group(2))))
        else:
            if ">" in val:
                a, b, both = *val.split(">", 1), False
            elif "~" in val:
                a, b, both = *val.split("~", 1), True
            elif val.count("-") == 1:
                a, b, both = *val.split("-", 1), True
            else:
                raise FaultError(f"link:{val}: expected A-B, A~B (names with '-') or A>B (one direction)")
            a, b = a.strip(), b.strip()
            if not a or not b:
                raise FaultError(f"link:{val}: both endpoints are needed")
            acc[kind].append((int(a) if a.isdigit() else a, int(b) if b.isdigit() else b, both))
    return FaultSet(gpus=acc["gpu"], links=acc["link"], switches=acc["switch"], planes=acc["plane"],
                    ports=acc["port"], hosts=acc["host"])
