"""``ocsnet faults``: inject, blast, availability; deterministic JSON; one-line errors with exit 2."""

import json
import random

import pytest

from ocsnet.cli import main
from ocsnet.faults import degrade
from ocsnet.flow import pattern_demand, phase_time
from ocsnet.cli.topo import load_fabric as load_spec


def test_inject_torus_with_traffic(capsys):
    rc = main(["faults", "inject", "small-torus", "--fail", "gpu:3,link:0-1", "--traffic", "all-to-all", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gpus_failed"] == 1 and doc["flows_unreachable"] == 30      # 15 to GPU 3 and 15 from it
    f = load_spec("small-torus")
    before = phase_time(f, pattern_demand("all-to-all", f.n_gpus, 1e6)).time_s
    assert doc["phase_time_before_s"] == pytest.approx(before, rel=1e-12)
    assert doc["phase_time_after_s"] > 0


def test_inject_is_deterministic_and_reports_cut_off(capsys):
    args = ["faults", "inject", "small-fat-tree", "--fail", "switch:leaf-0", "--json", "--bisection"]
    assert main(args) == 0
    one = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == one
    doc = json.loads(one)
    dg = degrade(load_spec("small-fat-tree"), "switch:leaf-0")
    assert doc["gpus_cut_off"] == len(dg.cut_off) > 0
    assert doc["bisection_after_Bps"] <= doc["bisection_before_Bps"]


def test_inject_ocs_ports(capsys):
    assert main(["faults", "inject", "small-ocs", "--fail", "plane:1,port:5/0"]) == 0
    out = capsys.readouterr().out
    assert "optical ports lost" in out and "GPUs with fewer ports: 1" in out


def test_blast_and_availability(capsys):
    assert main(["faults", "blast", "small-torus", "--gpus-per-replica", "4", "--component", "gpu:5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["replicas_stopped"] == [1] and doc["gpus"] == 4
    assert main(["faults", "blast", "small-torus", "--gpus-per-replica", "4"]) == 0
    assert "share_mean_%" in capsys.readouterr().out
    assert main(["faults", "availability", "small-ocs", "--gpus-per-replica", "4", "--policy", "ocs",
                 "--spares", "2", "--days", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert 0 <= doc["monte_carlo"]["lost_share"] <= 1 and doc["analytic"]["p_spare"] > 0.9


@pytest.mark.parametrize("args, msg", [
    (["inject", "small-torus", "--fail", "gpu:99"], "gpu:99: no such GPU rank"),
    (["inject", "small-torus", "--fail", "switch:spine-0"], "switch:spine-0"),
    (["inject", "small-torus", "--fail", "gpu:1", "--traffic", "nope"], "--traffic"),
    (["inject", "small-ocs", "--fail", "gpu:1", "--traffic", "ring"], "--traffic"),
    (["blast", "small-torus", "--gpus-per-replica", "0"], "gpus_per_replica"),
    (["blast", "small-torus", "--gpus-per-replica", "4", "--component", "host:99"], "host:99"),
    (["availability", "small-torus", "--gpus-per-replica", "4", "--spares", "99", "--policy", "spares"], "spares"),
    (["availability", "small-torus", "--gpus-per-replica", "4", "--comm-fraction", "2"], "comm_fraction"),
    (["availability", "small-torus", "--gpus-per-replica", "4", "--days", "0"], "days"),
    (["availability", "small-torus", "--gpus-per-replica", "4", "--policy", "ocs", "--spares", "1"], "OCS"),
])
def test_bad_input_one_line(args, msg, capsys):
    assert main(["faults", *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_fuzz_fail_spec(capsys):
    rng = random.Random(11)
    alphabet = "gpulinkswtchaeors:-~>/,0123456789 "
    specs = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(80)]
    specs += ["gpu:1,gpu:1", "link:0~1", "link:0>1", "port:0/0", "plane:0", "host:0", "switch:nvswitch-0", ","]
    for spec in specs:
        rc = main(["faults", "inject", "small-torus", "--fail", spec])
        out = capsys.readouterr()
        assert rc in (0, 2), spec
        if rc == 2:
            assert out.err.count("\n") == 1 and "Traceback" not in out.err, spec


def test_resolve_scenario(capsys):
    assert main(["faults", "resolve", "small-ring-synthetic", "--fail", "port:3/0,plane:1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["makespan_s"] >= doc["lower_bound_after_s"] * (1 - 1e-9)
    assert doc["makespan_s"] >= doc["old_makespan_s"] * (1 - 1e-9)     # fewer ports never help
    assert doc["repair_makespan_s"] is not None and doc["scratch_makespan_s"] is not None
    assert main(["faults", "resolve", "small-ring-synthetic", "--fail", "host:1"]) == 2
    assert "resolve takes port" in capsys.readouterr().err
