"""The walkthrough notebooks run top to bottom, in this project's own Python environment.

Every notebook in ``notebooks/`` is copied into a temporary folder and executed
there with nbclient by a ``python3`` Jupyter kernel (with ``MPLBACKEND=Agg``),
so no output is ever written back into the repository.  The kernel must run
the interpreter of this test session: ipykernel (from the ``test`` extra)
installs the ``python3`` kernelspec into the environment's prefix, whose
``python`` command jupyter_client starts with ``sys.executable``; when that
kernelspec is missing or points at another Python, it is installed into this
environment (``python -m ipykernel install --sys-prefix``).  The first test
proves the result by asking a kernel for its ``sys.prefix`` and the ``ocsnet``
it imports.  The notebooks check their own invariants with ``assert`` (valid
schedules, makespans above their lower bounds, flow times above independent
bounds), so a wrong number fails here as an error in a cell.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

import ocsnet

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_fabrics.ipynb", "02_ocs_schedule.ipynb", "03_lite_vs_h100.ipynb"]
KERNEL = "python3"
CELL_TIMEOUT_S = 300
# Commands that jupyter_client replaces by the interpreter running it (sys.executable).
_SELF_COMMANDS = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}


def _kernel_prefix() -> Path | None:
    """The ``sys.prefix`` the ``python3`` kernelspec would run in, or None if there is none."""
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return None
    exe = spec.argv[0] if spec.argv else ""
    if exe in _SELF_COMMANDS:
        return Path(sys.prefix).resolve()
    if not Path(exe).is_file():
        return None
    out = subprocess.run([exe, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, timeout=60)
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 else None


@pytest.fixture(scope="module")
def kernel_env():
    """Environment of the kernels: Agg backend, this environment's kernelspec first, and one that runs it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MPLBACKEND", "Agg")
    mp.setenv("JUPYTER_PREFER_ENV_PATH", "1")          # the environment's kernelspecs before the user's
    mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")   # quiet the kernel debugger's frozen-modules note
    if _kernel_prefix() != Path(sys.prefix).resolve():
        done = subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"installing the python3 kernelspec failed: {done.stderr}"
    assert _kernel_prefix() == Path(sys.prefix).resolve(), \
        "the python3 kernelspec does not run this environment's interpreter"
    yield
    mp.undo()


def _execute(nb, workdir: Path):
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return nb


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_kernel_runs_this_environment(kernel_env, tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, os, sys\n"
        "import matplotlib, ocsnet\n"
        "print(json.dumps({'prefix': sys.prefix, 'ocsnet': ocsnet.__file__,\n"
        "                  'backend': matplotlib.get_backend(), 'cwd': os.getcwd()}))")])
    _execute(nb, tmp_path)
    out = json.loads(nb.cells[0].outputs[0]["text"])
    assert Path(out["prefix"]).resolve() == Path(sys.prefix).resolve()
    assert Path(out["ocsnet"]).resolve() == Path(ocsnet.__file__).resolve()
    assert out["backend"].lower() == "agg"
    assert Path(out["cwd"]).resolve() == tmp_path.resolve()


def test_kernel_reports_errors(kernel_env, tmp_path):
    # The harness must be able to fail: a failing cell raises.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("assert 1 + 1 == 3, 'arithmetic'")])
    with pytest.raises(Exception, match="arithmetic"):
        _execute(nb, tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_saved_without_outputs(name):
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and any(c.cell_type == "markdown" for c in nb.cells)
    for c in code:
        assert c.outputs == [] and c.execution_count is None, f"{name}: cell {c.get('id')} was saved with outputs"
    text = path.read_text()
    assert str(ROOT) not in text and str(Path.home()) not in text, f"{name}: holds a machine-specific path"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, kernel_env, tmp_path):
    before = _tree(NOTEBOOKS)
    work = tmp_path / "notebooks"
    work.mkdir()
    copy = work / name
    shutil.copyfile(NOTEBOOKS / name, copy)
    nb = nbformat.read(copy, as_version=4)
    t0 = time.perf_counter()
    _execute(nb, work)
    elapsed = time.perf_counter() - t0
    print(f"{name}: {elapsed:.1f} s")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any(o.output_type == "stream" and o.get("name") == "stdout" for c in code for o in c.outputs), \
        f"{name}: printed nothing"
    assert sorted(p.name for p in work.iterdir()) == [name], f"{name}: wrote files into its working folder"
    assert _tree(NOTEBOOKS) == before, f"{name}: changed the repository's notebooks folder"
