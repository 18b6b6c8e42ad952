"""Sparse matrices at the ground floor: user input to CSR, the one canonical form, and its digest."""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from .errors import OcsnetError

__all__ = ["as_sparse_2d", "canonical", "digest"]


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


def canonical(m, name: str = "matrix", error: type[Exception] = OcsnetError, *, n: int | None = None,
              square: bool = False, dtype=np.float64, integral: bool = False, nonnegative: bool = False,
              finite: bool = True, zero_diagonal: bool = False, index_dtype=None,
              what: str = "N x N matrix") -> sp.csr_matrix:
    """``m`` as a canonical CSR matrix: summed duplicates, no stored zeros, sorted indices.

    The one canonical form of every matrix the stages exchange (demand,
    circuit configurations, trace phases), so that equal matrices have equal
    arrays and equal :func:`digest`.  Raises ``error`` naming ``name`` (and
    the entry ``name[i, j]``) when the matrix is not two-dimensional, not
    square (``square``), not ``n x n``, holds NaN or infinity (``finite``), a
    negative entry (``nonnegative``), a non-integer entry (``integral``) or a
    diagonal entry (``zero_diagonal``).

    Parameters
    ----------
    dtype : numpy dtype
        Of the stored values (integral values are checked before an integer cast).
    index_dtype : numpy dtype, optional
        Of ``indices`` and ``indptr`` (default: scipy's choice).
    """
    c = as_sparse_2d(m, name, error, what=what)
    r, k = c.shape
    if (square or n is not None) and r != k:
        raise error(f"{name}: expected a square matrix, got shape {c.shape}")
    if n is not None and r != n:
        raise error(f"{name}: shape {c.shape} does not match (N, N) = {(n, n)}")
    c.sum_duplicates()
    if c.nnz and (finite or nonnegative or integral or zero_diagonal):
        rows = np.repeat(np.arange(r), np.diff(c.indptr))

        def first(bad, why):
            hit = np.flatnonzero(bad)
            if len(hit):
                j = int(hit[0])
                raise error(f"{name}[{int(rows[j])}, {int(c.indices[j])}]: {float(c.data[j])!r} {why}")

        if finite:
            first(~np.isfinite(c.data), "is not finite")
        if nonnegative:
            first(c.data < 0, "is negative, allowed [0, inf)")
        if integral:
            first(c.data != np.round(c.data), "is not an integer")
        if zero_diagonal:
            first((rows == c.indices) & (c.data != 0), "is on the diagonal, which must be 0")
    c.eliminate_zeros()
    c.sort_indices()
    if np.dtype(dtype) != c.dtype:
        c = sp.csr_matrix((c.data.astype(dtype), c.indices, c.indptr), shape=c.shape)
    if index_dtype is not None:
        c.indices = c.indices.astype(index_dtype, copy=False)
        c.indptr = c.indptr.astype(index_dtype, copy=False)
    return c


def digest(m: sp.csr_matrix) -> bytes:
    """A 16-byte content digest of a canonical CSR matrix (:func:`canonical`): equal matrices, equal digests.

    Covers the shape, the structure and the values with their dtype, so an
    integer configuration and a float demand never collide; index dtypes do
    not matter.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(m.shape, dtype=np.int64).tobytes())
    h.update(np.asarray(m.indptr, dtype=np.int64).tobytes())
    h.update(np.asarray(m.indices, dtype=np.int64).tobytes())
    h.update(m.data.dtype.str.encode())
    h.update(np.ascontiguousarray(m.data).tobytes())
    return h.digest()
