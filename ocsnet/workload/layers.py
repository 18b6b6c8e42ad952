"""Per-layer operations of a transformer under a parallel plan: FLOPs, HBM bytes, roofline time, collectives.

Stage 2 of the pipeline (workload).  :func:`layer_profile` lists, in order,
the ops one GPU runs for one transformer layer (QKV projection, attention,
output projection, MLP or router plus experts, two norms) and the
collectives between them, for prefill, decode or a training step.  Each op
is timed by roofline on a catalog GPU, so the H100 and every Lite-GPU are
timed by the same code.

What is counted (per GPU, per micro-batch, one layer):

- GEMMs: ``2 * tokens * weights`` FLOPs; bytes = weights + input + output
  activations (dtype ``dtype_bytes``, default bf16 = 2).  Tensor parallelism
  splits heads and FFN columns (Megatron); every TP rank processes all tokens.
- Attention (FlashAttention-style, scores never written to HBM): ``4 *
  heads * head_dim`` FLOPs per (query, key) pair.  Prefill and training are
  causal: ``S (S + 1) / 2`` pairs per sequence, about half the square.
  Decode: one query per sequence against ``context`` keys.  Each KV head is
  read once for its whole query group (GQA).  Softmax FLOPs (about 1% at
  head_dim 128) are not counted.
- MLP: gelu 2 weight matrices, swiglu 3; the activation is fused into the
  first GEMM's epilogue, so the intermediate is written and read once.
- MoE: a router GEMM, then ``experts_per_token`` expert MLPs per token;
  with ``ep`` expert-parallel ranks each GPU holds ``experts / ep`` experts
  and (balanced routing) receives ``tokens * experts_per_token`` token copies;
  the weights read are those of the local experts that receive at least one
  token, in expectation under uniform routing.
- Norms carry the residual add: ``1 + c`` FLOPs per element (``c`` = 4 for
  RMSNorm, 7 for LayerNorm), read input and residual, write both.
- Training: the backward pass is listed after the forward pass, in reverse
  order, with twice the forward FLOPs and bytes (input and weight gradients).

Collectives (nccl-tests buffer convention, bytes per GPU): Megatron TP, two
all-reduces per layer direction (after the attention output projection and
after the MLP in forward; after the QKV and first MLP GEMM gradients in
backward), or with sequence parallelism an all-gather before and a
reduce-scatter after each block; MoE with ``ep > 1``: an all-to-all dispatch
after the router and a combine after the experts, over the EP group.

References
----------
Shoeybi et al., Megatron-LM, 2019.  Korthikanti et al., "Reducing Activation
Recomputation in Large Transformer Models", MLSys 2023 (sequence
parallelism).  Dao et al., FlashAttention, NeurIPS 2022.  Ainslie et al.,
GQA, EMNLP 2023.  Williams, Waterman, Patterson, "Roofline", CACM 2009.
Canakci et al., "Good things come in small packages: Should we build AI
clusters with Lite-GPUs?", HotOS 2025.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import checks, hardware, units
from ..errors import WorkloadError
from .calibration import Calibration, calibration as get_calibration
from .modes import MODES
from .models import ModelSpec, model as get_model
from .parallel import ParallelPlan, check_plan
from .precision import DTYPES, resolve as resolve_precision

__all__ = ["DEFAULT_ALGORITHMS", "OpCost", "Collective", "LayerProfile", "Shape",
           "layer_profile", "roofline", "shape", "NORM_FLOPS"]

#: Algorithm per collective kind unless the caller names one (the first of
#: ``ocsnet.collectives.ALGORITHMS[kind]``).
DEFAULT_ALGORITHMS = {"all-reduce": "ring", "reduce-scatter": "ring", "all-gather": "ring",
                      "all-to-all": "pairwise", "send-recv": "pipeline"}
# FLOPs per element of a normalization (excluding the residual add), by counting its arithmetic.
NORM_FLOPS = {"rmsnorm": 4, "layernorm": 7}


@dataclass(frozen=True)
class OpCost:
    """One op on one GPU: work, roofline time and which bound applies."""

    op: str
    flops: float
    hbm_bytes: float
    time_s: float
    bound: str            # "compute", "memory" or "-" (no work)


@dataclass(frozen=True)
class Collective:
    """One collective a GPU takes part in.

    ``group`` is the parallel dimension (``"tp"``, ``"ep"``, ``"pp"``,
    ``"dp"`` or ``"edp"``: the data-parallel group of expert weights),
    ``nbytes`` the buffer per GPU in the nccl-tests convention, ``after`` the
    op it follows (``"start"`` at the beginning of a layer).
    """

    kind: str
    group: str
    group_size: int
    nbytes: float
    algorithm: str
    after: str = "start"
    label: str = ""


@dataclass(frozen=True)
class Shape:
    """Validated sizes of one micro-batch: sequences, tokens, attended keys."""

    mode: str
    batch: int            # sequences per micro-batch per data-parallel replica
    seq_len: int          # prompt length (prefill, train); 1 in decode
    context: int          # keys attended per query at the last position (decode: the KV cache length)
    tokens: int           # tokens per micro-batch per replica
    pairs: float          # (query, key) pairs per micro-batch per replica


def shape(model: ModelSpec, mode: str, batch: int, seq_len: int | None = None,
          context: int | None = None) -> Shape:
    """Check the sizes of a step and derive tokens and attention pairs.

    Raises
    ------
    WorkloadError
        Unknown mode, a missing length, or a value out of range (naming the
        field and the model's ``max_context_tokens``).
    """
    checks.choice("mode", mode, MODES, error=WorkloadError)
    batch = checks.integer("batch", batch, lo=1, error=WorkloadError)
    lim = model.max_context_tokens
    if mode == "decode":
        if context is None:
            raise WorkloadError("context: decode needs the context length (tokens in the KV cache)")
        n, name = context, "context"
    else:
        if seq_len is None:
            raise WorkloadError(f"seq_len: {mode} needs the sequence (prompt) length")
        n, name = seq_len, "seq_len"
    n = checks.integer(name, n, error=WorkloadError)
    if not 1 <= n <= lim:
        raise WorkloadError(f"{name}: {n!r} is out of range for {model.name}, allowed integers [1, {lim}]")
    if mode == "decode":
        return Shape(mode, batch, 1, n, batch, float(batch) * n)
    return Shape(mode, batch, n, n, batch * n, batch * n * (n + 1) / 2.0)


def roofline(flops: float, hbm_bytes: float, gpu: hardware.GPUSpec, dtype: str = "bf16",
             op: str = "op", *, calibration: "Calibration | None" = None, kind: str = "other",
             tokens: float = 0.0, kernels: int = 1, seq_len: float = 0.0, widths: tuple = ()) -> OpCost:
    """Roofline time of one op: ``max(flops / achieved peak, bytes / achieved HBM bandwidth)``.

    Achieved peak is ``peak * compute_efficiency``, achieved bandwidth
    ``hbm_Bps * memory_efficiency`` (both from the GPU catalog).  With a
    ``calibration`` (:mod:`ocsnet.workload.calibration`) the efficiencies
    depend on the op's shape (``kind``, ``tokens``, ``kernels``, ``seq_len``)
    and ``kernels`` times the calibration's per-kernel overhead is added; the
    default (none, or ``"roofline"``) is the constant-efficiency roofline.

    Examples
    --------
    >>> h = hardware.gpu("h100-sxm")
    >>> roofline(2e12, 1e6, h).bound, roofline(1e6, 1e9, h).bound
    ('compute', 'memory')
    """
    if flops <= 0 and hbm_bytes <= 0:
        return OpCost(op, 0.0, 0.0, 0.0, "-")
    peak = gpu.peak_flops(dtype)
    if calibration is None:
        tc = flops / (peak * gpu.compute_efficiency)
        tm = hbm_bytes / (gpu.hbm_Bps * gpu.memory_efficiency)
        extra = 0.0
    else:
        tc, tm = calibration.op_time(flops, hbm_bytes, peak, gpu.hbm_Bps, gpu.compute_efficiency,
                                     gpu.memory_efficiency, kind=kind, tokens=tokens, kernels=kernels,
                                     seq_len=seq_len, dtype=dtype, widths=widths, sm_count=gpu.sm_count)
        extra = max(int(kernels), 1) * calibration.kernel_overhead_s
    return OpCost(op, float(flops), float(hbm_bytes), max(tc, tm) + extra, "compute" if tc >= tm else "memory")


@dataclass(frozen=True)
class LayerProfile:
    """The ops and collectives of one transformer layer on one GPU, in execution order.

    Attributes
    ----------
    items : tuple of OpCost and Collective
        In order; a :class:`Collective` sits after the op named in its ``after``.
    model, plan, gpu, shape, dtype_bytes
        What was profiled.
    """

    model: ModelSpec
    plan: ParallelPlan
    gpu: hardware.GPUSpec
    shape: Shape
    dtype_bytes: float
    items: tuple
    algorithms: dict = field(default_factory=dict)
    dtype: str = "bf16"
    kv_dtype: str = "bf16"
    calibration: str = "roofline"
    activation_bytes: float | None = None   # bytes per element of the residual stream (default dtype_bytes)

    def __post_init__(self):
        if self.activation_bytes is None:
            object.__setattr__(self, "activation_bytes", self.dtype_bytes)

    @property
    def ops(self) -> list[OpCost]:
        return [x for x in self.items if isinstance(x, OpCost)]

    @property
    def collectives(self) -> list[Collective]:
        return [x for x in self.items if isinstance(x, Collective)]

    @property
    def n_forward(self) -> int:
        """Number of leading items that belong to the forward pass (all of them outside training)."""
        for i, x in enumerate(self.items):
            name = x.op if isinstance(x, OpCost) else x.label
            if name.startswith("bwd"):
                return i
        return len(self.items)

    @property
    def forward_items(self) -> tuple:
        return self.items[: self.n_forward]

    @property
    def backward_items(self) -> tuple:
        return self.items[self.n_forward:]

    @property
    def flops(self) -> float:
        return sum(o.flops for o in self.ops)

    @property
    def hbm_bytes(self) -> float:
        return sum(o.hbm_bytes for o in self.ops)

    @property
    def time_s(self) -> float:
        """Compute time of the layer (sum of the ops' roofline times), network excluded."""
        return sum(o.time_s for o in self.ops)

    @property
    def collective_bytes(self) -> float:
        """Sum of the collectives' buffers per GPU (nccl-tests convention)."""
        return sum(c.nbytes for c in self.collectives)

    HEADER = ("op", "GFLOPs", "hbm_MB", "time_us", "bound", "collective", "group", "group_size",
              "coll_MB", "algorithm")

    def table(self) -> list[list]:
        """Rows under :attr:`HEADER` (units in the names); a collective shares its op's row
        when it is the first after it, else gets a row of its own.  A last row holds totals."""
        rows: list[list] = []
        for x in self.items:
            if isinstance(x, OpCost):
                rows.append([x.op, units.from_si("x_GFLOPs", x.flops), units.from_si("x_MB", x.hbm_bytes),
                             units.from_si("x_us", x.time_s), x.bound, "", "", "", "", ""])
            else:
                c = [x.kind, x.group, x.group_size, units.from_si("x_MB", x.nbytes), x.algorithm]
                if rows and rows[-1][5] == "" and rows[-1][0] == x.after:
                    rows[-1][5:] = c
                else:
                    rows.append(["", "", "", "", ""] + c)
        rows.append(["total", units.from_si("x_GFLOPs", self.flops), units.from_si("x_MB", self.hbm_bytes),
                     units.from_si("x_us", self.time_s), "", f"{len(self.collectives)} collectives", "", "",
                     units.from_si("x_MB", self.collective_bytes), ""])
        return rows


class _Layer:
    """Builds the items of one layer; all sizes per GPU."""

    def __init__(self, m: ModelSpec, plan: ParallelPlan, s: Shape, gpu, d: float, algos: dict, dtype: str,
                 dkv: float | None = None, calib: Calibration | None = None):
        self.m, self.plan, self.s, self.gpu, self.d, self.algos, self.dtype = m, plan, s, gpu, d, algos, dtype
        self.dkv = d if dkv is None else dkv
        self.calib = None if calib is None or calib.is_roofline else calib
        # FP8 only in the GEMMs: the residual stream, norms, attention and collectives stay 16-bit,
        # and each GEMM's input is quantized by a kernel of its own (read 16-bit, write FP8).
        self.fp8_gemm = self.calib is not None and dtype == "fp8" and self.calib.fp8_scope == "gemm"
        self.da = max(d, DTYPES["bf16"]) if self.fp8_gemm else d
        t = plan.tp
        self.q = m.q_dim // t
        self.kv = plan.kv_heads_per_gpu(m) * m.head_dim
        self.ffn = m.ffn_size // t
        self.T = float(s.tokens)
        self.Tn = self.T / t if plan.sp else self.T           # tokens a norm sees

    def op(self, name, flops, nbytes, scale=1.0, kind="other", tokens=0.0, kernels=1, widths=(), dtype=None):
        return roofline(flops * scale, nbytes * scale, self.gpu, dtype or self.dtype, name, calibration=self.calib,
                        kind=kind, tokens=tokens, kernels=kernels, seq_len=self.s.seq_len, widths=widths)

    def gemm_io(self, T, n_in, n_out, gemms=1):
        """(bytes, extra kernels) of a GEMM op's activations: inputs, outputs and FP8 quantization."""
        if not self.fp8_gemm:
            return T * (n_in + n_out) * self.d, 0
        return T * n_in * (self.d + self.da + self.d) + T * n_out * self.da, gemms

    def coll(self, kind, group, size, nbytes, after, label):
        return Collective(kind, group, int(size), float(nbytes), self.algos[kind], after, label)

    def gemm(self, name, n_in, n_out, tokens=None, weights=None, scale=1.0, kernels=1):
        T = self.T if tokens is None else tokens
        w = n_in * n_out if weights is None else weights
        io, quant = self.gemm_io(T, n_in, n_out)
        return self.op(name, 2.0 * T * w, w * self.d + io, scale, "gemm", T, kernels + quant, ((n_out, n_in),))

    def norm(self, name, scale=1.0):
        n = self.Tn * self.m.hidden_size
        return self.op(name, (1 + NORM_FLOPS[self.m.norm]) * n, 4 * n * self.da, scale)

    def attention(self, scale=1.0):
        m, s, d = self.m, self.s, self.d
        heads = self.q // m.head_dim
        flops = 4.0 * heads * m.head_dim * s.pairs
        if s.mode == "decode":
            kv_read = 2.0 * self.kv * s.context * s.batch
            if self.calib is not None and self.calib.decode_kv_reads == "per-query-head":
                kv_read *= max(heads * m.head_dim / self.kv, 1.0)     # each query head reads its KV head
            kv_write = 2.0 * self.kv * s.batch
        else:
            kv_read = 2.0 * self.kv * self.T
            kv_write = 2.0 * self.kv * self.T if s.mode == "prefill" else 0.0
        return self.op("attention", flops, 2 * self.T * self.q * self.da + (kv_read + kv_write) * self.dkv, scale,
                       "attention", dtype="bf16" if self.fp8_gemm else None)

    # ---- blocks -----------------------------------------------------------------
    # Collectives are created with after="" and get the preceding op's name in layer_profile.
    def tp(self, kind, label):
        if self.plan.tp == 1:
            return []
        return [self.coll(kind, "tp", self.plan.tp, self.T * self.m.hidden_size * self.da, "", label)]

    def tp_in(self, label, backward):
        """Where activations enter a TP block: sp all-gather (forward); its gradient leaves
        there in backward: reduce-scatter with sp, else the all-reduce of the ``f`` operator."""
        if backward:
            return self.tp("reduce-scatter" if self.plan.sp else "all-reduce", label)
        return self.tp("all-gather", label) if self.plan.sp else []

    def tp_out(self, label, backward):
        """Where a TP block's partial sums leave: all-reduce, or sp reduce-scatter (forward);
        in backward the gradient enters there: sp all-gather, else nothing (``g`` is identity)."""
        if backward:
            return self.tp("all-gather", label) if self.plan.sp else []
        return self.tp("reduce-scatter" if self.plan.sp else "all-reduce", label)

    def a2a(self, label):
        ep = self.plan.ep
        if ep == 1:
            return []
        nb = self.T * self.m.experts_per_token * self.m.hidden_size * self.da
        return [self.coll("all-to-all", "ep", ep, nb, "", label)]

    def attention_block(self, backward=False):
        h = self.m.hidden_size
        sc, p = (2.0, "bwd:") if backward else (1.0, "")
        norm = self.norm(p + "attn-norm", sc)
        qkv = self.gemm(p + "qkv", h, self.q + 2 * self.kv, scale=sc, kernels=2)    # GEMM, then RoPE/bias + KV write
        a = self.attention(sc)
        att = OpCost(p + "attention", a.flops, a.hbm_bytes, a.time_s, a.bound)
        out = self.gemm(p + "out-proj", self.q, h, scale=sc)
        if not backward:
            return [norm, *self.tp_in("attn-in", False), qkv, att, out, *self.tp_out("attn-out", False)]
        return [*self.tp_out("bwd attn-out", True), out, att, qkv, *self.tp_in("bwd attn-in", True), norm]

    def mlp_block(self, backward=False):
        m, h = self.m, self.m.hidden_size
        sc, p = (2.0, "bwd:") if backward else (1.0, "")
        norm = self.norm(p + "mlp-norm", sc)
        w1 = m.mlp_matrices * h * self.ffn                         # one MLP / expert on this GPU
        if not m.is_moe:
            # two GEMMs (the gated pair fused in one) and the activation between them
            up = (m.mlp_matrices - 1) * self.ffn                   # gate and up fused: one GEMM
            io, quant = self.gemm_io(self.T, h + self.ffn, h + self.ffn, gemms=2)
            mlp = self.op(p + "mlp", 2.0 * self.T * w1, w1 * self.d + io, sc, "gemm", self.T, kernels=3 + quant,
                          widths=((up, h), (h, self.ffn)))
            body = [mlp]
        else:
            E, kt, ep, sh = m.experts, m.experts_per_token, self.plan.ep, m.shared_experts
            router = self.gemm(p + "router", h, E, scale=sc)
            copies = self.T * kt                                   # token copies this GPU's experts process
            active = (E // ep) * (1.0 - (1.0 - kt / E) ** (self.T * ep))
            flops = 2.0 * (copies + sh * self.T) * w1
            io, quant = self.gemm_io(copies + sh * self.T, h + self.ffn, h + self.ffn, gemms=2)
            nbytes = (active + sh) * w1 * self.d + io
            experts = self.op(p + "experts", flops, nbytes, sc, "gemm", copies / max(E // ep, 1),
                              kernels=(3 + quant) * max(int(round(active + sh)), 1))
            if not backward:
                body = [router, *self.a2a("moe-dispatch"), experts, *self.a2a("moe-combine")]
            else:
                body = [*self.a2a("bwd moe-combine"), experts, *self.a2a("bwd moe-dispatch"), router]
        if not backward:
            return [norm, *self.tp_in("mlp-in", False), *body, *self.tp_out("mlp-out", False)]
        return [*self.tp_out("bwd mlp-out", True), *body, *self.tp_in("bwd mlp-in", True), norm]


def layer_profile(model: ModelSpec | str, plan: ParallelPlan, mode: str, *, batch: int,
                  seq_len: int | None = None, context: int | None = None,
                  gpu: str | hardware.GPUSpec = "h100-sxm", dtype_bytes: float | None = None,
                  algorithms: dict | None = None, dtype: str = "bf16", kv_dtype: str | None = None,
                  calibration: "str | Calibration | None" = None) -> LayerProfile:
    """Ops and collectives of one transformer layer on one GPU.

    Parameters
    ----------
    model : ModelSpec or str
    plan : ParallelPlan
        Validated against the model here.
    mode : {"prefill", "decode", "train"}
    batch : int
        Sequences per micro-batch per data-parallel replica.
    seq_len : int
        Prompt length (prefill) or training sequence length.
    context : int
        Decode: tokens in the KV cache, attended by the one new token per sequence.
    gpu : str or GPUSpec
        Catalog GPU that times the ops (roofline).
    dtype_bytes : float, optional
        Bytes per weight and activation element; default from ``dtype``
        (2 for bf16, 1 for fp8).
    algorithms : dict, optional
        Collective kind -> algorithm name (defaults :data:`DEFAULT_ALGORITHMS`).
    dtype : {"bf16", "fp8"}
        Weights and activations: their bytes and which peak FLOP/s of the GPU applies.
    kv_dtype : {"bf16", "fp8"}, optional
        The KV cache's dtype (default ``dtype``).
    calibration : str or Calibration, optional
        Kernel efficiency model (:mod:`ocsnet.workload.calibration`); default
        the constant-efficiency roofline.

    Returns
    -------
    LayerProfile

    Raises
    ------
    WorkloadError
        Bad mode, sizes, plan, or an unknown collective kind in ``algorithms``.

    Examples
    --------
    >>> from ocsnet.workload import ParallelPlan
    >>> lp = layer_profile("llama3-70b", ParallelPlan(tp=8), "decode", batch=8, context=4096)
    >>> [c.kind for c in lp.collectives]
    ['all-reduce', 'all-reduce']
    >>> {o.op: o.bound for o in lp.ops}["mlp"]
    'memory'
    """
    m = get_model(model)
    check_plan(plan).validate(m)
    s = shape(m, mode, batch, seq_len, context)
    g = hardware.gpu(gpu)
    if dtype_bytes is not None:
        checks.positive("dtype_bytes", dtype_bytes, error=WorkloadError)
    prec = resolve_precision(dtype, kv_dtype, dtype_bytes)
    g.peak_flops(dtype)                                  # a GPU without the format says so here
    calib = get_calibration(calibration)
    if algorithms is not None and not isinstance(algorithms, dict):
        raise WorkloadError(f"algorithms: expected a table of collective kind -> algorithm, got {algorithms!r:.60}")
    algos = dict(DEFAULT_ALGORITHMS)
    for k, v in (algorithms or {}).items():
        if k not in DEFAULT_ALGORITHMS:
            raise WorkloadError(f"algorithms: {k!r} is not a collective kind, expected one of {', '.join(DEFAULT_ALGORITHMS)}")
        algos[k] = str(v)
    b = _Layer(m, plan, s, g, prec.bytes, algos, dtype, prec.kv_bytes, calib)
    items = [*b.attention_block(), *b.mlp_block()]
    if mode == "train":
        items += [*b.mlp_block(backward=True), *b.attention_block(backward=True)]
    last = "start"
    for i, x in enumerate(items):
        if isinstance(x, OpCost):
            last = x.op
        else:
            items[i] = replace(x, after=last)
    return LayerProfile(m, plan, g, s, prec.bytes, tuple(items), algos, dtype=dtype, kv_dtype=prec.kv_dtype,
                        activation_bytes=b.da, calibration=calib.name)
