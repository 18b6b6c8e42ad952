"""User folders (OCSNET_PATH, --path, load_catalog): the README's worked example, overrides, strict checks."""

import json
import re
import shlex
from pathlib import Path

import pytest

from ocsnet import folders, hardware
from ocsnet.cli import main
from ocsnet.errors import SpecError
from ocsnet.workload import models

README = Path(__file__).resolve().parents[1] / "README.md"

H100 = hardware.gpu("h100-sxm")


def _readme_example():
    text = README.read_text().split("## Installing, and extending with your own files", 1)[1].split("\n## ", 1)[0]
    files = {b.splitlines()[0][2:].strip(): b for b in re.findall(r"```toml\n(# mylab/.*?)```", text, re.S)}
    sh = re.findall(r"```sh\n(.*?)```", text, re.S)[-1]
    cmds = [line.split("  #")[0].strip() for line in sh.splitlines() if "ocsnet" in line]
    return files, cmds


def _write(root: Path, files: dict) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_readme_worked_example_runs(tmp_path, monkeypatch, capsys):
    files, cmds = _readme_example()
    assert {"mylab/catalog/gpus.toml", "mylab/topologies/a100-dgx.toml", "mylab/studies/a100-vs-lite.toml"} <= set(files)
    _write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    assert len(cmds) == 4
    outs = []
    for cmd in cmds:
        argv = shlex.split(cmd)
        env = [a for a in argv if "=" in a and a.split("=")[0].isupper()]
        for a in env:
            monkeypatch.setenv(*a.split("=", 1))
        argv = [a for a in argv if a not in env]
        assert argv[0] == "ocsnet"
        assert main(argv[1:]) == 0, cmd
        outs.append(capsys.readouterr().out)
        for a in env:
            monkeypatch.delenv(a.split("=")[0])
    assert "a100-40gb" in outs[0] and "this example: a third of the die" in outs[0]
    assert re.search(r"n_gpus\s+32\b", outs[1]) and re.search(r"gpu\s+a100-40gb", outs[1])
    assert re.search(r"n_gpus\s+96\b", outs[2]) and re.search(r"gpu\s+lite-a100-third", outs[2])
    assert "Lite a100-third / OCS" in outs[3] and "A100 DGX" in outs[3]
    cfg = json.loads((tmp_path / "report-a100" / "config.json").read_text())
    assert cfg["models"] == ["llama3-70b"] and cfg["baseline"]["gpu"] == "a100-40gb"
    # the folder is gone once the command returns: nothing leaks into the next call
    assert "a100-40gb" not in hardware.gpus()


def test_user_gpu_is_derived_like_a_builtin(tmp_path):
    files, _ = _readme_example()
    _write(tmp_path, files)
    added = hardware.load_catalog(tmp_path / "mylab" / "catalog" / "gpus.toml")
    try:
        assert added == {"gpus": ["a100-40gb", "lite-a100-third"]}
        a100, lite = hardware.gpu("a100-40gb"), hardware.gpu("lite-a100-third")
        assert a100.bf16_flops == 312e12 and a100.hbm_bytes == 40e9 and a100.scaleup_Bps == 300e9
        assert lite.bf16_flops == pytest.approx(0.333 * 312e12)
        from ocsnet import silicon
        d = silicon.lite_design(a100, 0.333)                      # the silicon model's shoreline at CPO density
        assert lite.scaleout_Bps == pytest.approx(d.network_Bps) and lite.scaleup_Bps == 0
        assert lite.scaleout_Bps > 300e9 * 0.333 / 0.333 ** 0.5   # at least the parent's own escape density
        assert hardware.catalog_entries("gpus")["a100-40gb"][1].endswith("gpus.toml")
    finally:
        folders.remove_path(tmp_path / "mylab" / "catalog" / "gpus.toml")
    assert "a100-40gb" not in hardware.gpus()


def _gpu_toml(name="my-gpu", **changes):
    fields = {"description": '"test GPU"', "bf16_dense_TFLOPs": "100", "fp8_dense_TFLOPs": "200", "hbm_GB": "10",
              "hbm_bandwidth_GBps": "1000", "scaleup_bandwidth_GBps": "100", "scaleout_bandwidth_GBps": "10",
              "tdp_W": "300", "die_area_mm2": "400", "compute_efficiency": "0.7", "memory_efficiency": "0.8",
              "relative_cost": "0.5"}
    drop_source = changes.pop("drop_source", None)
    fields.update(changes)
    body = "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)
    src = "".join(f'{k} = "test"\n' for k, v in fields.items()
                  if v is not None and k != "description" and k != drop_source and not v.startswith('"'))
    return f"[{name}]\n{body}\n[{name}.source]\n{src}"


def test_user_entry_overrides_builtin_and_says_so_once(tmp_path, monkeypatch, capsys):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "gpus.toml").write_text(_gpu_toml("h100-sxm", hbm_GB="96"))
    monkeypatch.setenv("OCSNET_PATH", str(tmp_path))
    capsys.readouterr()
    assert hardware.gpu("h100-sxm").hbm_bytes == 96e9
    assert hardware.gpu("lite-base").hbm_bytes == pytest.approx(0.25 * 96e9)     # derived from the new parent
    hardware.gpus()
    err = capsys.readouterr().err
    assert err.count("catalog gpus entry 'h100-sxm'") == 1 and "overrides the built-in" in err
    assert main(["catalog", "show", "h100-sxm"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "catalog" / "gpus.toml") in out and "96" in out
    monkeypatch.delenv("OCSNET_PATH")
    assert hardware.gpu("h100-sxm") == H100


@pytest.mark.parametrize("filename,text,match", [
    ("gpus.toml", "[broken\n", r"gpus.toml: not valid TOML"),
    ("gpus.toml", _gpu_toml(drop_source="hbm_GB"), r"gpus.toml: gpus.my-gpu.hbm_GB: number has no source"),
    ("gpus.toml", _gpu_toml(hbm_GB=None, hbm_TB="0.01"), r"gpus.my-gpu: unknown key 'hbm_TB' \(wrong unit: write hbm_GB\)"),
    ("gpus.toml", _gpu_toml(hbm_GB='"80 GB"'), r"gpus.my-gpu.hbm_GB: expected a number, got str"),
    ("gpus.toml", _gpu_toml(hbm_GB="nan"), r"gpus.my-gpu.hbm_GB: got NaN"),
    ("gpus.toml", _gpu_toml(tdp_W="inf"), r"gpus.my-gpu.tdp_W: inf is not finite"),
    ("gpus.toml", _gpu_toml(tdp_W="-3"), r"gpus.my-gpu.tdp_W: -3 is out of range, allowed \[0, inf\)"),
    ("gpus.toml", _gpu_toml(relative_cost=None), r"gpus.my-gpu: missing required key 'relative_cost'"),
    ("gpus.toml", _gpu_toml(colour='"red"'), r"gpus.my-gpu: unknown key 'colour'"),
    ("gpus.toml", _gpu_toml(description="3"), r"gpus.my-gpu.description: expected a string"),
    ("gpus.toml", "hbm_GB = 3\n", r"gpus.toml: hbm_GB: expected a table \[hbm_GB\]"),
    ("accelerators.toml", _gpu_toml(), r"accelerators.toml: a catalog file is named after the kind"),
    ("gpus.toml", '[lite-x]\ndescription = "x"\nparent = "nope"\nfraction = 0.5\n[lite-x.source]\nfraction = "t"\n',
     r"gpus.lite-x.parent: unknown GPU 'nope'"),
    ("gpus-lite.toml", '[lite-x]\ndescription = "x"\nparent = "h100-sxm"\nfraction = 2\n[lite-x.source]\nfraction = "t"\n',
     r"gpus-lite.toml: gpus.lite-x.fraction: 2 is out of range"),
    ("gpus-lite.toml", '[lite-x]\ndescription = "x"\nparent = "h100-sxm"\nfraction = 0.5\nclock = 9\n'
     '[lite-x.source]\nfraction = "t"\nclock = "t"\n', r"gpus-lite.toml: gpus.lite-x.clock: 9.0 is beyond the voltage curve"),
    ("gpus-lite.toml", '[lite-x]\ndescription = "x"\nparent = "h100-sxm"\nfraction = 0.5\nio = "smoke"\n'
     '[lite-x.source]\nfraction = "t"\n', r"gpus-lite.toml: gpus.lite-x.io: 'smoke' is not one of"),
    ("links.toml", '[l]\ntech = "laser"\ndescription = "d"\nbandwidth_Gbps = 1\nlatency_ns = 1\nenergy_pJ_per_bit = 1\n'
     'reach_m = 1\nrelative_cost = 1\n[l.source]\nbandwidth_Gbps = "t"\nlatency_ns = "t"\nenergy_pJ_per_bit = "t"\n'
     'reach_m = "t"\nrelative_cost = "t"\n', r"links.toml: links.l.tech: 'laser' is not one of"),
    ("ocs-mine.toml", '[o]\ndescription = "d"\nports = 2.5\ninsertion_latency_ns = 1\nreconfig_delay_us = 1\n'
     'insertion_loss_dB = 1\npower_W = 1\nrelative_cost = 1\n[o.source]\nports = "t"\ninsertion_latency_ns = "t"\n'
     'reconfig_delay_us = "t"\ninsertion_loss_dB = "t"\npower_W = "t"\nrelative_cost = "t"\n',
     r"ocs-mine.toml: ocs.o.ports: expected an integer, got float 2.5"),
    ("models.toml", '[m]\ndescription = "d"\nlayers = 2\n', r"models.toml: models.m: missing required key"),
    ("switches-x.toml", '[s]\ndescription = "d"\nports = 8\nport_bandwidth_Gbps = 1\nlatency_ns = 1\npower_W = 1\n'
     'relative_cost = 1\nport_link = "copper-nvlink"\nin_network_reduction = 1\n[s.source]\nports = "t"\n'
     'port_bandwidth_Gbps = "t"\nlatency_ns = "t"\npower_W = "t"\nrelative_cost = "t"\n',
     r"switches-x.toml: switches.s.in_network_reduction: expected true or false"),
])
def test_bad_user_catalog_file_names_file_entry_field(tmp_path, capsys, filename, text, match):
    (tmp_path / "catalog").mkdir()
    path = tmp_path / "catalog" / filename
    path.write_text(text)
    before = dict(hardware.catalog_entries("gpus"))
    with pytest.raises(SpecError, match=match) as e:
        hardware.load_catalog(path)
    assert str(path) in str(e.value)
    assert hardware.catalog_entries("gpus") == before and folders.user_dirs() == []     # nothing was added
    # the same file through a user folder: one line on stderr and exit status 2, from any verb
    code = main(["catalog", "list", "--path", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(match, err), err


def test_ocsnet_path_and_path_option_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCSNET_PATH", str(tmp_path / "missing"))
    assert main(["topo", "list"]) == 2
    assert "OCSNET_PATH: " in capsys.readouterr().err
    monkeypatch.delenv("OCSNET_PATH")
    assert main(["schedule", "list", "--path", str(tmp_path)]) == 2                # no data sub-folder
    assert "holds none of catalog/, topologies/, schedules/, studies/" in capsys.readouterr().err
    assert main(["--path", str(tmp_path / "x"), "topo", "list"]) == 2
    assert "--path: " in capsys.readouterr().err


def test_path_option_on_every_verb():
    from ocsnet.cli import build_parser

    parser = build_parser()
    stack = [parser]
    seen = 0
    while stack:
        p = stack.pop()
        assert "--path" in p._option_string_actions, p.prog
        seen += 1
        for a in p._actions:
            if hasattr(a, "choices") and isinstance(a.choices, dict):
                stack.extend(x for x in a.choices.values() if hasattr(x, "_actions"))
    assert seen >= 12


def test_user_model_scenario_and_load_catalog_folder(tmp_path, capsys):
    m = models.model("llama3-70b")
    entry = "\n".join(f"{k} = {json.dumps(getattr(m, k))}" for k in
                      ("description", "layers", "hidden_size", "ffn_size", "activation", "attention_heads", "kv_heads",
                       "head_dim", "vocab_size", "max_context_tokens", "tied_embeddings", "position_embedding",
                       "norm", "linear_bias", "published_params"))
    src = "\n".join(f'{k} = "test"' for k in ("layers", "hidden_size", "ffn_size", "attention_heads", "kv_heads",
                                              "head_dim", "vocab_size", "max_context_tokens", "published_params"))
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "models.toml").write_text(f"[my-70b]\n{entry.replace('true', 'true')}\n[my-70b.source]\n{src}\n")
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "mine.toml").write_text(
        'description = "mine"\n[fabric]\nn_gpus = 8\nports_per_gpu = 2\n[synthetic]\npattern = "ring"\n'
        'n_gpus = 8\nphases = 3\nmessage_MB = 1\n')
    added = hardware.load_catalog(tmp_path)
    try:
        assert added == {"models": ["my-70b"]}
        assert models.model("my-70b").params() == m.params()
        assert main(["schedule", "list"]) == 0
        assert "mine" in capsys.readouterr().out
    finally:
        folders.remove_path(tmp_path)
    assert "my-70b" not in models.models()


def test_compare_config_toml_json_and_names(tmp_path, capsys):
    from ocsnet.evaluation import DEFAULT_STUDY, study_config
    from ocsnet.evaluation.config import load_study

    assert load_study("lite-vs-h100") == {k: v for k, v in DEFAULT_STUDY.items() if v is not None}
    assert DEFAULT_STUDY["reconfig_delay_us"] is None
    (tmp_path / "s.toml").write_text('models = ["llama3-70b"]\n[decode]\nbatch = 4\n')
    cfg = study_config(load_study(tmp_path / "s.toml"))
    assert cfg["decode"] == {"batch": 4, "context": 4096} and cfg["models"] == ["llama3-70b"]
    (tmp_path / "s.json").write_text('{"models": ["llama3-70b"]}')
    assert load_study(str(tmp_path / "s.json")) == {"models": ["llama3-70b"]}
    for text, match in (('tp = [4, "8"]', r"study.tp\[1\]: expected an integer"),
                        ("top_k = 0", r"study.top_k: 0 is out of range"),
                        ('modes = ["train"]', r"study.modes\[0\]: 'train' is not one of"),
                        ("models = 3", "study.models: expected a non-empty list"),
                        ("[decode]\nbatch = [0]", r"study.decode.batch\[0\]: 0 is out of range"),
                        ("[lite_fabrics.OCS]\noverrides = {}", "study.lite_fabrics.OCS: missing required key 'fabric'"),
                        ("colour = 1", "study.colour: unknown key"),
                        ("models = [", "not valid TOML")):
        (tmp_path / "bad.toml").write_text(text)
        assert main(["compare", "--config", str(tmp_path / "bad.toml"), "-o", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(match, err), (text, err)
    assert main(["compare", "--config", "no-such-study"]) == 2
    assert "study: unknown name 'no-such-study'; known: lite-vs-h100" in capsys.readouterr().err
