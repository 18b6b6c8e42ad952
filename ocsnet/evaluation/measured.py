"""Measured systems: published measurements, ocsnet's predictions of them and the error.

Stage: evaluation (see docs/design.md); ``ocsnet validate --measured`` shows
the table (:mod:`ocsnet.validation.measured`) and the study reports it in its
assumptions (registered analysis ``"fidelity"``).  Every case of
``ocsnet/catalog/measured.toml`` is one published measurement (NCCL bus
bandwidth, TensorRT-LLM and FasterTransformer latencies and static-batch
throughputs) with its whole configuration: system, model, precision,
parallelism, batch and lengths.  :func:`predict` computes ocsnet's number for
it with the per-layer model (:func:`ocsnet.evaluate`) under ONE calibration
for every case (``"measured"`` of ``catalog/calibration.toml`` by default);
:func:`measured_table` lists measured value, prediction and relative error,
and :func:`summary` gives the median and largest absolute error.

How a case is predicted (documented assumptions):

- ``ttft``: the prefill latency of ``batch`` sequences of ``seq_len`` tokens.
- ``tpot``: one decode step of ``batch`` sequences over a KV cache of
  ``context`` tokens.
- ``generation`` (static batching): the prefill, then ``output_len - 1``
  decode steps with the KV cache growing from ``seq_len + 1``; the decode
  steps are integrated by Simpson's rule over the first, middle and last
  context (decode time is piecewise linear in the context).  Output tokens
  per second per GPU.  The KV cache at the last step must fit.
- ``collective``: one collective of ``size_MB`` per GPU over ``gpus`` GPUs
  of the system, bus bandwidth in the nccl-tests convention
  (``2 (n - 1) / n`` of the algorithm bandwidth for all-reduce).
- Systems are DGX-class: NVLink inside an 8-GPU node, one NIC per GPU.
  Communication uses the congestion-free alpha-beta fidelity (one replica).

References
----------
See the ``source`` of every case in ``ocsnet/catalog/measured.toml``.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass, field
from typing import Iterator

from pathlib import Path

from .. import units
from ..errors import SpecError, WorkloadError

__all__ = ["MeasuredCase", "cases", "predict", "measured_table", "summary", "SYSTEMS",
           "GOAL_MEDIAN", "GOAL_MAX", "format_measured", "DEFAULTS", "analyse", "report"]

#: System name -> (dgx_cluster keyword arguments).
SYSTEMS: dict[str, dict] = {
    "dgx-h100": {"n_nodes": 1, "gpu": "h100-sxm", "gpus_per_node": 8},
    "dgx-h100-2node": {"n_nodes": 2, "gpu": "h100-sxm", "gpus_per_node": 8},
    "dgx-a100-40gb": {"n_nodes": 1, "gpu": "a100-sxm-40gb", "gpus_per_node": 8, "nvswitch": "nvswitch2"},
    "dgx-a100-80gb": {"n_nodes": 1, "gpu": "a100-sxm-80gb", "gpus_per_node": 8, "nvswitch": "nvswitch2"},
}
KINDS = ("ttft", "tpot", "generation", "collective")
QUANTITIES = {"ttft": "latency_ms", "tpot": "latency_ms", "generation": "tokens_per_s_per_gpu",
              "collective": "busbw_GBps"}
#: The goals of issue 15 for the whole table: median and largest absolute relative error.
GOAL_MEDIAN = 0.15
GOAL_MAX = 0.35

_KEYS = {"kind": str, "quantity": str, "measured": float, "system": str, "source": str, "model": str,
         "dtype": str, "kv_dtype": str, "tp": int, "pp": int, "batch": int, "seq_len": int, "context": int,
         "output_len": int, "collective": str, "algorithm": str, "gpus": int, "size_MB": float}


@dataclass(frozen=True)
class MeasuredCase:
    """One published measurement and its configuration (see ``catalog/measured.toml``)."""

    name: str
    kind: str
    quantity: str
    measured: float
    system: str
    source: str
    model: str = ""
    dtype: str = "bf16"
    kv_dtype: str | None = None
    tp: int = 1
    pp: int = 1
    batch: int = 1
    seq_len: int | None = None
    context: int | None = None
    output_len: int | None = None
    collective: str = ""
    algorithm: str | None = None
    gpus: int = 0
    size_MB: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def config(self) -> str:
        """The configuration in one line."""
        if self.kind == "collective":
            return f"{self.collective} {self.algorithm or ''} {self.gpus} GPUs {self.size_MB:g} MB"
        lens = {"ttft": f"in {self.seq_len}", "tpot": f"ctx {self.context}",
                "generation": f"in {self.seq_len} out {self.output_len}"}[self.kind]
        kv = f"/kv {self.kv_dtype}" if self.kv_dtype and self.kv_dtype != self.dtype else ""
        return f"{self.model} {self.dtype}{kv} tp{self.tp}" + (f" pp{self.pp}" if self.pp > 1 else "") + \
            f" b{self.batch} {lens}"


def _case(name: str, entry: dict) -> MeasuredCase:
    where = f"measured.{name}"
    extra = set(entry) - set(_KEYS)
    if extra:
        raise SpecError(f"{where}: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(_KEYS))}")
    for k in ("kind", "quantity", "measured", "system", "source"):
        if k not in entry:
            raise SpecError(f"{where}: missing required key {k!r}")
    kw = {}
    for k, v in entry.items():
        typ = _KEYS[k]
        if typ is str:
            if not isinstance(v, str) or not v:
                raise SpecError(f"{where}.{k}: {v!r} must be a non-empty string")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and v != int(v)) or v <= 0:
            raise SpecError(f"{where}.{k}: {v!r} is out of range, allowed {'integers ' if typ is int else ''}(0, inf)")
        kw[k] = typ(v)
    if kw["kind"] not in KINDS:
        raise SpecError(f"{where}.kind: {kw['kind']!r} is not one of {', '.join(KINDS)}")
    if kw["quantity"] != QUANTITIES[kw["kind"]]:
        raise SpecError(f"{where}.quantity: {kw['quantity']!r} must be {QUANTITIES[kw['kind']]!r} for kind {kw['kind']}")
    if kw["system"] not in SYSTEMS:
        raise SpecError(f"{where}.system: {kw['system']!r} is not one of {', '.join(SYSTEMS)}")
    need = {"ttft": ("model", "seq_len"), "tpot": ("model", "context"),
            "generation": ("model", "seq_len", "output_len"), "collective": ("collective", "gpus", "size_MB")}
    for k in need[kw["kind"]]:
        if k not in kw:
            raise SpecError(f"{where}.{k}: a {kw['kind']} case needs it")
    return MeasuredCase(name=name, **kw)


@functools.lru_cache(maxsize=16)
def _cases_for(key: tuple) -> tuple[MeasuredCase, ...]:
    from ..hardware import load_table
    return tuple(_case(n, e) for n, e in load_table("measured.toml").items())


def _cases() -> tuple[MeasuredCase, ...]:
    from .. import folders
    return _cases_for(folders.state())


def cases() -> list[MeasuredCase]:
    """Every measured case of the catalog, in file order."""
    return list(_cases())


@functools.cache
def _fabric(system: str):
    from ..topology import dgx_cluster
    return dgx_cluster(**SYSTEMS[system])


def _evaluate(case: MeasuredCase, calibration, mode: str, *, batch: int, seq_len=None, context=None):
    from ..workload import ParallelPlan
    from .per_layer import evaluate

    from ..workload.layers import DEFAULT_ALGORITHMS

    # the measured systems ran NCCL rings, and the calibration was fit with them: not "auto"
    ev = evaluate(case.model, ParallelPlan(tp=case.tp, pp=case.pp), _fabric(case.system), mode, batch=batch,
                  seq_len=seq_len, context=context, dtype=case.dtype, kv_dtype=case.kv_dtype,
                  algorithms=dict(DEFAULT_ALGORITHMS),
                  calibration=calibration, fidelity="alpha-beta", fidelities=("alpha-beta",), fill=False)
    if not ev.fits:
        raise WorkloadError(f"measured.{case.name}: the configuration does not fit in memory "
                            f"({case.config()} on {ev.gpu.name}: {ev.profile.memory.message()})")
    return ev


def predict(case: MeasuredCase, calibration="measured") -> float:
    """ocsnet's prediction of a case, in the unit of its ``quantity``.

    Raises
    ------
    WorkloadError
        The case's configuration does not fit in the GPUs' memory (naming the case).
    """
    if case.kind == "collective":
        from .per_layer import time_collective
        f = _fabric(case.system)
        n = int(case.gpus)
        if n > f.n_gpus:
            raise WorkloadError(f"measured.{case.name}.gpus: {n} is more than the {f.n_gpus} GPUs of {case.system}")
        nbytes = units.to_si("size_MB", case.size_MB)
        if case.collective == "send-recv":
            # one GPU of the first node to the same-index GPU of the last node, over the NICs
            per_node = SYSTEMS[case.system]["gpus_per_node"]
            ranks = [0, n - per_node if n > per_node else n - 1]
            t = time_collective(f, "send-recv", nbytes, ranks, algorithm=case.algorithm, calibration=calibration)
            return units.from_si("x_GBps", nbytes / t)
        t = time_collective(f, case.collective, nbytes, range(n), algorithm=case.algorithm, calibration=calibration)
        factor = {"all-reduce": 2.0 * (n - 1) / n, "all-gather": (n - 1) / n, "reduce-scatter": (n - 1) / n}
        return units.from_si("x_GBps", nbytes / t * factor.get(case.collective, 1.0))
    if case.kind == "ttft":
        ev = _evaluate(case, calibration, "prefill", batch=case.batch, seq_len=case.seq_len)
        return units.from_si("x_ms", ev.latency_s)
    if case.kind == "tpot":
        ev = _evaluate(case, calibration, "decode", batch=case.batch, context=case.context)
        return units.from_si("x_ms", ev.latency_s)
    # generation: prefill, then output_len - 1 decode steps (Simpson over the growing context)
    pre = _evaluate(case, calibration, "prefill", batch=case.batch, seq_len=case.seq_len).latency_s
    steps = case.output_len - 1
    dec = 0.0
    if steps > 0:
        first, last = case.seq_len + 1, case.seq_len + steps
        mid = (first + last) // 2
        f0, f1, f2 = (_evaluate(case, calibration, "decode", batch=case.batch, context=c).latency_s
                      for c in (first, mid, last))
        dec = steps * (f0 + 4 * f1 + f2) / 6.0
    tokens = case.batch * case.output_len
    return tokens / (pre + dec) / (case.tp * case.pp)


def measured_table(calibration="measured", names=None) -> list[dict]:
    """One row per case: name, config, quantity, measured, predicted, error (relative), source."""
    rows = []
    for c in cases():
        if names is not None and c.name not in names:
            continue
        p = predict(c, calibration)
        rows.append({"name": c.name, "kind": c.kind, "system": c.system, "config": c.config(),
                     "quantity": c.quantity, "measured": c.measured, "predicted": p,
                     "error": (p - c.measured) / c.measured, "source": c.source})
    return rows


def summary(rows: list[dict]) -> dict:
    """Median and largest absolute relative error of a table."""
    errs = [abs(r["error"]) for r in rows]
    return {"cases": len(rows), "median_abs_error": statistics.median(errs) if errs else 0.0,
            "max_abs_error": max(errs) if errs else 0.0}


def format_measured(rows: list[dict], verbose: bool = False) -> str:
    """The table as text (one row per case) with the summary line."""
    head = f"{'case':44s} {'configuration':38s} {'quantity':22s} {'measured':>10s} {'ocsnet':>10s} {'error':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:44s} {r['config']:38s} {r['quantity']:22s} {r['measured']:10.4g} "
                     f"{r['predicted']:10.4g} {100 * r['error']:+6.1f}%")
        if verbose:
            lines.append(f"    source: {r['source']}")
    s = summary(rows)
    lines.append(f"{s['cases']} measured cases: median |error| {100 * s['median_abs_error']:.1f}%, "
                 f"max |error| {100 * s['max_abs_error']:.1f}% (goal {100 * GOAL_MEDIAN:.0f}% / {100 * GOAL_MAX:.0f}%)")
    return "\n".join(lines)


# ---- the study's analysis "fidelity" --------------------------------------------------

#: Config section of the study (``[fidelity]``): which calibration the table uses (None: the study's).
DEFAULTS: dict = {"calibration": None}


def analyse(cfg: dict, result, fabrics: dict, *, progress: bool = False) -> dict:
    """The measured table under the study's calibration (or the section's own)."""
    name = cfg["fidelity"].get("calibration") or cfg.get("calibration", "roofline")
    rows = measured_table(name)
    by_kind: dict[str, list] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r)
    return {"calibration": name, "rows": rows, "summary": summary(rows),
            "by_kind": {k: summary(v) for k, v in by_kind.items()}}


def report(data: dict, outdir: Path, *, figures: bool = False) -> list[str]:
    """Markdown lines: the measured error of the per-layer model, per kind of case; the table as CSV."""
    from ..tables import write_csv

    rows = data["rows"]
    write_csv(Path(outdir) / "measured.csv",
              ["case", "system", "configuration", "quantity", "measured", "ocsnet", "error_pct", "source"],
              [[r["name"], r["system"], r["config"], r["quantity"], r["measured"],
                f"{r['predicted']:.6g}", f"{100 * r['error']:+.1f}", r["source"]] for r in rows])
    s = data["summary"]
    from ..workload.calibration import calibration as get_calibration

    desc = get_calibration(data["calibration"]).description
    out = ["## Fidelity against measured systems", "",
           f"The per-layer model runs under the calibration `{data['calibration']}` ({desc}; "
           "`ocsnet/catalog/calibration.toml`).  Against "
           f"{s['cases']} published measurements (`ocsnet validate --measured`, `measured.csv`) its median "
           f"absolute error is {100 * s['median_abs_error']:.1f}% and its largest "
           f"{100 * s['max_abs_error']:.1f}% (goal {100 * GOAL_MEDIAN:.0f}% / {100 * GOAL_MAX:.0f}%; Vidur reports "
           "under 9% on inference latency, ASTRA-sim 17% geometric mean against NCCL tests).", "",
           "| measured quantity | cases | median abs error | max abs error |", "|---|---|---|---|"]
    names = {"ttft": "prefill latency (TTFT)", "tpot": "decode step (TPOT)",
             "generation": "static-batch throughput", "collective": "NCCL bus bandwidth"}
    for k, v in data["by_kind"].items():
        out.append(f"| {names.get(k, k)} | {v['cases']} | {100 * v['median_abs_error']:.1f}% | "
                   f"{100 * v['max_abs_error']:.1f}% |")
    worst = max(rows, key=lambda r: abs(r["error"])) if rows else None
    if worst is not None:
        out += ["", f"Largest error: {worst['name']} ({worst['config']}), {100 * worst['error']:+.1f}%.  "
                "The Lite-GPU results use the same calibration as the H100 (same kernels and NCCL on a smaller die)."]
    return out + [""]
