"""Running a sweep: chunks of design points on Dask, results into the Parquet store.

Stage: sweep (see docs/design.md).

- ``workers=1`` and no scheduler: in this process, chunk after chunk (debugging, tiny sweeps);
- otherwise a :class:`dask.distributed.LocalCluster` with one single-threaded worker
  process per core (the work is CPU-bound Python), bound to 127.0.0.1;
- ``scheduler="tcp://HOST:PORT"`` (or ``DASK_SCHEDULER_ADDRESS``): an existing Dask cluster,
  the same code.

Chunks go out with ``client.map`` and come back through ``as_completed``; each
finished chunk is written by this process (workers need no shared disk).  Points
already stored are skipped, so a sweep killed halfway resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field

from ..errors import SweepError
from .point import run_chunk
from .spec import SweepSpec
from .store import Store

__all__ = ["run_sweep", "SweepRun", "connect_timeout_s", "chunk_sizes", "timed_chunk"]

#: How long to wait for an existing scheduler to answer.
connect_timeout_s = 10.0


@dataclass
class SweepRun:
    """What one call of :func:`run_sweep` did."""

    total: int                      # points after the constraints
    pruned: dict                    # constraint -> points it pruned
    skipped: int                    # already stored
    ran: int
    statuses: dict = field(default_factory=dict)     # of the points run now
    elapsed_s: float = 0.0
    workers: int = 1
    engine: str = "in-process"
    startup_s: float = 0.0          # starting or reaching the cluster, included in elapsed_s
    shutdown_s: float = 0.0         # closing the client and stopping a local cluster, included in elapsed_s
    compute_s: float = 0.0          # seconds the workers spent evaluating points (summed over workers)

    @property
    def busy(self) -> float:
        """Share of the workers' time between start-up and shutdown spent evaluating points."""
        span = (self.elapsed_s - self.startup_s - self.shutdown_s) * self.workers
        return self.compute_s / span if span > 0 else 0.0


def warm_up() -> None:
    """Import what a point evaluation needs (run on each worker at start-up)."""
    import importlib
    for m in ("ocsnet.sweep.point", "ocsnet.evaluation.per_layer", "ocsnet.evaluation.search", "ocsnet.flow",
              "ocsnet.topology.spec", "ocsnet.collectives"):
        importlib.import_module(m)


def timed_chunk(points: list[tuple[str, dict]], fidelity: str = "screen") -> tuple[list[dict], float]:
    """One task: :func:`~ocsnet.sweep.point.run_chunk` and the seconds it took on its worker."""
    t = time.perf_counter()
    rows = run_chunk(points, fidelity)
    return rows, time.perf_counter() - t


def chunk_sizes(n: int, size: int, workers: int = 1) -> list[int]:
    """How many points each of the chunks of ``n`` points gets: ``size``, then a tail that shrinks.

    With several workers, once at most ``2 * workers * size`` points are left each chunk takes
    ``1 / (2 * workers)`` of what is left (guided self-scheduling, Polychronopoulos and Kuck,
    IEEE Trans. Computers 1987), down to single points, so the workers finish together instead of
    one waiting for another's last full chunk.

    >>> chunk_sizes(10, 4), chunk_sizes(40, 4, workers=2)[-8:]
    ([4, 4, 2], [4, 3, 3, 2, 1, 1, 1, 1])
    """
    out: list[int] = []
    left, tail = n, 2 * workers * size
    while left > 0:
        s = size if workers <= 1 or left > tail else max(1, -(-left // (2 * workers)))
        s = min(s, size, left)
        out.append(s)
        left -= s
    return out


def _chunks(points, size: int, workers: int = 1):
    # points of one fabric together, so a worker builds each fabric once
    order = sorted(points, key=lambda p: (str(p.values.get("fabric")), str(p.values.get("gpu")),
                                          str(p.values.get("n_gpus")), p.key))
    out, i = [], 0
    for s in chunk_sizes(len(order), size, workers):
        out.append(order[i:i + s])
        i += s
    return out


def _tag(chunk) -> str:
    return hashlib.sha256("".join(p.key for p in chunk).encode()).hexdigest()[:12]


def _bar(total: int, enabled: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="pt", disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                desc="sweep")


def _client(scheduler: str | None, workers: int):
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{connect_timeout_s}s"), None
        except (OSError, TimeoutError) as e:
            raise SweepError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                             f"{connect_timeout_s:g} s ({type(e).__name__})") from None
        except ValueError as e:
            raise SweepError(f"--scheduler {scheduler}: not a scheduler address ({e})") from None
    import dask

    # One task per worker thread at a time, the rest queued on the scheduler: a chunk goes to
    # whichever worker frees up first, never into the queue of a busy one (no tail to steal back).
    # Workers' statistical profiler off: it samples the task thread's stack every 10 ms under the GIL.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)  # loopback, free port
    return Client(cluster), cluster


def run_sweep(spec: SweepSpec, outdir, *, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True, retry_failed: bool = False, max_points: int | None = None,
              in_process: bool | None = None) -> SweepRun:
    """Run every point of ``spec`` not yet stored in ``outdir``.

    Parameters
    ----------
    spec : SweepSpec
    outdir : path
        The results folder (created; a folder of another spec or schema is refused).
    workers : int, optional
        Local worker processes (default: one per core).  ``1`` without a scheduler runs in-process.
    scheduler : str, optional
        Address of an existing Dask scheduler (default ``DASK_SCHEDULER_ADDRESS`` if set).
    retry_failed : bool
        Run points stored as failed again.
    max_points : int, optional
        Stop after this many new points (the rest stays for the next run).
    in_process : bool, optional
        Run in this process (default: when ``workers == 1`` and there is no scheduler).
    """
    t0 = time.perf_counter()
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"workers: {workers!r} is out of range, allowed [1, inf)")
    workers = workers or os.cpu_count() or 1
    points, pruned = spec.points()
    store = Store(outdir, spec)
    done = store.keys(statuses=("ok", "infeasible") if retry_failed else ("ok", "infeasible", "failed"))
    todo = [p for p in points if p.key not in done]
    if max_points is not None:
        todo = todo[:max_points]
    if in_process is None:
        in_process = scheduler is None and workers == 1
    run = SweepRun(len(points), pruned, len(points) - len([p for p in points if p.key not in done]), len(todo),
                   workers=1 if in_process else workers)
    chunks = _chunks(todo, spec.chunk_points, 1 if in_process else workers)
    statuses: dict = {}

    def collect(rows, chunk, seconds=0.0):
        run.compute_s += seconds
        store.write(rows, _tag(chunk))
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        bar.update(len(rows))

    with _bar(len(todo), progress) as bar:
        if not chunks:
            pass
        elif in_process:
            for chunk in chunks:
                rows, seconds = timed_chunk([(p.key, p.values) for p in chunk], spec.fidelity)
                collect(rows, chunk, seconds)
        else:
            from distributed import as_completed

            t1 = time.perf_counter()
            client, cluster = _client(scheduler, workers)
            client.wait_for_workers(1 if scheduler else workers, timeout=120)
            client.run(warm_up)      # every worker loads the evaluation once, before the clock of the first chunk
            run.startup_s = time.perf_counter() - t1
            run.engine = f"dask {'scheduler ' + scheduler if scheduler else 'LocalCluster'}"
            if scheduler:
                run.workers = len(client.scheduler_info().get("workers", {}))
            try:
                futures = client.map(timed_chunk, [[(p.key, p.values) for p in c] for c in chunks],
                                     fidelity=spec.fidelity, pure=False)
                index = {f.key: c for f, c in zip(futures, chunks)}
                for fut in as_completed(futures):
                    chunk = index[fut.key]
                    seconds = 0.0
                    try:
                        rows, seconds = fut.result()
                    except Exception as e:  # noqa: BLE001 - a lost worker fails its chunk, not the sweep
                        rows = [{"key": p.key, "schema_version": store.meta["schema_version"], "status": "failed",
                                 "reason": f"task lost: {type(e).__name__}: {e}",
                                 "config_json": _config_json(p.values)} for p in chunk]
                    collect(rows, chunk, seconds)
            finally:
                t2 = time.perf_counter()
                client.close()
                if cluster is not None:
                    cluster.close()
                run.shutdown_s = time.perf_counter() - t2
    run.statuses = statuses
    run.elapsed_s = time.perf_counter() - t0
    return run


def _config_json(values: dict) -> str:
    import json
    return json.dumps(values, sort_keys=True, separators=(",", ":"))
