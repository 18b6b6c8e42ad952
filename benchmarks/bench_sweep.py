"""Sweep engine: points per second with 1 and 2 workers, the engine's overhead per point, and
what a screening point costs.

- the default example sweep (``studies/lite-design-space.toml``) run three ways: in this
  process, on a Dask LocalCluster with 1 worker and with 2 workers; the baseline is a plain
  loop calling :func:`ocsnet.sweep.point.evaluate_point` on the same points (no engine, no
  store); ``overhead`` is the engine's extra time per point over that loop;
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
from ocsnet.sweep.engine import run_sweep, warm_up
from ocsnet.sweep.spec import load_sweep


def _direct(points, fidelity) -> float:
    warm_up()                       # the same imports a worker makes at start-up, outside the clock
    point_mod._fabric.cache_clear()
    t0 = time.perf_counter()
    for p in points:
        point_mod.evaluate_point(p.values, fidelity)
    return time.perf_counter() - t0


def _engine(spec, n, workers, in_process) -> tuple[float, float, int]:
    out = tempfile.mkdtemp(prefix="ocsnet-bench-sweep-")
    point_mod._fabric.cache_clear()
    try:
        r = run_sweep(spec, out, workers=workers, progress=False, max_points=n, in_process=in_process)
        return r.elapsed_s, r.startup_s, r.ran
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(quick: bool = False) -> None:
    spec = load_sweep("lite-design-space")
    points, _ = spec.points()
    n = 6 if quick else len(points)
    base = _direct(points[:n], spec.fidelity)
    rows = [["plain loop (baseline)", 1, n, 0.0, base, n / base, n / base, 1.0, "-"]]
    one = None
    for label, workers, in_process in (("engine, in-process", 1, True), ("dask LocalCluster", 1, False),
                                       ("dask LocalCluster", 2, False)):
        t, startup, ran = _engine(spec, n, workers, in_process)
        work = t - startup
        if not in_process and workers == 1:
            one = work
        speed = "-" if one is None or workers == 1 else f"{one / work:.2f}x"
        rows.append([label, workers, ran, startup, work, ran / work, ran / work / workers, work / base, speed])
    print_table(f"default example sweep ({n} points, {spec.fidelity} fidelity; {cores()} cores; "
                "time_s excludes the cluster's start-up)",
                ["engine", "workers", "points", "startup_s", "time_s", "points_per_s", "per_worker", "vs_loop",
                 "speedup_vs_1"], rows)
    over = [(r[0], r[1], (r[4] - base) / n * 1e3, 100 * (r[4] - base) / base) for r in rows[1:3]]
    print_table("engine overhead per point over the plain loop (one worker)",
                ["engine", "workers", "overhead_ms_per_point", "overhead_pct"], [list(o) for o in over])

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
