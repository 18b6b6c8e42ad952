"""Candidate configurations of the OCS heuristic, per distinct demand and window of phases.

Stage 4 of the pipeline (``ocsnet.schedule``), the heuristic's first step.
Equal phases share one demand matrix (a Llama decode step of 7,560 phases
holds a handful of distinct ones), so candidates are built per distinct
demand (:func:`unique_demands`), on a representative stretch of phases
(prefix, two periods, suffix):

* its best one-slot configuration (:func:`~ocsnet.schedule.matching.best_config`);
* one configuration for the merged demand of windows of consecutive phases
  (lengths 2, 4, ..., 256, and the maximal windows one configuration can
  serve at all), in two weightings, so one configuration can be held
  across a collective, a layer or a pipeline stage;
* for a demand no single configuration serves at its bound (all-to-all):
  several-slot decompositions (:func:`~ocsnet.schedule.decompose.decompose`:
  fewest slots, Birkhoff-von Neumann), slots shared by a maximal window of
  such phases, phases that start or end with a held window configuration,
  and chains that hand a phase's last slot on to the next phase; each in
  every rotation of its slot order (built in :mod:`.options`).

:func:`build_candidates` returns them as :class:`Candidates`, with the phase
times (:class:`~ocsnet.schedule.dp.PhaseTimes`) the dynamic program needs.

References
----------
DESIGN.md, "The OCS scheduling problem" (reference semantics, lower bound).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..sparse import canonical, digest
from . import matching
from .decompose import decompose
from .dp import PhaseTimes
from .options import (_MAX_TERMS, Option, _carry_chain, _chain_options, _maximal_windows, _options_for,
                      _Slots)

__all__ = ["Candidates", "ConfigSet", "Option", "build_candidates", "unique_demands"]


# A one-slot configuration within this factor of the phase's lower bound is
# considered good enough that no multi-slot decomposition is tried for it.
_DECOMPOSE_ABOVE = 1.0 + 1e-9
# Window sizes (phases) whose merged demand gets its own candidate configuration.
_WINDOWS = (2, 4, 8, 16, 32, 64, 128, 256)
# Most window starts (changes of demand) searched for maximal windows.
_MAX_STARTS = 64
# Held configurations (most pairs in common first) a several-slot phase may start or end with.
_MAX_HELD = 8


def unique_demands(demand: list) -> tuple[list[sp.csr_matrix], np.ndarray]:
    """Distinct demand matrices (by value) in first-use order, and each phase's index into them.

    Phases that share one matrix object are hashed once.
    """
    by_id: dict[int, int] = {}
    by_hash: dict[bytes, int] = {}
    mats: list[sp.csr_matrix] = []
    uid = np.empty(len(demand), dtype=np.int64)
    for p, m in enumerate(demand):
        u = by_id.get(id(m))
        if u is None:
            # OCSProblem stores canonical float CSR; hash those without a copy.
            ok = sp.isspmatrix_csr(m) and m.dtype == np.float64 and m.has_canonical_format
            c = m if ok else canonical(m)
            key = digest(c)
            u = by_hash.get(key)
            if u is None:
                u = len(mats)
                by_hash[key] = u
                mats.append(c)
            by_id[id(m)] = u
        uid[p] = u
    return mats, uid


class ConfigSet:
    """Distinct configurations (integer CSR), each stored once and indexed."""

    def __init__(self, n: int):
        self.n = n
        self.configs: list[sp.csr_matrix] = []
        self._index: dict[bytes, int] = {}

    def add(self, C) -> int:
        C = canonical(C, n=self.n, dtype=np.int64)
        key = digest(C)
        k = self._index.get(key)
        if k is None:
            k = len(self.configs)
            self._index[key] = k
            self.configs.append(C)
        return k

    def __len__(self) -> int:
        return len(self.configs)


@dataclass
class Candidates:
    """Everything the dynamic program chooses from."""

    demands: list[sp.csr_matrix]
    uid: np.ndarray                           # (P,) distinct-demand index of every phase
    configs: ConfigSet
    times: PhaseTimes
    options: list[list[Option]]               # per distinct demand
    truncated: bool = False                   # the time limit cut candidate generation short
    stats: dict = field(default_factory=dict)


def _representative(P: int, period) -> np.ndarray:
    """Phase indices that show every window shape: prefix, two periods, suffix."""
    if not period:
        return np.arange(P)
    s, ln, r = period
    body = np.arange(s, s + ln * min(r, 2))
    return np.concatenate([np.arange(s), body, np.arange(s + ln * r, P)])


def build_candidates(problem, *, time_limit_s: float | None = None, max_slots_per_phase: int | None = None,
                     windows=_WINDOWS, max_windows: int = 96,
                     decompositions=("min-slots", "bvn"), t0: float | None = None) -> Candidates:
    """Candidate configurations and several-slot options for every distinct demand.

    Parameters
    ----------
    problem : OCSProblem
    time_limit_s : float, optional
        Stop adding optional candidates (windows, extra decompositions) when
        this much time has passed since ``t0``; the candidates every phase
        needs to be served at all are always built.
    max_slots_per_phase : int, optional
        Several-slot options with more slots are not offered.
    windows : sequence of int
        Window lengths (phases) whose merged demand gets a configuration.
    max_windows : int
        Cap on distinct merged windows.
    decompositions : sequence of str
        Methods of :func:`~ocsnet.schedule.decompose.decompose` tried for a
        demand no single configuration serves at its lower bound.

    Returns
    -------
    Candidates
    """
    t0 = time.perf_counter() if t0 is None else t0

    def late() -> bool:
        return time_limit_s is not None and time.perf_counter() - t0 > time_limit_s

    demands, uid = unique_demands(problem.demand)
    U, n, b = len(demands), problem.N, problem.circuit_Bps
    cs = ConfigSet(n)
    kw = dict(col_ports=problem.free_in, base=problem.reserved if problem.reserved.nnz else None,
              allowed=problem.allowed)
    ports = problem.free_out
    truncated = False
    best_t = np.full(U, np.inf)
    for u, D in enumerate(demands):
        C, t = matching.best_config(D, ports, b, **kw)
        if np.isfinite(t):
            cs.add(C)
            best_t[u] = t
        if problem.packet_Bps > 0 and D.nnz > 1:
            # With a packet network the small pairs may stay off circuits.
            for q in (0.5, 0.9):
                keep = D.data >= np.quantile(D.data, q)
                Dk = D.copy()
                Dk.data = np.where(keep, Dk.data, 0.0)
                Ck, tk = matching.best_config(Dk, ports, b, **kw)
                if np.isfinite(tk) and Ck.nnz:
                    cs.add(Ck)
    n_single = len(cs)
    # Windows of consecutive phases: one configuration for their merged demand.
    rep = _representative(problem.P, problem.period)
    seen: set[bytes] = set()
    sigs = []
    for w in windows:
        if w > len(rep):
            break
        for s in range(0, len(rep) - w + 1, max(1, w // 2)):
            cnt = np.bincount(uid[rep[s:s + w]], minlength=U)
            if (cnt > 0).sum() < 2:
                continue
            key = cnt.tobytes()
            if key not in seen:
                seen.add(key)
                sigs.append(cnt)
    whole = np.bincount(uid, minlength=U)
    if (whole > 0).sum() >= 2 and whole.tobytes() not in seen:
        sigs.insert(0, whole)                       # the static configuration first
    # Maximal windows that one configuration (or the slots of their first phase)
    # can serve: what a slow OCS wants, to change as rarely as possible.
    slots = _Slots(problem, demands)
    multi = []
    for cnt, k in _maximal_windows(uid, rep, slots, max_starts=_MAX_STARTS):
        key = cnt.tobytes()
        if k == 1 and key not in seen and (cnt > 0).sum() >= 2:
            seen.add(key)
            sigs.insert(1, cnt)
        elif k >= 2:
            multi.append(cnt)
    for i, cnt in enumerate(sigs):
        if i >= max_windows or late():
            truncated = truncated or late()
            break
        merged = sum(demands[u] * float(c) for u, c in enumerate(cnt) if c)
        C, t = matching.best_config(merged, ports, b, **kw)
        if np.isfinite(t):
            cs.add(C)
        # Second variant: slow every phase of the window down by the same factor
        # (elementwise max of each demand over its own best time), which suits
        # the sum of per-phase maxima better when phases differ in size.
        if np.isfinite(best_t[cnt > 0]).all() and (best_t[cnt > 0] > 0).all():
            norm = None
            for u in np.flatnonzero(cnt):
                M = demands[u] / best_t[u]
                norm = M if norm is None else norm.maximum(M)
            C2, t2 = matching.best_config(norm, ports, b, **kw)
            if np.isfinite(t2):
                cs.add(C2)
    n_window = len(cs) - n_single
    # Several-slot options for demands no single configuration serves at their bound.
    options: list[list[Option]] = [[] for _ in range(U)]
    delta = problem.reconfig_delay_s
    for u, D in enumerate(demands):
        if D.nnz == 0:
            continue
        if best_t[u] <= problem.peak_time_s(D) * _DECOMPOSE_ABOVE:
            continue
        for mi, method in enumerate(decompositions):
            if mi > 0 and np.isfinite(best_t[u]) and late():
                truncated = True
                break
            cfgs, hold = decompose(D, ports, b, method=method, max_terms=_MAX_TERMS, **kw)
            if len(cfgs) < 2 or (max_slots_per_phase is not None and len(cfgs) > max_slots_per_phase):
                for C in cfgs:
                    cs.add(C)
                continue
            ids = [cs.add(C) for C in cfgs]
            options[u] += _options_for(problem, D, ids, cfgs, method)
    # Several-slot phases that start or end with a configuration a neighbouring
    # window holds: serve what it covers there, split the rest into the fewest
    # slots (the rotations put the held configuration first or last).
    multi_u = [u for u in range(U) if slots.need([u]) >= 2]
    if multi_u and n_window and not late():
        held = list(range(n_single, n_single + n_window)) + list(range(n_single))
        for u in multi_u:
            D = demands[u]
            dk = matching.pair_keys(D)
            cov = [(int((matching.values_at(cs.configs[k], dk) > 0).sum()), k) for k in held]
            for c, k in sorted(cov, reverse=True)[:_MAX_HELD]:
                if c == 0 or late():
                    break
                W = cs.configs[k]
                rest = D.copy()
                rest.data = np.where(matching.values_at(W, dk) > 0, 0.0, rest.data)
                rest.eliminate_zeros()
                cfgs, _ = decompose(rest, ports, b, method="min-slots", max_terms=_MAX_TERMS, **kw)
                if max_slots_per_phase is not None and len(cfgs) + 1 > max_slots_per_phase:
                    continue
                options[u] += _options_for(problem, D, [k] + [cs.add(C) for C in cfgs], [W] + cfgs, "held")
    # Chains handing the last slot of a several-slot phase on to the next phase.
    if any(slots.need([u]) >= 2 for u in range(U)) and not late():
        chains = [_chain_options(problem, demands, uid, rep, slots, cs, kw, max_phases=4 * _MAX_STARTS)]
        if max_slots_per_phase is None or max_slots_per_phase >= 2:
            chains.append(_carry_chain(problem, demands, uid, rep, slots, cs, max_phases=4 * _MAX_STARTS))
        for ch in chains:
            for u, ops in ch.items():
                if max_slots_per_phase is not None:
                    ops = [o for o in ops if len(o.configs) <= max_slots_per_phase]
                options[u] += ops
    # Window decompositions: the fewest slots for the merged demand of a maximal
    # window, shared by all its phases (each uses the slots that cover its pairs),
    # so consecutive several-slot phases can hand their last configuration on.
    done: set[bytes] = set()
    for cnt in multi[:_MAX_STARTS]:
        if late():
            truncated = True
            break
        if (cnt > 0).sum() < 2 or cnt.tobytes() in done:
            continue
        done.add(cnt.tobytes())
        merged = sum(demands[u] * float(c) for u, c in enumerate(cnt) if c)
        cfgs, _ = decompose(merged, ports, b, method="min-slots", max_terms=_MAX_TERMS, **kw)
        if len(cfgs) < 2:
            continue
        ids = [cs.add(C) for C in cfgs]
        keys = [matching.pair_keys(C) for C in cfgs]
        for u in np.flatnonzero(cnt):
            q = slots.keys[u]
            use = [k for k in range(len(cfgs)) if np.isin(q, keys[k]).any()]
            if max_slots_per_phase is not None and len(use) > max_slots_per_phase:
                continue
            options[u] += _options_for(problem, demands[u], [ids[k] for k in use], [cfgs[k] for k in use],
                                       "window")
    times = PhaseTimes(problem, demands, cs.configs)
    stats = {"distinct_demands": U, "configs": len(cs), "single": n_single, "windows": n_window,
             "options": sum(len(o) for o in options)}
    return Candidates(demands, uid, cs, times, options, truncated, stats)
