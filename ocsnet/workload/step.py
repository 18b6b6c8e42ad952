"""A whole model step on one GPU: layers per stage, embedding and LM head, pipeline and gradient traffic, memory fit.

Stage 2 of the pipeline (workload).  :func:`step_profile` wraps the per-layer
profile of :mod:`.layers` with what happens once per stage or once per step,
and :func:`memory_fit` checks that the plan fits in the GPU's HBM.

Included besides the layers: the token embedding lookup (first stage) and
the final norm plus LM head GEMM (last stage; in inference only the last
position of each sequence is projected to the vocabulary), split
vocab-parallel over ``tp``.  Their small collectives (the embedding
all-reduce, the logits gather or cross-entropy reductions) are not modelled.
Pipeline parallelism sends each micro-batch's activations from stage ``s``
to ``s + 1`` (training: gradients back as well); each TP rank sends its
``1/tp`` slice with sequence parallelism, the whole activation otherwise.
Training ends with the gradient synchronization over data parallelism:
``"all-reduce"`` of the gradients, or ``"reduce-scatter"`` of gradients plus
``"all-gather"`` of updated weights (distributed optimizer, ZeRO-1); with
``ep > 1`` the expert weights synchronize over their own data-parallel group
(``"edp"``, ``dp / ep`` replicas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import checks, hardware, units
from ..errors import WorkloadError
from .calibration import calibration as get_calibration
from .layers import NORM_FLOPS, Collective, LayerProfile, OpCost, layer_profile, roofline
from .models import ModelSpec, model as get_model
from .parallel import ParallelPlan

__all__ = ["MemoryFit", "StepProfile", "memory_fit", "step_profile", "check_memory", "GRAD_SYNC"]

GRAD_SYNC = ("all-reduce", "reduce-scatter")
# Mixed-precision Adam keeps fp32 master weights, momentum and variance: 12 bytes per
# parameter (Rajbhandari et al., "ZeRO", SC 2020, section 3.1).
ADAM_BYTES_PER_PARAM = 12.0


@dataclass(frozen=True)
class MemoryFit:
    """Memory one GPU needs (the fullest pipeline stage) against its HBM capacity.

    ``shortfall_bytes`` is how much is missing (0 if it fits).
    """

    weights_bytes: float
    kv_cache_bytes: float
    activation_bytes: float
    gradient_bytes: float
    optimizer_bytes: float
    capacity_bytes: float
    stage: int

    @property
    def total_bytes(self) -> float:
        return (self.weights_bytes + self.kv_cache_bytes + self.activation_bytes
                + self.gradient_bytes + self.optimizer_bytes)

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.capacity_bytes

    @property
    def shortfall_bytes(self) -> float:
        return max(0.0, self.total_bytes - self.capacity_bytes)

    def message(self) -> str:
        """E.g. ``"needs 27.3 GB per GPU, has 20 GB (weights 12.7 GB, KV cache 14.6 GB, ...)"``."""
        parts = [("weights", self.weights_bytes), ("KV cache", self.kv_cache_bytes),
                 ("activations", self.activation_bytes), ("gradients", self.gradient_bytes),
                 ("optimizer", self.optimizer_bytes)]
        detail = ", ".join(f"{k} {units.fmt_bytes(v)}" for k, v in parts if v > 0)
        return (f"needs {units.fmt_bytes(self.total_bytes)} per GPU, has {units.fmt_bytes(self.capacity_bytes)}"
                f" ({detail}; stage {self.stage})")


@dataclass(frozen=True)
class StepProfile:
    """One step of the whole model on one GPU.

    Attributes
    ----------
    layer : LayerProfile
        One transformer layer (every layer is identical).
    stage_layers : ndarray (pp,)
        Layers per pipeline stage.
    embedding, lm_head : OpCost
        Work on the first and on the last stage (training: forward plus backward).
    pp_send : Collective or None
        Activations one GPU sends to the next stage per micro-batch (pp > 1).
    grad_sync : tuple of Collective
        Training only: gradient synchronization at the end of the step.
    micro_batches : int
    memory : MemoryFit
    """

    layer: LayerProfile
    stage_layers: np.ndarray
    embedding: OpCost
    lm_head: OpCost
    pp_send: Collective | None
    grad_sync: tuple
    micro_batches: int
    memory: MemoryFit

    @property
    def stage_time_s(self) -> np.ndarray:
        """Compute time of one micro-batch on each stage (layers, plus embedding on the first, LM head on the last)."""
        t = self.stage_layers * self.layer.time_s
        t = t.astype(float)
        t[0] += self.embedding.time_s
        t[-1] += self.lm_head.time_s
        return t

    @property
    def compute_time_s(self) -> float:
        """Compute time of a step in pipeline steady state: micro-batches x the slowest stage (no bubble, no network)."""
        return self.micro_batches * float(self.stage_time_s.max())


def _local_params(m: ModelSpec, plan: ParallelPlan, stage_layers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters per GPU on each stage, and the expert part of them."""
    t, h = plan.tp, m.hidden_size
    q, kv = m.q_dim // t, plan.kv_heads_per_gpu(m) * m.head_dim
    ffn = m.ffn_size // t
    attn = h * (q + 2 * kv) + q * h + ((q + 2 * kv + h) if m.linear_bias else 0)
    one_mlp = m.mlp_matrices * h * ffn + (((m.mlp_matrices - 1) * ffn + h) if m.linear_bias else 0)
    expert = (m.experts // plan.ep) * one_mlp if m.is_moe else 0
    dense_mlp = (m.shared_experts * one_mlp + h * m.experts) if m.is_moe else one_mlp
    per_layer = attn + dense_mlp + expert + 2 * m.norm_params()
    total = stage_layers * float(per_layer)
    experts = stage_layers * float(expert)
    emb = m.vocab_size // t * h + (m.max_context_tokens * h if m.position_embedding == "learned" else 0)
    total[0] += emb
    if not (m.tied_embeddings and plan.pp == 1):
        total[-1] += m.vocab_size // t * h
    total[-1] += m.norm_params()
    return total, experts


def memory_fit(model: ModelSpec | str, plan: ParallelPlan, mode: str, *, batch: int,
               seq_len: int | None = None, context: int | None = None,
               gpu: str | hardware.GPUSpec = "h100-sxm", dtype_bytes: float | None = None,
               micro_batches: int = 1, grad_sync: str = "all-reduce", dtype: str = "bf16",
               kv_dtype: str | None = None) -> MemoryFit:
    """Memory per GPU on the fullest stage: weights, KV cache, activations, gradients, optimizer.

    - Weights: the stage's parameters on this GPU times the bytes of
      ``dtype`` (or ``dtype_bytes`` when given).
    - KV cache (inference): ``2 * layers * kv_heads_per_gpu * head_dim *
      tokens * batch * micro_batches`` elements of ``kv_dtype`` (default
      ``dtype``), tokens = ``context`` (decode) or ``seq_len`` (prefill).
    - Activations: inference, the largest layer op's input, output and
      intermediate plus the last positions' logits (transient);
      training, every stored activation of the stage's layers (no
      recomputation, FlashAttention), for ``min(pp, micro_batches)``
      micro-batches in flight (1F1B).
    - Training: gradients in ``dtype_bytes``; Adam states 12 bytes per
      parameter, divided over ``dp`` with the distributed optimizer
      (``grad_sync="reduce-scatter"``).

    Returns
    -------
    MemoryFit
        Use ``fits`` and ``shortfall_bytes`` in searches; :func:`check_memory`
        raises instead.
    """
    from .layers import shape
    from .precision import resolve
    m = get_model(model)
    plan.validate(m)
    s = shape(m, mode, batch, seq_len, context)
    g = hardware.gpu(gpu)
    mb = _check_micro(micro_batches)
    prec = resolve(dtype, kv_dtype, dtype_bytes)
    d, dkv = prec.bytes, prec.kv_bytes
    L = plan.stage_layers(m)
    params, _ = _local_params(m, plan, L)
    t, h = plan.tp, m.hidden_size
    q, kv, ffn = m.q_dim // t, plan.kv_heads_per_gpu(m) * m.head_dim, m.ffn_size // t
    T = float(s.tokens)
    kv_b = act = grad = opt = np.zeros(plan.pp)
    if mode == "train":
        hs = h / t if plan.sp else h
        mlp_int = (m.mlp_matrices - 1) * ffn + ffn                # pre-activation(s) and activation output
        k = m.experts_per_token if m.is_moe else 1
        per_token = (2 * hs + q + 2 * kv + q) + (2 * hs + k * mlp_int + (k * h + m.experts if m.is_moe else 0))
        act = L * per_token * T * d * min(plan.pp, mb)
        grad = params * d
        opt = params * ADAM_BYTES_PER_PARAM / (plan.dp if grad_sync == "reduce-scatter" else 1)
    else:
        kv_b = 2.0 * L * kv * s.context * s.batch * mb * dkv
        widest = max(q + 2 * kv, m.mlp_matrices * ffn)
        logits = s.batch * (m.vocab_size // t)                # last position of each sequence
        act = np.full(plan.pp, (T * (2 * h + widest) + logits) * d)
    total = params * d + kv_b + act + grad + opt
    st = int(np.argmax(total))
    pick = lambda a: float(np.broadcast_to(a, (plan.pp,))[st])   # noqa: E731
    return MemoryFit(pick(params * d), pick(kv_b), pick(act), pick(grad), pick(opt), g.hbm_bytes, st)


def check_memory(*args, **kwargs) -> MemoryFit:
    """:func:`memory_fit`, raising :class:`WorkloadError` with the shortfall if the plan does not fit."""
    fit = memory_fit(*args, **kwargs)
    if not fit.fits:
        raise WorkloadError(f"memory: {fit.message()}")
    return fit


def _check_micro(micro_batches) -> int:
    return checks.integer("micro_batches", micro_batches, lo=1, error=WorkloadError)


def step_profile(model: ModelSpec | str, plan: ParallelPlan, mode: str, *, batch: int,
                 seq_len: int | None = None, context: int | None = None,
                 gpu: str | hardware.GPUSpec = "h100-sxm", dtype_bytes: float | None = None,
                 algorithms: dict | None = None, micro_batches: int = 1,
                 grad_sync: str = "all-reduce", require_fit: bool = True, dtype: str = "bf16",
                 kv_dtype: str | None = None, calibration=None) -> StepProfile:
    """Profile one step of the whole model on one GPU.

    Parameters are those of :func:`ocsnet.workload.layers.layer_profile`
    (``dtype``, ``kv_dtype`` and ``calibration`` included), plus:

    micro_batches : int
        Micro-batches per step per replica (each of ``batch`` sequences).
    grad_sync : {"all-reduce", "reduce-scatter"}
        Training: gradient all-reduce, or reduce-scatter plus weight all-gather.
    require_fit : bool
        Raise :class:`WorkloadError` if the plan does not fit in memory
        (otherwise the result's ``memory.fits`` says so).

    Raises
    ------
    WorkloadError
        Any invalid input, or a plan that does not fit in memory, e.g.
        ``"memory: needs 27.3 GB per GPU, has 20 GB (...)"``.

    Examples
    --------
    >>> from ocsnet.workload import ParallelPlan
    >>> sp = step_profile("llama3-70b", ParallelPlan(tp=8), "decode", batch=8, context=4096)
    >>> sp.memory.fits, sp.pp_send is None
    (True, True)
    """
    m = get_model(model)
    lp = layer_profile(m, plan, mode, batch=batch, seq_len=seq_len, context=context, gpu=gpu,
                       dtype_bytes=dtype_bytes, algorithms=algorithms, dtype=dtype, kv_dtype=kv_dtype,
                       calibration=calibration)
    if grad_sync not in GRAD_SYNC:
        raise WorkloadError(f"grad_sync: {grad_sync!r} is not one of {', '.join(GRAD_SYNC)}")
    mb = _check_micro(micro_batches)
    mem = memory_fit(m, plan, mode, batch=batch, seq_len=seq_len, context=context, gpu=gpu,
                     dtype_bytes=dtype_bytes, micro_batches=mb, grad_sync=grad_sync, dtype=dtype,
                     kv_dtype=kv_dtype)
    if require_fit and not mem.fits:
        raise WorkloadError(f"memory: {m.name} with {plan} on {lp.gpu.name} {mem.message()}")
    g, s, d, t, h = lp.gpu, lp.shape, lp.dtype_bytes, plan.tp, m.hidden_size
    calib = get_calibration(calibration)
    calib = None if calib.is_roofline else calib
    T = float(s.tokens)
    train = mode == "train"
    da = lp.activation_bytes                                  # the residual stream's bytes per element
    emb = roofline(0.0, T * h * (d + da) * (2 if train else 1), g, dtype, "embedding", calibration=calib)
    vt = m.vocab_size // t
    Th = T if train else float(s.batch)                       # inference projects the last position only
    sc = 3.0 if train else 1.0                                # forward + backward (2x)
    head = roofline(sc * (2 * Th * h * vt + (1 + NORM_FLOPS[m.norm]) * Th * h), sc * ((vt * h) + Th * (h + vt)) * d,
                    g, dtype, "lm-head", calibration=calib, kind="gemm", tokens=Th, kernels=2)
    algos = lp.algorithms
    pp_send = None
    if plan.pp > 1:
        nb = T * h * da / (t if plan.sp else 1)
        pp_send = Collective("send-recv", "pp", 2, nb, algos["send-recv"], "last layer", "pp")
    sync: list[Collective] = []
    if train:
        params, experts = _local_params(m, plan, plan.stage_layers(m))
        dense = float((params - experts).max()) * d
        exp_b = float(experts.max()) * d
        groups = [("dp", plan.dp, dense)]
        if m.is_moe and plan.ep > 1:
            groups.append(("edp", plan.dp // plan.ep, exp_b))
        else:
            groups[0] = ("dp", plan.dp, dense + exp_b)
        for grp, size, nb in groups:
            if size == 1:
                continue
            kinds = ("all-reduce",) if grad_sync == "all-reduce" else ("reduce-scatter", "all-gather")
            for k in kinds:
                sync.append(Collective(k, grp, size, nb, algos[k], "backward", f"grad-sync {grp}"))
    return StepProfile(lp, plan.stage_layers(m), emb, head, pp_send, tuple(sync), mb, mem)
