"""The optical circuit switching of a fabric, typed: :class:`OCSInfo` (``fabric.ocs``).

Stage: fabrics (see docs/design.md, "Fabrics").  The generators that wire
GPUs to OCS planes (:func:`ocsnet.topology.ocs_fabric`,
:func:`ocsnet.topology.hybrid`) fill it; the circuits, the schedule problem,
the scenarios, the evaluation and ``ocsnet topo info`` read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import FabricError

__all__ = ["OCSInfo"]


@dataclass(frozen=True)
class OCSInfo:
    """The optical circuit switching of a fabric: how its GPUs reach the OCS planes.

    Every GPU has ``ports_per_gpu`` optical ports; port ``p`` goes to plane
    ``p``.  The GPUs sit on a grid of circuit domains ``domain_shape``
    (dimension 0 fastest); the planes are split into levels,
    ``planes_per_level[l]`` of them serve the lines of dimension ``l``.  One
    level (``all_to_all``) means any GPU can hold a circuit to any other.  See
    ``docs/design.md``, "Fabrics" and "The OCS schedule".

    Attributes
    ----------
    ports_per_gpu : int
        Optical ports per GPU (= planes), >= 1.
    domain_shape : tuple of int
        Circuit-domain grid; its product is the number of GPUs.
    planes_per_level : tuple of int
        Planes of each level (sums to ``ports_per_gpu``).
    circuit_Bps : float
        Bandwidth of one circuit (one port), bytes/s per direction.
    circuit_latency_s : float
        Latency of one circuit: link + OCS insertion + link.
    reconfig_delay_s : float
        Time the OCS takes to change its configuration (no circuit carries data meanwhile).
    ocs : str
        Catalog name of the OCS device (:func:`ocsnet.hardware.ocs`).
    ocs_ports : int
        Ports of one OCS device.
    link : str
        Catalog name of the GPU<->OCS link.
    n_ocs : int
        OCS devices in the fabric.
    with_packet : bool
        The GPUs also have a packet network (a hybrid fabric).

    Examples
    --------
    >>> o = OCSInfo(4, (8,), (4,), 50e9, 1e-6, 1e-5, "mems-3d", 136, "cpo", 4)
    >>> o.all_to_all, o.levels, o.max_circuit_hops, o.bisection_bound_Bps
    (True, 1, 1, 800000000000.0)
    >>> OCSInfo.from_dict(o.to_dict()) == o
    True
    """

    ports_per_gpu: int
    domain_shape: tuple
    planes_per_level: tuple
    circuit_Bps: float
    circuit_latency_s: float
    reconfig_delay_s: float
    ocs: str
    ocs_ports: int
    link: str
    n_ocs: int
    with_packet: bool = False

    def __post_init__(self):
        object.__setattr__(self, "domain_shape", tuple(int(s) for s in self.domain_shape))
        object.__setattr__(self, "planes_per_level", tuple(int(p) for p in self.planes_per_level))
        if sum(self.planes_per_level) != self.ports_per_gpu or len(self.planes_per_level) != len(self.domain_shape):
            raise FabricError(f"ocs.planes_per_level: {list(self.planes_per_level)} must have one entry per level of "
                              f"domain_shape {list(self.domain_shape)} and sum to ports_per_gpu = {self.ports_per_gpu}")

    # ---- derived ---------------------------------------------------------------
    @property
    def n_gpus(self) -> int:
        return math.prod(self.domain_shape)

    @property
    def levels(self) -> int:
        """Levels of circuit domains (circuit hops between the farthest GPUs)."""
        return len(self.domain_shape)

    @property
    def all_to_all(self) -> bool:
        """One level: any GPU can hold a circuit to any other."""
        return self.levels == 1

    @property
    def domain_size(self) -> int:
        return max(self.domain_shape)

    @property
    def max_circuit_hops(self) -> int:
        """Circuits on the longest shortest GPU-to-GPU circuit path (one per level)."""
        return self.levels

    @property
    def avg_circuit_hops(self) -> float:
        """Mean circuit hops over ordered GPU pairs, ``N/(N-1) * sum(1 - 1/s_l)``."""
        n = self.n_gpus
        return n / (n - 1) * sum(1.0 - 1.0 / s for s in self.domain_shape)

    @property
    def bisection_bound_Bps(self) -> float | None:
        """Most any circuit configuration puts across the worst balanced cut (per direction).

        An OCS with ``a`` of its ``s`` GPUs on one side passes at most
        ``min(a, s - a)`` circuits across, so a cut along dimension ``l`` passes
        at most ``N/2 * d_l * b``.  None where no such cut is balanced (a level
        of odd size).
        """
        n = self.n_gpus
        if self.levels == 1:
            return float((n // 2) * self.planes_per_level[0] * self.circuit_Bps)
        if all(s % 2 == 0 for s in self.domain_shape):
            return float((n // 2) * min(self.planes_per_level) * self.circuit_Bps)
        return None

    # ---- files -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready fields (lists, not tuples)."""
        return {"ports_per_gpu": self.ports_per_gpu, "domain_shape": list(self.domain_shape),
                "planes_per_level": list(self.planes_per_level), "circuit_Bps": self.circuit_Bps,
                "circuit_latency_s": self.circuit_latency_s, "reconfig_delay_s": self.reconfig_delay_s,
                "ocs": self.ocs, "ocs_ports": self.ocs_ports, "link": self.link, "n_ocs": self.n_ocs,
                "with_packet": self.with_packet}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "OCSInfo":
        """Inverse of :meth:`to_dict`; a missing or unknown key is a :class:`FabricError`."""
        if not isinstance(d, Mapping):
            raise FabricError(f"ocs: expected a mapping of OCS fields, got {type(d).__name__}")
        names = [f.name for f in cls.__dataclass_fields__.values()]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise FabricError(f"ocs.{unknown[0]}: unknown field; allowed: {', '.join(names)}")
        missing = [k for k in names if k not in d and k != "with_packet"]
        if missing:
            raise FabricError(f"ocs.{missing[0]}: missing field")
        return cls(**d)
