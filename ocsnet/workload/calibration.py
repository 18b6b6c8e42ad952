"""Kernel and collective efficiency: how far real kernels and NCCL fall short of the roofline.

Stage 2 of the pipeline (workload).  A :class:`Calibration` turns an op's
FLOPs and bytes into time with

- a fixed cost per kernel (launch, ramp-up, tail) and optionally per layer
  and per step;
- GEMM efficiency as a function of shape: the token dimension ``M`` is
  computed in tiles of ``gemm_tile_m`` rows (a decode GEMM with 8 tokens pays
  for 64), and the achieved fraction of peak depends on the work of one
  kernel (a step table, normalized to its largest entry and multiplied by
  the GPU's constant ``compute_efficiency``);
- HBM efficiency as a function of the bytes one kernel moves (likewise
  multiplied by the GPU's ``memory_efficiency``);
- fused-attention compute efficiency as a function of the sequence length;
- FP8 GEMMs at a fraction of the GPU's constant efficiency (activation
  quantization and FP8 kernels do not reach twice the BF16 throughput);
- decode attention reading the KV cache once per KV head (GQA-aware
  kernels) or once per query head;

and a collective's time from its alpha-beta time with NCCL's protocols: for
each protocol ``p`` a base latency, a latency per algorithm step (NVLink or
network) and a bandwidth factor; the transfer time is divided by the
achieved fraction of line rate of the link class.  The collective takes the
fastest protocol, as NCCL's tuner does.

The built-in ``"roofline"`` calibration has every factor at its ideal value
(no overheads, curves equal to 1, tiles of one row, collectives at their
alpha-beta time) and reduces to the constant-efficiency roofline of
:func:`ocsnet.workload.layers.roofline`.  Named calibrations live in
``ocsnet/catalog/calibration.toml`` with a source for every number.

References
----------
Isaev et al., "Calculon: a methodology and tool for high-level co-design of
systems and large language models", SC 2023 (efficiency tables by size).
NCCL ``src/graph/tuning.cc`` (protocol latency and bandwidth model).
Dao, "FlashAttention-2", 2023.  See docs/design.md, section "Calibration".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..errors import SpecError

__all__ = ["Calibration", "calibration", "calibrations", "ROOFLINE", "check_efficiency", "FP8_SCOPES"]


#: How a decode attention kernel reads the KV cache: once per KV head (GQA-aware, e.g.
#: FlashDecoding/XQA) or once per query head (one thread block per query head).
DECODE_KV_READS = ("per-kv-head", "per-query-head")

#: What an FP8 run keeps in FP8: everything (``"all"``, the roofline's reading: weights, activations,
#: collectives) or only the GEMMs (``"gemm"``: FP8 weights and GEMM inputs, one activation-quantization
#: kernel per GEMM, and the residual stream, norms, attention and collectives in BF16).
FP8_SCOPES = ("all", "gemm")


def check_efficiency(name: str, value) -> float:
    """An efficiency must be a number in (0, 1]; :class:`SpecError` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (0 < value <= 1):
        raise SpecError(f"{name}: {value!r} is out of range, allowed (0, 1]")
    return float(value)


def _step_table(x: tuple, y: tuple, v: float) -> float:
    """Value of the step table at ``v``: the entry with the largest threshold <= v (the first one below)."""
    i = int(np.searchsorted(x, v, side="right")) - 1
    return y[max(i, 0)]


@dataclass(frozen=True)
class Calibration:
    """One calibration of the per-layer model (all times in seconds, sizes in FLOP and bytes).

    Curves are step tables ``(thresholds, values)``; an empty table is the
    constant 1.  ``gemm`` and ``memory`` values are relative to their largest
    entry (they scale the GPU's constant efficiencies); ``attention`` values
    are absolute fractions of peak.
    """

    name: str = "roofline"
    description: str = "constant-efficiency roofline, no overheads, collectives at line rate"
    kernel_overhead_s: float = 0.0
    layer_overhead_s: float = 0.0
    step_overhead_s: float = 0.0
    gemm_tile_m: int = 1
    gemm_tile_n: int = 0
    gemm_split_k: bool = False
    gemm_flops: tuple = ()
    gemm_efficiency: tuple = ()
    memory_bytes: tuple = ()
    memory_efficiency: tuple = ()
    attention_tokens: tuple = ()
    attention_efficiency: tuple = ()
    protocols: tuple = ()
    protocol_base_s: tuple = ()
    protocol_step_nvlink_s: tuple = ()
    protocol_step_net_s: tuple = ()
    protocol_bandwidth_factor: tuple = ()
    link_efficiency_copper: float = 1.0
    link_efficiency_other: float = 1.0
    nvls_algbw_fraction: float = 0.0
    nvls_latency_s: float = 0.0
    decode_kv_reads: str = "per-kv-head"
    fp8_gemm_factor: float = 1.0
    fp8_scope: str = "all"
    source: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        for f in ("kernel_overhead_s", "layer_overhead_s", "step_overhead_s"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < math.inf):
                raise SpecError(f"calibration {self.name}.{f}: {v!r} is out of range, allowed [0, inf)")
        if isinstance(self.gemm_tile_m, bool) or int(self.gemm_tile_m) != self.gemm_tile_m or self.gemm_tile_m < 1:
            raise SpecError(f"calibration {self.name}.gemm_tile_m: {self.gemm_tile_m!r} must be an integer >= 1")
        for xs, ys, absolute in (("gemm_flops", "gemm_efficiency", False), ("memory_bytes", "memory_efficiency", False),
                                 ("attention_tokens", "attention_efficiency", True)):
            x, y = getattr(self, xs), getattr(self, ys)
            if len(x) != len(y):
                raise SpecError(f"calibration {self.name}.{ys}: {len(y)} values for {len(x)} thresholds in {xs}")
            for v in y:
                check_efficiency(f"calibration {self.name}.{ys}", v)
            if any(b <= a for a, b in zip(x, x[1:])) or any(v < 0 for v in x):
                raise SpecError(f"calibration {self.name}.{xs}: thresholds must be >= 0 and increasing")
        n = len(self.protocols)
        for f in ("protocol_base_s", "protocol_step_nvlink_s", "protocol_step_net_s", "protocol_bandwidth_factor"):
            if len(getattr(self, f)) != n:
                raise SpecError(f"calibration {self.name}.{f}: {len(getattr(self, f))} values for {n} protocols")
        for v in self.protocol_bandwidth_factor:
            check_efficiency(f"calibration {self.name}.protocol_bandwidth_factor", v)
        for f in ("protocol_base_s", "protocol_step_nvlink_s", "protocol_step_net_s"):
            if any(v < 0 for v in getattr(self, f)):
                raise SpecError(f"calibration {self.name}.{f}: latencies must be >= 0")
        if isinstance(self.gemm_tile_n, bool) or int(self.gemm_tile_n) != self.gemm_tile_n or self.gemm_tile_n < 0:
            raise SpecError(f"calibration {self.name}.gemm_tile_n: {self.gemm_tile_n!r} must be an integer >= 0 "
                            "(0: no wave quantization)")
        if self.decode_kv_reads not in DECODE_KV_READS:
            raise SpecError(f"calibration {self.name}.decode_kv_reads: {self.decode_kv_reads!r} is not one of "
                            f"{', '.join(DECODE_KV_READS)}")
        if self.fp8_scope not in FP8_SCOPES:
            raise SpecError(f"calibration {self.name}.fp8_scope: {self.fp8_scope!r} is not one of {', '.join(FP8_SCOPES)}")
        if not isinstance(self.gemm_split_k, bool):
            raise SpecError(f"calibration {self.name}.gemm_split_k: {self.gemm_split_k!r} must be true or false")
        check_efficiency(f"calibration {self.name}.fp8_gemm_factor", self.fp8_gemm_factor)
        v = self.nvls_algbw_fraction
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise SpecError(f"calibration {self.name}.nvls_algbw_fraction: {v!r} is out of range, allowed [0, 1] "
                            "(0: no in-network all-reduce)")
        v = self.nvls_latency_s
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < math.inf):
            raise SpecError(f"calibration {self.name}.nvls_latency_s: {v!r} is out of range, allowed [0, inf)")
        check_efficiency(f"calibration {self.name}.link_efficiency_copper", self.link_efficiency_copper)
        check_efficiency(f"calibration {self.name}.link_efficiency_other", self.link_efficiency_other)

    # ---- kernels ------------------------------------------------------------------------
    @property
    def is_roofline(self) -> bool:
        return self == ROOFLINE

    def gemm_factor(self, flops_per_kernel: float) -> float:
        """Relative GEMM efficiency (<= 1) for one kernel of this many FLOPs."""
        if not self.gemm_flops:
            return 1.0
        return _step_table(self.gemm_flops, self.gemm_efficiency, flops_per_kernel) / max(self.gemm_efficiency)

    def memory_factor(self, bytes_per_kernel: float) -> float:
        """Relative HBM efficiency (<= 1) for one kernel moving this many bytes."""
        if not self.memory_bytes:
            return 1.0
        return _step_table(self.memory_bytes, self.memory_efficiency, bytes_per_kernel) / max(self.memory_efficiency)

    def attention_compute_efficiency(self, seq_len: float, gemm_efficiency: float) -> float:
        """Achieved fraction of peak of fused attention at this sequence length (the GEMM constant without a table)."""
        if not self.attention_tokens:
            return gemm_efficiency
        return _step_table(self.attention_tokens, self.attention_efficiency, seq_len)

    def tiled_tokens(self, tokens: float) -> float:
        """Rows a GEMM computes for ``tokens`` rows: rounded up to whole tiles."""
        t = self.gemm_tile_m
        return tokens if t <= 1 or tokens <= 0 else math.ceil(tokens / t) * t

    def wave_factor(self, tokens: float, widths: tuple, sm_count: int) -> float:
        """Fraction of the GPU's SMs a GEMM op keeps busy, over its waves of output tiles.

        One GEMM of ``tokens`` rows and ``n`` output columns has
        ``ceil(tokens / gemm_tile_m) * ceil(n / gemm_tile_n)`` tiles, one per SM
        at a time; the last wave leaves SMs idle (wave quantization, NVIDIA's
        "Matrix Multiplication Background" guide).  ``widths`` holds
        ``(n, k)`` of each GEMM of the op; the factor weighs each by its work
        ``n * k``.  1 when the tile width or the SM count is unknown (0).
        """
        if self.gemm_tile_n <= 0 or sm_count <= 0 or tokens <= 0 or not widths:
            return 1.0
        rows = math.ceil(tokens / max(self.gemm_tile_m, 1))
        work = busy = 0.0
        for n, k in widths:
            tiles = rows * math.ceil(n / self.gemm_tile_n)
            if self.gemm_split_k and tiles < sm_count:
                tiles *= sm_count // tiles                # split K to give every SM a tile
            f = tiles / (math.ceil(tiles / sm_count) * sm_count)
            work += n * k
            busy += n * k / f
        return work / busy if busy > 0 else 1.0

    def op_time(self, flops: float, hbm_bytes: float, peak_flops: float, hbm_Bps: float,
                compute_efficiency: float, memory_efficiency: float, *, kind: str = "other",
                tokens: float = 0.0, kernels: int = 1, seq_len: float = 0.0,
                dtype: str = "bf16", widths: tuple = (), sm_count: int = 0) -> tuple[float, float]:
        """(compute time, memory time) of one op of ``kernels`` kernels, overhead excluded.

        ``kind`` is ``"gemm"`` (tile quantization on ``tokens``, the GEMM
        table per kernel and wave quantization of the GEMMs ``widths`` over
        ``sm_count`` SMs), ``"attention"`` (the attention table at
        ``seq_len``) or anything else (the GPU's constant compute efficiency).
        """
        k = max(int(kernels), 1)
        ce = compute_efficiency
        if kind == "gemm":
            wave = self.wave_factor(tokens, widths, sm_count)
            if tokens > 0:
                flops = flops * self.tiled_tokens(tokens) / tokens
            ce = ce * self.gemm_factor(flops / k) * (self.fp8_gemm_factor if dtype == "fp8" else 1.0) * wave
        elif kind == "attention":
            ce = self.attention_compute_efficiency(seq_len, ce)
        me = memory_efficiency * self.memory_factor(hbm_bytes / k)
        return flops / (peak_flops * ce), hbm_bytes / (hbm_Bps * me)

    # ---- collectives --------------------------------------------------------------------
    def nvls_time(self, nbytes: float, link_Bps: float) -> float:
        """All-reduce of ``nbytes`` per GPU reduced in an NVLink switch (NVLS): each GPU sends its
        buffer up and receives the sum, at ``nvls_algbw_fraction`` of its ``link_Bps``; infinite
        when the calibration has no NVLS (fraction 0)."""
        if self.nvls_algbw_fraction <= 0 or link_Bps <= 0:
            return math.inf
        return self.nvls_latency_s + nbytes / (link_Bps * self.nvls_algbw_fraction)

    def collective_time(self, alpha_beta_s: float, steps: int, net: bool, latency_s: float = 0.0) -> float:
        """Time of a collective whose alpha-beta (line-rate, no software latency) time is ``alpha_beta_s``.

        ``steps`` is the number of sequential algorithm steps; ``net`` is true
        when a step crosses a link other than copper (NVLink), which selects
        the network latencies and link efficiency.  ``latency_s`` is the part
        of ``alpha_beta_s`` that is route latency (hops, propagation): it is
        not slowed by a protocol's bandwidth factor or the link efficiency, and
        a step costs the larger of the protocol's per-step latency (which NCCL
        measured over such hops) and the route's own.  Roofline: unchanged.
        """
        if alpha_beta_s <= 0 or steps <= 0:
            return float(alpha_beta_s)
        lat = min(max(float(latency_s), 0.0), alpha_beta_s)
        wire = alpha_beta_s - lat
        link = self.link_efficiency_other if net else self.link_efficiency_copper
        if not self.protocols:
            return lat + wire / link
        step = self.protocol_step_net_s if net else self.protocol_step_nvlink_s
        hop = lat / steps
        return float(min(b + steps * max(s, hop) + wire / (link * f)
                         for b, s, f in zip(self.protocol_base_s, step, self.protocol_bandwidth_factor)))


ROOFLINE = Calibration()

# TOML key -> (attribute, unit field used for the SI conversion or None)
_SCALARS = {"kernel_overhead_us": "kernel_overhead_s", "layer_overhead_us": "layer_overhead_s",
            "step_overhead_us": "step_overhead_s", "gemm_tile_m": "gemm_tile_m", "gemm_tile_n": "gemm_tile_n",
            "link_efficiency_copper": "link_efficiency_copper", "link_efficiency_other": "link_efficiency_other",
            "decode_kv_reads": "decode_kv_reads", "fp8_gemm_factor": "fp8_gemm_factor",
            "fp8_scope": "fp8_scope", "gemm_split_k": "gemm_split_k",
            "nvls_algbw_fraction": "nvls_algbw_fraction", "nvls_latency_us": "nvls_latency_s"}
_LISTS = {"gemm_GFLOP": ("gemm_flops", "x_GFLOPs"), "gemm_efficiency": ("gemm_efficiency", None),
          "memory_MB": ("memory_bytes", "x_MB"), "memory_efficiency": ("memory_efficiency", None),
          "attention_tokens": ("attention_tokens", None), "attention_efficiency": ("attention_efficiency", None),
          "protocols": ("protocols", None), "protocol_base_us": ("protocol_base_s", "x_us"),
          "protocol_step_nvlink_us": ("protocol_step_nvlink_s", "x_us"),
          "protocol_step_net_us": ("protocol_step_net_s", "x_us"),
          "protocol_bandwidth_factor": ("protocol_bandwidth_factor", None)}


def _build(name: str, entry: dict) -> Calibration:
    where = f"calibration.{name}"
    allowed = set(_SCALARS) | set(_LISTS) | {"description", "source"}
    extra = set(entry) - allowed
    if extra:
        raise SpecError(f"{where}: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(allowed - {'source'}))}")
    src = entry.get("source", {})
    if not isinstance(src, dict):
        raise SpecError(f"{where}.source: must be a table of field = \"where the number comes from\"")
    kw: dict = {"name": name, "description": str(entry.get("description", "")), "source": dict(src)}
    for key, attr in _SCALARS.items():
        if key in entry:
            v = entry[key]
            if key in ("decode_kv_reads", "fp8_scope"):
                kw[attr] = str(v)
                continue
            if key == "gemm_split_k":
                if not isinstance(v, bool):
                    raise SpecError(f"{where}.{key}: {v!r} must be true or false")
                kw[attr] = v
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SpecError(f"{where}.{key}: {v!r} must be a number")
            kw[attr] = units.to_si(key, v) if key.endswith("_us") else v
    for key, (attr, unit) in _LISTS.items():
        if key in entry:
            v = entry[key]
            if not isinstance(v, list):
                raise SpecError(f"{where}.{key}: {v!r} must be a list")
            if key != "protocols" and any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                raise SpecError(f"{where}.{key}: every entry must be a number")
            kw[attr] = tuple(units.to_si(unit, x) if unit else x for x in v)
    pairs = {"gemm_GFLOP": "gemm_efficiency", "memory_MB": "memory_efficiency",
             "attention_tokens": "attention_efficiency"}
    for key in entry:
        if key in ("description", "source", "protocols", "decode_kv_reads", "fp8_scope", "gemm_split_k") \
                and key not in src:
            continue
        # a table's thresholds share the source of its values
        if not any(isinstance(src.get(k), str) and src[k] for k in (key, pairs.get(key, key))):
            raise SpecError(f"{where}.{key}: number has no source string in [{where}.source]")
    extra_src = set(src) - set(entry)
    if extra_src:
        raise SpecError(f"{where}.source: source for unknown key {sorted(extra_src)[0]!r}")
    return Calibration(**kw)


@functools.lru_cache(maxsize=16)
def _calibrations_for(key: tuple) -> dict[str, Calibration]:
    from ..hardware import load_table
    out = {"roofline": ROOFLINE}
    for name, entry in load_table("calibration.toml").items():
        if name == "roofline":
            raise SpecError("calibration.roofline: the name is reserved for the built-in roofline")
        out[name] = _build(name, entry)
    return out


def _calibrations() -> dict[str, Calibration]:
    from .. import folders
    return _calibrations_for(folders.state())


def calibrations() -> dict[str, Calibration]:
    """All calibrations by name (``"roofline"`` and those of ``catalog/calibration.toml``)."""
    return dict(_calibrations())


def calibration(name: "str | Calibration | None") -> Calibration:
    """One calibration by name (a :class:`Calibration` passes through; None is the roofline)."""
    if name is None:
        return ROOFLINE
    if isinstance(name, Calibration):
        return name
    table = _calibrations()
    try:
        return table[name]
    except (KeyError, TypeError):
        raise SpecError(f"calibration: unknown name {name!r}; known: {', '.join(sorted(table))}") from None

