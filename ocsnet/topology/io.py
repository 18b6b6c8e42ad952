"""Fabric files: node-link JSON and GraphML, out and back in with nothing lost.

Stage 3 of the pipeline.  :func:`write` and :func:`read` choose the format by
the file's extension (``.json`` or ``.graphml``).  Both keep every node kind,
the GPU rank order, every edge's ``capacity_Bps``/``latency_s``/``tech``,
every extra node and edge attribute with its numpy dtype, original node
labels, ``meta`` and the name.  Output is deterministic: the same fabric
gives a byte-identical file.

The JSON layout is networkx's node-link form (``nodes`` with ``id``,
``links`` with ``source``/``target``), so
``networkx.node_link_graph(data, edges="links")`` reads it too; ``graph``
holds ``name``, ``gpus``, ``meta`` and the attribute dtypes.  ``meta`` must
be JSON-normal (dicts, lists, str, numbers, bools, None): generators store
lists, never tuples.  Non-finite floats are written as ``NaN``/``Infinity``,
as Python's json module does.

GraphML (readable by Gephi, yEd, networkx) keeps only scalar attributes, so
``meta``, the rank order, labels and dtypes travel as JSON strings in graph
attributes (``meta_json``, ``gpus_json``, ``labels_json``, ``dtypes_json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from ..errors import FabricError, SpecError
from ..fabric import Fabric
from ..jsonable import jsonable

__all__ = ["from_networkx", "to_node_link", "from_node_link", "write", "read", "FORMAT", "FORMAT_VERSION"]

FORMAT = "ocsnet-fabric"
FORMAT_VERSION = 1
EXTENSIONS = (".json", ".graphml")
_REQUIRED_EDGE = ("capacity_Bps", "latency_s", "tech")


def from_networkx(graph: nx.Graph, **kwargs) -> Fabric:
    """Wrap a networkx graph as a Fabric (see :meth:`ocsnet.fabric.Fabric.from_networkx`)."""
    return Fabric.from_networkx(graph, **kwargs)


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(jsonable(obj, error=FabricError, where="meta"), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise FabricError(f"meta: must be JSON-serializable ({e})") from None


def _dtypes(attrs: dict) -> dict:
    return {k: np.asarray(v).dtype.str for k, v in sorted(attrs.items())}


def _tuplify(x):
    """Labels come back from JSON as lists; networkx labels must be hashable."""
    return tuple(_tuplify(y) for y in x) if isinstance(x, list) else x


def to_node_link(fabric: Fabric) -> dict:
    """The fabric as a node-link dict (JSON-ready, deterministic key order when dumped sorted).

    Examples
    --------
    >>> from ocsnet.topology.direct import torus
    >>> d = to_node_link(torus(4))
    >>> d["format"], len(d["nodes"]), len(d["links"]), d["nodes"][0]["kind"]
    ('ocsnet-fabric', 4, 8, 'gpu')
    """
    rank = fabric.gpu_rank.tolist()
    kinds = [str(k) for k in fabric.kind]
    nattrs = {k: v.tolist() for k, v in sorted(fabric.node_attrs.items())}
    nodes = []
    for i in range(fabric.n_nodes):
        node = {"id": i, "kind": kinds[i]}
        if rank[i] >= 0:
            node["rank"] = rank[i]
        for k, vals in nattrs.items():
            node[k] = vals[i]
        if fabric.labels is not None:
            node["label"] = fabric.labels[i]
        nodes.append(node)
    cols = {"source": fabric.src.tolist(), "target": fabric.dst.tolist(),
            "capacity_Bps": fabric.capacity_Bps.tolist(), "latency_s": fabric.latency_s.tolist(),
            "tech": [str(t) for t in fabric.tech]}
    cols.update({k: v.tolist() for k, v in sorted(fabric.edge_attrs.items())})
    names = list(cols)
    links = [dict(zip(names, row)) for row in zip(*cols.values())]
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "directed": True, "multigraph": False,
        "graph": {"name": fabric.name, "gpus": fabric.gpus.tolist(), "meta": fabric.meta,
                  "node_dtypes": _dtypes(fabric.node_attrs), "edge_dtypes": _dtypes(fabric.edge_attrs),
                  "labels": fabric.labels is not None},
        "nodes": nodes, "links": links,
    }


def _need(d: dict, key: str, where: str):
    if key not in d:
        raise FabricError(f"{where}: missing key {key!r}")
    return d[key]


def _column(rows: list, key: str, where: str, dtype=None):
    try:
        vals = [r[key] for r in rows]
    except KeyError:
        k = next(i for i, r in enumerate(rows) if key not in r)
        raise FabricError(f"{where} {k}: missing attribute {key!r}") from None
    return np.asarray(vals, dtype=dtype) if dtype is not None else vals


def from_node_link(data: dict) -> Fabric:
    """Rebuild a Fabric from :func:`to_node_link` output (or a file it was dumped to).

    Raises
    ------
    FabricError
        A required key or attribute is missing or invalid; the message names it.
    """
    if not isinstance(data, dict):
        raise FabricError(f"node-link data: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise FabricError(f"format: expected {FORMAT!r}, got {data.get('format')!r} (not an ocsnet fabric file)")
    if data.get("version") != FORMAT_VERSION:
        raise FabricError(f"version: {data.get('version')!r} is not supported, expected {FORMAT_VERSION}")
    graph = _need(data, "graph", "node-link data")
    nodes = sorted(_need(data, "nodes", "node-link data"), key=lambda r: r.get("id", -1))
    links = _need(data, "links", "node-link data")
    ids = _column(nodes, "id", "node")
    if ids != list(range(len(nodes))):
        raise FabricError("nodes: ids must be 0..n_nodes-1")
    kind = _column(nodes, "kind", "node")
    ndt = graph.get("node_dtypes", {})
    edt = graph.get("edge_dtypes", {})
    node_attrs = {k: _column(nodes, k, "node", np.dtype(dt)) for k, dt in ndt.items()}
    edge_attrs = {k: _column(links, k, "link", np.dtype(dt)) for k, dt in edt.items()}
    labels = [_tuplify(x) for x in _column(nodes, "label", "node")] if graph.get("labels") else None
    return Fabric(kind, _column(links, "source", "link", np.int64), _column(links, "target", "link", np.int64),
                  _column(links, "capacity_Bps", "link", float), _column(links, "latency_s", "link", float),
                  _column(links, "tech", "link"), gpus=np.asarray(_need(graph, "gpus", "graph"), dtype=np.int64),
                  name=graph.get("name", "fabric"), meta=graph.get("meta", {}), node_attrs=node_attrs,
                  edge_attrs=edge_attrs, labels=labels)


# ---- GraphML ---------------------------------------------------------------------------

def _py(v):
    """A GraphML-writable scalar: numpy to Python; floats keep full precision (repr)."""
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _to_graphml_graph(fabric: Fabric) -> nx.DiGraph:
    g = nx.DiGraph()
    g.graph.update({"name": fabric.name, "format": FORMAT, "version": FORMAT_VERSION,
                    "gpus_json": _dumps(fabric.gpus.tolist()), "meta_json": _dumps(fabric.meta),
                    "dtypes_json": _dumps({"node": _dtypes(fabric.node_attrs), "edge": _dtypes(fabric.edge_attrs)})})
    if fabric.labels is not None:
        g.graph["labels_json"] = _dumps(list(fabric.labels))
    rank = fabric.gpu_rank.tolist()
    nattrs = {k: v.tolist() for k, v in sorted(fabric.node_attrs.items())}
    for i in range(fabric.n_nodes):
        a = {"kind": str(fabric.kind[i])}
        if rank[i] >= 0:
            a["rank"] = rank[i]
        a.update({k: _py(vals[i]) for k, vals in nattrs.items()})
        g.add_node(i, **a)
    cols = {"capacity_Bps": fabric.capacity_Bps.tolist(), "latency_s": fabric.latency_s.tolist(),
            "tech": [str(t) for t in fabric.tech]}
    cols.update({k: v.tolist() for k, v in sorted(fabric.edge_attrs.items())})
    names = list(cols)
    g.add_edges_from((u, v, dict(zip(names, row)))
                     for u, v, *row in zip(fabric.src.tolist(), fabric.dst.tolist(), *cols.values()))
    return g


def _write_graphml(fabric: Fabric, path: Path) -> None:
    g = _to_graphml_graph(fabric)
    # One GraphML type per attribute, from its Python type (int, float, str, bool); floats
    # are written with repr, so they read back bit for bit.  numpy dtypes travel in dtypes_json.
    with open(path, "wb") as f:
        nx.write_graphml_xml(g, f, encoding="utf-8", prettyprint=True, infer_numeric_types=False)


def _read_graphml(path: Path) -> Fabric:
    try:
        g = nx.read_graphml(path, node_type=int)
    except Exception as e:  # networkx raises several XML and type errors
        raise FabricError(f"{path}: not a readable GraphML file ({e})") from None
    if g.graph.get("format") != FORMAT:
        raise FabricError(f"{path}: not an ocsnet fabric GraphML file (graph attribute format is missing)")
    dtypes = json.loads(g.graph.get("dtypes_json", '{"node": {}, "edge": {}}'))
    nodes = sorted(g.nodes)
    if nodes != list(range(len(nodes))):
        raise FabricError(f"{path}: node ids must be 0..n_nodes-1")
    kind = [g.nodes[u].get("kind") for u in nodes]
    if None in kind:
        raise FabricError(f"{path}: node {kind.index(None)} has no 'kind'")
    node_attrs = {k: np.asarray([g.nodes[u][k] for u in nodes], dtype=np.dtype(dt)) for k, dt in dtypes["node"].items()}
    edges = list(g.edges(data=True))
    for u, v, d in edges:
        for a in _REQUIRED_EDGE:
            if a not in d:
                raise FabricError(f"{path}: edge ({u}, {v}) has no {a!r}")
    edge_attrs = {k: np.asarray([d[k] for _, _, d in edges], dtype=np.dtype(dt)) for k, dt in dtypes["edge"].items()}
    labels = None
    if "labels_json" in g.graph:
        labels = [_tuplify(x) for x in json.loads(g.graph["labels_json"])]
    return Fabric(kind, [u for u, _, _ in edges], [v for _, v, _ in edges],
                  [float(d["capacity_Bps"]) for _, _, d in edges], [float(d["latency_s"]) for _, _, d in edges],
                  [d["tech"] for _, _, d in edges], gpus=json.loads(g.graph["gpus_json"]),
                  name=g.graph.get("name", "fabric"), meta=json.loads(g.graph.get("meta_json", "{}")),
                  node_attrs=node_attrs, edge_attrs=edge_attrs, labels=labels)


# ---- dispatch by extension ---------------------------------------------------------------

def _ext(path) -> str:
    ext = Path(path).suffix.lower()
    if ext not in EXTENSIONS:
        raise SpecError(f"path: {str(path)!r} has extension {ext or '(none)'!r}; "
                        f"allowed: {', '.join(EXTENSIONS)}")
    return ext


def write(fabric: Fabric, path) -> Path:
    """Write a fabric to ``path`` (``.json`` node-link or ``.graphml``); return the path.

    Examples
    --------
    >>> import tempfile, os
    >>> from ocsnet.topology.direct import torus
    >>> p = write(torus((2, 3)), os.path.join(tempfile.mkdtemp(), "t.json"))
    >>> read(p).n_edges
    18
    """
    path = Path(path)
    ext = _ext(path)
    if not isinstance(fabric, Fabric):
        raise FabricError(f"fabric: expected a Fabric, got {type(fabric).__name__}")
    if ext == ".json":
        path.write_text(_dumps(to_node_link(fabric)) + "\n", encoding="utf-8")
    else:
        _write_graphml(fabric, path)
    return path


def read(path) -> Fabric:
    """Read a fabric written by :func:`write` (format by extension).

    Raises
    ------
    SpecError
        The extension is not ``.json`` or ``.graphml``.
    FabricError
        The file is not a valid ocsnet fabric file; the message says what is missing.
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    ext = _ext(path)
    if ext == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise FabricError(f"{path}: not valid JSON ({e})") from None
        return from_node_link(data)
    return _read_graphml(path)
