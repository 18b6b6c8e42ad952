"""Shared helpers for the benchmarks: time and peak memory of one case, and table printing.

Every benchmark module ``benchmarks/bench_*.py`` defines ``main(quick: bool = False)``
that prints one or more tables.  ``quick=True`` runs only the smallest sizes
(the test suite runs it as a smoke test so benchmarks never rot).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
import traceback
from typing import Any, Callable


def _child(conn, fn, args, kwargs):
    try:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        dt = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        conn.send(("ok", dt, peak * 1024, max(peak - base, 0) * 1024, out))
    except BaseException as e:  # report, never hang the parent
        conn.send(("err", repr(e), traceback.format_exc(), 0, None))
    finally:
        conn.close()


def measure(fn: Callable, *args, timeout_s: float = 600.0, **kwargs) -> dict[str, Any]:
    """Run ``fn(*args, **kwargs)`` in a fresh forked process.

    Returns ``{"time_s", "peak_rss_B", "peak_delta_B", "result"}``; ``peak_rss_B``
    is the child's peak resident memory (including the interpreter and what it
    inherited), ``peak_delta_B`` the growth during the call.  The result must be
    picklable (return small summaries, not whole fabrics).  On timeout or error
    ``time_s`` is ``None`` and ``error`` says why.
    """
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(child, fn, args, kwargs))
    p.start()
    child.close()
    if parent.poll(timeout_s):
        status, a, b, c, out = parent.recv()
    else:
        status, a, b, c, out = "err", f"timeout after {timeout_s:.0f} s", "", 0, None
        p.kill()
    p.join()
    if status == "ok":
        return {"time_s": a, "peak_rss_B": b, "peak_delta_B": c, "result": out}
    return {"time_s": None, "peak_rss_B": None, "peak_delta_B": None, "result": None, "error": a}


def timeit(fn: Callable, *args, repeat: int = 3, **kwargs) -> float:
    """Best wall time of ``repeat`` calls in this process, seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a plain aligned table with a title line."""
    from ocsnet.tables import format_table

    print(f"\n## {title}")
    print(format_table(header, rows, align="r"))


def mib(nbytes) -> float | None:
    return None if nbytes is None else nbytes / 2**20


def cores() -> int:
    return os.cpu_count() or 1
