"""Silicon model: the exact dies-per-wafer count and the Monte Carlo of cost per million tokens.

1. Dies per wafer, exact: whole dies inside the usable circle for every grid
   offset searched (34 x 34 offsets), vectorized over offsets and columns,
   against a plain Python count of every die's four corners at the same
   offsets (the baseline, run on a subset of offsets and scaled).
2. Monte Carlo of the study's sensitivity analysis: every ranged parameter
   drawn at once, cost per million tokens of a Lite system against the H100,
   vectorized over samples, against a loop over samples (one scalar
   evaluation each; run on a subset and scaled).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks._util import measure, mib, print_table
from ocsnet import silicon
from ocsnet.evaluation.sensitivity import CostInputs, monte_carlo, usd_per_mtok
from ocsnet.silicon import wafer
from ocsnet.silicon.params import Params
from ocsnet.validation.silicon import corner_count


def _exact(area):
    w, h = silicon.die_dimensions(area, 1.27)
    return silicon.dies_per_wafer(w, h)


def _dies_table(areas, base_offsets):
    rows = []
    for area in areas:
        w, h = silicon.die_dimensions(area, 1.27)
        m = measure(_exact, area)
        gx, gy = wafer.offset_grid(w + 0.1, w), wafer.offset_grid(h + 0.1, h)
        n_off = len(gx) * len(gy)
        sub = [(x, y) for x in gx[:base_offsets] for y in gy[:1]]
        t0 = time.perf_counter()
        for x, y in sub:
            corner_count(w, h, 0.1, 147.0, x, y)
        tb = (time.perf_counter() - t0) / len(sub) * n_off
        rows.append([area, m["result"], n_off, m["time_s"], mib(m["peak_delta_B"]), tb,
                     tb / m["time_s"] if m["time_s"] else None])
    print_table("dies per wafer, exact (best of the offset grid): vectorized vs Python corner count",
                ["die_mm2", "dies", "offsets", "time_s", "mem_MiB", "baseline_s (scaled)", "speedup"], rows)


def _inputs():
    h100 = CostInputs("H100", 1000.0, 1, 1.0, 0.05, 800.0, 814.0, 80.0, 814.0, 80.0, True)
    lite = CostInputs("Lite 1/4", 1195.0, 4, 0.25, 0.08, 4 * 190.0, 203.5, 20.0, 814.0, 80.0, False)
    return h100, lite


def _mc(samples):
    h100, lite = _inputs()
    return monte_carlo([lite], h100, samples=samples, seed=0)[0]["p_beats_baseline"]


def _mc_loop(samples):
    h100, lite = _inputs()
    p = silicon.params()
    rng = np.random.default_rng(0)
    keys = sorted(p.ranges)
    draws = {k: rng.triangular(p.ranges[k][0], p[k], p.ranges[k][1], size=samples) for k in keys}
    wins = 0
    for i in range(samples):
        vals = dict(p.values)
        vals.update({k: float(draws[k][i]) for k in keys})
        q = Params(vals, p.sources, p.ranges, p.range_sources)
        wins += float(usd_per_mtok(lite, q)) < float(usd_per_mtok(h100, q))
    return wins / samples


def _mc_table(sizes, base_max):
    rows = []
    for n in sizes:
        m = measure(_mc, n)
        nb = min(n, base_max)
        t0 = time.perf_counter()
        pb = _mc_loop(nb)
        tb = (time.perf_counter() - t0) / nb * n
        rows.append([n, m["result"], pb if nb == n else None, m["time_s"], mib(m["peak_delta_B"]), tb,
                     tb / m["time_s"] if m["time_s"] else None])
    print_table("Monte Carlo of cost per million tokens: vectorized vs a loop over samples",
                ["samples", "P(beats)", "P(loop)", "time_s", "mem_MiB", "baseline_s (scaled)", "speedup"], rows)


def main(quick: bool = False) -> None:
    _dies_table([800.0] if quick else [800.0, 200.0, 50.0, 12.5], 2 if quick else 6)
    _mc_table([1000] if quick else [1000, 10_000, 100_000], 200 if quick else 1000)


if __name__ == "__main__":
    main()
