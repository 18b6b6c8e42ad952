"""Schedule: the circuits the OCS holds in each phase, with timing, bound and JSON form.

Stage 4 of the pipeline (``ocsnet.schedule``).  A :class:`Schedule` is what
every solver returns.  Its configurations are stored once each; phases refer
to them by index.  Timing follows the reference semantics of
:mod:`ocsnet.schedule.problem` and is computed by :func:`.validate.retime`,
the single implementation of those rules, so a schedule built with
:meth:`Schedule.from_configs` always carries the re-timed makespan.

JSON form (``Schedule.to_json``): sorted keys, floats written by Python's
shortest round-trip ``repr``, infinities as ``null``; the solve time is left
out unless asked for, so the same schedule always gives the same bytes and
``Schedule.from_json(s).to_json() == s``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import ScheduleError
from ..jsonable import jsonable
from ..sparse import canonical, digest

__all__ = ["Slot", "PhaseSchedule", "Schedule", "FORMAT", "FORMAT_VERSION", "canonical_config"]

FORMAT = "ocsnet-schedule"
FORMAT_VERSION = 1
STATUSES = ("optimal", "feasible", "time-limit", "infeasible")


@dataclass
class Slot:
    """One configuration held for a while.

    ``duration_s`` includes ``exposed_s``, the part of a reconfiguration at
    the slot's start that is not hidden under the gap.  ``reconfig`` says
    whether the slot's configuration differs from the one before it.
    """

    config: int
    duration_s: float
    reconfig: bool = False
    exposed_s: float = 0.0


@dataclass
class PhaseSchedule:
    """The slots of one phase.

    ``start_s`` is the phase's ready time (previous phase's end plus its gap),
    when the first slot begins; ``end_s`` is when its traffic (circuit and
    packet) is done.
    """

    slots: list[Slot]
    start_s: float = 0.0
    end_s: float = 0.0
    reconfig_at_start: bool = False

    @property
    def duration_s(self) -> float:
        """``end_s - start_s``."""
        return self.end_s - self.start_s


def phases_from_timing(seq: Sequence[Sequence[int]], timing) -> list[PhaseSchedule]:
    """The phases of a schedule from per-phase slot configuration indices and their re-timing.

    ``timing`` is what :func:`.validate.retime` returns for ``seq``.
    """
    t = timing
    phases = []
    for p, row in enumerate(seq):
        slots = [Slot(config=c, duration_s=float(t.duration_s[p][k]), reconfig=bool(t.reconfig[p][k]),
                      exposed_s=float(t.exposed_s[p][k])) for k, c in enumerate(row)]
        phases.append(PhaseSchedule(slots=slots, start_s=float(t.start_s[p]), end_s=float(t.end_s[p]),
                                    reconfig_at_start=bool(t.reconfig[p][0])))
    return phases


def canonical_config(C, n: int | None = None) -> sp.csr_matrix:
    """A circuit matrix in the canonical form (:func:`ocsnet.sparse.canonical`) as int64 CSR.

    Raises ``ScheduleError`` for a wrong shape or non-integer entries; the
    range checks (ports, diagonal, allowed pairs) are :func:`.validate.validate`'s.
    """
    return canonical(C, "config", ScheduleError, n=n, integral=True, dtype=np.int64, index_dtype=np.int32)


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _unnum(x) -> float:
    return math.inf if x is None else float(x)


class Schedule:
    """The circuits an OCS holds over a trace and when it changes them.

    Parameters
    ----------
    configs : list of (N, N) integer matrices
        Distinct circuit configurations; stored as canonical int64 CSR.
    phases : list of PhaseSchedule
        One per phase; slots refer to ``configs`` by index.
    makespan_s : float
        End of the last phase's traffic.
    lower_bound_s : float
        A proven lower bound on the optimal makespan of the problem.
    status : str
        ``"optimal"`` (proven), ``"feasible"``, ``"time-limit"`` (a solver
        stopped before proving) or ``"infeasible"``.
    method : str
        The solver that made it.
    solve_time_s : float
        Wall time of the solve (not written to JSON unless asked).
    timings : dict, optional
        Wall times of the solver's steps, seconds, keys ending in
        ``_time_s``; like ``solve_time_s`` they differ between runs, so they
        are kept out of ``meta`` and written to JSON only when asked.
    reconfig_delay_s : float
        The problem's ``delta`` (for hidden reconfiguration time).
    meta : dict
        JSON-serializable facts (solver statistics, problem name).
    """

    def __init__(self, configs: Sequence, phases: Sequence[PhaseSchedule], *, makespan_s: float,
                 lower_bound_s: float = 0.0, status: str = "feasible", method: str = "",
                 solve_time_s: float = 0.0, reconfig_delay_s: float = 0.0, meta: dict | None = None,
                 timings: dict | None = None):
        self.configs: list[sp.csr_matrix] = [canonical_config(C) for C in configs]
        self.phases: list[PhaseSchedule] = list(phases)
        if status not in STATUSES:
            raise ScheduleError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        self.makespan_s = float(makespan_s)
        self.lower_bound_s = float(lower_bound_s)
        self.status = status
        self.method = str(method)
        self.solve_time_s = float(solve_time_s)
        self.reconfig_delay_s = float(reconfig_delay_s)
        self.meta: dict = dict(meta or {})
        self.timings: dict = {str(k): float(v) for k, v in (timings or {}).items()}

    # ---- derived numbers ----------------------------------------------------------
    @property
    def n_gpus(self) -> int:
        """N (0 for a schedule without configurations)."""
        return self.configs[0].shape[0] if self.configs else 0

    @property
    def gap(self) -> float:
        """Relative optimality gap ``(makespan - lower bound) / makespan`` (0 for a zero makespan)."""
        if not math.isfinite(self.makespan_s):
            return math.inf
        if self.makespan_s <= 0:
            return 0.0
        return (self.makespan_s - self.lower_bound_s) / self.makespan_s

    def _slots(self):
        return (s for ph in self.phases for s in ph.slots)

    @property
    def n_reconfigurations(self) -> int:
        """Number of configuration changes (the initial installation is free and not counted)."""
        return sum(1 for s in self._slots() if s.reconfig)

    @property
    def exposed_reconfig_s(self) -> float:
        """Reconfiguration time not hidden under gaps (it adds to the makespan)."""
        return float(sum(s.exposed_s for s in self._slots() if s.reconfig))

    @property
    def hidden_reconfig_s(self) -> float:
        """Reconfiguration time hidden under compute gaps."""
        return float(sum(self.reconfig_delay_s - s.exposed_s for s in self._slots() if s.reconfig))

    def config_sequence(self) -> list[list[int]]:
        """Config index of every slot, per phase."""
        return [[s.config for s in ph.slots] for ph in self.phases]

    def phase_configs(self, p: int) -> list[sp.csr_matrix]:
        """The configuration matrices of phase ``p``'s slots."""
        return [self.configs[s.config] for s in self.phases[p].slots]

    def summary(self) -> dict:
        """Headline numbers with units in the names."""
        return {"method": self.method, "status": self.status, "makespan_s": self.makespan_s,
                "lower_bound_s": self.lower_bound_s, "gap": self.gap,
                "n_reconfigurations": self.n_reconfigurations, "exposed_reconfig_s": self.exposed_reconfig_s,
                "hidden_reconfig_s": self.hidden_reconfig_s, "n_configs": len(self.configs),
                "solve_time_s": self.solve_time_s}

    def __repr__(self) -> str:
        return (f"Schedule(method={self.method!r}, status={self.status!r}, makespan_s={self.makespan_s:.6g}, "
                f"gap={self.gap:.3g}, phases={len(self.phases)}, configs={len(self.configs)}, "
                f"reconfigurations={self.n_reconfigurations})")

    # ---- construction from configurations -----------------------------------------
    @classmethod
    def from_configs(cls, problem, per_phase_configs: Sequence, *, durations: Sequence | None = None,
                     method: str = "", status: str = "feasible", lower_bound_s: float | None = None,
                     solve_time_s: float = 0.0, meta: dict | None = None) -> "Schedule":
        """A schedule from the configurations of each phase, timed by the reference semantics.

        Parameters
        ----------
        problem : OCSProblem
        per_phase_configs : list (one per phase) of lists of (N, N) integer matrices
            The configuration of each slot (a bare matrix means one slot).
        durations : list (one per phase) of lists of float, optional
            Slot durations in seconds (exposed reconfiguration included).  The
            last slot's duration is always recomputed (it lasts until the
            phase's demand is served) and may be ``None``.  Phases without
            durations, or all phases when ``durations`` is None, get the
            durations that minimize the phase's time for its configurations:
            a one-slot phase the closed form, a several-slot phase a linear
            program over the hold times (``scipy.optimize.linprog``, HiGHS).
        method, status, solve_time_s, meta
            Stored on the schedule.
        lower_bound_s : float, optional
            Default: :func:`ocsnet.schedule.bounds.lower_bound_s` of the problem.

        Returns
        -------
        Schedule
            With ``makespan_s`` re-timed.  Invalid configurations are not
            refused here; :func:`.validate.validate` reports them.

        Raises
        ------
        ScheduleError
            Wrong number of phases, an empty phase, or a malformed matrix.

        Examples
        --------
        >>> import numpy as np
        >>> from ocsnet.schedule.problem import OCSProblem
        >>> D = np.array([[0, 4e9], [2e9, 0]])
        >>> prob = OCSProblem([D], [0.0], ports=2, circuit_Bps=1e9, reconfig_delay_s=0.0)
        >>> Schedule.from_configs(prob, [[np.array([[0, 2], [1, 0]])]]).makespan_s
        2.0
        """
        from .validate import retime, slot_durations_lp

        per_phase = [[C] if (sp.issparse(C) or np.ndim(C) == 2) else list(C) for C in per_phase_configs]
        if len(per_phase) != problem.P:
            raise ScheduleError(f"per_phase_configs: has {len(per_phase)} phases, the problem has {problem.P}")
        configs: list[sp.csr_matrix] = []
        index: dict[bytes, int] = {}
        seq: list[list[int]] = []
        for p, slots in enumerate(per_phase):
            if not slots:
                raise ScheduleError(f"per_phase_configs[{p}]: a phase needs at least one slot")
            row = []
            for C in slots:
                M = canonical_config(C, problem.N)
                k = digest(M)
                if k not in index:
                    index[k] = len(configs)
                    configs.append(M)
                row.append(index[k])
            seq.append(row)
        if durations is not None and len(durations) != problem.P:
            raise ScheduleError(f"durations: has {len(durations)} phases, the problem has {problem.P}")
        dur: list[list[float | None]] = []
        need_lp = []
        for p, row in enumerate(seq):
            given = None if durations is None else durations[p]
            if given is None:
                dur.append([None] * len(row))
                if len(row) > 1:
                    need_lp.append(p)
            else:
                given = list(given)
                if len(given) != len(row):
                    raise ScheduleError(f"durations[{p}]: has {len(given)} slots, the phase has {len(row)}")
                dur.append([None if d is None else float(d) for d in given])
        if need_lp:
            lp = slot_durations_lp(problem, configs, seq, need_lp)
            for p, d in lp.items():
                dur[p] = d
        t = retime(problem, configs, seq, dur)
        phases = phases_from_timing(seq, t)
        if lower_bound_s is None:
            from .bounds import lower_bound_s as _lb
            lower_bound_s = _lb(problem)
        return cls(configs, phases, makespan_s=t.makespan_s, lower_bound_s=lower_bound_s, status=status,
                   method=method, solve_time_s=solve_time_s, reconfig_delay_s=problem.reconfig_delay_s,
                   meta=meta)

    # ---- JSON -----------------------------------------------------------------------
    def to_dict(self, *, timing: bool = False) -> dict:
        """The JSON-ready form (see :meth:`to_json`)."""
        cfgs = []
        for C in self.configs:
            coo = C.tocoo()
            order = np.lexsort((coo.col, coo.row))
            cfgs.append({"src": coo.row[order].astype(int).tolist(), "dst": coo.col[order].astype(int).tolist(),
                         "circuits": coo.data[order].astype(int).tolist()})
        d = {
            "format": FORMAT, "version": FORMAT_VERSION, "n_gpus": self.n_gpus,
            "method": self.method, "status": self.status,
            "makespan_s": _num(self.makespan_s), "lower_bound_s": _num(self.lower_bound_s),
            "reconfig_delay_s": _num(self.reconfig_delay_s),
            "configs": cfgs,
            "phases": [{"start_s": _num(ph.start_s), "end_s": _num(ph.end_s),
                        "reconfig_at_start": bool(ph.reconfig_at_start),
                        "slots": [{"config": int(s.config), "duration_s": _num(s.duration_s),
                                   "reconfig": bool(s.reconfig), "exposed_s": _num(s.exposed_s)}
                                  for s in ph.slots]}
                       for ph in self.phases],
            "meta": jsonable(self.meta, nonfinite="null"),
        }
        if timing:
            d["solve_time_s"] = _num(self.solve_time_s)
            d["timings"] = jsonable(self.timings, nonfinite="null")
        return d

    def to_json(self, *, timing: bool = False) -> str:
        """Deterministic JSON text (sorted keys, shortest round-trip floats).

        ``timing=True`` adds ``solve_time_s`` and the per-step ``timings``,
        which differ between runs; without it the same inputs and seed give
        the same bytes.
        """
        return json.dumps(self.to_dict(timing=timing), sort_keys=True, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "Schedule":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ScheduleError(f"schedule: not an {FORMAT} document")
        if d.get("version") != FORMAT_VERSION:
            raise ScheduleError(f"version: {d.get('version')!r} is not supported, expected {FORMAT_VERSION}")
        try:
            n = int(d["n_gpus"])
            configs = [sp.csr_matrix((np.asarray(c["circuits"], dtype=np.int64),
                                      (np.asarray(c["src"], dtype=np.int64), np.asarray(c["dst"], dtype=np.int64))),
                                     shape=(n, n)) for c in d["configs"]]
            phases = [PhaseSchedule(slots=[Slot(config=int(s["config"]), duration_s=_unnum(s["duration_s"]),
                                                reconfig=bool(s["reconfig"]), exposed_s=_unnum(s["exposed_s"]))
                                           for s in ph["slots"]],
                                    start_s=_unnum(ph["start_s"]), end_s=_unnum(ph["end_s"]),
                                    reconfig_at_start=bool(ph["reconfig_at_start"]))
                      for ph in d["phases"]]
            return cls(configs, phases, makespan_s=_unnum(d["makespan_s"]),
                       lower_bound_s=_unnum(d["lower_bound_s"]), status=d["status"], method=d["method"],
                       solve_time_s=float(d.get("solve_time_s") or 0.0),
                       reconfig_delay_s=_unnum(d["reconfig_delay_s"]), meta=d.get("meta") or {},
                       timings=d.get("timings") or {})
        except (KeyError, TypeError, ValueError) as e:
            raise ScheduleError(f"schedule: malformed document ({type(e).__name__}: {e})") from None

    @classmethod
    def from_json(cls, text: str) -> "Schedule":
        """Inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScheduleError(f"schedule: not valid JSON ({e})") from None
        return cls.from_dict(d)

    def save(self, path, *, timing: bool = False) -> Path:
        """Write :meth:`to_json` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.to_json(timing=timing), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> "Schedule":
        """Read a schedule written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
