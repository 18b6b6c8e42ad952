"""Sparse-matrix input handling shared by the stages that take matrices from users."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["as_sparse_2d"]


def as_sparse_2d(m, name: str, error: type[Exception], fmt: str = "csr", what: str = "matrix"):
    """``m`` (dense array-like or scipy.sparse) as a fresh float64 CSR or CSC matrix.

    Raises ``error`` naming ``name`` when ``m`` is not two-dimensional; range and
    shape checks beyond that belong to the caller.
    """
    convert = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    if sp.issparse(m):
        return convert(m, dtype=np.float64, copy=True)
    try:
        a = np.asarray(m, dtype=np.float64)
    except (TypeError, ValueError):
        raise error(f"{name}: expected a 2-D {what} of numbers, got {type(m).__name__} {m!r:.60}") from None
    if a.ndim != 2:
        raise error(f"{name}: expected a 2-D {what}, got shape {a.shape}")
    return convert(a)
