"""The results folder of a sweep: a Parquet dataset, one file per finished chunk.

Stage: sweep (see docs/design.md).  Layout::

    DIR/sweep.json                  the spec as run, its name and the schema version
    DIR/part-000001-<hash>.parquet  one file per chunk, written to a temporary name and renamed,
    DIR/part-000002-<hash>.parquet  so a crash loses only the chunks in flight

Each row is one design point: ``key`` (content hash of its configuration),
``schema_version``, ``status`` (ok / infeasible / failed), ``reason``,
``config_json``, one column per knob and every metric.  When a key is stored
twice (a failed point re-run), the later file wins.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import SweepError
from ..jsonable import jsonable
from .metrics import METRICS, TEXT_METRICS
from .spec import SCHEMA_VERSION, SweepSpec

__all__ = ["Store", "MANIFEST"]

MANIFEST = "sweep.json"
_PART = re.compile(r"^part-(\d{6})-[0-9a-f]+\.parquet$")


def _schema(spec: SweepSpec):
    import pyarrow as pa

    from .knobs import KNOBS

    fields = [("key", pa.string()), ("schema_version", pa.int32()), ("status", pa.string()),
              ("reason", pa.string()), ("config_json", pa.string())]
    for name in sorted(set(spec.axes) | set(spec.fixed)):
        kind = KNOBS[name].kind
        fields.append((f"knob_{name}", pa.string() if kind == "choice" else
                       pa.int64() if kind == "int" else pa.float64()))
    fields += [(m, pa.float64()) for m in METRICS] + [(m, pa.string()) for m in TEXT_METRICS]
    return pa.schema(fields)


class Store:
    """A sweep's results folder (created on first use; refused if it holds another schema or sweep)."""

    def __init__(self, path, spec: SweepSpec | None = None):
        self.path = Path(path)
        self.spec = spec
        man = self.path / MANIFEST
        if man.exists():
            try:
                meta = json.loads(man.read_text())
            except json.JSONDecodeError:
                raise SweepError(f"{man}: not a valid sweep manifest (broken JSON)") from None
            if meta.get("schema_version") != SCHEMA_VERSION:
                raise SweepError(f"{self.path}: results of schema version {meta.get('schema_version')!r}; this "
                                 f"ocsnet reads and writes version {SCHEMA_VERSION}: use a new folder")
            if spec is not None and meta.get("spec") != jsonable(spec.to_dict()):
                raise SweepError(f"{self.path}: holds results of another sweep spec ({meta.get('name')!r}); "
                                 "use a new folder, or the same spec to resume")
            self.meta = meta
        elif spec is None:
            raise SweepError(f"{self.path}: not a sweep results folder (no {MANIFEST})")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.meta = {"schema_version": SCHEMA_VERSION, "name": spec.name, "spec": jsonable(spec.to_dict())}
            _atomic_write(man, (json.dumps(self.meta, indent=1, sort_keys=True) + "\n").encode())

    def parts(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if _PART.match(p.name))

    def write(self, rows: list[dict], tag: str) -> Path:
        """Write one finished chunk atomically; returns its file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self.parts()
        seq = int(_PART.match(parts[-1].name).group(1)) + 1 if parts else 1
        table = pa.Table.from_pylist([_flatten(r) for r in rows], schema=self._schema())
        out = self.path / f"part-{seq:06d}-{tag}.parquet"
        tmp = self.path / f".{out.name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, out)
        return out

    def _schema(self):
        if self.spec is None:
            raise SweepError(f"{self.path}: writing needs the sweep spec")
        return _schema(self.spec)

    def table(self):
        """Every stored point (the latest row per key), sorted by key, as a pyarrow Table."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parts = self.parts()
        if not parts:
            return None
        tables = []
        for i, p in enumerate(parts):
            try:
                t = pq.read_table(p)
            except Exception as e:  # noqa: BLE001 - name the broken file
                raise SweepError(f"{p.name}: not a readable Parquet file ({type(e).__name__}: {e})") from None
            tables.append(t.append_column("_seq", pa.array([i] * t.num_rows, pa.int32())))
        t = pa.concat_tables(tables, promote_options="default")
        t = t.sort_by([("key", "ascending"), ("_seq", "descending")])
        keys = t.column("key").to_numpy(zero_copy_only=False)
        import numpy as np
        first = np.ones(len(keys), bool)
        first[1:] = keys[1:] != keys[:-1]
        t = t.filter(pa.array(first)).drop_columns(["_seq"])
        bad = pc.any(pc.not_equal(t.column("schema_version"), SCHEMA_VERSION)).as_py()
        if bad:
            raise SweepError(f"{self.path}: rows of another schema version; this ocsnet reads version {SCHEMA_VERSION}")
        return t

    def keys(self, *, statuses=("ok", "infeasible", "failed")) -> set[str]:
        t = self.table()
        if t is None:
            return set()
        return {k for k, s in zip(t.column("key").to_pylist(), t.column("status").to_pylist()) if s in statuses}

    def status(self) -> dict[str, int]:
        t = self.table()
        out = {"ok": 0, "infeasible": 0, "failed": 0}
        if t is not None:
            for s in t.column("status").to_pylist():
                out[s] = out.get(s, 0) + 1
        return out


def _flatten(row: dict) -> dict:
    out = dict(row)
    for k, v in json.loads(row["config_json"]).items():
        out[f"knob_{k}"] = v
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
