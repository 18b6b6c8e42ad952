"""Circuit configurations as canonical matrices, and their content keys.

Stage 4 of the pipeline (``ocsnet.schedule``): the ground floor the schedule
container (:mod:`.io`), the re-timer (:mod:`.timing`), the validator and the
solvers share.  A configuration is an integer N x N matrix ``C`` (``C[i, j]``
circuits from GPU ``i`` to GPU ``j``), kept as canonical int64 CSR and
compared by its :func:`ocsnet.sparse.digest`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from ..sparse import canonical

__all__ = ["canonical_config"]


def canonical_config(C, n: int | None = None) -> sp.csr_matrix:
    """A circuit matrix in the canonical form (:func:`ocsnet.sparse.canonical`) as int64 CSR.

    Raises ``ScheduleError`` for a wrong shape or non-integer entries; the
    range checks (ports, diagonal, allowed pairs) are :func:`.validate.validate`'s.
    Configurations are compared by :func:`ocsnet.sparse.digest` of this form.

    Examples
    --------
    >>> canonical_config([[0, 2], [1.0, 0]]).toarray().tolist()
    [[0, 2], [1, 0]]
    >>> from ocsnet.sparse import digest
    >>> digest(canonical_config([[0, 1], [0, 0]])) == digest(canonical_config([[0, 1.0], [0, 0]]))
    True
    """
    return canonical(C, "config", ScheduleError, n=n, integral=True, dtype=np.int64, index_dtype=np.int32)
