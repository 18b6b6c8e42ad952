"""``ocsnet flow``: outputs, determinism and one-line errors with exit status 2."""

import json

import numpy as np
import pytest

from ocsnet.cli import main
from ocsnet.flow import pattern_demand, phase_time
from test_flow_fabrics import fat_tree, ring


@pytest.fixture
def fabric_file(tmp_path):
    io = pytest.importorskip("ocsnet.topology.io")
    path = tmp_path / "ft4.json"
    io.write(fat_tree(4, cap=1e9, lat=1e-6), path)
    return str(path)


def test_pattern_tables(fabric_file, capsys):
    rc = main(["flow", "--fabric", fabric_file, "--traffic", "all-to-all", "--size", "1MB"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "240 flows" in out and "phase time:" in out and "flow completion: max" in out
    assert "utilization_%" in out and "checks: OK" in out


def test_json_is_deterministic_and_right(fabric_file, capsys):
    args = ["flow", "--fabric", fabric_file, "--traffic", "permutation", "--seed", "3", "--routing", "shortest",
            "--json"]
    assert main(args) == 0
    one = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == one
    doc = json.loads(one)
    want = phase_time(fat_tree(4, cap=1e9, lat=1e-6), pattern_demand("permutation", 16, 1e6, seed=3),
                      routing="shortest")
    assert doc["phase_time_s"] == pytest.approx(want.time_s, rel=1e-12)
    assert doc["n_flows"] == 16 and doc["checks"]["ok"] is True
    assert len(doc["busiest_links"]) == 5


def test_budgets_fail_with_status_1(fabric_file, capsys):
    rc = main(["flow", "--fabric", fabric_file, "--traffic", "incast", "--size", "1MB", "--budget-time", "1ms",
               "--budget-bandwidth", "100GBps", "--fidelity", "alpha-beta"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "phases above their time budget: 1" in out and "links above capacity" in out
    assert "flows below their bandwidth budget: 15" in out


def test_trace_file(tmp_path, capsys):
    Trace = pytest.importorskip("ocsnet.traffic").Trace
    io = pytest.importorskip("ocsnet.topology.io")
    fab = tmp_path / "ring.json"
    io.write(ring(4), fab)
    d = pattern_demand("ring", 4, 1e6)
    tr = tmp_path / "t.npz"
    Trace([d, d, pattern_demand("all-to-all", 4, 1e5)], [1e-4, 2e-4, 0.0]).save(tr)
    assert main(["flow", "--fabric", str(fab), "--traffic", str(tr), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_phases"] == 3
    t_ring = 1e6 / 1e9 + 1e-6
    assert doc["phase_time"]["max_s"] >= t_ring
    t_a2a = phase_time(ring(4), pattern_demand("all-to-all", 4, 1e5)).time_s
    assert doc["makespan_s"] == pytest.approx(3e-4 + 2 * t_ring + t_a2a, rel=1e-12)
    assert main(["flow", "--fabric", str(fab), "--traffic", str(tr), "--budget-time", "1.0005ms"]) == 1
    out = capsys.readouterr().out
    assert "makespan:" in out and "phases above their time budget: 2" in out


@pytest.mark.parametrize("argv,msg", [
    (["--traffic", "nope"], "neither a pattern"),
    (["--traffic", "ring", "--size", "12parsecs"], "--size"),
    (["--traffic", "ring", "--budget-time", "fast"], "--budget-time"),
    (["--traffic", "ring", "--budget-bandwidth", "1Gparsec"], "--budget-bandwidth"),
    (["--traffic", "ring", "--top", "-1"], "--top"),
])
def test_bad_input_is_one_line_exit_2(fabric_file, capsys, argv, msg):
    assert main(["flow", "--fabric", fabric_file] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ocsnet flow: error:") and msg in err and err.count("\n") == 1


def test_unknown_fabric_and_unroutable(tmp_path, capsys):
    assert main(["flow", "--fabric", "no-such-spec-anywhere", "--traffic", "ring"]) == 2
    assert capsys.readouterr().err.startswith("ocsnet flow: error:")
    io = pytest.importorskip("ocsnet.topology.io")
    from ocsnet.fabric import Fabric
    split = Fabric(["gpu"] * 4, [0, 1, 2, 3], [1, 0, 3, 2], 1e9, 1e-6, "cpo")
    path = tmp_path / "split.json"
    io.write(split, path)
    assert main(["flow", "--fabric", str(path), "--traffic", "ring"]) == 2
    err = capsys.readouterr().err
    assert "no path" in err and err.count("\n") == 1
    # GPUs of a switchless fabric forward by default; refusing that leaves a ring with no 2-hop paths
    rpath = tmp_path / "ring.json"
    io.write(ring(6), rpath)
    assert main(["flow", "--fabric", str(rpath), "--traffic", "all-to-all", "--gpu-forwarding", "no"]) == 2
    assert "no path" in capsys.readouterr().err
