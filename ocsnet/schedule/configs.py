"""Circuit configurations as canonical matrices, and their content keys.

Stage 4 of the pipeline (``ocsnet.schedule``): the ground floor the schedule
container (:mod:`.io`), the re-timer (:mod:`.timing`), the validator and the
solvers share.  A configuration is an integer N x N matrix ``C`` (``C[i, j]``
circuits from GPU ``i`` to GPU ``j``), kept as canonical int64 CSR.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from ..sparse import as_sparse_2d

__all__ = ["canonical_config", "config_key"]


def canonical_config(C, n: int | None = None) -> sp.csr_matrix:
    """A circuit matrix as canonical int64 CSR (sorted indices, no stored zeros).

    Raises ``ScheduleError`` for a wrong shape or non-integer entries; the
    range checks (ports, diagonal, allowed pairs) are :func:`.validate.validate`'s.

    Examples
    --------
    >>> canonical_config([[0, 2], [1.0, 0]]).toarray().tolist()
    [[0, 2], [1, 0]]
    >>> config_key(canonical_config([[0, 1], [0, 0]])) == config_key(canonical_config([[0, 1.0], [0, 0]]))
    True
    """
    M = as_sparse_2d(C, "config", ScheduleError, what="N x N matrix")
    if n is not None and M.shape != (n, n):
        raise ScheduleError(f"config: shape {M.shape} does not match (N, N) = {(n, n)}")
    M.sum_duplicates()
    M.eliminate_zeros()
    M.sort_indices()
    if M.nnz and not (np.all(np.isfinite(M.data)) and np.all(M.data == np.round(M.data))):
        raise ScheduleError("config: circuit counts must be integers")
    out = sp.csr_matrix((M.data.astype(np.int64), M.indices.astype(np.int32), M.indptr.astype(np.int32)),
                        shape=M.shape)
    return out


def config_key(C: sp.csr_matrix) -> bytes:
    """A content digest of a canonical configuration (equal matrices, equal keys)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(C.shape, dtype=np.int64).tobytes())
    h.update(np.asarray(C.indptr, dtype=np.int64).tobytes())
    h.update(np.asarray(C.indices, dtype=np.int64).tobytes())
    h.update(np.asarray(C.data, dtype=np.int64).tobytes())
    return h.digest()
