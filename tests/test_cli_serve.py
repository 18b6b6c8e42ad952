"""`ocsnet serve` through ocsnet.cli.main: the percentile table, goodput, the split, one-line errors with exit 2."""

import json

import pytest

from ocsnet.cli import main

BASE = ["serve", "--model", "llama3-70b", "--fabric", "small-fat-tree", "--gpu", "h100-sxm", "--tp", "4",
        "--fidelity", "alpha-beta"]


def test_percentiles_and_goodput(capsys):
    rc = main(BASE + ["--replicas", "2", "--rate", "4", "--requests", "300", "--goodput"])
    out = capsys.readouterr().out
    assert rc == 0, out
    for s in ("ttft", "tpot", "e2e", "p99_ms", "SLO llama2-70b (p99 TTFT <= 2 s, TPOT <= 200 ms)", "goodput:"):
        assert s in out


def test_split_json(capsys):
    rc = main(BASE + ["--requests", "200", "--rate", "2", "--split", "4", "--json", "--ttft", "3s", "--tpot", "100ms",
                      "--percentile", "90"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["slo"] == {"name": "custom", "ttft_ms": 3000.0, "tpot_ms": 100.0, "percentile": 90.0}
    assert out["transfer"]["bandwidth_GBps"] > 0 and out["result"]["requests"] == 200


def test_write_then_replay_a_synthetic_trace(tmp_path, capsys):
    p = tmp_path / "syn.csv"
    assert main(BASE + ["--requests", "50", "--rate", "3", "--write-trace", str(p), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["result"]
    assert p.read_text().splitlines()[0] == "TIMESTAMP,ContextTokens,GeneratedTokens"
    assert main(BASE + ["--trace", str(p), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["result"]
    assert again["requests"] == 50 and again["ttft_p99_ms"] == pytest.approx(first["ttft_p99_ms"], rel=1e-6)


def test_trace_file(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n0.5,200,20\n1.0,300,5\n")
    rc = main(BASE + ["--trace", str(p)])
    assert rc == 0 and "requests: 3" in capsys.readouterr().out


@pytest.mark.parametrize("extra, msg", [
    (["--slo", "nope"], "slo: 'nope' is not a preset"),
    (["--ttft", "1s", "--tpot", "10ms"], "--percentile"),
    (["--ttft", "1s"], "--ttft/--tpot"),
    (["--rate", "-3"], "--rate"),
    (["--replicas", "0"], "--replicas"),
    (["--chunk", "-1"], "--chunk"),
    (["--tp", "x"], "--tp"),
    (["--trace", "MISSING.csv"], "no such file"),
    (["--workload", "nope"], "workload"),
    (["--ttft", "fast", "--tpot", "1ms", "--percentile", "99"], "--ttft"),
    (["--ttft", "1s", "--tpot", "1ms", "--percentile", "0"], "percentile"),
])
def test_bad_input_is_one_line(extra, msg, capsys):
    try:
        rc = main(BASE + extra)
    except SystemExit as e:          # argparse rejects a flag value before the command runs
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_trace_rows(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n1,100,10\n0,200,20\n")
    assert main(BASE + ["--trace", str(p)]) == 2
    assert "line 3: TIMESTAMP" in capsys.readouterr().err


def test_pool_that_cannot_hold_a_request(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n1,500000,300000\n")
    assert main(BASE + ["--trace", str(p)]) == 2
    err = capsys.readouterr().err
    assert "request 1 needs 800000 tokens of KV cache" in err
