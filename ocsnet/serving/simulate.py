"""Serving a request stream on replicas: dispatch, per-request latencies, percentiles.

Stage: serving (see docs/design.md).  A :class:`Deployment` is a number of
identical replicas (an :class:`~.iteration.IterationModel` each) with a
scheduler configuration; :func:`simulate` dispatches the requests round-robin
in arrival order (so replicas are independent and each is simulated on its
own by :func:`.engine.run_replica`) and returns a :class:`ServeResult`: per
request TTFT, TPOT and end-to-end latency, their percentiles, and whether an
SLO holds.  A pipeline of ``pp`` stages runs ``pp`` micro-batches in flight:
it counts as ``pp`` virtual replicas with ``1/pp`` of the KV capacity each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..errors import SpecError
from .engine import run_replica
from .iteration import IterationModel
from .requests import Requests

__all__ = ["Deployment", "ServeResult", "simulate", "PERCENTILES", "SCHEDULERS", "split_round_robin"]

PERCENTILES = (50, 90, 99)
SCHEDULERS = ("prefill-first", "chunked")


@dataclass
class Deployment:
    """``replicas`` identical replicas of ``model`` and how each schedules its iterations.

    Parameters
    ----------
    max_batch : int
        Requests running at once per replica (vLLM's ``max_num_seqs``, default 256).
    max_tokens : int
        Prompt tokens of one prefill iteration (``max_num_batched_tokens``).
    chunk : int
        Token budget per iteration with chunked prefill (Sarathi-Serve); 0: prefill first.
    """

    model: IterationModel
    replicas: int = 1
    max_batch: int = 256
    max_tokens: int = 8192
    chunk: int = 0
    name: str = ""

    def __post_init__(self):
        for k, lo in (("replicas", 1), ("max_batch", 1), ("max_tokens", 1), ("chunk", 0)):
            v = getattr(self, k)
            if isinstance(v, bool) or int(v) != v or v < lo:
                raise SpecError(f"deployment.{k}: {v!r} is out of range, allowed integers [{lo}, inf)")
            setattr(self, k, int(v))

    @property
    def slots(self) -> int:
        """Virtual replicas: replicas times pipeline micro-batches in flight."""
        return self.replicas * self.model.pp

    @property
    def slot_capacity_tokens(self) -> int:
        return self.model.capacity_tokens // self.model.pp

    @property
    def gpus(self) -> int:
        return self.replicas * self.model.gpus

    @property
    def h100e(self) -> float:
        return self.replicas * self.model.h100e

    @property
    def watts(self) -> float:
        return self.replicas * self.model.watts

    @property
    def cost(self) -> float:
        return self.replicas * self.model.cost


@dataclass
class ServeResult:
    """Per-request times (seconds) of a simulation, request order as given."""

    arrival_s: np.ndarray
    admit_s: np.ndarray
    first_s: np.ndarray
    finish_s: np.ndarray
    output: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_s - self.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        """(last token - first token) / (output - 1); NaN for one-token requests."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.output > 1, (self.finish_s - self.first_s) / np.maximum(self.output - 1, 1), np.nan)

    @property
    def e2e_s(self) -> np.ndarray:
        return self.finish_s - self.arrival_s

    @property
    def wait_s(self) -> np.ndarray:
        """Queueing before admission."""
        return self.admit_s - self.arrival_s

    def percentiles(self, qs=PERCENTILES) -> dict:
        out = {}
        tp = self.tpot_s
        tp = tp[np.isfinite(tp)]
        for name, a in (("ttft", self.ttft_s), ("tpot", tp), ("e2e", self.e2e_s)):
            for q in qs:
                out[f"{name}_p{q:g}_ms"] = units.from_si("x_ms", float(np.percentile(a, q))) if len(a) else 0.0
            out[f"{name}_mean_ms"] = units.from_si("x_ms", float(a.mean())) if len(a) else 0.0
        return out

    def summary(self, slo=None) -> dict:
        n = len(self.arrival_s)
        span = float(self.finish_s.max() - self.arrival_s.min()) if n else 0.0
        out = {"requests": n, "offered_rate_per_s": (n - 1) / float(self.arrival_s[-1] - self.arrival_s[0])
               if n > 1 and self.arrival_s[-1] > self.arrival_s[0] else float("nan"),
               "throughput_tokens_per_s": float(self.output.sum()) / span if span > 0 else float("nan"),
               **self.percentiles()}
        if slo is not None:
            a, b = slo.measure(self.ttft_s, self.tpot_s)
            out.update({"slo": slo.name, f"ttft_p{slo.percentile:g}_ms": units.from_si("x_ms", a),
                        f"tpot_p{slo.percentile:g}_ms": units.from_si("x_ms", b), "slo_met": bool(slo.met(self.ttft_s, self.tpot_s))})
        return out


def split_round_robin(n: int, slots: int) -> list[np.ndarray]:
    """Request indices of each slot under round-robin dispatch in arrival order."""
    idx = np.arange(n)
    return [idx[k::slots] for k in range(slots)]


def check_fits(prompt, output, capacity_tokens: int, where: str) -> None:
    """Raise if one request's KV cache (prompt + output tokens) exceeds a replica slot's capacity."""
    need = np.asarray(prompt) + np.asarray(output)
    bad = np.flatnonzero(need > capacity_tokens)
    if len(bad):
        i = int(bad[0])
        raise SpecError(f"{where}: request {i} needs {int(need[i])} tokens of KV cache (prompt {int(prompt[i])} + "
                        f"output {int(output[i])}), a replica holds {int(capacity_tokens)}; allowed "
                        f"prompt + output in [1, {int(capacity_tokens)}] (use more GPUs per replica)")


def simulate(deployment: Deployment, requests: Requests, *, runner=run_replica, prefilled: bool = False,
             first_s=None) -> ServeResult:
    """Serve ``requests`` on ``deployment``.

    ``prefilled=True`` makes it a decode-only pool (the decode side of a phase
    split): ``first_s`` gives each request's first-token time (from the
    prefill pool); it joins the pool at its ``arrival_s``.

    Raises
    ------
    SpecError
        A request whose KV cache does not fit in one replica.
    """
    d = deployment
    if d.slot_capacity_tokens < 1:
        raise SpecError(f"deployment {d.name or d.model.label}: no KV capacity per replica slot")
    check_fits(requests.prompt, requests.output, d.slot_capacity_tokens, f"deployment {d.name or d.model.label}")
    n = len(requests)
    admit, first, finish = np.empty(n), np.empty(n), np.empty(n)
    for idx in split_round_robin(n, d.slots):
        if not len(idx):
            continue
        a, f, e = runner(requests.arrival_s[idx], requests.prompt[idx], requests.output[idx], d.model,
                         capacity_tokens=d.slot_capacity_tokens, max_batch=d.max_batch, max_tokens=d.max_tokens,
                         chunk=d.chunk, prefilled=prefilled)
        admit[idx], first[idx], finish[idx] = a, f, e
    if prefilled:
        first = np.asarray(first_s, float) if first_s is not None else first
    return ServeResult(requests.arrival_s.copy(), admit, first, finish, requests.output.copy(),
                       {"replicas": d.replicas, "slots": d.slots, "chunk": d.chunk})
