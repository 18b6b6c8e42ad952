"""Goodput: the highest request rate at which an SLO holds, by search over the rate.

Stage: serving (see docs/design.md).  As in Vidur and DistServe, the rate is
searched: the same requests (same lengths, same random arrival pattern) are
replayed with their inter-arrival times scaled to each rate (common random
numbers, so that the latency percentiles move smoothly with the rate), the
SLO is checked, and the rate is bracketed by doubling then bisected to a
relative tolerance.  :func:`knee` sweeps rates for the latency-against-rate
figure; :func:`size_replicas` finds the fewest replicas that hold an SLO at
a given rate.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..checks import check_range
from ..errors import SpecError
from .requests import Requests
from .simulate import Deployment, ServeResult, simulate
from .slo import SLO

__all__ = ["goodput", "knee", "size_replicas", "first_guess"]


def first_guess(deployment: Deployment, requests: Requests) -> float:
    """A rate near capacity, requests/s: every slot busy with batches of ``max_batch``.

    Used only to start the bracket.
    """
    m = deployment.model
    p = float(requests.prompt.mean())
    o = float(requests.output.mean())
    b = max(1, min(deployment.max_batch, int(deployment.slot_capacity_tokens // max(p + o, 1))))
    per_req = m.prefill_s(int(p)) + o * m.time_s(b, (), b * (p + o / 2)) / b
    return deployment.slots / max(per_req, 1e-9)


def goodput(deployment: Deployment, requests: Requests, slo: SLO, *, rtol: float = 0.02,
            max_steps: int = 40, run=simulate) -> dict:
    """Highest rate (requests/s) at which ``slo`` holds on ``deployment`` for these requests.

    ``run(deployment, requests) -> ServeResult`` may be replaced (the phase split
    passes its own).  Returns ``{"goodput_per_s", "steps", "result"}`` (the
    result at the goodput); if the SLO fails even at a thousandth of the capacity
    guess, the goodput is 0, ``result`` None and ``floor`` that nearly idle result.
    """
    check_range("rtol", rtol, 0, 1, lo_open=True)
    if len(requests) < 2:
        raise SpecError("requests: goodput needs at least two requests")
    ok = lambda rate: _check(run(deployment, requests.scaled(rate)), slo)   # noqa: E731
    guess = first_guess(deployment, requests) if isinstance(deployment, Deployment) else 1.0
    # at a thousandth of the capacity guess the system is nearly empty: if the SLO fails there,
    # no rate meets it (the latency of a lone request is over the limit)
    good, floor = ok(guess * 1e-3)
    if not good:
        return {"goodput_per_s": 0.0, "steps": 1, "result": None, "floor": floor}
    lo, hi = None, None
    r = guess
    steps = 1
    res_lo = None
    while steps < max_steps:
        steps += 1
        good, res = ok(r)
        if good:
            lo, res_lo = r, res
            if hi is not None:
                break
            r *= 2.0
        else:
            hi = r
            if lo is not None:
                break
            r /= 2.0
            if r < guess * 1e-6:
                return {"goodput_per_s": 0.0, "steps": steps, "result": None}
    while lo is not None and hi is not None and hi - lo > rtol * lo and steps < max_steps:
        steps += 1
        mid = math.sqrt(lo * hi)
        good, res = ok(mid)
        if good:
            lo, res_lo = mid, res
        else:
            hi = mid
    return {"goodput_per_s": float(lo or 0.0), "steps": steps, "result": res_lo}


def _check(res: ServeResult, slo: SLO) -> tuple[bool, ServeResult]:
    return bool(slo.met(res.ttft_s, res.tpot_s)), res


def knee(deployment, requests: Requests, rates, slo: SLO | None = None, run=simulate) -> list[dict]:
    """Latency percentiles at each rate (the knee of the latency-against-rate curve)."""
    rows = []
    for r in rates:
        res = run(deployment, requests.scaled(float(r)))
        rows.append({"rate_per_s": float(r), **res.summary(slo)})
    return rows


def size_replicas(deployment: Deployment, requests: Requests, slo: SLO, rate: float, *,
                  max_replicas: int = 4096, run=simulate) -> int | None:
    """Fewest replicas that hold ``slo`` at ``rate`` (None if ``max_replicas`` do not)."""
    reqs = requests.scaled(rate)
    return fewest_passing(lambda k: slo.met(*_lat(run(replace(deployment, replicas=k), reqs))), max_replicas)


def fewest_passing(ok, max_k: int) -> int | None:
    """The smallest k in [1, max_k] with ``ok(k)``, for an ``ok`` that stays true once true
    (doubling, then bisection); None if even ``max_k`` fails."""
    hi = 1
    while not ok(hi):
        if hi >= max_k:
            return None
        hi = min(2 * hi, max_k)
    lo = hi // 2          # fails (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _lat(res: ServeResult):
    return res.ttft_s, res.tpot_s
