"""Requests as data: arrival times, prompt lengths and output lengths.

Stage: serving (see docs/design.md).  A :class:`Requests` holds three arrays
(arrival seconds, prompt tokens, output tokens), sorted by arrival.  They come
from:

- :func:`generate`: Poisson or gamma arrivals at a rate, lengths fixed or
  from a lognormal with a given mean and standard deviation (clipped);
- :func:`synthetic`: a named workload of ``ocsnet/catalog/workloads.toml``
  (published summary statistics of the Azure LLM inference trace 2023, each
  with its source); the trace itself is not shipped;
- :func:`read_trace`: a CSV file in the Azure LLM inference trace format
  (``TIMESTAMP, ContextTokens, GeneratedTokens``; timestamps as date-times or
  seconds); :func:`write_trace` writes one.

Same inputs and seed give the same requests.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass

import numpy as np

from ..checks import check_range
from ..errors import SpecError

__all__ = ["Requests", "generate", "synthetic", "workloads", "read_trace", "write_trace", "ARRIVALS",
           "TRACE_COLUMNS"]

ARRIVALS = ("poisson", "gamma", "uniform")
TRACE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


@dataclass
class Requests:
    """Requests sorted by arrival: ``arrival_s`` (float), ``prompt``, ``output`` (tokens, int64)."""

    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    name: str = ""

    def __post_init__(self):
        self.arrival_s = np.asarray(self.arrival_s, dtype=float)
        self.prompt = np.asarray(self.prompt, dtype=np.int64)
        self.output = np.asarray(self.output, dtype=np.int64)
        n = len(self.arrival_s)
        if len(self.prompt) != n or len(self.output) != n:
            raise SpecError(f"requests: arrival_s, prompt and output must have one entry per request "
                            f"(got {n}, {len(self.prompt)}, {len(self.output)})")
        for name, a, lo in (("prompt", self.prompt, 1), ("output", self.output, 1)):
            bad = np.flatnonzero(a < lo)
            if len(bad):
                raise SpecError(f"requests.{name}: request {bad[0]} has {a[bad[0]]} tokens, allowed integers [{lo}, inf)")
        if n and (not np.all(np.isfinite(self.arrival_s)) or self.arrival_s[0] < 0):
            raise SpecError("requests.arrival_s: arrival times must be finite and >= 0")
        bad = np.flatnonzero(np.diff(self.arrival_s) < 0)
        if len(bad):
            raise SpecError(f"requests.arrival_s: not sorted, request {bad[0] + 1} arrives before request {bad[0]}")

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0

    @property
    def rate(self) -> float:
        """Mean arrival rate (requests/s) over the span of the arrivals."""
        return (len(self) - 1) / self.duration_s if len(self) > 1 and self.duration_s > 0 else float("nan")

    def scaled(self, rate: float) -> "Requests":
        """The same requests with inter-arrival times scaled to mean ``rate`` requests/s."""
        check_range("rate", rate, 0, None, lo_open=True)
        return Requests(self.arrival_s * (self.rate / rate), self.prompt, self.output, self.name)

    def head(self, n: int) -> "Requests":
        return Requests(self.arrival_s[:n], self.prompt[:n], self.output[:n], self.name)

    def summary(self) -> dict:
        return {"requests": len(self), "rate_per_s": self.rate, "duration_s": self.duration_s,
                "prompt_mean_tokens": float(self.prompt.mean()) if len(self) else 0.0,
                "output_mean_tokens": float(self.output.mean()) if len(self) else 0.0}


def _arrivals(rng, n: int, rate: float, arrival: str, cv: float) -> np.ndarray:
    if arrival not in ARRIVALS:
        raise SpecError(f"arrival: {arrival!r} is not one of {', '.join(ARRIVALS)}")
    check_range("rate", rate, 0, None, lo_open=True)
    if arrival == "poisson":
        gaps = rng.exponential(1.0 / rate, n)
    elif arrival == "gamma":
        # gamma inter-arrivals with coefficient of variation cv (cv = 1 is Poisson)
        check_range("cv", cv, 0, None, lo_open=True)
        k = 1.0 / cv ** 2
        gaps = rng.gamma(k, 1.0 / (rate * k), n)
    else:
        gaps = np.full(n, 1.0 / rate)
    return np.cumsum(gaps) - gaps[0] if n else np.zeros(0)


def _lengths(rng, n: int, spec, what: str) -> np.ndarray:
    """Fixed (int), or a dict {mean, std, min, max}: lognormal with that mean and std, clipped."""
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        check_range(what, spec, 1, None)
        return np.full(n, int(spec), np.int64)
    if isinstance(spec, dict):
        mean, std = float(spec.get("mean", 0)), float(spec.get("std", 0))
        check_range(f"{what}.mean", mean, 1, None)
        check_range(f"{what}.std", std, 0, None)
        lo, hi = spec.get("min", 1), spec.get("max", None)
        check_range(f"{what}.min", lo, 1, None)
        if std == 0:
            x = np.full(n, mean)
        else:
            s2 = math.log1p((std / mean) ** 2)           # lognormal moments
            x = rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), n)
        x = np.rint(x)
        return np.clip(x, lo, hi if hi is not None else np.inf).astype(np.int64)
    raise SpecError(f"{what}: expected a token count or a table of mean, std (and min, max), got {spec!r}")


def generate(n: int, rate: float, *, prompt=1024, output=128, arrival: str = "poisson", cv: float = 1.0,
             seed: int = 0, name: str = "") -> Requests:
    """``n`` requests at mean ``rate`` requests/s.

    Parameters
    ----------
    prompt, output : int or dict
        A fixed token count, or ``{"mean", "std", "min", "max"}`` (a lognormal
        with that mean and standard deviation, clipped to ``[min, max]``).
    arrival : {"poisson", "gamma", "uniform"}
        Exponential, gamma (coefficient of variation ``cv``) or equal gaps.

    Examples
    --------
    >>> r = generate(1000, 10.0, prompt=100, output={"mean": 50, "std": 20, "min": 1}, seed=1)
    >>> len(r), int(r.prompt[0]), round(r.rate)
    (1000, 100, 10)
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise SpecError(f"n: {n!r} is out of range, allowed integers [1, inf)")
    rng = np.random.default_rng(seed)
    arr = _arrivals(rng, int(n), rate, arrival, cv)
    return Requests(arr, _lengths(rng, int(n), prompt, "prompt"), _lengths(rng, int(n), output, "output"), name)


def workloads() -> dict[str, dict]:
    """Named workloads of ``ocsnet/catalog/workloads.toml`` (published trace statistics)."""
    from ..hardware import load_table

    out = {}
    keys = ("prompt_mean_tokens", "prompt_std_tokens", "prompt_min_tokens", "prompt_max_tokens",
            "output_mean_tokens", "output_std_tokens", "output_min_tokens", "output_max_tokens",
            "requests", "span_s")
    for name, e in load_table("workloads.toml").items():
        for k in keys:
            if k not in e:
                raise SpecError(f"workloads.toml [{name}]: missing required key {k!r}")
            if not e.get("source", {}).get(k):
                raise SpecError(f"workloads.toml [{name}].{k}: number has no source string")
        out[name] = dict(e)
    return out


def synthetic(name: str = "azure-conv-2023", *, n: int | None = None, rate: float | None = None,
              duration_s: float | None = None, arrival: str = "poisson", cv: float = 1.0,
              seed: int = 0) -> Requests:
    """A synthetic trace from a named workload's published statistics.

    ``rate`` defaults to the published mean rate of the sample; ``n`` to the
    published number of requests, or ``rate * duration_s`` if a duration is given.
    """
    w = workloads()
    if name not in w:
        raise SpecError(f"workload: {name!r} is not one of {', '.join(sorted(w))}")
    e = w[name]
    r = float(rate) if rate is not None else e["requests"] / e["span_s"]
    if n is None:
        n = int(math.ceil(r * duration_s)) if duration_s is not None else int(e["requests"])
    ln = {p: {"mean": e[f"{p}_mean_tokens"], "std": e[f"{p}_std_tokens"], "min": e[f"{p}_min_tokens"],
              "max": e[f"{p}_max_tokens"]} for p in ("prompt", "output")}
    return generate(n, r, prompt=ln["prompt"], output=ln["output"], arrival=arrival, cv=cv, seed=seed, name=name)


def _timestamps(values: list[str], path: str) -> np.ndarray:
    """Seconds from the first row: numbers as seconds, or date-times (ISO, space or T)."""
    try:
        t = np.array([float(v) for v in values])
    except ValueError:
        try:
            # the Azure files carry 7 fractional digits; numpy reads at most 9
            t64 = np.array([v.strip().replace(" ", "T") for v in values], dtype="datetime64[ns]")
        except ValueError as e:
            raise SpecError(f"{path}: TIMESTAMP: cannot read a value as seconds or a date-time ({e})") from None
        t = (t64 - t64[0]).astype(np.int64) / 1e9 if len(t64) else np.zeros(0)
    return t - t[0] if len(t) else t


def read_trace(path, *, name: str | None = None) -> Requests:
    """Read a CSV in the Azure LLM inference trace format.

    Raises
    ------
    SpecError
        A missing column, a non-integer or negative length, or timestamps out
        of order, naming the file line.
    """
    path = str(path)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise SpecError(f"{path}: empty file; expected the columns {', '.join(TRACE_COLUMNS)}") from None
        missing = [c for c in TRACE_COLUMNS if c not in header]
        if missing:
            raise SpecError(f"{path}: missing column {missing[0]!r}; the Azure trace format has "
                            f"{', '.join(TRACE_COLUMNS)} (found {', '.join(header)})")
        idx = [header.index(c) for c in TRACE_COLUMNS]
        ts, ctx, gen = [], [], []
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise SpecError(f"{path}: line {line}: {len(row)} fields, expected {len(header)}")
            ts.append(row[idx[0]])
            for col, out, k in ((TRACE_COLUMNS[1], ctx, idx[1]), (TRACE_COLUMNS[2], gen, idx[2])):
                try:
                    v = int(float(row[k]))
                except ValueError:
                    raise SpecError(f"{path}: line {line}: {col} {row[k]!r} is not a token count") from None
                if v < 0 or v != float(row[k]):
                    raise SpecError(f"{path}: line {line}: {col} {row[k]!r} is out of range, allowed integers [0, inf)")
                out.append(v)
    if not ts:
        raise SpecError(f"{path}: no requests after the header")
    t = _timestamps(ts, path)
    bad = np.flatnonzero(np.diff(t) < 0)
    if len(bad):
        raise SpecError(f"{path}: line {bad[0] + 3}: TIMESTAMP {ts[bad[0] + 1]!r} is earlier than the line before "
                        "(timestamps must be sorted)")
    # a request with no prompt or no generated token still takes one iteration: count it as one token
    return Requests(t, np.maximum(ctx, 1), np.maximum(gen, 1), name or path)


def write_trace(requests: Requests, path) -> None:
    """Write requests as a CSV in the Azure trace format (TIMESTAMP in seconds)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TRACE_COLUMNS)
        for t, p, o in zip(requests.arrival_s.tolist(), requests.prompt.tolist(), requests.output.tolist()):
            w.writerow([f"{t:.6f}", p, o])
