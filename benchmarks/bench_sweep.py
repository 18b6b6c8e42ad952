"""Sweep engine: points per second with 1 and 2 workers, the engine's overhead per point, and
what a screening point costs.

- the default example sweep (``studies/lite-design-space.toml``) run three ways: in this
  process, and on a Dask LocalCluster with 1 worker and with 2 workers, the two alternating
  five times (the median of the pairs' ratios is the scaling); the baseline is a plain loop
  calling :func:`ocsnet.sweep.point.evaluate_point` on the same points in the engine's order, in
  a fresh process with the same imports as a worker (no engine, no store);
  ``overhead`` is the engine's extra time per point over that loop;
- the 10,000-point screening sweep (``studies/lite-screening.toml``): the first points of its
  Latin hypercube on 2 workers, and the time the whole sweep would take at that rate.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time

from benchmarks._util import cores, print_table
from ocsnet.sweep import point as point_mod
from ocsnet.sweep.engine import _chunks, run_sweep, warm_up
from ocsnet.sweep.spec import load_sweep


def _loop(values, fidelity) -> float:
    warm_up()                       # the same imports a worker makes at start-up, outside the clock
    t0 = time.perf_counter()
    for v in values:
        point_mod.evaluate_point(v, fidelity)
    return time.perf_counter() - t0


def _direct(points, fidelity, chunk_points) -> float:
    """The plain loop in a fresh process, as a worker starts: imports done, caches cold."""
    import multiprocessing as mp

    ordered = [p.values for c in _chunks(points, chunk_points) for p in c]   # the engine's order
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_loop, (ordered, fidelity))


def _engine(spec, n, workers, in_process) -> tuple[float, float, int]:
    out = tempfile.mkdtemp(prefix="ocsnet-bench-sweep-")
    point_mod._fabric.cache_clear()
    try:
        r = run_sweep(spec, out, workers=workers, progress=False, max_points=n, in_process=in_process)
        _engine.last = r
        return r.elapsed_s - r.shutdown_s, r.startup_s, r.ran
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main(quick: bool = False, repeats: int = 5) -> None:
    spec = load_sweep("lite-design-space")
    points, _ = spec.points()
    n = 6 if quick else len(points)
    repeats = 1 if quick else repeats
    t, startup, ran = _engine(spec, n, 1, True)
    rows = [["engine, in-process", 1, ran, startup, t - startup, ran / (t - startup), ran / (t - startup), "-", "-"]]
    # the plain loop, 1 and 2 LocalCluster workers in turn, `repeats` times: a shared machine's speed
    # drifts between runs, so each triple is measured close together and the median ratios reported
    over, speed, bases, idle = [], [], [], []
    for i in range(repeats):
        base = _direct(points[:n], spec.fidelity, spec.chunk_points)
        bases.append(base)
        rows.append([f"plain loop (baseline, run {i + 1})", 1, n, 0.0, base, n / base, n / base, 1.0, "-"])
        one = None
        for workers in (1, 2):
            t, startup, ran = _engine(spec, n, workers, False)
            work = t - startup
            if workers == 1:
                one = work
                over.append((work - base) / base)
                idle.append(1 / _engine.last.busy - 1)
            else:
                speed.append(one / work)
            rows.append([f"dask LocalCluster (run {i + 1})", workers, ran, startup, work, ran / work,
                         ran / work / workers, work / base, "-" if workers == 1 else f"{one / work:.2f}x"])
    print_table(f"default example sweep ({n} points, {spec.fidelity} fidelity; {cores()} cores; "
                "time_s excludes the cluster's start-up and shutdown; loop, 1 and 2 workers in turn)",
                ["engine", "workers", "points", "startup_s", "time_s", "points_per_s", "per_worker", "vs_loop",
                 "speedup_vs_1"], rows)
    print(f"\n2 workers against 1: median {_median(speed):.2f}x over {len(speed)} runs "
          f"(min {min(speed):.2f}x, max {max(speed):.2f}x; goal 1.7x)")
    print(f"engine overhead, 1 LocalCluster worker against the plain loop: median {100 * _median(over):.1f}% "
          f"(min {100 * min(over):.1f}%, max {100 * max(over):.1f}%; goal under 10%), "
          f"{1e3 * _median(over) * _median(bases) / n:.1f} ms per point")
    print(f"engine overhead within each 1-worker run (its time against the time its worker spent evaluating, "
          f"so the machine's drift cancels): median {100 * _median(idle):.1f}% "
          f"(min {100 * min(idle):.1f}%, max {100 * max(idle):.1f}%)")

    screen = load_sweep("lite-screening")
    sp, pruned = screen.points()
    m = 4 if quick else 200
    t, startup, ran = _engine(screen, m, 2, False)
    t -= startup
    per_point = t * 2 / ran
    rows = [[len(sp) + sum(pruned.values()), sum(pruned.values()), len(sp), ran, t, per_point,
             len(sp) * per_point / 2 / 60]]
    print_table("10,000-point screening sweep: a sample of its points on 2 workers, extrapolated",
                ["drawn", "pruned", "to_run", "sampled", "time_s", "core_s_per_point", "est_total_min_2_workers"],
                rows)
    print(f"\npeak RSS of the driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
