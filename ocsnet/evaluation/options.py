"""The options of one evaluation, as one frozen record.

Stage: evaluation (see docs/design.md, "The per-layer model").  :func:`ocsnet.evaluate`
takes an :class:`EvalOptions`; its keyword arguments are a convenience that
builds one.  A study builds one options object per system and derives the
others with :meth:`EvalOptions.replace`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .. import checks
from ..errors import WorkloadError
from ..flow.names import FIDELITIES

__all__ = ["EvalOptions", "SCHEDULE_BOUNDS"]

#: Lower bounds a circuit schedule reports (:func:`ocsnet.schedule.solve`).
SCHEDULE_BOUNDS = ("best", "design")


def _choice(name: str, value, allowed) -> None:
    checks.choice(name, value, allowed, error=WorkloadError)


@dataclass(frozen=True)
class EvalOptions:
    """Everything :func:`ocsnet.evaluate` needs besides the model, plan, fabric and mode.

    Parameters
    ----------
    batch : int
        Sequences per micro-batch, >= 1.
    seq_len, context : int, optional
        Prompt length (prefill); KV length (decode).
    gpu : str or GPUSpec, optional
        Default: the fabric's ``meta["gpu"]``.
    algorithms : mapping, optional
        Collective kind -> algorithm, e.g. ``{"all-reduce": "rhd"}``; kinds not
        named run ``"auto"`` (the fastest algorithm that applies to the group
        on the fabric, :mod:`ocsnet.evaluation.algorithms`).
    fidelity : {"max-min", "alpha-beta"}
        Which communication time the totals use (``max-min`` falls back to
        ``alpha-beta`` when it is not computed).
    fidelities : tuple of str
        Which fidelities to compute (``("alpha-beta",)`` is the fast screen).
    overlap : bool
        Hide communication and reconfiguration under compute.
    fill : bool
        Raise the data-parallel degree to fill the fabric.
    placement : {"topology-aware", "contiguous"}
        Placement strategy of :func:`ocsnet.workload.parallel.place`.
    schedule : bool
        On an OCS fabric, solve the circuit schedule (else only the ideal
        circuit time is computed and no reconfiguration is counted).
    schedule_method : str
        Method of :func:`ocsnet.schedule.solve`.
    schedule_bound : {"best", "design"}
        Lower bound the schedule reports; ``"design"`` is cheaper on long traces.
    schedule_time_limit_s : float, optional
        Time limit of the circuit scheduler.
    reconfig_delay_s : float, optional
        Override the OCS reconfiguration delay of the fabric.
    latency_budget_s : float, optional
        TTFT (prefill) or TPOT (decode) budget; missing it is listed in ``failures``.
    dtype_bytes : float, optional
        Bytes per weight and activation element (default: from ``dtype``).
    dtype, kv_dtype : {"bf16", "fp8"}
        Precision of weights and activations, and of the KV cache (default
        ``dtype``); see :mod:`ocsnet.workload.precision`.
    calibration : str or Calibration, optional
        Kernel and collective efficiency model (:mod:`ocsnet.workload.calibration`):
        ``"roofline"`` (default: constant efficiencies, no overheads) or a
        calibration of ``catalog/calibration.toml`` such as ``"measured"``.
    memory : MemoryConfig, optional
        Remote memory tiers (peer HBM, the fabric's memory nodes, host DRAM),
        the placement rule and prefetch (:class:`ocsnet.memory.MemoryConfig`);
        default local HBM only.  Remote reads are timed on the fabric with the
        layer's other traffic (:mod:`ocsnet.evaluation.remote`); memory sharing
        takes lending GPUs from the fabric.

    Raises
    ------
    WorkloadError
        A field is out of range or not one of its choices; the message names it.

    Examples
    --------
    >>> o = EvalOptions(batch=8, context=4096, fidelities=("alpha-beta",))
    >>> o.replace(batch=16).batch, o.fidelities
    (16, ('alpha-beta',))
    >>> EvalOptions.from_kwargs(None, batch=4, overlap=True).overlap
    True
    """

    batch: int
    seq_len: int | None = None
    context: int | None = None
    gpu: Any = None
    algorithms: Mapping[str, str] | None = None
    fidelity: str = "max-min"
    fidelities: tuple = FIDELITIES
    overlap: bool = False
    fill: bool = True
    placement: str = "topology-aware"
    schedule: bool = True
    schedule_method: str = "heuristic"
    schedule_bound: str = "best"
    schedule_time_limit_s: float | None = 20.0
    reconfig_delay_s: float | None = None
    latency_budget_s: float | None = None
    dtype_bytes: float | None = None
    dtype: str = "bf16"
    kv_dtype: str | None = None
    calibration: Any = None
    memory: Any = None

    def __post_init__(self):
        _choice("fidelity", self.fidelity, FIDELITIES)
        fids = (self.fidelities,) if isinstance(self.fidelities, str) else tuple(self.fidelities)
        if not fids:
            raise WorkloadError(f"fidelities: empty; give one or more of {', '.join(FIDELITIES)}")
        for f in fids:
            _choice("fidelities", f, FIDELITIES)
        object.__setattr__(self, "fidelities", fids)
        _choice("schedule_bound", self.schedule_bound, SCHEDULE_BOUNDS)
        checks.boolean("overlap", self.overlap, error=WorkloadError)
        if self.latency_budget_s is not None:
            checks.positive("latency_budget_s", self.latency_budget_s, error=WorkloadError)
        if self.reconfig_delay_s is not None:
            checks.nonnegative("reconfig_delay_s", self.reconfig_delay_s, error=WorkloadError)
        if self.algorithms is not None:
            if not isinstance(self.algorithms, Mapping):
                raise WorkloadError(f"algorithms: expected a table of collective kind -> algorithm, "
                                    f"got {self.algorithms!r:.60}")
            object.__setattr__(self, "algorithms", dict(self.algorithms))

    @property
    def sizes(self) -> dict:
        """``batch``, ``seq_len`` and ``context`` (the ones given)."""
        return {k: v for k, v in (("batch", self.batch), ("seq_len", self.seq_len), ("context", self.context))
                if v is not None}

    def replace(self, **changes) -> "EvalOptions":
        """A copy with some fields changed (checked again)."""
        _known(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_kwargs(cls, options: "EvalOptions | None", **kwargs) -> "EvalOptions":
        """``options`` with ``kwargs`` applied, or new options from ``kwargs`` alone."""
        _known(kwargs)
        if options is None:
            if "batch" not in kwargs:
                raise TypeError("evaluate: give options=EvalOptions(...) or at least batch=...")
            return cls(**kwargs)
        if not isinstance(options, EvalOptions):
            raise TypeError(f"options: expected EvalOptions, got {type(options).__name__}")
        return options.replace(**kwargs) if kwargs else options


def _known(kwargs: dict) -> None:
    names = {f.name for f in dataclasses.fields(EvalOptions)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"evaluate: unknown option {unknown[0]!r}; options are {', '.join(sorted(names))}")
