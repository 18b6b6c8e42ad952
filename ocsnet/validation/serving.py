"""Validation of the serving simulator against queueing theory and against its plain loop.

Stage: validation (see docs/design.md).  With batching off (one request per
replica at a time) and Poisson arrivals, a replica is an M/G/1 queue whose
service time is the request's prefill plus its decode iterations; its mean
waiting time is the Pollaczek-Khinchine formula ``W = lambda E[S^2] / (2 (1 -
rho))`` (M/D/1 when every request has the same lengths).  The simulated mean
(batch means over independent replications, the first requests of each run
left out as warm-up) must match it within three standard errors: the check's
tolerance is that confidence interval.  The event-jumping simulator must also
give the plain per-iteration loop's times on a random continuous-batching run.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from .check import Check

__all__ = ["queueing_checks"]

PK = "Pollaczek-Khinchine mean waiting time of the M/G/1 queue (Kleinrock, Queueing Systems vol. 1, 1975, eq. 5.65)"


def _replica():
    from .. import serving as sv
    from .. import topology
    from ..workload import ParallelPlan

    f = topology.fat_tree(4, gpu="h100-sxm")
    return sv.tabulate("llama3-70b", ParallelPlan(tp=4), f, gpu="h100-sxm", max_tokens=1024,
                       fidelities=("alpha-beta",), fidelity="alpha-beta")


def _service_s(m, prompt: int, output: int) -> float:
    return m.prefill_s(prompt) + sum(m.time_s(1, (), prompt + g) for g in range(1, output))


def _mg1(m, rho: float, prompt: int, outputs: list[int], runs: int, n: int, seed: int):
    from .. import serving as sv

    s = np.array([_service_s(m, prompt, o) for o in outputs])
    es, es2 = float(s.mean()), float((s * s).mean())          # outputs drawn uniformly from the list
    lam = rho / es
    means = []
    for r in range(runs):
        rng = np.random.default_rng(seed + r)
        req = sv.generate(n, lam, prompt=prompt, output=1, seed=seed + r)
        req = sv.Requests(req.arrival_s, req.prompt, rng.choice(outputs, n))
        res = sv.simulate(sv.Deployment(m, max_batch=1), req)
        w = res.wait_s[n // 10:]
        means += [b.mean() for b in np.array_split(w, 5)]
    mean = float(np.mean(means))
    se = float(np.std(means, ddof=1) / math.sqrt(len(means)))
    ref = lam * es2 / (2 * (1 - rho))
    return mean, ref, se


def queueing_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    from .. import serving as sv
    from ..serving.reference import run_replica_plain

    m = _replica()
    runs, n = (4, 4000) if quick else (8, 8000)
    cases = [("M/D/1", 0.7, [64])] if quick else [("M/D/1", 0.5, [64]), ("M/D/1", 0.85, [64]),
                                                   ("M/G/1", 0.7, [8, 32, 128])]
    for kind, rho, outs in cases:
        mean, ref, se = _mg1(m, rho, 512, outs, runs, n, seed)
        tol = 3 * se / ref
        yield Check(name=f"{kind} waiting time, rho={rho:g}", group="queueing",
                    what=f"mean wait before admission of Llama3-70B requests (prompt 512, output "
                         f"{'/'.join(map(str, outs))} tokens) on one tp=4 H100 replica without batching, Poisson "
                         f"arrivals at utilization {rho:g}, against the closed form",
                    quantity="wait_ms", ocsnet=mean, reference=ref, source=PK, tolerance=tol,
                    note=f"{runs} runs of {n} requests, 5 batch means each; tolerance = 3 standard errors")
    r = sv.generate(300 if quick else 1500, 6.0, prompt={"mean": 800, "std": 600, "min": 1, "max": 4000},
                    output={"mean": 100, "std": 100, "min": 1, "max": 800}, seed=seed)
    kw = dict(capacity_tokens=m.capacity_tokens // 4, max_batch=64, max_tokens=4096, chunk=256)
    a = sv.engine.run_replica(r.arrival_s, r.prompt, r.output, m, **kw)[2]
    b = run_replica_plain(r.arrival_s, r.prompt, r.output, m, **kw)[2]
    worst = int(np.argmax(np.abs(a - b)))
    yield Check(name="event jumps against the plain loop", group="queueing",
                what=f"finish time of every request of a {len(r)}-request continuous-batching run (chunked "
                     "prefill, KV limit) by the event-jumping simulator against the loop that steps every iteration",
                quantity="finish_s", ocsnet=float(a[worst]), reference=float(b[worst]),
                source="ocsnet.serving.reference (independent implementation)", tolerance=1e-9,
                note="the request with the largest difference")
