"""Faults (stage 3, after the topology): what failed, and the fabric that is left.

* :class:`FaultSet`, :func:`parse_faults`: failed GPUs, links, switches, OCS
  planes, hosts and optical ports;
* :func:`degrade`: the surviving fabric and a :class:`Degraded` report (GPUs
  cut off, capacity lost, ports left); :func:`ocs_ports` the per-GPU optical
  ports an OCS scheduler may still use.

The reliability model (failure rates, repair, blast radius, availability and
goodput) lives in :mod:`ocsnet.reliability`, a later stage.
"""

from .degrade import Degraded, degrade, ocs_ports
from .faultset import FAULT_KINDS, FaultSet, node_index, parse_faults

__all__ = ["FaultSet", "parse_faults", "node_index", "FAULT_KINDS", "Degraded", "degrade", "ocs_ports"]
