"""Number formats of weights, activations and the KV cache: bytes per element and which peak applies.

Stage 2 of the pipeline (workload).  A precision is named by its dtype
(:data:`DTYPES`); weights and activations share one dtype, the KV cache may
have its own (``kv_dtype``, default the same).  The dtype also selects the
GPU's dense peak (:meth:`ocsnet.hardware.GPUSpec.peak_flops`): FP8 halves the
bytes of every weight and doubles the peak FLOP/s of an H100.

Examples
--------
>>> resolve("fp8")
Precision(dtype='fp8', kv_dtype='fp8', bytes=1.0, kv_bytes=1.0)
>>> resolve("fp8", kv_dtype="bf16").kv_bytes
2.0
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import WorkloadError

__all__ = ["DTYPES", "Precision", "resolve", "dtype_bytes"]

#: Bytes per element of each supported dtype (BF16: 16 bits; FP8 E4M3/E5M2: 8 bits).
DTYPES: dict[str, float] = {"bf16": 2.0, "fp8": 1.0}


def dtype_bytes(dtype: str, field: str = "dtype") -> float:
    """Bytes per element of ``dtype``; :class:`WorkloadError` naming ``field`` for an unknown one."""
    try:
        return DTYPES[dtype]
    except (KeyError, TypeError):
        raise WorkloadError(f"{field}: {dtype!r} is not one of {', '.join(DTYPES)}") from None


@dataclass(frozen=True)
class Precision:
    """The dtype of weights and activations, the KV cache's dtype, and their bytes per element."""

    dtype: str
    kv_dtype: str
    bytes: float
    kv_bytes: float


def resolve(dtype: str = "bf16", kv_dtype: str | None = None, nbytes: float | None = None) -> Precision:
    """Check a dtype pair and give its sizes.

    Parameters
    ----------
    dtype : {"bf16", "fp8"}
        Weights and activations; selects the GPU peak.
    kv_dtype : {"bf16", "fp8"}, optional
        KV cache (default ``dtype``).
    nbytes : float, optional
        Override of the bytes per weight/activation element (the older
        ``dtype_bytes`` argument); the KV cache follows it unless
        ``kv_dtype`` is given.

    Raises
    ------
    WorkloadError
        An unknown dtype (naming ``dtype`` or ``kv_dtype``), or ``nbytes <= 0``.
    """
    b = dtype_bytes(dtype, "dtype")
    if nbytes is not None:
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, float)) or not nbytes > 0:
            raise WorkloadError(f"dtype_bytes: {nbytes!r} is out of range, allowed (0, inf)")
        b = float(nbytes)
    if kv_dtype is None:
        return Precision(dtype, dtype, b, b)
    return Precision(dtype, kv_dtype, b, dtype_bytes(kv_dtype, "kv_dtype"))
