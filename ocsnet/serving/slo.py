"""Service-level objectives of LLM serving: TTFT and TPOT limits at a percentile.

Stage: serving (see docs/design.md).  An :class:`SLO` holds a time-to-first-token
limit, a time-per-output-token limit and the percentile at which both must
hold.  Named presets come from ``ocsnet/catalog/slos.toml`` (the MLPerf
Inference server scenario, every number with its source).  TPOT follows the
MLPerf definition: the time between the first and the last token divided by
the tokens after the first (requests of one output token have none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..checks import check_range
from ..errors import SpecError

__all__ = ["SLO", "slo", "presets", "preset_for_model", "presets_for_model"]


@dataclass(frozen=True)
class SLO:
    """Latency limits (seconds) that the ``percentile`` of requests must meet."""

    name: str
    ttft_s: float
    tpot_s: float
    percentile: float
    description: str = ""
    models: tuple = ()
    source: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if self.percentile is None:
            raise SpecError(f"slo {self.name}.percentile: missing; an SLO needs the percentile at which "
                            "its limits hold, allowed (0, 100]")
        check_range(f"slo {self.name}.percentile", self.percentile, 0, 100, lo_open=True)
        check_range(f"slo {self.name}.ttft_ms", units.from_si("x_ms", self.ttft_s), 0, None, lo_open=True)
        check_range(f"slo {self.name}.tpot_ms", units.from_si("x_ms", self.tpot_s), 0, None, lo_open=True)

    def to_dict(self) -> dict:
        return {"name": self.name, "ttft_ms": units.from_si("x_ms", self.ttft_s),
                "tpot_ms": units.from_si("x_ms", self.tpot_s), "percentile": self.percentile}

    def measure(self, ttft_s: np.ndarray, tpot_s: np.ndarray) -> tuple[float, float]:
        """The ``percentile`` of TTFT and of TPOT (NaN TPOTs, one-token requests, left out)."""
        q = float(self.percentile)
        tp = tpot_s[np.isfinite(tpot_s)]
        return (float(np.percentile(ttft_s, q)) if len(ttft_s) else 0.0,
                float(np.percentile(tp, q)) if len(tp) else 0.0)

    def met(self, ttft_s: np.ndarray, tpot_s: np.ndarray) -> bool:
        """True if both percentiles are within their limits."""
        a, b = self.measure(ttft_s, tpot_s)
        return a <= self.ttft_s and b <= self.tpot_s


def presets() -> dict[str, SLO]:
    """The named SLOs of ``ocsnet/catalog/slos.toml``."""
    from ..hardware import load_table

    out = {}
    allowed = {"description", "ttft_ms", "tpot_ms", "percentile", "models", "source"}
    for name, e in load_table("slos.toml").items():
        extra = set(e) - allowed
        if extra:
            raise SpecError(f"slos.toml [{name}]: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(allowed))}")
        for k in ("ttft_ms", "tpot_ms", "percentile"):
            if k not in e:
                raise SpecError(f"slos.toml [{name}]: missing required key {k!r}")
            if not e.get("source", {}).get(k):
                raise SpecError(f"slos.toml [{name}].{k}: number has no source string")
        out[name] = SLO(name, units.to_si("ttft_ms", e["ttft_ms"]), units.to_si("tpot_ms", e["tpot_ms"]),
                        float(e["percentile"]), e.get("description", ""), tuple(e.get("models", ())),
                        dict(e.get("source", {})))
    return out


def slo(spec) -> SLO:
    """An SLO from a preset name, an :class:`SLO`, or a dict ``{ttft_ms, tpot_ms, percentile}``.

    Raises
    ------
    SpecError
        Unknown preset, a missing percentile or a limit out of range (named).

    Examples
    --------
    >>> s = slo("llama2-70b")
    >>> s.ttft_s, s.tpot_s, s.percentile
    (2.0, 0.2, 99.0)
    >>> slo({"ttft_ms": 500, "tpot_ms": 50, "percentile": 90}).tpot_s
    0.05
    """
    if isinstance(spec, SLO):
        return spec
    if isinstance(spec, str):
        p = presets()
        if spec not in p:
            raise SpecError(f"slo: {spec!r} is not a preset; allowed: {', '.join(sorted(p))}")
        return p[spec]
    if isinstance(spec, dict):
        allowed = {"name", "ttft_ms", "tpot_ms", "percentile"}
        extra = set(spec) - allowed
        if extra:
            raise SpecError(f"slo.{sorted(extra)[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")
        for k in ("ttft_ms", "tpot_ms"):
            if k not in spec:
                raise SpecError(f"slo.{k}: missing; an SLO needs ttft_ms, tpot_ms and percentile")
            check_range(f"slo.{k}", spec[k], 0, None, lo_open=True)
        if spec.get("percentile") is None:
            raise SpecError("slo.percentile: missing; an SLO needs the percentile at which its limits hold, "
                            "allowed (0, 100]")
        return SLO(str(spec.get("name", "custom")), units.to_si("ttft_ms", spec["ttft_ms"]),
                   units.to_si("tpot_ms", spec["tpot_ms"]), float(spec["percentile"]))
    raise SpecError(f"slo: expected a preset name or a table of ttft_ms, tpot_ms, percentile; got {type(spec).__name__}")


def presets_for_model(model: str) -> list[SLO]:
    """Every preset whose ``models`` list names ``model``, in catalog order."""
    return [s for s in presets().values() if model in s.models]


def preset_for_model(model: str) -> SLO | None:
    """The model's default preset: the first that names it (None if none does)."""
    p = presets_for_model(model)
    return p[0] if p else None
