"""Named records of the study: a system, the choice made for it, the whole result.

Stage: evaluation (see docs/design.md).  Shared by :mod:`.search`, :mod:`.study`
and :mod:`.report`, which import it and never each other in a cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .per_layer import Evaluation

__all__ = ["System", "Choice", "StudyResult"]


@dataclass
class System:
    """One cluster of the study: a fabric spec (with overrides) and a GPU."""

    label: str
    fabric: str
    gpu: str
    overrides: dict = field(default_factory=dict)
    kind: str = "packet"          # packet | OCS | CPO torus | baseline

    @property
    def fabric_key(self) -> tuple:
        """Systems with equal keys share one built fabric."""
        return (self.fabric, self.gpu, json.dumps(self.overrides, sort_keys=True))


@dataclass
class Choice:
    """The best evaluation of one system for one (model, mode), and what the search saw."""

    system: System
    best: Evaluation | None
    screened: int = 0
    skipped: list[str] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)


def _all_reduce_name(ev: Evaluation) -> str:
    """The all-reduce algorithm of a plan; for ``auto``, with the one the tensor group runs."""
    alg = ev.algorithms.get("all-reduce", "")
    if alg == "auto":
        ran = sorted({c.algorithm for c in ev.collectives if c.kind == "all-reduce"})
        if ran:
            return f"auto ({', '.join(ran)})"
    return alg


@dataclass
class StudyResult:
    config: dict
    choices: dict            # (model, mode) -> list[Choice]
    sweep: list[dict]        # reconfiguration sweep rows
    elapsed_s: float
    fabrics: dict            # system label -> fabric summary
    sweep_schedule: tuple | None = None   # (title, Schedule, layers) of a sweep point that reconfigures
    extras: dict = field(default_factory=dict)   # analysis name -> its data (see study.ANALYSES)

    def summary_rows(self) -> list[dict]:
        """One row per (model, mode, system), normalized to the H100 baseline."""
        rows = []
        for (m, mode), choices in self.choices.items():
            base = next((c.best for c in choices if c.system.kind == "baseline" and c.best), None)
            for c in choices:
                r = {"model": m, "mode": mode, "system": c.system.label, "gpu": c.system.gpu,
                     "fabric": c.system.fabric, "screened": c.screened, "skipped": len(c.skipped)}
                if c.best is None:
                    r.update({"plan": "none fits", "algorithm": ""})
                    rows.append(r)
                    continue
                t = c.best.totals()
                r.update({"plan": t["plan"], "batch": t["batch"], "algorithm": _all_reduce_name(c.best),
                          "latency_ms": t["latency_ms"], "layer_us": t["layer_us"],
                          "compute_us": t["compute_us"], "comm_us": t["comm_max_min_us"],
                          "reconfig_us": t["reconfig_us"],
                          "tokens_per_s_per_h100e": t["tokens_per_s_per_h100e"],
                          "tokens_per_s_per_kW": t["tokens_per_s_per_kW"],
                          "tokens_per_s_per_cost": t["tokens_per_s_per_cost"],
                          "usd_per_million_tokens": t["usd_per_million_tokens"],
                          "memory_GB": t["memory_GB"], "failures": "; ".join(c.best.failures)})
                if base is not None:
                    bt = base.totals()
                    r["throughput_vs_h100"] = t["tokens_per_s_per_h100e"] / bt["tokens_per_s_per_h100e"]
                    r["latency_vs_h100"] = t["latency_ms"] / bt["latency_ms"]
                rows.append(r)
        return rows
