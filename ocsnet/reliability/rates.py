"""Component failure rates, repair times and their scaling to a Lite-GPU (catalog ``failures.toml``).

Stage: reliability (after the evaluation; see docs/design.md, "Faults and
reliability").  The anchor is the Llama 3 pre-training run (419 unexpected
interruptions in 54 days on 16,384 H100 GPUs, by cause; counts, not the
misprinted percentages).  Each cause belongs to a component *kind*
(:data:`KINDS`), and the kind's rate per unit follows from the count over
the anchor's unit-time:

* ``gpu``  per GPU die, ``hbm`` per HBM stack, ``port`` per NIC or optical
  port, ``host`` per H100-equivalent of silicon, ``software`` per GPU process.

How a Lite-GPU's rates follow from the H100's is an assumption with a knob
per kind (:data:`SCALINGS`); the default is proportional: die failures in
proportion to die area, HBM per stack (stacks in proportion to HBM
capacity), optics per port, hosts per H100-equivalent, software per GPU.
``switch`` and ``ocs_plane`` have no public anchor (the Llama 3 table puts
switches and cables in one cause, counted here per port); their rates are
0 unless given.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .. import hardware
from ..errors import FaultError

__all__ = ["KINDS", "SCALINGS", "FailureModel", "failure_model", "gpu_rates", "anchor_interruptions_per_h"]

#: Component kinds with a failure rate.
KINDS = ("gpu", "hbm", "port", "host", "software", "switch", "ocs_plane")
#: Allowed scaling of each GPU-level kind from the H100 anchor to another GPU.
SCALINGS = {
    "gpu": ("die_area", "per_gpu", "per_h100_equivalent"),
    "hbm": ("per_stack", "per_gpu"),
    "port": ("per_port", "per_gpu"),
    "host": ("per_h100_equivalent", "per_gpu"),
    "software": ("per_gpu", "per_h100_equivalent"),
}
_ANCHOR_GPU = "h100-sxm"


def _nonneg(name: str, v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise FaultError(f"{name}: expected a number, got {v!r}") from None
    if not math.isfinite(x) or x < 0:
        raise FaultError(f"{name}: {v!r} is out of range, allowed [0, inf)")
    return x


@dataclass(frozen=True)
class FailureModel:
    """Rates per anchor unit, repair times and scaling knobs (SI: per second, seconds).

    Attributes
    ----------
    rate_per_s : dict
        Failures per second per anchor unit of each kind (an H100 die, an
        HBM stack, a NIC port, an H100-equivalent of host, a GPU process,
        a switch, an OCS plane).
    repair_s : dict
        Time a failure of each kind keeps its part out of service without a
        spare (software: the restart).
    spare_swap_s : float
        Time to swap a hot spare in by hand or by automation (no OCS).
    scaling : dict
        Scaling of each GPU-level kind (see :data:`SCALINGS`).
    counts : dict
        Anchor interruptions by kind (for the record).
    """

    rate_per_s: dict
    repair_s: dict
    spare_swap_s: float
    scaling: dict
    counts: dict
    anchor: dict
    source: dict = field(default_factory=dict, compare=False, repr=False)

    def replace(self, **kw) -> "FailureModel":
        return dataclasses.replace(self, **kw)


def failure_model(*, rates_per_h: dict | None = None, repair_h: dict | None = None,
                  spare_swap_min: float | None = None, scaling: dict | None = None) -> FailureModel:
    """The catalog's failure model, with optional overrides.

    Parameters
    ----------
    rates_per_h : dict, optional
        Failures per hour per anchor unit, by kind (overrides the catalog).
    repair_h : dict, optional
        Repair (or restart) hours by kind.
    spare_swap_min : float, optional
    scaling : dict, optional
        Scaling per GPU-level kind (see :data:`SCALINGS`).

    Raises
    ------
    FaultError
        An unknown kind or scaling, or a negative rate or time (naming it).

    Examples
    --------
    >>> fm = failure_model()
    >>> sum(fm.counts.values())
    419
    >>> round(1 / (anchor_interruptions_per_h(fm)), 2)      # hours between interruptions
    3.09
    """
    t = hardware.load_table("failures.toml")
    a = t["anchor"]
    gpus, days = float(a["gpus"]), float(a["days"])
    T = days * 86400.0
    counts = {k: 0 for k in KINDS}
    for name, c in t["causes"].items():
        if name == "source":
            continue
        if c["kind"] not in counts:
            raise FaultError(f"catalog failures.toml causes.{name}.kind: {c['kind']!r} is not one of {', '.join(KINDS)}")
        counts[c["kind"]] += int(c["count"])
    units = {"gpu": gpus, "hbm": gpus * a["hbm_stacks_per_gpu"], "port": gpus * a["nic_ports_per_gpu"],
             "host": gpus, "software": gpus}
    rate = {k: (counts[k] / (units[k] * T) if k in units else 0.0) for k in KINDS}
    r = t["repair"]
    rep = {k: r["repair_h"] * 3600.0 for k in KINDS}
    rep["host"] = r["host_repair_h"] * 3600.0
    rep["software"] = r["software_restart_min"] * 60.0
    swap = r["spare_swap_min"] * 60.0
    scal = {k: v for k, v in t["scaling"].items() if k != "source"}
    for k, v in (rates_per_h or {}).items():
        if k not in KINDS:
            raise FaultError(f"rates_per_h.{k}: unknown kind; allowed: {', '.join(KINDS)}")
        rate[k] = _nonneg(f"rates_per_h.{k}", v) / 3600.0
    for k, v in (repair_h or {}).items():
        if k not in KINDS:
            raise FaultError(f"repair_h.{k}: unknown kind; allowed: {', '.join(KINDS)}")
        rep[k] = _nonneg(f"repair_h.{k}", v) * 3600.0
    if spare_swap_min is not None:
        swap = _nonneg("spare_swap_min", spare_swap_min) * 60.0
    for k, v in (scaling or {}).items():
        if k not in SCALINGS:
            raise FaultError(f"scaling.{k}: unknown kind; allowed: {', '.join(SCALINGS)}")
        if v not in SCALINGS[k]:
            raise FaultError(f"scaling.{k}: {v!r} is not one of {', '.join(SCALINGS[k])}")
        scal[k] = v
    src = {"causes": t["causes"].get("source", {}), "anchor": a.get("source", {}),
           "repair": r.get("source", {}), "scaling": t["scaling"].get("source", {}),
           "crosscheck": t.get("crosscheck", {})}
    return FailureModel(rate, rep, swap, scal, counts, dict(a), src)


def anchor_interruptions_per_h(fm: FailureModel) -> float:
    """Interruptions per hour of the anchor job (every GPU-level failure stops a synchronous job)."""
    a = fm.anchor
    g = float(a["gpus"])
    per_gpu = (fm.rate_per_s["gpu"] + fm.rate_per_s["hbm"] * a["hbm_stacks_per_gpu"]
               + fm.rate_per_s["port"] * a["nic_ports_per_gpu"] + fm.rate_per_s["host"] + fm.rate_per_s["software"])
    return per_gpu * g * 3600.0


def gpu_rates(fm: FailureModel, gpu, *, ports: float) -> dict:
    """Failures per second of one GPU of spec ``gpu``, per GPU-level kind.

    Parameters
    ----------
    fm : FailureModel
    gpu : str or GPUSpec
    ports : float
        Network ports of the GPU counted as ``port`` units (the H100 anchor: one NIC).

    Returns
    -------
    dict kind -> failures per second of the kind's units belonging to one GPU.
    """
    g = hardware.gpu(gpu)
    h = hardware.gpu(_ANCHOR_GPU)
    ports = _nonneg("ports", ports)
    stacks = fm.anchor["hbm_stacks_per_gpu"] * g.hbm_bytes / h.hbm_bytes
    factor = {
        "gpu": {"die_area": g.die_area_mm2 / h.die_area_mm2, "per_gpu": 1.0, "per_h100_equivalent": g.h100_equivalents},
        "hbm": {"per_stack": stacks, "per_gpu": fm.anchor["hbm_stacks_per_gpu"]},
        "port": {"per_port": ports, "per_gpu": fm.anchor["nic_ports_per_gpu"]},
        "host": {"per_h100_equivalent": g.h100_equivalents, "per_gpu": 1.0},
        "software": {"per_gpu": 1.0, "per_h100_equivalent": g.h100_equivalents},
    }
    return {k: fm.rate_per_s[k] * factor[k][fm.scaling[k]] for k in SCALINGS}
