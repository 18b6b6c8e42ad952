"""Named specs (strict TOML parsing) and the `ocsnet topo` command."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ocsnet import hardware
from ocsnet.cli import main
from ocsnet.errors import SpecError
from ocsnet.topology import io
from ocsnet.topology.spec import build, list_specs, load_spec

ASTRA = Path(__file__).parent / "data" / "astra" / "Ring_Ring.yml"
REQUIRED = {"h100-dgx", "lite-fat-tree", "lite-rail", "lite-ocs", "lite-cpo-torus", "lite-hybrid"}


def _toml(tmp_path, text, name="x"):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


# ---- specs ---------------------------------------------------------------------------------

def test_required_specs_build():
    names = set(list_specs())
    assert REQUIRED <= names and any(n.startswith("small-") for n in names)
    h100 = build("h100-dgx")
    assert h100.n_gpus == 1024 and set(h100.node_attrs["model"][h100.gpus]) == {"h100-sxm"}
    for name in sorted(REQUIRED - {"h100-dgx"}):
        f = build(name)
        assert f.n_gpus == 4 * h100.n_gpus, name                          # 4x the GPUs: Lite-GPUs
        assert set(f.node_attrs["model"][f.gpus]) == {"lite-base"}, name
        assert f.name == name and f.meta["spec"] == name
        # a Lite-GPU is a quarter of an H100: equal silicon
        assert f.n_gpus * hardware.gpu("lite-base").h100_equivalents == h100.n_gpus
    assert "ocs" in build("lite-ocs").meta and "ocs" in build("lite-hybrid").meta


def test_every_spec_loads_and_small_ones_are_small():
    for name in list_specs():
        s = load_spec(name)
        assert s["description"] and s["name"] == name
        if name.startswith("small-"):
            assert build(name).n_nodes <= 200


def test_units_in_names_are_converted(tmp_path):
    p = _toml(tmp_path, 'description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 2\n'
                        'port_GBps = 25\n')
    assert build(p).meta["ocs"]["circuit_Bps"] == 25e9
    assert build(p, port_GBps=50).meta["ocs"]["circuit_Bps"] == 50e9
    with pytest.raises(SpecError, match="sets 'port_Bps', which another key already sets"):
        build(p, port_Gbps=800)
    f = build("small-hybrid")
    assert f.meta["packet"]["host_Bps"] == 56.25e9
    assert build("small-torus", link_GBps=10).meta["link_Bps"] == 10e9


def test_overrides_and_lookup_order(tmp_path, monkeypatch, capsys):
    assert build("small-ocs", n_gpus=8).n_gpus == 8
    assert build("small-torus", dims=[3, 3]).n_gpus == 9
    (tmp_path / "topologies").mkdir()
    _toml(tmp_path / "topologies", 'description = "local"\ngenerator = "torus"\n[params]\ndims = [5]\n', "local-ring")
    monkeypatch.chdir(tmp_path)
    assert "local-ring" not in list_specs()          # the working directory is not searched
    assert load_spec("small-ring")["origin"] == "built-in"
    monkeypatch.setenv("OCSNET_PATH", str(tmp_path))
    assert "local-ring" in list_specs() and build("local-ring").n_gpus == 5
    # a user spec of a built-in name replaces it, and says so once on stderr
    _toml(tmp_path / "topologies", 'description = "mine"\ngenerator = "torus"\n[params]\ndims = [7]\n', "small-ring")
    capsys.readouterr()
    assert build("small-ring").n_gpus == 7 and build("small-ring").n_gpus == 7
    err = capsys.readouterr().err
    assert err.count("topology spec 'small-ring'") == 1 and "overrides the built-in" in err


@pytest.mark.parametrize("text,match", [
    ('generator = "torus"\n[params]\ndims = [4]\n', "missing required key 'description'"),
    ('description = "d"\n[params]\ndims = [4]\n', "missing required key 'generator'"),
    ('description = "d"\ngenerator = "torus"\ncolour = "red"\n', "unknown key 'colour'"),
    ('description = 3\ngenerator = "torus"\n', "description: expected str"),
    ('description = "d"\ngenerator = "mobius"\n', "generator: 'mobius' is not one of"),
    ('description = "d"\ngenerator = "torus"\nparams = 3\n', "params: expected a table"),
    ('description = "d"\ngenerator = "torus"\n[params]\ndims = [4]\nsize = 2\n', "unknown key 'size'"),
    ('description = "d"\ngenerator = "torus"\n[params]\nwrap = true\n', "missing required key 'dims'"),
    ('description = "d"\ngenerator = "torus"\n[params]\ndims = "4x4"\n', "params.dims: expected int or list"),
    ('description = "d"\ngenerator = "torus"\n[params]\ndims = [4]\nwrap = 1\n', "params.wrap: expected bool"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8.5\nports_per_gpu = 2\n', "params.n_gpus"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 2\nport_GBps = -1\n',
     r"params.port_GBps: -1 is out of range, allowed \(0, inf\)"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 2\nport_GBps = 0\n',
     "params.port_GBps: 0 is out of range"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 2\nport_GBps = "fast"\n',
     "params.port_GBps: expected a number"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 2\nport_GBps = 1\n'
     'port_Bps = 1e9\n', "sets 'port_Bps', which another key already sets"),
    ('description = "d"\ngenerator = "hybrid"\n[params]\nocs_ports_per_gpu = 2\n', "missing required key 'packet'"),
    ('description = "d"\ngenerator = "hybrid"\n[params]\nocs_ports_per_gpu = 2\n[params.packet]\nn_gpus = 4\n',
     "params.packet: missing key 'generator'"),
    ('description = "d"\ngenerator = "hybrid"\n[params]\nocs_ports_per_gpu = 2\nn_gpus = 4\n'
     '[params.packet]\ngenerator = "torus"\ndims = [4]\n', "unknown key 'n_gpus'"),
    ('description = "d"\ngenerator = "hybrid"\n[params]\nocs_ports_per_gpu = 2\n[params.packet]\n'
     'generator = "torus"\ndims = [4]\nspin = 1\n', "params.packet.params: unknown key 'spin'"),
    ('description = "d"\ngenerator = "torus"\n[params\n', "not valid TOML"),
])
def test_strict_parsing_names_the_key(tmp_path, text, match):
    p = _toml(tmp_path, text)
    with pytest.raises(SpecError, match=match):
        build(p)


@pytest.mark.parametrize("text,match", [
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 1\nports_per_gpu = 2\n', "x: n_gpus: 1 is out of range"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 0\n', "ports_per_gpu"),
    ('description = "d"\ngenerator = "torus"\n[params]\ndims = [4, 1]\n', r"dims\[1\]: 1 is out of range"),
    ('description = "d"\ngenerator = "fat_tree"\n[params]\nk = 5\n', "k"),
    ('description = "d"\ngenerator = "ocs_fabric"\n[params]\nn_gpus = 8\nports_per_gpu = 2\ngpu = "h900"\n', "h900"),
])
def test_out_of_range_values_from_the_generator(tmp_path, text, match):
    with pytest.raises(SpecError, match=match):
        build(_toml(tmp_path, text))


def test_unknown_name_and_path():
    with pytest.raises(SpecError, match="unknown name 'nope'; known: .*lite-ocs"):
        load_spec("nope")
    with pytest.raises(SpecError, match="no such file"):
        load_spec("missing/spec.toml")


def test_astra_spec_resolves_relative_path(tmp_path):
    (tmp_path / "net.yml").write_text(ASTRA.read_text())
    p = _toml(tmp_path, 'description = "d"\ngenerator = "astra"\n[params]\nconfig = "net.yml"\n')
    f = build(p)
    assert f.n_gpus == 16 and f.meta["generator"] == "astra"


# ---- CLI -----------------------------------------------------------------------------------

def _err_one_line(capsys):
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_cli_list(capsys):
    assert main(["topo", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "generator", "description"]
    for name in REQUIRED:
        assert name in out


@pytest.mark.parametrize("ext", [".json", ".graphml", ".yml"])
def test_cli_build_writes_a_readable_file(tmp_path, capsys, ext):
    out = tmp_path / f"t{ext}"
    assert main(["topo", "build", "small-torus", "-o", str(out), "--set", "dims=[4, 2]"]) == 0
    assert "wrote" in capsys.readouterr().out
    if ext == ".yml":
        from ocsnet.topology.astra import read_astra_config
        cfg = read_astra_config(out)
        assert list(cfg.npus_count) == [4, 2] and list(cfg.topology) == ["Ring", "Ring"]
    else:
        f, g = io.read(out), build("small-torus", dims=[4, 2])
        assert np.array_equal(f.src, g.src) and np.array_equal(f.capacity_Bps, g.capacity_Bps)
        assert f.meta == g.meta


def test_cli_info_table_and_json(tmp_path, capsys):
    assert main(["topo", "info", "small-ocs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["metric", "value"]
    rows = dict(line.split(None, 1) for line in lines[1:])
    assert rows["n_gpus"].strip() == "16" and rows["n_ocs"].strip() == "4"
    assert "bisection_TBps" in rows and "power_kW" in rows and "ocs_circuit_GBps" in rows
    assert float(rows["ocs_circuit_GBps"]) == pytest.approx(hardware.gpu("lite-base").network_Bps / 4 / 1e9)
    assert main(["topo", "info", "small-torus", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_gpus"] == 16 and s["diameter_hops"] == 4 and s["generator"] == "torus"
    saved = tmp_path / "t.json"
    assert main(["topo", "build", "small-ring", "-o", str(saved)]) == 0
    capsys.readouterr()
    assert main(["topo", "info", str(saved), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_gpus"] == 8
    assert main(["topo", "info", str(ASTRA), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["generator"] == "astra"


def test_cli_draw(tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["topo", "draw", "small-hybrid", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert main(["topo", "draw", "small-torus", "-o", str(tmp_path / "t.svg")]) == 0
    capsys.readouterr()
    assert main(["topo", "draw", "lite-ocs", "-o", str(tmp_path / "big.png")]) == 2
    err = _err_one_line(capsys)
    assert "4608 nodes" in err and "limit of 200" in err and not (tmp_path / "big.png").exists()


@pytest.mark.parametrize("argv,match", [
    (["topo", "info", "no-such-spec"], "unknown name 'no-such-spec'"),
    (["topo", "build", "small-ring", "-o", "x.txt"], "--output"),
    (["topo", "draw", "small-ring", "-o", "x.jpg"], "--output"),
    (["topo", "draw", "small-ring", "-o", "x.png", "--max-nodes", "0"], "--max-nodes"),
    (["topo", "info", "small-ring", "--set", "dims"], "--set: 'dims' is not KEY=VALUE"),
    (["topo", "info", "small-ring", "--set", "dims=[1]"], r"dims\[0\]: 1 is out of range"),
    (["topo", "info", "small-ring", "--set", "colour=red"], "unknown key 'colour'"),
    (["topo", "info", "small-ocs", "--set", "port_GBps=-3"], "port_GBps: -3 is out of range"),
    (["topo", "info", "missing.json"], "no such file"),
    (["topo", "info", str(ASTRA), "--set", "n=1"], "--set: only applies"),
])
def test_cli_bad_input_one_line_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = _err_one_line(capsys)
    assert err.startswith("ocsnet topo: error: ")
    assert re.search(match, err), err


def test_cli_bad_spec_file_and_usage(tmp_path, capsys):
    p = _toml(tmp_path, 'description = "d"\ngenerator = "torus"\n[params]\ndims = [4]\nbogus = 1\n')
    assert main(["topo", "info", str(p)]) == 2
    assert "unknown key 'bogus'" in _err_one_line(capsys)
    assert main(["topo"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["topo", "frobnicate"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["topo", "build", "small-ring"])              # -o missing
    assert e.value.code == 2
