"""OCS circuit scheduling: which circuits the OCS holds in each phase, and when it changes them.

Stage 4 of the pipeline: a :class:`OCSProblem` (a trace's demand per phase on
an OCS fabric) goes in, a :class:`Schedule` comes out, and :func:`validate`
re-times it from the reference semantics alone.  :func:`solve` picks a
method by name:

``exact``
    CP-SAT model, provably optimal on small instances (:mod:`.exact`).
``heuristic``
    Candidate configurations plus an exact dynamic program over them; scales
    to thousands of GPUs and phases (:mod:`.heuristic`).
``static``, ``per-phase``, ``bvn``, ``solstice``
    Baselines (:mod:`.baselines`).
``auto``
    ``exact`` for tiny instances (keeping the heuristic's answer if exact
    stops at its time limit with a worse one), ``heuristic`` otherwise.

Examples
--------
>>> import numpy as np
>>> from ocsnet.schedule import OCSProblem, solve, validate
>>> ring = np.roll(np.eye(8), 1, axis=1) * 1e9          # i -> i+1, 1 GB
>>> prob = OCSProblem([ring, ring.T], [1e-3, 1e-3], ports=2, circuit_Bps=1e9, reconfig_delay_s=1e-2)
>>> s = solve(prob, method="heuristic")      # 0.5 s per ring on 2 circuits; switching costs 9 ms
>>> validate(prob, s).ok, s.n_reconfigurations, round(s.makespan_s, 3)
(True, 1, 1.011)
"""

from ..lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "OCSProblem": "problem", "Schedule": "io", "PhaseSchedule": "io", "Slot": "io",
    "validate": "validate", "ValidationResult": "validate",
    "solve": "solver", "METHODS": "solver", "TINY": "solver",
})
