"""Exception types raised by ocsnet.

Every error names the offending field and, where there is one, the allowed
range.  Library code raises these; only :mod:`ocsnet.cli` turns them into one
line on stderr and exit status 2.
"""

from __future__ import annotations


class OcsnetError(ValueError):
    """Base class of every error ocsnet raises for bad input."""


class SpecError(OcsnetError):
    """A catalog entry, TOML spec or parameter is missing, unknown or out of range."""


class UnitError(SpecError):
    """A quantity string could not be parsed or has the wrong dimension."""


class FabricError(OcsnetError):
    """A graph is not a valid fabric, or a circuit matrix does not fit it."""


class WorkloadError(OcsnetError):
    """A model, parallel plan or placement is invalid or does not fit."""


class FlowError(OcsnetError):
    """Flows, routes or capacities given to the flow model are invalid."""


class ScheduleError(OcsnetError):
    """An OCS scheduling problem or schedule is invalid."""


class FaultError(OcsnetError):
    """A fault names a component that does not exist, or a failure/repair parameter is out of range."""


class SweepError(SpecError):
    """A sweep spec, its results folder or the engine that runs it is invalid or unreachable."""
