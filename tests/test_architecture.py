"""The package's shape: imports run one way, nothing private crosses a module, start-up stays cheap.

Every module of ``ocsnet`` is parsed with :mod:`ast`; every import counts,
including the ones inside functions (they run too).  See docs/design.md,
"Layout".
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ocsnet"
HEAVY = ("networkx", "scipy", "ortools", "matplotlib")
HELP_HEAVY = HEAVY + ("numpy",)       # --help loads not even numpy


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


MODULES = _modules()


def _imports(name: str, path: Path, is_pkg: bool):
    """Yield (imported module, imported name or None, line) for every ocsnet import of a module."""
    base = name if is_pkg else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "ocsnet":
                    yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                target = ".".join(parts + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ocsnet":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                yield (sub, None, node.lineno) if sub in MODULES else (target, a.name, node.lineno)


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for name, (path, is_pkg) in MODULES.items():
        g.add_node(name)
        for target, _, _ in _imports(name, path, is_pkg):
            g.add_edge(name, target)
    return g


def test_the_graph_sees_imports_inside_functions():
    """The parser is not blind: a known import inside a function is an edge."""
    g = import_graph()
    assert g.has_edge("ocsnet.evaluation.timing", "ocsnet.schedule")        # inside ocs_layer_times
    assert g.has_edge("ocsnet.evaluation.per_layer", "ocsnet.evaluation.options")
    assert len(g) == len(MODULES) > 50


def test_no_import_cycle_between_ocsnet_modules():
    g = import_graph()
    cycles = sorted(nx.simple_cycles(g), key=len)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles[:10])


def test_a_cycle_would_be_found(tmp_path):
    """The cycle check fails on a graph with a back edge (the test can fail)."""
    g = import_graph()
    g.add_edge("ocsnet.units", "ocsnet.evaluation.study")
    assert not nx.is_directed_acyclic_graph(g)


def test_no_private_name_is_imported_from_another_module():
    bad = [f"{name}:{line} imports {what} from {target}"
           for name, (path, is_pkg) in MODULES.items()
           for target, what, line in _imports(name, path, is_pkg)
           if what is not None and what.startswith("_") and not what.startswith("__")]
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_cli_and_only_report_writers_draw():
    """The CLI sits at the end of the pipeline; figures are drawn only by the report writers, at draw time
    (``plot`` imported inside the function that writes a report's figures, never at module level)."""
    g = import_graph()
    cli_users = {u for u, v in g.edges if v.startswith("ocsnet.cli") and not u.startswith("ocsnet.cli")}
    assert cli_users == {"ocsnet.__main__"}
    top_level = []
    for name, (path, _) in MODULES.items():
        if name.startswith("ocsnet.cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("plot") or \
                    isinstance(node, ast.ImportFrom) and any(a.name == "plot" for a in node.names):
                top_level.append(name)
    assert not top_level, top_level


def test_plot_draws_given_data_and_runs_no_model():
    """plot.py imports nothing of the pipeline but units: it cannot rebuild a fabric or re-time a phase."""
    g = import_graph()
    assert set(g.successors("ocsnet.plot")) <= {"ocsnet.units"}


def _loaded(code: str, heavy=HEAVY) -> set:
    """Modules loaded by ``code`` in a fresh interpreter."""
    probe = (f"import sys, json\n{code}\n"
             "print(json.dumps(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    mods = json.loads(out.stdout.strip().splitlines()[-1])
    return {m for m in mods if m.split(".")[0] in heavy}


def test_import_ocsnet_loads_nothing_heavy():
    assert _loaded("import ocsnet") == set()


HELP = "from ocsnet.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"


def _commands():
    from ocsnet.cli import COMMANDS
    return COMMANDS


@pytest.mark.parametrize("argv", [["--help"]] + [[c, "--help"] for c in _commands()])
def test_help_loads_nothing_heavy(argv):
    assert _loaded(HELP.format(argv=argv), HELP_HEAVY) == set()


def test_a_subcommand_loads_only_what_it_uses():
    """Listing the named specs and scenarios reads TOML only; no solver, graph library or plotting."""
    assert _loaded(HELP.format(argv=["topo", "list"])) == set()
    assert _loaded(HELP.format(argv=["schedule", "list"])) == set()
    # timing a fabric needs scipy (sparse routing) but never OR-Tools or matplotlib
    got = _loaded(HELP.format(argv=["flow", "--fabric", "small-torus", "--traffic", "ring", "--size", "1MB"]))
    assert "scipy" in got and not {m for m in got if m.split(".")[0] in ("ortools", "matplotlib")}


def test_the_probe_sees_heavy_imports():
    assert "scipy" in {m.split(".")[0] for m in _loaded("import ocsnet.flow.maxmin")}


def test_docstrings_cite_sections_of_the_design_document():
    """Every ``docs/design.md, "Section"`` citation names a heading of the design document, and no
    docstring points at a file outside the repository."""
    import re

    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    headings = {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", doc, re.M)}
    cited = []
    for p in sorted(PACKAGE.rglob("*.py")):
        text = p.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text, p
        for m in re.finditer(r'docs/design\.md,\s+"([^"]+)"', text):
            cited.append((p.name, " ".join(m.group(1).split())))
    assert cited
    missing = [(f, h) for f, h in cited if h not in headings]
    assert not missing, missing


def test_the_suite_runs_every_docstring_example():
    """pytest collects the package's doctests (pyproject: --doctest-modules over ocsnet/)."""
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "ocsnet" in cfg["testpaths"] and "--doctest-modules" in cfg["addopts"]
    with_examples = [p for p in PACKAGE.rglob("*.py") if ">>> " in p.read_text(encoding="utf-8")]
    assert len(with_examples) >= 30
