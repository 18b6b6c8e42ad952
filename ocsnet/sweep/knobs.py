"""The knobs a sweep may vary: what each means, its allowed values, and where it applies.

Stage: sweep (see docs/design.md).  A design point is a dict ``knob -> value``;
:func:`resolve` turns it into a :class:`PointSetup` (which GPU, which fabric with
which overrides, which model, mode, sizes and evaluation options), the input of
:func:`ocsnet.sweep.point.evaluate_point`.  Every knob is listed in :data:`KNOBS`
with its unit in its name; a model that adds a knob registers it here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SweepError

__all__ = ["Knob", "KNOBS", "PointSetup", "resolve", "knob_table", "torus_dims"]


@dataclass
class PointSetup:
    """Everything one design point needs, resolved from its knob values."""

    model: str = "llama3-70b"
    mode: str = "decode"
    gpu: str = "lite-netboost"
    fabric: str = "lite-ocs"
    n_gpus: int | None = None
    fabric_overrides: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)            # batch, seq_len, context (per micro-batch)
    search: dict = field(default_factory=dict)           # tp, pp, algorithms, max_gpus_per_replica
    reconfig_delay_s: float | None = None
    latency_limit_s: float | None = None
    # silicon: a Lite-GPU derived from its parent by the silicon model (ocsnet.hardware.lite_gpu)
    gpu_fraction: float | None = None
    parent_gpu: str = "h100-sxm"
    io: str = "cpo"
    clock: str = "nominal"
    hbm_GB: float | None = None
    # memory architecture (ocsnet.memory)
    memory: str = "local"
    memory_tier: str = "cxl-pool"
    memory_nodes: int = 16
    # failures (ocsnet.reliability): set repair_policy to get the failure metrics
    repair_policy: str | None = None
    spare_fraction: float = 0.0
    # serving SLO preset: its TTFT (prefill) or TPOT (decode) limit bounds the plan search
    slo: str | None = None


@dataclass(frozen=True)
class Knob:
    """One axis a sweep can vary.

    ``kind`` is ``"choice"`` (``choices`` lists the allowed values, or
    ``choices_fn`` returns them from the catalog), ``"int"`` or ``"float"``
    (inclusive ``lo``/``hi``).  ``apply(setup, value)`` writes the value into
    the :class:`PointSetup`.
    """

    name: str
    kind: str
    doc: str
    apply: Callable[[PointSetup, Any], None]
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    choices_fn: Callable[[], list] | None = None

    def allowed(self) -> list:
        return list(self.choices_fn()) if self.choices_fn else list(self.choices)

    def check(self, value, where: str):
        """The value, normalized (ints as int), or a :class:`SweepError` naming ``where``."""
        if self.kind == "choice":
            allowed = self.allowed()
            if value not in allowed:
                raise SweepError(f"{where}: {value!r} is not allowed for knob {self.name!r}; "
                                 f"allowed: {', '.join(map(str, allowed))}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SweepError(f"{where}: expected a number for knob {self.name!r}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SweepError(f"{where}: {value!r} is not finite")
        if self.kind == "int":
            if float(value) != int(value):
                raise SweepError(f"{where}: knob {self.name!r} takes a whole number, got {value!r}")
            value = int(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise SweepError(f"{where}: {value!r} is out of range for knob {self.name!r}, "
                             f"allowed [{self.lo}, {self.hi}]")
        return float(value) if self.kind == "float" else value


def _models() -> list[str]:
    from ..workload.models import models
    return sorted(models())


def _gpus() -> list[str]:
    from .. import hardware
    return sorted(hardware.gpus())


def _fabrics() -> list[str]:
    from ..topology.spec import list_specs
    return list_specs()


def _gpu_names() -> list[str]:
    from .. import hardware
    return sorted(hardware.gpus())


def _node_tiers() -> list[str]:
    from ..memory.tiers import tiers
    return sorted(n for n, t in tiers().items() if t.kind == "node")


def _slo_names() -> list[str]:
    from ..serving.slo import presets
    return sorted(presets())


def _io_kinds() -> list[str]:
    from ..silicon.names import IO_KINDS
    return list(IO_KINDS)


def _memory_modes() -> list[str]:
    from ..memory.config import MEMORY_MODES
    return list(MEMORY_MODES)


def _set(attr: str, convert=lambda v: v):
    def apply(setup: PointSetup, value):
        setattr(setup, attr, convert(value))
    return apply


def _size(key: str):
    def apply(setup: PointSetup, value):
        setup.sizes[key] = int(value)
    return apply


def _override(key: str):
    def apply(setup: PointSetup, value):
        setup.fabric_overrides[key] = value
    return apply


def _us(value) -> float:
    from .. import units
    return units.to_si("x_us", value)


def _ms(value) -> float:
    from .. import units
    return units.to_si("x_ms", value)


def _calibrations() -> list:
    from ..workload.calibration import calibrations
    return sorted(calibrations())


def _search(key: str, listify: bool = True):
    def apply(setup: PointSetup, value):
        setup.search[key] = [value] if listify and not isinstance(value, list) else value
    return apply


#: Every knob, by name.
KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("model", "choice", "LLM from the catalog (models.toml)", _set("model"), choices_fn=_models),
    Knob("mode", "choice", "inference phase", _set("mode"), choices=("prefill", "decode")),
    Knob("gpu", "choice", "GPU from the catalog (an H100 or a Lite-GPU variant)", _set("gpu"), choices_fn=_gpus),
    Knob("fabric", "choice", "named fabric spec (topologies/)", _set("fabric"), choices_fn=_fabrics),
    Knob("n_gpus", "int", "GPUs in the cluster (mapped to each fabric family's size parameter)",
         _set("n_gpus", int), lo=8, hi=1 << 20),
    Knob("ports_per_gpu", "int", "optical ports per GPU (OCS fabrics)", _override("ports_per_gpu"), lo=1, hi=64),
    Knob("ocs", "choice", "OCS technology from the catalog (ocs.toml)", _override("ocs"),
         choices_fn=lambda: sorted(__import__("ocsnet.hardware", fromlist=["x"]).ocs_types())),
    Knob("reconfig_delay_us", "float", "OCS reconfiguration delay (overrides the OCS's own)",
         _set("reconfig_delay_s", _us), lo=0.0, hi=1e7),
    Knob("batch", "int", "sequences per micro-batch", _size("batch"), lo=1, hi=1 << 16),
    Knob("seq_len", "int", "prompt tokens (prefill)", _size("seq_len"), lo=1, hi=1 << 22),
    Knob("context", "int", "KV-cache tokens (decode)", _size("context"), lo=1, hi=1 << 22),
    Knob("tp", "int", "tensor-parallel degree (fixes the plan search's tp)", _search("tp"), lo=1, hi=1024),
    Knob("pp", "int", "pipeline-parallel degree (fixes the plan search's pp)", _search("pp"), lo=1, hi=1024),
    Knob("algorithm", "choice", "all-reduce algorithm (fixes the plan search's choice)", _search("algorithms"),
         choices=("ring", "rhd", "double-binary-tree", "direct", "two-shot", "tree")),
    Knob("latency_limit_ms", "float", "TTFT (prefill) or TPOT (decode) limit on the chosen plan",
         _set("latency_limit_s", _ms), lo=0.0, hi=1e9),
    Knob("slo", "choice", "serving SLO preset: its TTFT (prefill) or TPOT (decode) limit bounds the plan search",
         _set("slo"), choices_fn=_slo_names),
    Knob("gpu_fraction", "float", "Lite-GPU die as a fraction of parent_gpu, derived by the silicon model "
         "(replaces the gpu knob)", _set("gpu_fraction", float), lo=1 / 64, hi=1.0),
    Knob("parent_gpu", "choice", "parent of a gpu_fraction Lite-GPU", _set("parent_gpu"), choices_fn=_gpu_names),
    Knob("io", "choice", "I/O of a gpu_fraction Lite-GPU (escape density of its shoreline)", _set("io"),
         choices_fn=_io_kinds),
    Knob("clock", "choice", "clock of a gpu_fraction Lite-GPU: nominal, or the most under the cooling limit",
         _set("clock"), choices=("nominal", "max")),
    Knob("hbm_GB", "float", "HBM capacity per GPU (overrides the GPU's)", _set("hbm_GB", float), lo=1.0, hi=1e4),
    Knob("memory", "choice", "memory architecture: local HBM, shared peer HBM, disaggregated memory nodes, "
         "host DRAM", _set("memory"), choices_fn=_memory_modes),
    Knob("memory_tier", "choice", "memory-node tier of the disaggregated architecture", _set("memory_tier"),
         choices_fn=_node_tiers),
    Knob("memory_nodes", "int", "memory nodes attached to the fabric (disaggregated)", _set("memory_nodes", int),
         lo=1, hi=1 << 16),
    Knob("repair_policy", "choice", "failure handling: none, hot spares, or OCS spare substitution "
         "(adds the failure metrics)", _set("repair_policy"), choices=("none", "spares", "ocs")),
    Knob("spare_fraction", "float", "hot spares as a fraction of the cluster's GPUs", _set("spare_fraction", float),
         lo=0.0, hi=1.0),
    Knob("dtype", "choice", "weights and activations precision", _search("dtype", listify=False),
         choices=("bf16", "fp8")),
    Knob("kv_dtype", "choice", "KV-cache precision", _search("kv_dtype", listify=False), choices=("bf16", "fp8")),
    Knob("calibration", "choice", "kernel and collective efficiency model (catalog/calibration.toml)",
         _search("calibration", listify=False), choices_fn=_calibrations),
)}


def torus_dims(n: int, ndim: int) -> list[int]:
    """The most cube-like ``ndim`` factors of ``n`` (largest first): the torus of ``n`` GPUs."""
    best = None

    def rec(rem, k, lo, acc):
        nonlocal best
        if k == 1:
            if rem >= lo:
                dims = sorted(acc + [rem], reverse=True)
                if best is None or dims[0] / dims[-1] < best[0] / best[-1]:
                    best = dims
            return
        d = lo
        while d ** k <= rem:
            if rem % d == 0:
                rec(rem // d, k - 1, d, acc + [d])
            d += 1

    rec(int(n), int(ndim), 1, [])
    return best or [int(n)] + [1] * (ndim - 1)


def resolve(point: dict) -> PointSetup:
    """The :class:`PointSetup` of a point (knob values already checked)."""
    if "gpu" in point and "gpu_fraction" in point:
        raise SweepError("knobs gpu and gpu_fraction exclude each other: gpu names a catalog GPU, "
                         "gpu_fraction derives one from parent_gpu")
    setup = PointSetup()
    for name, value in point.items():
        KNOBS[name].apply(setup, value)
    return setup


def knob_table() -> list[list]:
    """Rows (name, kind, range or choices, meaning) for ``ocsnet sweep knobs``."""
    rows = []
    for k in KNOBS.values():
        if k.kind == "choice":
            allowed = k.allowed()
            rng = ", ".join(map(str, allowed[:6])) + (", ..." if len(allowed) > 6 else "")
        else:
            rng = f"[{k.lo:g}, {k.hi:g}]" if k.kind == "float" else f"[{k.lo}, {k.hi}]"
        rows.append([k.name, k.kind, rng, k.doc])
    return rows

