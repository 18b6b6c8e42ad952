"""ocsnet validate through ocsnet.cli.main: table, summary, JSON, exit status 0 / 1 / 2."""

import json
import re

import ocsnet.flow
from ocsnet.cli import main


def test_quick_prints_table_and_summary_and_exits_0(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                       # works from any directory
    assert main(["validate", "--quick"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["check", "quantity", "ocsnet", "reference"]
    m = re.fullmatch(r"validation: (\d+) checks, (\d+) agree, 0 disagree \(quick\)", out[-1])
    assert m and m.group(1) == m.group(2) and int(m.group(1)) == len(out) - 3
    assert not any(re.fullmatch(r"\s*\d+ passed, \d+ failed\s*", line) for line in out)
    assert sum("agree" in line for line in out[2:-1]) == int(m.group(1))


def test_json_and_output_file_agree(capsys, tmp_path):
    path = tmp_path / "v.json"
    assert main(["validate", "--quick", "--only", "fat-tree", "--only", "flops", "--json", "-o", str(path)]) == 0
    printed = capsys.readouterr().out
    assert printed == path.read_text()
    d = json.loads(printed)
    assert d["ok"] and {c["group"] for c in d["checks"]} == {"fat-tree", "flops"}
    assert all("time_ms" not in c for c in d["checks"])
    assert main(["validate", "--quick", "--only", "fat-tree", "-o", str(path), "--timing", "-v"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {path}" in out and "    what: " in out
    assert all("time_ms" in c for c in json.loads(path.read_text())["checks"])


def test_a_disagreement_exits_1_and_shows_why(capsys, monkeypatch):
    real = ocsnet.flow.max_min_fair
    monkeypatch.setattr(ocsnet.flow, "max_min_fair", lambda *a, **k: real(*a, **k) * 1.01)
    assert main(["validate", "--quick", "--only", "flow"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREE" in out and "validation: 2 checks, 0 agree, 2 disagree (quick)" in out
    assert "    note: " in out


def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path):
    assert main(["validate", "--quick", "--only", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ocsnet validate: error: --only: 'nope'")
    assert main(["validate", "--quick", "--only", "fat-tree", "-o", str(tmp_path / "no" / "such" / "dir.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output" in err[0]
    assert main(["validate", "--quick", "--only", "flow", "--seed", "-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed" in err[0]
