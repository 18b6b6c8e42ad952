"""Start-up time: ``ocsnet --help`` and friends against ``python -c pass``, measured in the same run.

Every case runs as a fresh interpreter (``sys.executable``), several times;
the table gives the median and best wall time, the median's ratio to
``python -c pass``, and, from one more run that reports them, the peak
resident memory and the heavy libraries (networkx, scipy, OR-Tools,
matplotlib) the case loaded.  The last rows load
the whole evaluation on purpose, to show what a lazy ``import ocsnet`` saves.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from benchmarks._util import print_table

HEAVY = ("networkx", "scipy", "ortools", "matplotlib")
PROBE = ("import sys, runpy\nsys.argv = {argv!r}\ntry:\n    runpy.run_module('ocsnet', run_name='__main__')\n"
         "except SystemExit:\n    pass\n")

CASES = [
    ("python -c pass", ["-c", "pass"], None),
    ("python -c 'import ocsnet'", ["-c", "import ocsnet"], "import ocsnet"),
    ("ocsnet --help", ["-m", "ocsnet", "--help"], ["ocsnet", "--help"]),
    ("ocsnet schedule --help", ["-m", "ocsnet", "schedule", "--help"], ["ocsnet", "schedule", "--help"]),
    ("ocsnet topo list", ["-m", "ocsnet", "topo", "list"], ["ocsnet", "topo", "list"]),
    ("ocsnet schedule list", ["-m", "ocsnet", "schedule", "list"], ["ocsnet", "schedule", "list"]),
    ("import ocsnet.evaluation.study (eager)", ["-c", "import ocsnet.evaluation.study"],
     "import ocsnet.evaluation.study"),
]


def _run(args: list[str]) -> float:
    """Wall time (s) of one child interpreter."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def _probe(probe) -> tuple[str, float]:
    """The heavy top-level packages a case loads and its peak RSS (MiB), from one more run that reports them."""
    code = "pass" if probe is None else probe if isinstance(probe, str) else PROBE.format(argv=probe)
    code += ("\nimport sys as _s, resource as _r\nprint('PROBE', '|'.join(sorted({m.split('.')[0] for m in _s.modules}"
             " & set(%r))) or 'none', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("PROBE ")), "PROBE ? 0")
    _, heavy, rss_kib = line.split()
    return heavy, int(rss_kib) / 1024.0


def main(quick: bool = False) -> None:
    runs = 3 if quick else 11
    cases = CASES[:3] if quick else CASES
    rows, base = [], None
    for label, args, probe in cases:
        _run(args)                                  # warm the file cache
        times = [_run(args) for _ in range(runs)]
        med = statistics.median(times)
        base = med if base is None else base
        heavy, rss = _probe(probe)
        rows.append([label, runs, 1e3 * med, 1e3 * min(times), rss, med / base, heavy])
    print_table(f"start-up of a fresh interpreter ({runs} runs each; ratio = median / python -c pass)",
                ["case", "runs", "median_ms", "best_ms", "peak_rss_MiB", "ratio", "heavy_loaded"], rows)


if __name__ == "__main__":
    main()
