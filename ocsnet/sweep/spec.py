"""Sweep specs: the axes of a design space, how to sample it, what prunes it, what to optimize.

Stage: sweep (see docs/design.md).  A spec is a TOML file::

    [sweep]
    name = "lite-design-space"
    sampling = "grid"            # grid | random | lhs (Latin hypercube)
    samples = 0                  # points drawn by random / lhs
    seed = 0
    chunk_points = 4             # design points per engine task
    fidelity = "screen"          # screen (alpha-beta, ideal circuits) | full (max-min, solved schedule)
    objectives = ["tokens_per_s_per_h100e:max", "latency_ms:min"]
    constraints = ["not (gpu == 'h100-sxm' and fabric != 'h100-dgx')"]

    [fixed]                      # knobs held at one value
    context = 4096

    [axes]                       # knobs varied: a list of values, or a range for random / lhs
    gpu = ["lite-base", "lite-netboost"]
    reconfig_delay_us = {min = 0.01, max = 10000, log = true}

Every knob is one of :data:`ocsnet.sweep.knobs.KNOBS`.  Constraints are Python
expressions over knob names (comparisons, arithmetic, ``and``/``or``/``not``,
``in``); a point that breaks one is pruned before it runs, counted with the
constraint that pruned it.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
import operator
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SweepError
from .knobs import KNOBS
from .metrics import FAILURE_METRICS, METRICS

__all__ = ["SweepSpec", "Point", "load_sweep", "parse_sweep", "SAMPLINGS", "FIDELITIES", "SCHEMA_VERSION",
           "point_key", "Objective"]

#: Version of the result rows' schema; a results folder of another version is refused.
SCHEMA_VERSION = 1
SAMPLINGS = ("grid", "random", "lhs")
FIDELITIES = ("screen", "full")
_SWEEP_KEYS = {"name": str, "description": str, "sampling": str, "samples": int, "seed": int,
               "chunk_points": int, "fidelity": str, "objectives": list, "constraints": list}
_TOP = {"sweep", "fixed", "axes"}
_RANGE_KEYS = {"min", "max", "log"}


@dataclass(frozen=True)
class Objective:
    """A metric and its sense (``max`` or ``min``)."""

    metric: str
    sense: str

    @classmethod
    def parse(cls, text: str, where: str) -> "Objective":
        metric, _, sense = str(text).partition(":")
        sense = sense or "max"
        if sense not in ("max", "min") or not metric:
            raise SweepError(f"{where}: {text!r} must read 'metric:max' or 'metric:min'")
        return cls(metric, sense)

    def __str__(self) -> str:
        return f"{self.metric}:{self.sense}"


@dataclass(frozen=True)
class Point:
    """One design point: knob values (fixed and varied) and its content hash."""

    values: dict
    key: str


def point_key(values: dict, fidelity: str) -> str:
    """Content hash of a point's full configuration (and the result schema)."""
    blob = json.dumps({"schema": SCHEMA_VERSION, "fidelity": fidelity, "point": values},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# -- constraints: a small, safe expression language over knob values ------------------------

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b}
_FUNCS = {"min": min, "max": max, "abs": abs, "log2": math.log2}


def _eval(node, env: dict, where: str):
    if isinstance(node, ast.Expression):
        return _eval(node.body, env, where)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise SweepError(f"{where}: {node.id!r} is not a knob of this sweep; knobs: {', '.join(sorted(env))}")
        return env[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_eval(e, env, where) for e in node.elts)
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, env, where) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        v = _eval(node.operand, env, where)
        return (not v) if isinstance(node.op, ast.Not) else -v
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _BIN[type(node.op)](_eval(node.left, env, where), _eval(node.right, env, where))
    if isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
        left = _eval(node.left, env, where)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, env, where)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
            and not node.keywords:
        return _FUNCS[node.func.id](*(_eval(a, env, where) for a in node.args))
    raise SweepError(f"{where}: {ast.unparse(node)!r} is not allowed in a constraint "
                     "(use knob names, numbers, strings, arithmetic, comparisons, and/or/not, in)")


def _compile(text: str, where: str):
    try:
        return ast.parse(str(text), mode="eval")
    except SyntaxError as e:
        raise SweepError(f"{where}: {text!r} is not a valid expression ({e.msg})") from None


# -- the spec ---------------------------------------------------------------------------------

@dataclass
class SweepSpec:
    """A parsed sweep spec (see the module docstring)."""

    name: str
    axes: dict                     # knob -> list of values, or {"min", "max", "log"} for random / lhs
    fixed: dict = field(default_factory=dict)
    sampling: str = "grid"
    samples: int = 0
    seed: int = 0
    chunk_points: int = 4
    fidelity: str = "screen"
    objectives: list = field(default_factory=lambda: [Objective("tokens_per_s_per_h100e", "max"),
                                                       Objective("latency_ms", "min")])
    constraints: list = field(default_factory=list)
    description: str = ""
    source: dict = field(default_factory=dict)   # the spec as read, for the results folder

    def candidates(self) -> list[dict]:
        """Every point the sampling draws, before the constraints."""
        names = list(self.axes)
        if self.sampling == "grid":
            grids = [self.axes[n] for n in names]
            return [dict(self.fixed, **dict(zip(names, combo))) for combo in itertools.product(*grids)]
        rng = np.random.default_rng(self.seed)
        n = self.samples
        if self.sampling == "lhs":
            # one stratum per sample on every axis, strata shuffled independently (McKay et al. 1979)
            u = (rng.permuted(np.tile(np.arange(n), (len(names), 1)), axis=1).T + rng.random((n, len(names)))) / n
        else:
            u = rng.random((n, len(names)))
        out = []
        for row in u:
            pt = dict(self.fixed)
            for j, name in enumerate(names):
                pt[name] = _draw(KNOBS[name], self.axes[name], float(row[j]))
            out.append(pt)
        return out

    def points(self) -> tuple[list[Point], dict[str, int]]:
        """The points to run (deduplicated, in a stable order) and the pruned counts per constraint."""
        compiled = [(c, _compile(c, f"sweep.constraints[{i}]")) for i, c in enumerate(self.constraints)]
        pruned: dict[str, int] = {}
        seen, out = set(), []
        for pt in self.candidates():
            broken = next((c for c, tree in compiled if not _eval(tree, pt, f"constraint {c!r}")), None)
            if broken is not None:
                pruned[broken] = pruned.get(broken, 0) + 1
                continue
            key = point_key(pt, self.fidelity)
            if key not in seen:
                seen.add(key)
                out.append(Point(pt, key))
        return out, pruned

    def to_dict(self) -> dict:
        return self.source or {"sweep": {"name": self.name}, "axes": self.axes, "fixed": self.fixed}


def _draw(knob, axis, u: float):
    """A value of ``knob`` at quantile ``u`` of its axis (a list: uniform over it; a range)."""
    if isinstance(axis, list):
        return axis[min(int(u * len(axis)), len(axis) - 1)]
    lo, hi = float(axis["min"]), float(axis["max"])
    v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if axis.get("log") else lo + u * (hi - lo)
    return int(round(v)) if knob.kind == "int" else float(f"{v:.6g}")


def _check_axis(name: str, axis, sampling: str):
    where = f"axes.{name}"
    if name not in KNOBS:
        raise SweepError(f"{where}: unknown knob; knobs: {', '.join(KNOBS)}")
    knob = KNOBS[name]
    if isinstance(axis, list):
        if not axis:
            raise SweepError(f"{where}: empty list; give at least one value")
        return [knob.check(v, f"{where}[{i}]") for i, v in enumerate(axis)]
    if isinstance(axis, dict):
        if sampling == "grid":
            raise SweepError(f"{where}: a range needs sampling = 'random' or 'lhs'; a grid takes a list of values")
        if knob.kind == "choice":
            raise SweepError(f"{where}: knob {name!r} takes a list of values, not a range")
        unknown = set(axis) - _RANGE_KEYS
        if unknown or not {"min", "max"} <= set(axis):
            raise SweepError(f"{where}: a range is {{min = ..., max = ..., log = true|false}}; "
                             f"got keys {', '.join(sorted(axis))}")
        lo, hi = knob.check(axis["min"], f"{where}.min"), knob.check(axis["max"], f"{where}.max")
        if lo > hi:
            raise SweepError(f"{where}: min {lo!r} is above max {hi!r}")
        if axis.get("log") and lo <= 0:
            raise SweepError(f"{where}: a log range needs min > 0, got {lo!r}")
        return {"min": lo, "max": hi, "log": bool(axis.get("log", False))}
    raise SweepError(f"{where}: expected a list of values or a range table, got {type(axis).__name__}")


def parse_sweep(data: dict, where: str = "sweep spec") -> SweepSpec:
    """A :class:`SweepSpec` from the TOML's tables; strict: unknown keys and bad values are named."""
    if not isinstance(data, dict):
        raise SweepError(f"{where}: expected a table")
    unknown = set(data) - _TOP
    if unknown:
        raise SweepError(f"{where}: unknown table {sorted(unknown)[0]!r}; allowed: sweep, fixed, axes")
    head = data.get("sweep", {})
    for k, v in head.items():
        if k not in _SWEEP_KEYS:
            raise SweepError(f"sweep.{k}: unknown key; allowed: {', '.join(_SWEEP_KEYS)}")
        if not isinstance(v, _SWEEP_KEYS[k]) or isinstance(v, bool):
            raise SweepError(f"sweep.{k}: expected {_SWEEP_KEYS[k].__name__}, got {v!r}")
    sampling = head.get("sampling", "grid")
    if sampling not in SAMPLINGS:
        raise SweepError(f"sweep.sampling: {sampling!r} is not one of {', '.join(SAMPLINGS)}")
    fidelity = head.get("fidelity", "screen")
    if fidelity not in FIDELITIES:
        raise SweepError(f"sweep.fidelity: {fidelity!r} is not one of {', '.join(FIDELITIES)}")
    samples = head.get("samples", 0)
    if sampling != "grid" and not 1 <= samples <= 10_000_000:
        raise SweepError(f"sweep.samples: {samples!r} is out of range for {sampling} sampling, allowed [1, 10000000]")
    chunk = head.get("chunk_points", 4)
    if not 1 <= chunk <= 100_000:
        raise SweepError(f"sweep.chunk_points: {chunk!r} is out of range, allowed [1, 100000]")
    axes_in = data.get("axes", {})
    if not isinstance(axes_in, dict) or not axes_in:
        raise SweepError("axes: a sweep needs at least one axis ([axes] with knob = [values])")
    axes = {n: _check_axis(n, a, sampling) for n, a in axes_in.items()}
    fixed = {}
    for n, v in data.get("fixed", {}).items():
        if n not in KNOBS:
            raise SweepError(f"fixed.{n}: unknown knob; knobs: {', '.join(KNOBS)}")
        if n in axes:
            raise SweepError(f"fixed.{n}: also an axis; a knob is either fixed or varied")
        fixed[n] = KNOBS[n].check(v, f"fixed.{n}")
    objectives = [Objective.parse(o, f"sweep.objectives[{i}]") for i, o in enumerate(head.get("objectives", []))]
    for i, o in enumerate(objectives):
        if o.metric not in METRICS:
            raise SweepError(f"sweep.objectives[{i}]: {o.metric!r} is not a metric; metrics: {', '.join(METRICS)}")
        if o.metric in FAILURE_METRICS and "repair_policy" not in axes_in and "repair_policy" not in data.get("fixed", {}):
            raise SweepError(f"sweep.objectives[{i}]: {o.metric!r} needs the repair_policy knob (fixed or an axis)")
    constraints = [str(c) for c in head.get("constraints", [])]
    env = {**fixed, **{n: (a[0] if isinstance(a, list) else a["min"]) for n, a in axes.items()}}
    for i, c in enumerate(constraints):      # names and syntax checked now, not deep in a run
        _eval(_compile(c, f"sweep.constraints[{i}]"), env, f"sweep.constraints[{i}]")
    spec = SweepSpec(name=head.get("name", "sweep"), axes=axes, fixed=fixed, sampling=sampling, samples=samples,
                     seed=head.get("seed", 0), chunk_points=chunk, fidelity=fidelity,
                     constraints=constraints, description=head.get("description", ""), source=data)
    if objectives:
        spec.objectives = objectives
    return spec


def load_sweep(name_or_path) -> SweepSpec:
    """Read a sweep spec from a TOML file (a path, or a name in the studies folders)."""
    path = Path(name_or_path)
    if not path.exists():
        path = _find_named(str(name_or_path))
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path.name}: not valid TOML ({e})") from None
    return parse_sweep(data, path.name)


def _find_named(name: str) -> Path:
    from .resources import sweep_specs
    specs = sweep_specs()
    if name not in specs:
        raise SweepError(f"sweep spec {name!r}: no such file or named spec; named specs: "
                         f"{', '.join(sorted(specs)) or 'none'}")
    return specs[name]
