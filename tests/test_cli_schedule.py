"""`ocsnet schedule` through ocsnet.cli.main, and the scenario files it reads."""

import json

import numpy as np
import pytest

from ocsnet.cli import main
from ocsnet.errors import SpecError
from ocsnet.plot import schedule_gantt, schedule_intervals
from ocsnet.schedule import Schedule, validate
from ocsnet.schedule.scenario import build_problem, list_scenarios, load_scenario, synthetic_demand

SMALL = "small-ring-synthetic"


def write(tmp_path, name, text):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return str(p)


GOOD = """
description = "test"
[fabric]
n_gpus = 8
ports_per_gpu = 2
ocs = "fast-ocs"
[synthetic]
pattern = "permutation"
n_gpus = 8
phases = 4
message_MB = 1.0
gap_us = 1.0
seed = 3
"""


def test_solve_prints_the_summary_and_writes_json(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["schedule", "solve", SMALL, "--method", "heuristic", "-o", str(out)]) == 0
    cap = capsys.readouterr()
    for label in ("makespan_ms", "lower_bound_ms", "gap_pct", "reconfigurations", "exposed_reconfig_ms",
                  "hidden_reconfig_ms"):
        assert label in cap.out
    assert "[schedule]" in cap.err                      # progress goes to stderr
    s = Schedule.load(out)
    prob = build_problem(SMALL)
    assert validate(prob, s).ok
    # The printed makespan is the schedule's.
    line = next(x for x in cap.out.splitlines() if "makespan_ms" in x)
    assert float(line.split()[-1]) == pytest.approx(s.makespan_s * 1e3, rel=1e-5)


def test_check_accepts_a_valid_schedule_and_rejects_a_tampered_one(tmp_path, capsys):
    path = write(tmp_path, "perm", GOOD)
    out = tmp_path / "s.json"
    assert main(["schedule", "solve", path, "--method", "per-phase", "--reconfig-delay", "20us", "-o", str(out)]) == 0
    assert main(["schedule", "check", path, str(out)]) == 0
    assert "valid" in capsys.readouterr().out
    d = json.loads(out.read_text())
    d["configs"][0]["circuits"] = [c + 5 for c in d["configs"][0]["circuits"]]     # exceeds the ports
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    assert main(["schedule", "check", path, str(bad)]) == 1
    text = capsys.readouterr().out
    assert "INVALID" in text and "ports" in text
    # A schedule solved for one delay does not check against another without its makespan changing.
    assert main(["schedule", "check", path, str(out), "--reconfig-delay", "1ms"]) == 1


def test_reconfig_delay_override_changes_the_result(capsys):
    assert main(["schedule", "solve", "small-permutation-synthetic", "--method", "per-phase",
                 "--reconfig-delay", "10ns"]) == 0
    fast = capsys.readouterr().out
    assert main(["schedule", "solve", "small-permutation-synthetic", "--method", "per-phase"]) == 0
    slow = capsys.readouterr().out

    def ms(text):
        return float(next(x for x in text.splitlines() if "makespan_ms" in x).split()[-1])
    assert ms(fast) < ms(slow)


def test_plot_writes_an_image(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["schedule", "solve", "small-permutation-synthetic", "--method", "per-phase", "-o", str(out)]) == 0
    png = tmp_path / "g.png"
    assert main(["schedule", "plot", str(out), "-o", str(png)]) == 0
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, msg", [
    (["schedule", "solve", "no-such-scenario"], "unknown name"),
    (["schedule", "solve", SMALL, "--time-limit", "ten"], "--time-limit"),
    (["schedule", "solve", SMALL, "--reconfig-delay", "5 parsecs"], "--reconfig-delay"),
    (["schedule", "solve", SMALL, "--max-slots", "0"], "--max-slots"),
    (["schedule", "check", SMALL, "missing.json"], "no such file"),
    (["schedule", "plot", "missing.json", "-o", "x.png"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0] and "Traceback" not in err[0]


def test_malformed_schedule_json_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    assert main(["schedule", "check", SMALL, str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_list_names_every_scenario(capsys):
    assert main(["schedule", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_scenarios():
        assert name in out


# --- scenario files ----------------------------------------------------------------------------


def test_shipped_scenarios_load_and_cover_the_required_cases():
    names = list_scenarios()
    for mode in ("decode", "prefill"):
        for delay in ("ns", "us", "ms"):
            assert f"llama3-405b-{mode}-{delay}" in names
    assert any("a2a" in n for n in names)
    delays = {}
    for n in names:
        sc = load_scenario(n)
        assert sc.description
        if n.startswith("llama3-405b"):
            delays[n[-2:]] = sc.fabric["ocs"]
    assert delays == {"ns": "ns-ocs", "us": "fast-ocs", "ms": "mems-3d"}


@pytest.mark.parametrize("edit, msg", [
    (("[fabric]", "[fabric]\nbogus = 1"), "fabric.bogus: unknown key"),
    (('pattern = "permutation"', 'pattern = "spiral"'), "pattern"),
    (("message_MB = 1.0\n", ""), "missing required key 'message_MB'"),
    (("n_gpus = 8\nports_per_gpu = 2", "n_gpus = 8"), "missing required key 'ports_per_gpu'"),
    (("description", "colour = 1\ndescription"), "colour: unknown key"),
    (("[synthetic]", "[ocs]\nreconfig_delay_us = -5\n[synthetic]"), "reconfig_delay_us"),
    (("[synthetic]", "[ocs]\nports_per_gpu = \"two\"\n[synthetic]"), "ports_per_gpu: expected int"),
    (("[synthetic]", "[solve]\nmethod = \"guess\"\n[synthetic]"), "solve.method"),
    (("[synthetic]", '[workload]\nmodel = "llama3-405b"\n[synthetic]'), "exactly one of"),
])
def test_scenario_parsing_is_strict(tmp_path, edit, msg):
    path = write(tmp_path, "s", GOOD.replace(*edit, 1))
    with pytest.raises(SpecError, match=msg):
        load_scenario(path)


def test_scenario_ocs_overrides_reach_the_problem(tmp_path):
    text = GOOD.replace("[synthetic]", "[ocs]\nreconfig_delay_us = 3\ncircuit_bandwidth_GBps = 40\n"
                        "packet_bandwidth_GBps = 5\npartial_reconfig = true\n[synthetic]", 1)
    prob = build_problem(load_scenario(write(tmp_path, "o", text)))
    assert prob.reconfig_delay_s == pytest.approx(3e-6)
    assert prob.circuit_Bps == pytest.approx(40e9)
    assert prob.packet_Bps == pytest.approx(5e9)
    assert prob.partial_reconfig
    assert build_problem(load_scenario(write(tmp_path, "o", text)), reconfig_delay_s=1e-3).reconfig_delay_s == 1e-3


def test_synthetic_patterns_have_the_stated_shape():
    n, G = 12, 4
    ring = synthetic_demand("ring", n, 2, 5.0, group=G)[0].toarray()
    assert (ring.sum(1) == 5.0).all() and ring[3, 0] == 5.0 and ring[0, 1] == 5.0
    a2a = synthetic_demand("all-to-all", n, 1, 1.0, group=G)[0].toarray()
    assert ((a2a > 0).sum(1) == G - 1).all() and a2a[0, 4] == 0
    bi = synthetic_demand("bidirectional-ring", n, 1, 2.0, group=G)[0].toarray()
    assert np.allclose(bi.sum(1), 2.0) and bi[0, 1] == 1.0 and bi[0, 3] == 1.0
    for M in synthetic_demand("permutation", n, 3, 1.0, group=G, seed=1):
        A = M.toarray()
        assert (A.sum(1) <= 1).all() and (A.sum(0) <= 1).all() and (np.diag(A) == 0).all()
    with pytest.raises(SpecError, match="group"):
        synthetic_demand("ring", 10, 1, 1.0, group=4)


def test_gantt_intervals_add_up():
    prob = build_problem("small-permutation-synthetic")
    from ocsnet.schedule import solve
    s = solve(prob, "per-phase")
    iv = schedule_intervals(s)
    # Gaps plus slots tile [0, makespan]; exposed plus hidden reconfiguration is delta per change.
    assert iv["gap_len"].sum() + iv["slot_len"].sum() == pytest.approx(s.makespan_s)
    assert iv["exposed_len"].sum() == pytest.approx(s.exposed_reconfig_s)
    assert iv["hidden_len"].sum() + iv["exposed_len"].sum() == pytest.approx(
        s.n_reconfigurations * prob.reconfig_delay_s)
    ax = schedule_gantt(s)
    assert ax.get_xlabel().startswith("time")
