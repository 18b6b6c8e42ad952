"""`ocsnet traffic` through ocsnet.cli.main: the table, the trace file, one-line errors with exit 2."""

import pytest

from ocsnet.cli import main
from ocsnet.traffic import Trace


def test_table_without_fabric(capsys):
    rc = main(["traffic", "--model", "llama3-405b", "--mode", "decode", "--tp", "16", "--pp", "4",
               "--batch", "64", "--context", "4096", "--gpu", "lite-base"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "llama3-405b decode on lite-base: tp=16 pp=4 dp=1 (64 GPUs)" in out
    for h in ("op", "GFLOPs", "hbm_MB", "time_us", "bound", "collective", "group_size", "coll_MB", "algorithm"):
        assert h in out
    assert "out-proj" in out and "all-reduce" in out and "memory" in out
    assert "stage_layers: 32 32 31 31" in out and "pp send-recv" in out
    assert "needs" not in out and "of 20 GB per GPU" in out


def test_fabric_trace_and_output(tmp_path, capsys):
    f = tmp_path / "t.npz"
    rc = main(["traffic", "--model", "llama3-70b", "--mode", "decode", "--tp", "8", "--pp", "2", "--batch", "4",
               "--context", "1024", "--fabric", "small-ocs", "--algorithm", "all-reduce=rhd", "-o", str(f)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "## trace over small-ocs (16 GPUs" in out and f"saved: {f}" in out
    t = Trace.load(f)
    assert t.n_gpus == 16 and t.meta["algorithms"]["all-reduce"] == "rhd" and t.meta["plan"]["dp"] == 1
    assert f"phases: {len(t)};" in out


def test_train_with_grad_sync(capsys):
    rc = main(["traffic", "--model", "gpt3-175b", "--mode", "train", "--tp", "8", "--pp", "8", "--dp", "2",
               "--batch", "1", "--seq-len", "2048", "--micro-batches", "4", "--sp", "--grad-sync", "reduce-scatter"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "bwd:mlp" in out and "reduce-scatter" in out and "grad sync: all-gather over dp" in out


@pytest.mark.parametrize("argv,msg", [
    (["--model", "llama3-406b", "--mode", "decode", "--batch", "1", "--context", "8"], "unknown name 'llama3-406b'"),
    (["--model", "llama3-405b", "--mode", "decode", "--tp", "12", "--batch", "1", "--context", "8"],
     "tp: 12 does not divide llama3-405b's attention_heads = 128"),
    (["--model", "llama3-405b", "--mode", "decode", "--tp", "8", "--batch", "64", "--context", "4096",
      "--gpu", "lite-base"], "memory: llama3-405b with tp=8 pp=1 dp=1 on lite-base needs"),
    (["--model", "llama3-70b", "--mode", "decode", "--batch", "1", "--context", "8", "-o", "x.npz"], "needs --fabric"),
    (["--model", "llama3-70b", "--mode", "decode", "--batch", "1", "--context", "8", "--algorithm", "ring"],
     "must be KIND=ALG"),
    (["--model", "llama3-70b", "--mode", "decode", "--batch", "1", "--context", "8", "--algorithm",
      "all-reduce=magic"], "'magic' is not supported for all-reduce"),
    (["--model", "llama3-70b", "--mode", "decode", "--batch", "1"], "context: decode needs"),
    (["--model", "llama3-70b", "--mode", "decode", "--tp", "8", "--batch", "1", "--context", "8",
      "--fabric", "small-ocs", "--dp", "4"], "needs 32 GPUs, fabric 'small-ocs' has 16"),
    (["--model", "llama3-70b", "--mode", "decode", "--batch", "1", "--context", "8", "--fabric", "no-such-spec"],
     "no-such-spec"),
    (["--model", "llama3-70b", "--mode", "decode", "--batch", "1", "--context", "8", "--ep", "2", "--dp", "2"],
     "ep: 2 > 1 but llama3-70b is dense"),
])
def test_bad_input_one_line_exit_2(argv, msg, capsys):
    rc = main(["traffic", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert msg in err
    assert err.count("\n") == 1 and err.startswith("ocsnet traffic: error:") and "Traceback" not in err
