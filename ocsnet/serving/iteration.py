"""Iteration time of a serving replica, tabulated once from the per-layer evaluation.

Stage: serving (see docs/design.md).  :func:`tabulate` is the one place where
the serving stage calls :func:`ocsnet.evaluate` (and the memory model); the
simulator only reads the :class:`IterationModel` it returns, so it never runs
the flow model per iteration.

One iteration of continuous batching runs ``T`` tokens through the model:
the prompt tokens (or prompt chunks) of the requests in prefill and one token
of each request in decode.  Its time is modelled as

    t = base(T) + attn_prefill(pairs of each prompt chunk) + attn_decode(keys of the decodes)

- ``base(T)``: everything but attention (GEMMs, norms, the tensor-parallel
  collectives on the fabric, pipeline sends, LM head) of ``T`` tokens, from
  ``evaluate(mode="decode", batch=T, context=1)`` minus its attention ops;
- ``attn_prefill(p)``: attention of ``p`` causal (query, key) pairs, from
  ``evaluate(mode="prefill", seq_len=S)`` (``p = S (S + 1) / 2``); a chunk of
  ``c`` tokens after ``o`` earlier ones has ``c o + c (c + 1) / 2`` pairs;
- ``attn_decode(K)``: attention of decodes reading ``K`` cached keys in all,
  from ``evaluate(mode="decode", batch=b, context=K / b)``.

Attention runs as its own kernels for prefill and decode (as in vLLM), so the
three parts add.  Each is a piecewise-linear table on a geometric grid,
extrapolated linearly beyond its last point.  Approximations, stated: the LM
head is charged for every token of ``base(T)`` (in a prefill only the last
position is projected: about 1.5% of a 70B model's per-token work); with
``overlap=True`` the evaluation overlaps communication with compute, so the
split into parts is approximate.

The KV-cache capacity of a replica is what the HBM holds after the weights and
the activations of the largest iteration (the memory model of
:mod:`ocsnet.workload.step`): ``capacity_tokens`` tokens of KV per replica.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError, WorkloadError

__all__ = ["PiecewiseLinear", "IterationModel", "tabulate", "kv_bytes_per_token"]


class PiecewiseLinear:
    """``y(x)`` through the points ``(xs, ys)`` (xs increasing), linear beyond the ends."""

    def __init__(self, xs, ys):
        xs = [float(x) for x in xs]
        ys = [float(y) for y in ys]
        if len(xs) < 2 or any(b <= a for a, b in zip(xs, xs[1:])):
            raise SpecError("table: needs two or more points with increasing x")
        self.xs, self.ys = xs, ys
        self.slopes = [(y1 - y0) / (x1 - x0) for x0, x1, y0, y1 in zip(xs, xs[1:], ys, ys[1:])]
        # piece i holds [xs[i], xs[i+1]); the inner breakpoints pick it with one bisection (the first and
        # last pieces extend to -inf and +inf); y = intercept + slope x on each piece
        self._inner = xs[1:-1]
        self._icpt = [y - s * x for x, y, s in zip(xs, ys, self.slopes)]

    def segment(self, x: float) -> tuple[int, float, float]:
        """(index, intercept, slope) of the piece holding ``x``; the piece ends at ``xs[index + 1]``."""
        i = bisect.bisect_right(self._inner, x)
        s = self.slopes[i]
        return i, self._icpt[i], s

    def __call__(self, x: float) -> float:
        i = bisect.bisect_right(self._inner, x)
        return self._icpt[i] + self.slopes[i] * x

    def end(self, i: int) -> float:
        """Where piece ``i`` ends (inf for the last, which extends linearly)."""
        return self.xs[i + 1] if i + 1 < len(self.slopes) else float("inf")

    def to_dict(self) -> dict:
        return {"x": self.xs, "y": self.ys}


@dataclass
class IterationModel:
    """Tabulated iteration time and KV capacity of one serving replica (see the module notes).

    ``pp`` micro-batches of a pipeline run as ``pp`` independent batches in flight;
    the simulator treats them as ``pp`` virtual replicas, each with ``1/pp`` of the KV.
    """

    base: PiecewiseLinear              # tokens -> seconds
    attn_prefill: PiecewiseLinear      # causal pairs -> seconds
    attn_decode: PiecewiseLinear       # cached keys read by decodes -> seconds
    capacity_tokens: int               # KV-cache tokens one replica holds
    kv_bytes_per_token: float          # whole replica, bytes of K and V per token
    gpus: int = 1
    h100_equivalents: float = 1.0      # per GPU
    watts: float = 0.0                 # per replica (GPUs at TDP plus network share)
    cost: float = 0.0                  # per replica, relative to one H100
    pp: int = 1
    label: str = ""
    meta: dict = field(default_factory=dict)

    def time_s(self, tokens: int, pairs=(), keys: float = 0.0) -> float:
        """One iteration: ``tokens`` in all, prefill chunks of ``pairs`` each, decodes reading ``keys``."""
        t = self.base(tokens) if tokens else 0.0
        for p in pairs:
            t += self.attn_prefill(p)
        if keys:
            t += self.attn_decode(keys)
        return t

    def prefill_s(self, prompt: int) -> float:
        """Time of a prefill-only iteration of one prompt."""
        return self.time_s(prompt, (prompt * (prompt + 1) / 2.0,))

    @property
    def h100e(self) -> float:
        return self.gpus * self.h100_equivalents

    def summary(self) -> dict:
        return {"label": self.label, "gpus": self.gpus, "h100e": self.h100e, "kW": self.watts / 1e3,
                "cost": self.cost, "capacity_tokens": self.capacity_tokens, "pp": self.pp,
                "decode_step_ms_b1": 1e3 * self.time_s(1, (), 1024.0),
                "prefill_ms_1k": 1e3 * self.prefill_s(1024), **self.meta}


def kv_bytes_per_token(model, dtype_bytes: float = 2.0) -> float:
    """Bytes of K and V per token of a whole model: ``2 layers kv_heads head_dim dtype_bytes``."""
    from ..workload.models import model as get_model

    m = get_model(model)
    return 2.0 * m.layers * m.kv_heads * m.head_dim * dtype_bytes


def _grid(lo: int, hi: int, per_octave: int = 1) -> list[int]:
    pts = sorted({int(round(lo * 2 ** (k / per_octave))) for k in range(int(per_octave * np.log2(hi / lo)) + 1)}
                 | {lo, hi})
    return [p for p in pts if lo <= p <= hi]


def _attention_s(ev) -> float:
    """Attention time of an evaluation along the critical path (every layer of every stage)."""
    per_layer = sum(o.time_s for o in ev.ops if o.op.endswith("attention"))
    return float(ev.profile.stage_layers.sum()) * per_layer


def tabulate(model, plan, fabric, *, gpu=None, max_tokens: int = 8192, decode_batch: int = 8,
             label: str = "", **evaluate_kwargs) -> IterationModel:
    """Tabulate one replica's iteration time and KV capacity from :func:`ocsnet.evaluate`.

    The only function of the serving stage that evaluates the model on the fabric.

    Parameters
    ----------
    model, plan, fabric, gpu
        As for :func:`ocsnet.evaluate` (``plan`` of one replica).
    max_tokens : int
        Largest number of tokens of one iteration tabulated (larger ones are
        extrapolated linearly); the activations of such an iteration are
        reserved out of the KV capacity.
    decode_batch : int
        Sequences of the decode evaluations that tabulate decode attention.
    evaluate_kwargs
        Passed to every :func:`ocsnet.evaluate` call (``fidelity``, ``algorithms``, ...).

    Raises
    ------
    WorkloadError
        The weights and the activations of one iteration leave no room for KV cache.
    """
    from .. import evaluate
    from ..hardware import gpu as get_gpu
    from ..workload.models import model as get_model
    from ..workload.step import memory_fit

    m = get_model(model)
    if isinstance(max_tokens, bool) or int(max_tokens) != max_tokens or max_tokens < 2:
        raise SpecError(f"max_tokens: {max_tokens!r} is out of range, allowed integers [2, inf)")
    g = get_gpu(gpu if gpu is not None else fabric.meta.get("gpu", "h100-sxm"))
    kw = dict(evaluate_kwargs)
    kw.setdefault("schedule_bound", "design")
    # the communication-free screen is enough for the attention tables (attention is compute only)
    quick = dict(kw, fidelities=("alpha-beta",), fidelity="alpha-beta", schedule=False)
    tokens = _grid(1, int(max_tokens))
    base = []
    ev = None
    for T in tokens:
        ev = evaluate(m, plan, fabric, "decode", batch=T, context=1, gpu=g, **kw)
        base.append(ev.latency_s - _attention_s(ev))
    last = ev
    lim = m.max_context_tokens
    seqs = _grid(16, min(lim, 32768))
    pre = [_attention_s(evaluate(m, plan, fabric, "prefill", batch=1, seq_len=S, gpu=g, **quick)) for S in seqs]
    ctxs = _grid(16, lim, 1)
    b = int(decode_batch)
    dec = [_attention_s(evaluate(m, plan, fabric, "decode", batch=b, context=c, gpu=g, **quick)) for c in ctxs]
    # KV capacity: HBM after weights and the activations of the largest iteration, per replica
    fit = memory_fit(m, plan, "decode", batch=int(max_tokens), context=1, gpu=g,
                     dtype_bytes=kw.get("dtype_bytes", 2.0))
    free = fit.capacity_bytes - fit.weights_bytes - fit.activation_bytes
    kv_tok_gpu = fit.kv_cache_bytes / float(max_tokens)     # batch=max_tokens sequences of one token
    if free <= 0 or kv_tok_gpu <= 0:
        raise WorkloadError(f"memory: {m.name} with {plan} on {g.name} leaves no HBM for the KV cache "
                            f"({fit.message()})")
    capacity = int(free // kv_tok_gpu)
    n = plan.tp * plan.pp
    totals = last.totals()
    watts = n * (g.tdp_W + last.network_W_per_gpu)
    cost = n * (g.relative_cost + last.network_cost_per_gpu)
    return IterationModel(
        base=PiecewiseLinear([0] + tokens, [base[0]] + base),
        attn_prefill=PiecewiseLinear([0] + [S * (S + 1) / 2.0 for S in seqs], [0.0] + pre),
        attn_decode=PiecewiseLinear([0] + [b * c for c in ctxs], [0.0] + dec),
        capacity_tokens=capacity, kv_bytes_per_token=kv_bytes_per_token(m, kw.get("dtype_bytes", 2.0)),
        gpus=n, h100_equivalents=g.h100_equivalents, watts=watts, cost=cost, pp=plan.pp,
        label=label or f"{m.name} {plan} on {fabric.name}",
        meta={"model": m.name, "plan": str(plan), "gpu": g.name, "fabric": fabric.name,
              "fidelity": totals["fidelity"]})
